// Package holdslot is the lock that a store takes in the process before it
// takes the lock of its file or server: one holder per Store at a time, and
// a record of its hold, which the shared stores' writes (store/redisstore,
// store/pgstore) read to fence themselves.
package holdslot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Slot is one Store's slot for its holder of type H. Make it with New.
type Slot[H any] struct {
	name string        // the store's name, which starts its errors
	sem  chan struct{} // the one holder
	mu   sync.Mutex
	hold *H // non-nil while the slot is held
}

// New returns a free slot whose errors start with name ("redisstore").
func New[H any](name string) *Slot[H] {
	return &Slot[H]{name: name, sem: make(chan struct{}, 1)}
}

// Lock waits for the slot, or fails once ctx has ended, even if it is free,
// so that a caller whose time is up sends nothing to the server. It then
// calls acquire for the outer lock and records the hold; the slot is free
// again if acquire fails or panics. The returned function clears the hold,
// calls release with ctx (which may have ended by then) and frees the slot;
// it must be called once, and reports an error, releasing nothing, on
// later calls.
func (s *Slot[H]) Lock(ctx context.Context, acquire func(context.Context) (*H, error), release func(context.Context, *H) error) (func() error, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	held := false
	defer func() {
		if !held {
			<-s.sem
		}
	}()
	h, err := acquire(ctx)
	if err != nil {
		return nil, err
	}
	held = true
	s.mu.Lock()
	s.hold = h
	s.mu.Unlock()

	var released atomic.Bool
	return func() error {
		if !released.CompareAndSwap(false, true) {
			return errors.New(s.name + ": unlock of a lock already released")
		}
		s.mu.Lock()
		s.hold = nil
		s.mu.Unlock()
		defer func() { <-s.sem }()
		return release(ctx, h)
	}, nil
}

func (s *Slot[H]) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: waiting for the lock: %w", s.name, err)
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the lock: %w", s.name, ctx.Err())
	}
}

// Current returns the hold, or nil while the slot is free.
func (s *Slot[H]) Current() *H {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hold
}
