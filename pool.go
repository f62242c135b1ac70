package bearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// This file holds the Pool: one Transport per identity, made on demand from
// a template Config and that identity's store, and dropped again when idle.

// Default values of the optional [PoolConfig] fields.
const (
	DefaultIdleTimeout   = 10 * time.Minute
	DefaultMaxIdentities = 10_000
)

// ErrNoIdentity is the error of a request sent through a [Pool] whose
// context names no identity (see [WithIdentity]). Such a request reaches no
// server.
var ErrNoIdentity = errors.New("bearer: the request names no identity (see bearer.WithIdentity)")

// PoolConfig configures a [Pool]. Only Transport.Refresher is required.
type PoolConfig struct {
	// Transport is the template of every identity's Transport: Refresher,
	// Base, TokenClient, Leeway, Hosts, hooks and the rest apply to each
	// identity as they would to one [Transport]. Its Store must be nil: the
	// pool's Store takes its place. The hooks are told the identity by their
	// context (see [IdentityFrom]); its OnLogout, if set, runs before
	// PoolConfig.OnLogout, for code that wires a Config's hooks (such as
	// otelbearer.Instrument on this template). Its DPoP key, if set, is the
	// one every identity's tokens are bound to: the backend is one client.
	Transport Config

	// Store returns the store of an identity's token: a file per identity,
	// a Redis key per identity, a database row. It is called when an
	// identity is first used and again after the pool dropped it; its error
	// is the error of that identity's request. If nil, each identity gets an
	// in-memory store, which the pool keeps while it holds a token, even
	// when it drops the identity's Transport.
	Store func(id string) (store.Store, error)

	// OnLogout is called when an identity's refresh token is rejected or
	// another holder of its store logged out: [Config].OnLogout, with the
	// identity. It may run on a background refresh's goroutine; a panic in
	// it is logged and goes no further.
	OnLogout func(ctx context.Context, id string, err error)

	// IdleTimeout is how long an identity may go without a request before
	// the pool drops it from memory; its next request loads it from its
	// store again. Identities are dropped as the pool is used: no goroutine
	// runs for it. Zero means DefaultIdleTimeout; a negative value keeps
	// identities until MaxIdentities pushes them out.
	IdleTimeout time.Duration

	// MaxIdentities bounds how many identities the pool holds: a new one
	// pushes out the least recently used. An identity with a request or a
	// refresh under way is never dropped, so the pool may hold more while
	// they last. Zero means DefaultMaxIdentities; a negative value sets no
	// bound.
	MaxIdentities int
}

// Pool is an [http.RoundTripper] for a backend that calls APIs on behalf of
// many users: each request names its identity in its context
// ([WithIdentity]) and is sent as a [Transport] of that identity alone would
// send it, with its token, refreshing it once however many of its requests
// fail together. Identities are kept apart: a request without an identity
// fails with [ErrNoIdentity], and one identity's refresh, store or logout
// never waits on or affects another's. Create it with [NewPool]. A Pool is
// safe for concurrent use by any number of goroutines.
type Pool struct {
	cfg   PoolConfig
	proto *Transport // the validated template: every identity's Transport is a sibling of it
	// since is the pool's own clock, for when identities were last used: the
	// monotonic time since the pool was made, which costs a request half
	// what a reading of now does.
	since func() time.Duration

	coarse time.Duration // how finely the pool tells when an identity was last used

	mu        sync.Mutex
	members   map[string]*member
	lru       member                   // sentinel: lru.next is the most recently used
	nextSweep time.Duration            // when to look for idle identities again
	mem       map[string]*store.Memory // nil Store: the in-memory stores of dropped identities
}

// member is one identity held by the pool. What a request reads of it
// comes first, in 24 bytes; a member is 96 bytes, which the allocator
// places at the start or the middle of a cache line, so they lie in one.
type member struct {
	inUse atomic.Int32              // requests and calls under way; raised under Pool.mu
	tr    atomic.Pointer[Transport] // nil until built
	last  time.Duration             // when a request started (Pool.since), to within Pool.coarse; guarded by Pool.mu

	id         string
	ready      chan struct{} // closed once tr or err is set
	err        error         // the build failed; set before ready is closed
	mem        *store.Memory // nil Store: the identity's store
	prev, next *member       // guarded by Pool.mu
}

// NewPool returns a Pool for cfg. It checks cfg once; it opens no store.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Transport.Store != nil {
		return nil, errors.New("bearer: PoolConfig.Transport.Store is set; the pool takes each identity's store from PoolConfig.Store")
	}
	proto, err := New(cfg.Transport)
	if err != nil {
		return nil, err
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxIdentities == 0 {
		cfg.MaxIdentities = DefaultMaxIdentities
	}
	p := &Pool{cfg: cfg, proto: proto, coarse: maxCoarse, members: make(map[string]*member)}
	start := time.Now()
	p.since = func() time.Duration { return time.Since(start) }
	if cfg.IdleTimeout > 0 {
		p.coarse = min(maxCoarse, cfg.IdleTimeout/16)
	}
	p.lru.prev, p.lru.next = &p.lru, &p.lru
	if cfg.Store == nil {
		p.mem = make(map[string]*store.Memory)
	}
	return p, nil
}

