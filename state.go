package bearer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// This file owns the token state: the snapshot that requests read, the three
// phases a token goes through, and the transitions that replace it.

// state is one immutable snapshot of the token; requests read it lock-free.
// What a request with a fresh token reads (loggedOut, auth, refreshAt) comes
// first, within one cache line: state is 128 bytes, a size the allocator
// aligns to 64.
type state struct {
	loggedOut error       // non-nil: requests fail fast with it
	auth      string      // the Authorization value, built once; "" without an access token
	refreshAt time.Time   // from here on the token is stale; zero: used until rejected
	dpop      bool        // the token is DPoP-bound: sent with a proof, never as Bearer
	adopted   bool        // saved by another holder of the store, not refreshed here
	running   atomic.Bool // a background refresh of this state is under way

	tok     *oauth2.Token // nil: no token yet, or logged out
	gen     uint64        // increases with every new state
	waitAt  time.Time     // from here on requests wait for the refresh
	ended   chan struct{} // with loggedOut after a failed refresh: closed once OnLogout has returned
	inStore *oauth2.Token // the pair last known to be in the store: tok, unless saving tok failed
	retryAt atomic.Int64  // unix nanos: after a transient failure, no early refresh before then
}

// phase is where a token is in its life, decided per request.
type phase int

const (
	fresh    phase = iota // before the refresh point: send it
	stale                 // send it, and refresh in the background
	mustWait              // wait for the shared refresh
)

// maxMargin bounds the must-wait margin before expiry.
const maxMargin = 5 * time.Second

// newState builds the state for tok, obtained or loaded now, and gives it
// the next generation. Its caller holds t.mu. A token is stale from expiry
// minus the leeway (at most half its lifetime) and must be waited for from
// expiry minus the margin, min(5s, lifetime/10, leeway). A token that is
// already expired must be refreshed before it is sent, unless refreshed
// says that the refresher has just handed it over: the local clock is then
// the one to doubt, and the token is used until the server rejects it.
func (t *Transport) newState(tok *oauth2.Token, now time.Time, refreshed bool) *state {
	t.gen++
	s := &state{tok: tok, gen: t.gen}
	if tok == nil {
		return s
	}
	if tok.AccessToken != "" {
		s.dpop = strings.EqualFold(tok.TokenType, "DPoP")
		if s.dpop {
			s.auth = "DPoP " + tok.AccessToken
		} else {
			s.auth = tok.Type() + " " + tok.AccessToken
		}
	}
	if tok.Expiry.IsZero() || s.auth == "" {
		return s
	}
	life := tok.Expiry.Sub(now)
	if life <= 0 {
		if !refreshed {
			s.refreshAt, s.waitAt = tok.Expiry, tok.Expiry
		}
		return s
	}
	leeway := min(max(t.cfg.Leeway, 0), life/2)
	s.refreshAt = tok.Expiry.Add(-leeway)
	s.waitAt = tok.Expiry.Add(-min(maxMargin, life/10, leeway))
	return s
}

// phase returns where s is at now.
func (s *state) phase(now time.Time) phase {
	switch {
	case s.auth == "":
		return mustWait
	case s.refreshAt.IsZero() || now.Before(s.refreshAt):
		return fresh
	case now.Before(s.waitAt):
		return stale
	}
	return mustWait
}

// valid reports whether s has a token the server should still accept at now.
func (s *state) valid(now time.Time) bool {
	return s.auth != "" && (s.tok.Expiry.IsZero() || now.Before(s.tok.Expiry))
}

// unsaved reports whether saving s's token failed, so that the store still
// holds the older pair inStore.
func (s *state) unsaved() bool { return s.inStore != s.tok }

// backingOff reports whether a transient failure asked for a pause that
// has not passed yet.
func (s *state) backingOff(now time.Time) bool { return now.UnixNano() < s.retryAt.Load() }

