package invariant

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// This file holds the faults that a history injects into its own code: the
// store in front of the real one, the Refresher and the hooks.

// errInjected is the error of a store call that a fault failed.
var errInjected = errors.New("invariant: injected store failure")

// faults are the faults queued in one history, shared by its Transports.
type faults struct {
	lose      atomic.Int32 // successful token answers to drop
	refresher atomic.Int32 // Refresher calls to panic

	mu    sync.Mutex
	hooks map[string]int          // hook name → calls to panic
	store map[string][]storeFault // method → faults, in order
}

// storeFault is what happens to the next n calls of a store method.
type storeFault struct {
	kind string // "fail", "fail-after-write", "slow" or "panic"
	n    int
	d    time.Duration // "slow": the stall
}

// take uses up one of the calls counted by c, if any is left.
func take(c *atomic.Int32) bool {
	for {
		v := c.Load()
		if v <= 0 {
			return false
		}
		if c.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

func (f *faults) addHook(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hooks == nil {
		f.hooks = map[string]int{}
	}
	f.hooks[name] += n
}

// hook reports whether this call of the hook must panic.
func (f *faults) hook(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hooks[name] > 0 {
		f.hooks[name]--
		return true
	}
	return false
}

// addStore queues a fault such as "Save fail" for the next n calls.
func (f *faults) addStore(what string, n int, d time.Duration) {
	method, kind, _ := strings.Cut(what, " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.store == nil {
		f.store = map[string][]storeFault{}
	}
	f.store[method] = append(f.store[method], storeFault{kind: kind, n: n, d: d})
}

// storeCall takes the fault for one call of method, if one is queued.
func (f *faults) storeCall(method string) (storeFault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.store[method]
	if len(q) == 0 {
		return storeFault{}, false
	}
	sf := q[0]
	if q[0].n--; q[0].n == 0 {
		f.store[method] = q[1:]
	}
	return sf, true
}

// clear drops every queued fault.
func (f *faults) clear() {
	f.lose.Store(0)
	f.refresher.Store(0)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks, f.store = nil, nil
}

// faultyStore is the store that one Transport sees: the real one, behind
// the history's store faults, with its Saves, Clears and locks recorded.
type faultyStore struct {
	w      *world
	inner  store.Store
	locker store.Locker
}

func newFaultyStore(w *world, inner store.Store) *faultyStore {
	l, ok := inner.(store.Locker)
	if !ok {
		panic(fmt.Sprintf("invariant: the store %T is not a store.Locker", inner))
	}
	return &faultyStore{w: w, inner: inner, locker: l}
}

// before applies a queued fault to a call of method: it stalls, or fails
// it, or panics. The message of a panic in Save shows the token, which the
// Transport must keep out of its log.
func (s *faultyStore) before(ctx context.Context, method string, tok *oauth2.Token) (sf storeFault, err error) {
	sf, ok := s.w.flt.storeCall(method)
	if !ok {
		return sf, nil
	}
	switch sf.kind {
	case "slow":
		stall(ctx, sf.d)
	case "fail":
		return sf, errInjected
	case "panic":
		if tok != nil {
			panic("invariant: injected panic in store " + method + " of " + tok.AccessToken)
		}
		panic("invariant: injected panic in store " + method)
	}
	return sf, nil
}

func (s *faultyStore) Load(ctx context.Context) (*oauth2.Token, error) {
	if _, err := s.before(ctx, "Load", nil); err != nil {
		return nil, err
	}
	return s.inner.Load(ctx)
}

func (s *faultyStore) Save(ctx context.Context, tok *oauth2.Token) (err error) {
	c := *tok
	rec := &storeRec{tr: holderOf(ctx), method: "Save", tok: &c, start: s.w.rec.tick()}
	defer func() {
		rec.end, rec.err = s.w.rec.tick(), err
		s.w.rec.add(func() { s.w.rec.saves = append(s.w.rec.saves, rec) })
	}()
	sf, err := s.before(ctx, "Save", tok)
	if err != nil {
		return err
	}
	err = s.inner.Save(ctx, tok)
	rec.wrote = err == nil
	if sf.kind == "fail-after-write" {
		return errInjected
	}
	return err
}

func (s *faultyStore) Clear(ctx context.Context) (err error) {
	rec := &storeRec{tr: holderOf(ctx), method: "Clear", start: s.w.rec.tick()}
	defer func() {
		rec.end, rec.err = s.w.rec.tick(), err
		s.w.rec.add(func() { s.w.rec.saves = append(s.w.rec.saves, rec) })
	}()
	if _, err := s.before(ctx, "Clear", nil); err != nil {
		return err
	}
	err = s.inner.Clear(ctx)
	rec.wrote = err == nil
	return err
}

func (s *faultyStore) Lock(ctx context.Context) (func() error, error) {
	if _, err := s.before(ctx, "Lock", nil); err != nil {
		return nil, err
	}
	start := time.Now()
	unlock, err := s.locker.Lock(ctx)
	if err == nil {
		l := lockRec{tr: holderOf(ctx), seq: s.w.rec.tick(), wait: time.Since(start)}
		s.w.rec.add(func() { s.w.rec.locks = append(s.w.rec.locks, l) })
	}
	return unlock, err
}

// stall waits for d or until ctx ends: a slow call, not a wait for
// behaviour.
func stall(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