// identityKey is the context key of WithIdentity.
type identityKey struct{}

// WithIdentity returns a copy of ctx that names the identity a request made
// with it is sent for through a [Pool]. An empty id names none.
func WithIdentity(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom returns the identity that ctx names, if any: in a request's
// context, and in the context of the identity's refreshes and hooks.
func IdentityFrom(ctx context.Context) (id string, ok bool) {
	id, _ = ctx.Value(identityKey{}).(string)
	return id, id != ""
}

// RoundTrip sends req as the Transport of the identity its context names
// would (see [Transport.RoundTrip]). A request that names no identity fails
// with [ErrNoIdentity]; one whose identity's store cannot be opened fails
// with that error. Either way it reaches no server.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	id, ok := IdentityFrom(req.Context())
	if !ok {
		closeBody(req)
		return nil, ErrNoIdentity
	}
	m, err := p.acquire(req.Context(), id)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	defer m.inUse.Add(-1)
	return m.tr.Load().RoundTrip(req)
}

// Client returns an *http.Client that sends its requests through p.
func (p *Pool) Client() *http.Client {
	return &http.Client{Transport: p}
}

// Token returns a copy of the identity's current valid token, as
// [Transport.Token] does.
func (p *Pool) Token(ctx context.Context, id string) (*oauth2.Token, error) {
	var tok *oauth2.Token
	err := p.with(ctx, id, func(ctx context.Context, t *Transport) (err error) {
		tok, err = t.Token(ctx)
		return err
	})
	return tok, err
}

// SetToken logs the identity in with tok, as [Transport.SetToken] does: it
// saves tok to the identity's store.
func (p *Pool) SetToken(ctx context.Context, id string, tok *oauth2.Token) error {
	return p.with(ctx, id, func(ctx context.Context, t *Transport) error { return t.SetToken(ctx, tok) })
}

// Logout logs the identity out, as [Transport.Logout] does: its requests
// fail with an error wrapping [ErrLoggedOut] until SetToken, its store is
// cleared, and then, when the template's Refresher is a [Revoker], its
// token is revoked at the server; a failed revocation is a
// [*RevocationError]. The other identities go on, their tokens untouched.
// It does not call PoolConfig.OnLogout.
func (p *Pool) Logout(ctx context.Context, id string) error {
	return p.with(ctx, id, func(ctx context.Context, t *Transport) error { return t.Logout(ctx) })
}

// CloseIdleConnections closes the idle connections of the base transport,
// of the token client and of the refresher, which all identities share
// (see [Transport.CloseIdleConnections]).
func (p *Pool) CloseIdleConnections() { p.proto.CloseIdleConnections() }

// String describes p without its tokens.
func (p *Pool) String() string { return "bearer.Pool" }

// GoString is String, so that %#v prints no token.
func (p *Pool) GoString() string { return p.String() }

// with runs fn with the Transport of id, under a context that names id.
func (p *Pool) with(ctx context.Context, id string, fn func(context.Context, *Transport) error) error {
	if id == "" {
		return ErrNoIdentity
	}
	ctx = WithIdentity(ctx, id)
	m, err := p.acquire(ctx, id)
	if err != nil {
		return err
	}
	defer m.inUse.Add(-1)
	return fn(ctx, m.tr.Load())
}

// acquire returns the member of id, built and counted in use; the caller
// lowers m.inUse when done. The pool's lock is held only to find or add the
// member: building it, which calls PoolConfig.Store, happens outside, so
// that a slow store delays only its own identity.
func (p *Pool) acquire(ctx context.Context, id string) (*member, error) {
	now := p.since()
	p.mu.Lock()
	m, found := p.members[id]
	if !found {
		m = p.admit(id)
	}
	m.inUse.Add(1)
	if !found || now-m.last >= p.coarse {
		p.touch(m, now)
	}
	p.sweep(now)
	p.mu.Unlock()
	if m.tr.Load() != nil {
		return m, nil
	}
	if !found {
		p.build(m)
	}
	select {
	case <-m.ready:
	case <-ctx.Done():
		m.inUse.Add(-1)
		return nil, &stepError{step: "waiting for the identity's token store", err: ctx.Err()}
	}
	if m.err != nil {
		m.inUse.Add(-1)
		return nil, m.err
	}
	return m, nil
}