// tokenFor returns the state to send a request with: it reads the store on
// first use, fails fast when logged out, sends a fresh token, sends a stale
// one while it refreshes in the background, and waits for the refresh of a
// token that must be waited for.
func (t *Transport) tokenFor(ctx context.Context) (*state, error) {
	s := t.cur.Load()
	if s == nil {
		var err error
		if s, err = t.load(ctx); err != nil {
			return nil, err
		}
	}
	if s.loggedOut != nil {
		return nil, t.endedErr(ctx, s)
	}
	if s.auth != "" && s.refreshAt.IsZero() {
		return s, nil
	}
	now := t.now()
	switch s.phase(now) {
	case fresh:
		return s, nil
	case stale:
		if !t.cfg.WaitForRefresh {
			t.background(ctx, s, now)
			return s, nil
		}
	}
	if s.valid(now) && s.backingOff(now) {
		return s, nil
	}
	if t.inRefresh(ctx) {
		return usable(s) // called back from inside a refresh: never wait for it
	}
	reason := ReasonExpiring
	if s.auth == "" {
		reason = ReasonNoToken
	}
	ns, err := t.refresh(ctx, s, reason)
	if err != nil && s.valid(now) && isTransient(err) {
		return s, nil // still valid: use it; the flight set when to try again
	}
	return ns, err
}

// newer returns a token newer than used, which the server rejected: the
// current one if another request already replaced it, else the result of
// the shared refresh.
func (t *Transport) newer(ctx context.Context, used *state) (*state, error) {
	if s := t.cur.Load(); s != nil && s.gen != used.gen {
		return t.tokenFor(ctx)
	}
	return t.refresh(ctx, used, ReasonRejected)
}

// endedErr returns the logged-out error of s once OnLogout has returned,
// so that no request fails with a logout before its hook has run. A call
// from inside the refresh (OnLogout calling back with its context) does not
// wait for itself.
func (t *Transport) endedErr(ctx context.Context, s *state) error {
	if s.ended != nil && !t.inRefresh(ctx) {
		select {
		case <-s.ended:
		case <-ctx.Done():
		}
	}
	return s.loggedOut
}

// usable returns s if it has a token to send, else why not.
func usable(s *state) (*state, error) {
	switch {
	case s.loggedOut != nil:
		return nil, s.loggedOut
	case s.auth == "":
		return nil, ErrNoToken
	}
	return s, nil
}

// replace makes the state that next builds current, unless SetToken or
// Logout replaced from meanwhile: then that newer state stands and next does
// not run. next runs under t.mu, so what it writes to the store cannot
// overwrite a login or a logout either. ok tells whether next ran.
func (t *Transport) replace(from *state, next func(now time.Time) *state) (s *state, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.cur.Load(); cur != nil && cur.gen != from.gen {
		return cur, false
	}
	s = next(t.now())
	t.past.add(from.tok, s.tok)
	t.cur.Store(s)
	return s, true
}

// adopt makes tok, which another holder of the store saved, current.
func (t *Transport) adopt(from *state, tok *oauth2.Token) *state {
	s, _ := t.replace(from, func(now time.Time) *state {
		s := t.newState(tok, now, false)
		s.adopted, s.inStore = true, tok
		return s
	})
	return s
}

// install makes tok, just refreshed from base, current, and saves it. A
// failed save leaves the state unsaved, with the pair the store still
// holds: the next coordination repairs the store instead of going back to
// it. If a Logout came first, the pair in the store, whose refresh token
// this refresh spent, is cleared before the lock goes to another holder,
// and the new pair is revoked (see Transport.Logout).
func (t *Transport) install(ctx context.Context, from *state, base, tok *oauth2.Token) *state {
	var saveErr error
	s, ok := t.replace(from, func(now time.Time) *state {
		saveErr = t.saveRefreshed(ctx, tok)
		t.past.add(base, tok)
		s := t.newState(tok, now, true)
		s.inStore = tok
		if saveErr != nil {
			s.inStore = from.inStore
		}
		return s
	})
	if !ok {
		if s.loggedOut != nil {
			// Logout came first, while the refresh spent the stored pair's
			// refresh token: clear the pair now, under the store lock, before
			// another holder presents it; if the store cannot be cleared,
			// leave it the new pair rather than a spent one.
			if err := t.clearStore(ctx); err != nil {
				t.log(ctx, slog.LevelWarn, "bearer: clearing the token store failed", "error", err)
				if err := t.saveStore(ctx, tok); err != nil {
					t.log(ctx, slog.LevelError, "bearer: saving the new token in place of the spent one failed", "error", err)
				}
				return s
			}
			// Nobody will use the new pair: end it at the server too, as
			// the Logout did with the pair it held.
			if err := t.revoke(ctx, tok); err != nil {
				t.log(ctx, slog.LevelWarn, "bearer: revoking the token a refresh got after Logout failed", "error", err)
			}
		}
		return s
	}
	if saveErr != nil {
		t.log(ctx, slog.LevelError, "bearer: saving the new token failed; it is used, and saved again at the next refresh", "error", saveErr)
	}
	if !tok.Expiry.IsZero() && s.refreshAt.IsZero() {
		t.log(ctx, slog.LevelWarn, "bearer: the new token had expired by this machine's clock; it is used until the server rejects it", "expiry", tok.Expiry)
	}
	return s
}

