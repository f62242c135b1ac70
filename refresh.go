package bearer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// This file holds the shared refresh: one flight per token generation, in the
// background or waited for, coordinated with the other holders of the store.

// maxRetryAfter caps how long a Retry-After header may delay the next try
// within one refresh; an answer that asks for more ends the refresh with its
// transient error, and the next refresh waits as asked.
const maxRetryAfter = 5 * time.Second

// defaultBackoff waits about 100ms, then 200ms, ... with some jitter so
// that a fleet does not retry in step.
func defaultBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << (attempt - 1)
	return d/2 + rand.N(d)
}

// refresh joins the one shared refresh of the token in from, starting it if
// none is under way. A caller whose ctx ends leaves at once; the refresh goes
// on for the others under its own timeout.
func (t *Transport) refresh(ctx context.Context, from *state, reason Reason) (*state, error) {
	ch := t.flights.DoChan(strconv.FormatUint(from.gen, 10), func() (any, error) {
		return t.shared(ctx, from, reason)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		s := r.Val.(*state)
		switch {
		case s.loggedOut != nil:
			return nil, t.endedErr(ctx, s)
		case s.gen != from.gen && s.auth == "":
			return t.tokenFor(ctx) // a newer login that has yet to be refreshed
		}
		return usable(s)
	case <-ctx.Done():
		return nil, &stepError{step: "waiting for token refresh", err: ctx.Err()}
	}
}

// background starts the shared refresh of a stale token without waiting for
// it, unless one is under way or a transient failure asked for a pause.
func (t *Transport) background(ctx context.Context, s *state, now time.Time) {
	if s.backingOff(now) || !s.running.CompareAndSwap(false, true) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		t.flights.Do(strconv.FormatUint(s.gen, 10), func() (any, error) {
			return t.shared(ctx, s, ReasonExpiring)
		})
	}()
}

// shared is the body of one shared refresh. It runs under its own deadline
// and keeps the values (not the cancellation) of the context that started
// it. It returns the new state, or an error that every waiter gets; no panic
// in user code leaves it.
func (t *Transport) shared(ctx context.Context, from *state, reason Reason) (s *state, err error) {
	if cur := t.cur.Load(); cur != nil && cur.gen != from.gen {
		return cur, nil // already replaced while this caller was on its way
	}
	ctx, cancel := context.WithTimeout(t.refreshContext(ctx), t.cfg.RefreshTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil { // only the Transport's own code is left to panic here
			t.logPanic(ctx, "refresh", r)
			s, err = nil, &RefreshError{Err: &panicError{"refresh"}}
		}
	}()
	t.refreshing.Add(1)
	counted := true
	defer func() {
		if counted { // a panic skipped OnRefresh
			t.refreshing.Add(-1)
		}
	}()
	if t.cfg.OnRefreshStart != nil {
		t.hook(ctx, "OnRefreshStart", func() {
			if c := t.cfg.OnRefreshStart(ctx, reason); c != nil {
				ctx = c
			}
		}, from.tok)
	}
	start := time.Now()
	out := t.coordinate(ctx, from)
	if out.loggedOut != nil {
		t.endSession(ctx, out.state, out.ev.Err, from.tok)
	}
	ev := out.ev
	ev.Reason, ev.Duration = reason, time.Since(start)
	if out.state != nil && out.state.tok != nil {
		ev.Expiry = out.state.tok.Expiry
	}
	if out.state == nil {
		now := t.now()
		from.retryAt.Store(now.Add(holdoff(from.tok, now, out.retryAfter)).UnixNano())
		from.running.Store(false)
	}
	t.logRefresh(ctx, ev)
	counted = false
	t.refreshing.Add(-1) // saved already: a Pool may drop the identity from here
	if t.cfg.OnRefresh != nil {
		t.hook(ctx, "OnRefresh", func() { t.cfg.OnRefresh(ctx, ev) }, from.tok)
	}
	if out.state == nil {
		return nil, ev.Err
	}
	return out.state, nil // a new token, or the logged-out state
}