// admit adds a member for id, to be built by its caller, and makes room for
// it under MaxIdentities. Its caller holds p.mu.
func (p *Pool) admit(id string) *member {
	if p.cfg.MaxIdentities > 0 {
		for e := p.lru.prev; e != &p.lru && len(p.members) >= p.cfg.MaxIdentities; {
			prev := e.prev
			if p.idle(e) {
				p.drop(e)
			}
			e = prev
		}
	}
	m := &member{id: id, ready: make(chan struct{})}
	if p.mem != nil {
		m.mem = p.mem[id]
		delete(p.mem, id)
		if m.mem == nil {
			m.mem = store.NewMemory(nil)
		}
	}
	p.members[id] = m
	m.prev, m.next = &p.lru, p.lru.next
	m.prev.next, m.next.prev = m, m
	return m
}

// touch makes m the most recently used member. Its caller holds p.mu.
func (p *Pool) touch(m *member, now time.Duration) {
	m.last = now
	if p.lru.next == m {
		return
	}
	m.prev.next, m.next.prev = m.next, m.prev
	m.prev, m.next = &p.lru, p.lru.next
	m.prev.next, m.next.prev = m, m
}

// maxCoarse bounds Pool.coarse. A member is moved to the front of the
// recency list at most once per Pool.coarse, and idle members are looked for
// as often: a request for an identity used a moment ago touches nothing but
// that identity's member, which matters with thousands of them.
const maxCoarse = time.Second

// sweepSteps bounds how many of the least recently used members one
// request looks at for idleness, so that no request pays for many.
const sweepSteps = 64

// sweep drops members idle for longer than IdleTimeout, starting with the
// least recently used, once per p.coarse, or at the next request while
// there may be more. Its caller holds p.mu.
func (p *Pool) sweep(now time.Duration) {
	if p.cfg.IdleTimeout < 0 || now < p.nextSweep {
		return
	}
	e := p.lru.prev
	for range sweepSteps {
		if e == &p.lru || now-e.last < p.cfg.IdleTimeout {
			p.nextSweep = now + p.coarse
			return
		}
		prev := e.prev
		if p.idle(e) {
			p.drop(e)
		}
		e = prev
	}
}

// idle reports whether m may be dropped: nothing of it is under way, so
// nothing it would still save to its store is lost. Its caller holds p.mu,
// under which m.inUse is raised.
func (p *Pool) idle(m *member) bool {
	t := m.tr.Load()
	if t == nil || m.inUse.Load() > 0 || t.refreshing.Load() > 0 {
		return false // being built, or in use
	}
	s := t.cur.Load()
	return s == nil || !s.running.Load() // a background refresh is on its way
}

// drop removes m from the pool. An in-memory store that holds a token is
// kept for the identity's next request. Its caller holds p.mu.
func (p *Pool) drop(m *member) {
	delete(p.members, m.id)
	m.prev.next, m.next.prev = m.next, m.prev
	m.prev, m.next = nil, nil
	if m.mem != nil {
		if tok, err := m.mem.Load(context.Background()); err == nil && tok != nil {
			p.mem[m.id] = m.mem
		}
	}
}

// build makes m's Transport from the template and the identity's store, or
// records why it cannot, and removes m from the pool then, so that the next
// request tries again.
func (p *Pool) build(m *member) {
	defer close(m.ready)
	t, err := p.transport(m)
	if err != nil {
		m.err = err
		p.mu.Lock()
		if p.members[m.id] == m {
			delete(p.members, m.id)
			m.prev.next, m.next.prev = m.next, m.prev
		}
		p.mu.Unlock()
		return
	}
	m.tr.Store(t)
}

// transport returns a Transport for m's identity: one that shares the
// template's Config, hosts and token client with every other identity's
// (what a request reads of them stays in the cache), with the identity's
// store and an OnLogout told the identity. The pool never drops an
// identity while a refresh of it may still save (Transport.refreshing).
func (p *Pool) transport(m *member) (*Transport, error) {
	st := store.Store(m.mem)
	if m.mem == nil {
		var err error
		if st, err = p.openStore(m.id); err != nil {
			return nil, err
		}
	}
	t := p.proto.sibling(st)
	if each, onLogout, id := t.onLogout, p.cfg.OnLogout, m.id; onLogout != nil {
		t.onLogout = func(ctx context.Context, err error) {
			if each != nil {
				each(ctx, err)
			}
			onLogout(ctx, id, err)
		}
	}
	return t, nil
}

// openStore calls PoolConfig.Store, which is the user's code: a panic in it
// is the identity's error.
func (p *Pool) openStore(id string) (st store.Store, err error) {
	err = p.proto.protect(context.Background(), "PoolConfig.Store", func() error {
		st, err = p.cfg.Store(id)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("bearer: opening the identity's token store: %w", err)
	case st == nil:
		return nil, errors.New("bearer: PoolConfig.Store returned no store")
	}
	return st, nil
}