// saveRefreshed saves a token just refreshed, trying again after a failure
// as the refresher's calls are, while the store lock is still held: until
// the save succeeds, the store holds a pair whose refresh token the server
// may have rotated away, which another holder would present.
func (t *Transport) saveRefreshed(ctx context.Context, tok *oauth2.Token) error {
	for attempt := 1; ; attempt++ {
		err := t.saveStore(ctx, tok)
		var pe *panicError
		if err == nil || attempt >= t.attempts || errors.As(err, &pe) || t.sleep(ctx, t.backoff(attempt)) != nil {
			return err
		}
	}
}

// logout ends the session after a permanent failure: it clears the store and
// enters the logged-out state. OnLogout runs later, once the store lock is
// released (see Transport.endSession). ok is false when SetToken came first:
// that session stands.
func (t *Transport) logout(ctx context.Context, from *state, re *RefreshError) (s *state, ok bool) {
	var clearErr error
	s, ok = t.replace(from, func(now time.Time) *state {
		clearErr = t.clearStore(ctx)
		s := t.newState(nil, now, false)
		s.loggedOut = &loggedOutError{re}
		s.ended = make(chan struct{})
		t.hookDone = s.ended // replace holds t.mu
		return s
	})
	if ok && clearErr != nil {
		t.log(ctx, slog.LevelWarn, "bearer: clearing the token store failed", "error", clearErr)
	}
	return s, ok
}

// pastTokens remembers the latest access and refresh tokens that this
// Transport moved past, so that it never goes back to a pair that a store
// still holds after a failed save. Guarded by Transport.mu. The ring is
// made at the first token moved past: a Pool's identity that has not
// refreshed since it was loaded holds none.
type pastTokens struct {
	ring *[16]string
	next int
}

// add records what from held and to replaced: its access token, and its
// refresh token if to has another one.
func (p *pastTokens) add(from, to *oauth2.Token) {
	if from == nil {
		return
	}
	keep := func(s string) {
		if s != "" && !p.has(s) {
			if p.ring == nil {
				p.ring = new([16]string)
			}
			p.ring[p.next%len(p.ring)] = s
			p.next++
		}
	}
	if to == nil || from.AccessToken != to.AccessToken {
		keep(from.AccessToken)
	}
	if to == nil || from.RefreshToken != to.RefreshToken {
		keep(from.RefreshToken)
	}
}

func (p *pastTokens) has(s string) bool {
	if p.ring == nil {
		return false
	}
	for _, v := range p.ring {
		if v == s {
			return true
		}
	}
	return false
}

// older reports whether tok, read from the store, is a pair this Transport
// has moved past.
func (t *Transport) older(tok *oauth2.Token) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return (tok.AccessToken != "" && t.past.has(tok.AccessToken)) || (tok.RefreshToken != "" && t.past.has(tok.RefreshToken))
}

// load reads the store once, on first use, shared by concurrent callers.
func (t *Transport) load(ctx context.Context) (*state, error) {
	ch := t.flights.DoChan("load", func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RefreshTimeout)
		defer cancel()
		tok, err := t.loadStore(lctx)
		if err != nil && !isNotFound(err) {
			return nil, &stepError{step: "reading token store", err: err}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if s := t.cur.Load(); s != nil {
			return s, nil // SetToken won the race
		}
		s := t.newState(tok, t.now(), false)
		s.inStore = tok
		t.cur.Store(s)
		return s, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*state), nil
	case <-ctx.Done():
		return nil, &stepError{step: "waiting for token store", err: ctx.Err()}
	}
}