// holdoff is how long to wait before the next early refresh of tok after a
// transient failure: what the server asked for, else up to 5s, never past
// half of the token's remaining life.
func holdoff(tok *oauth2.Token, now time.Time, asked time.Duration) time.Duration {
	d := maxMargin
	if tok != nil && !tok.Expiry.IsZero() {
		d = min(d, max(tok.Expiry.Sub(now), 0)/2)
	}
	return max(d, asked)
}

// endSession reports a logout after a permanent failure, of the session of
// the token ended: in the log and to OnLogout, once, after the store lock is
// released and before any request that fails with it returns (they wait for
// s.ended). An OnLogout that calls back into the Transport with its ctx is
// answered at once.
func (t *Transport) endSession(ctx context.Context, s *state, err error, ended *oauth2.Token) {
	defer close(s.ended)
	t.log(ctx, slog.LevelWarn, "bearer: logged out", "error", err)
	if t.onLogout != nil {
		t.hook(ctx, "OnLogout", func() { t.onLogout(ctx, err) }, ended)
	}
}

// refreshContext derives the context of a shared refresh from the context of
// the request that started it: its values, not its cancellation. Requests
// made under it never carry a token. Token requests use the client that the
// caller put under oauth2.HTTPClient, or one over Config.Base.
func (t *Transport) refreshContext(ctx context.Context) context.Context {
	ctx = context.WithValue(SkipAuth(context.WithoutCancel(ctx)), inRefreshKey{}, t)
	switch c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); {
	case !ok:
		ctx = context.WithValue(ctx, oauth2.HTTPClient, t.tokenClient)
	case t.cfg.DPoP != nil: // its token requests need proofs too
		ctx = context.WithValue(ctx, oauth2.HTTPClient, t.cfg.DPoP.Client(c))
	}
	return ctx
}

// inRefreshKey marks the context of a shared refresh of the Transport it
// holds: code of the user's that calls back into that Transport from there
// (a Refresher or a hook calling Token) gets the current token at once
// instead of waiting for the refresh it runs in.
type inRefreshKey struct{}

// inRefresh reports whether ctx is that of one of t's shared refreshes.
func (t *Transport) inRefresh(ctx context.Context) bool {
	v, _ := ctx.Value(inRefreshKey{}).(*Transport)
	return v == t
}

// outcome is what one coordination came to.
type outcome struct {
	state      *state        // the new state; nil when the refresh failed transiently
	ev         RefreshEvent  // Reason, Duration and Expiry still to fill in
	retryAfter time.Duration // asked for by the token endpoint's last answer
	loggedOut  *RefreshError // non-nil: this refresh ended the session
}

// errClearedElsewhere is the cause of a logout that another holder of the
// store made: the store says it was cleared (store.ErrCleared).
var errClearedElsewhere = errors.New("the token store was cleared by another holder (logged out elsewhere)")

// coordinate refreshes the token, or adopts one that another holder of the
// store saved. With a Locker it holds the store's lock throughout: lock,
// reload, adopt or refresh with the newest refresh token, save, unlock. It
// never goes back to a pair this Transport has moved past: a store that
// still holds one missed a save, and is repaired.
func (t *Transport) coordinate(ctx context.Context, from *state) outcome {
	base := from.tok
	if t.locker() != nil {
		unlock, err := t.lockStore(ctx)
		if err != nil {
			return failed(&RefreshError{Err: fmt.Errorf("locking token store: %w", err)})
		}
		defer unlock()
		if cur := t.cur.Load(); cur != nil && cur.gen != from.gen {
			// SetToken or Logout came while this refresh waited for the
			// lock: refreshing from would spend the new login's refresh token.
			return outcome{state: cur, ev: RefreshEvent{Adopted: true}}
		}
		stored, err := t.loadStore(ctx)
		switch {
		case errors.Is(err, store.ErrCleared) && from.tok != nil:
			return t.end(ctx, from, &RefreshError{Permanent: true, Err: errClearedElsewhere}, 0)
		case isNotFound(err):
			// Nothing saved yet, a save of this Transport's failed, or the
			// store lost what it had: the save after this refresh fills it.
		case err != nil:
			return failed(&RefreshError{Err: fmt.Errorf("reading token store: %w", err)})
		case t.older(stored) || (from.unsaved() && sameToken(stored, from.inStore)):
			if err := t.saveStore(ctx, from.tok); err != nil {
				t.log(ctx, slog.LevelWarn, "bearer: repairing token store failed", "error", err)
			}
		case !sameToken(stored, from.tok) && t.current(stored):
			return outcome{state: t.adopt(from, stored), ev: RefreshEvent{Adopted: true}}
		default:
			base = stored // the newest refresh token of the lineage
		}
	}
	tok, attempts, err := t.call(ctx, base)
	if err == nil {
		return outcome{state: t.install(ctx, from, base, tok), ev: RefreshEvent{Attempts: attempts}}
	}
	v := classify(err)
	re := &RefreshError{Permanent: v.permanent, StatusCode: v.status, Code: v.code, Attempts: attempts, Err: err}
	if !v.permanent {
		return outcome{ev: RefreshEvent{Attempts: attempts, Err: re}, retryAfter: v.retryAfter}
	}
	// Before ending the session: did another holder of the store refresh
	// while this one failed? Then its token is the way on.
	if stored, err := t.loadStore(ctx); err == nil && !sameToken(stored, base) && stored.AccessToken != "" && !t.older(stored) {
		return outcome{state: t.adopt(from, stored), ev: RefreshEvent{Attempts: attempts, Adopted: true}}
	}
	if from.tok == nil {
		return failed(re) // never logged in: nothing to log out of
	}
	return t.end(ctx, from, re, attempts)
}

// end ends the session of from with re, unless SetToken came first.
func (t *Transport) end(ctx context.Context, from *state, re *RefreshError, attempts int) outcome {
	out := outcome{ev: RefreshEvent{Attempts: attempts, Err: re}}
	var ok bool
	if out.state, ok = t.logout(ctx, from, re); ok {
		out.loggedOut = re
	}
	return out
}

func failed(re *RefreshError) outcome {
	return outcome{ev: RefreshEvent{Attempts: re.Attempts, Err: re}}
}

// call asks the refresher for a token, retrying transient failures with a
// short backoff within ctx's deadline.
func (t *Transport) call(ctx context.Context, base *oauth2.Token) (*oauth2.Token, int, error) {
	for attempt := 1; ; attempt++ {
		tok, err := t.callRefresher(ctx, base)
		if err == nil && (tok == nil || tok.AccessToken == "") {
			err = errors.New("the refresher returned no access token")
		}
		if err == nil {
			c := *tok
			if c.RefreshToken == "" && base != nil {
				c.RefreshToken = base.RefreshToken // the server kept the old one (RFC 6749 §6)
			}
			if c.TokenType == "" && base != nil && strings.EqualFold(base.TokenType, "DPoP") {
				// No token_type (RFC 6749 §5.1 requires one): the server bound
				// the new token to the proof of this refresh. Never a downgrade.
				c.TokenType = base.TokenType
			}
			return &c, attempt, nil
		}
		v := classify(err)
		var pe *panicError
		if v.permanent || attempt >= t.attempts || ctx.Err() != nil || errors.As(err, &pe) {
			return nil, attempt, err
		}
		if v.retryAfter > maxRetryAfter {
			return nil, attempt, err // asked to wait longer than a refresh may: do not call back early
		}
		wait := max(t.backoff(attempt), v.retryAfter)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return nil, attempt, err
		}
		if t.sleep(ctx, wait) != nil {
			return nil, attempt, err
		}
	}
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// current reports whether a stored token can be used now.
func (t *Transport) current(tok *oauth2.Token) bool {
	return tok.AccessToken != "" && (tok.Expiry.IsZero() || t.now().Before(tok.Expiry))
}

func sameToken(a, b *oauth2.Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken
}

// isTransient reports whether err is a refresh failure that a later refresh
// may overcome.
func isTransient(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && !re.Permanent
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
