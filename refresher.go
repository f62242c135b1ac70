package bearer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// Refresher obtains a new token. current is a copy of the newest token known
// (nil if there is none yet); Refresh may read it but the Transport owns it.
//
// A Refresher returns [Permanent](err) when the session cannot go on, for
// example when the server rejected the refresh token; the Transport then
// logs out. Errors from x/oauth2 (*oauth2.RetrieveError) are classified by
// their OAuth2 error code and HTTP status; every other error is transient.
// ctx carries the shared refresh's deadline; HTTP requests made with it are
// never given a token by a Transport, so a Refresher may safely use a client
// built on the Transport it serves.
type Refresher interface {
	Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error)
}

// RefresherFunc adapts a function to the [Refresher] interface.
type RefresherFunc func(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error)

// Refresh calls f(ctx, current).
func (f RefresherFunc) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	return f(ctx, current)
}

// maxRetryAfter caps how long a Retry-After header may delay the next try;
// an answer that asks for more ends the refresh with its transient error.
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
		return usable(r.Val.(*state))
	case <-ctx.Done():
		return nil, fmt.Errorf("bearer: waiting for the token refresh: %w", ctx.Err())
	}
}

// shared is the body of one shared refresh. It runs under its own deadline
// and keeps the values (not the cancellation) of the context that started it.
func (t *Transport) shared(ctx context.Context, from *state, reason Reason) (*state, error) {
	if s := t.cur.Load(); s != nil && s.gen != from.gen {
		return s, nil // already replaced while this caller was on its way
	}
	ctx, cancel := context.WithTimeout(t.refreshContext(ctx), t.cfg.RefreshTimeout)
	defer cancel()
	if t.cfg.OnRefreshStart != nil {
		t.cfg.OnRefreshStart(ctx, reason)
	}
	start := time.Now()
	s, ev := t.coordinate(ctx, from)
	ev.Reason, ev.Duration = reason, time.Since(start)
	if s != nil && s.tok != nil {
		ev.Expiry = s.tok.Expiry
	}
	t.logRefresh(ctx, ev)
	if t.cfg.OnRefresh != nil {
		t.cfg.OnRefresh(ctx, ev)
	}
	if s == nil {
		return nil, ev.Err
	}
	return s, nil // a new token, or the logged-out state
}

// refreshContext derives the context of a shared refresh from the context of
// the request that started it: its values, not its cancellation. Requests
// made under it never carry a token. Token requests use the client that the
// caller put under oauth2.HTTPClient, or one over Config.Base.
func (t *Transport) refreshContext(ctx context.Context) context.Context {
	ctx = SkipAuth(context.WithoutCancel(ctx))
	if _, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); !ok {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, t.tokenClient)
	}
	return ctx
}

// coordinate refreshes the token, or adopts one that another holder of the
// store saved. With a Locker it holds the store's lock throughout:
// lock, reload, adopt or refresh with the newest refresh token, save, unlock.
func (t *Transport) coordinate(ctx context.Context, from *state) (*state, RefreshEvent) {
	base := from.tok
	if t.locker != nil {
		unlock, err := t.locker.Lock(ctx)
		if err != nil {
			return nil, RefreshEvent{Err: &RefreshError{Err: fmt.Errorf("bearer: locking the token store: %w", err)}}
		}
		defer func() {
			if err := unlock(); err != nil {
				t.log(ctx, slog.LevelWarn, "bearer: unlocking the token store failed", "error", err)
			}
		}()
		stored, err := t.cfg.Store.Load(ctx)
		switch {
		case err == nil && !sameToken(stored, from.tok) && t.fresh(stored):
			return t.adopt(from, stored), RefreshEvent{Adopted: true}
		case err == nil:
			base = stored // the newest refresh token of the lineage
		case !isNotFound(err):
			return nil, RefreshEvent{Err: &RefreshError{Err: fmt.Errorf("bearer: reading the token store: %w", err)}}
		}
	}
	tok, attempts, err := t.call(ctx, base)
	if err == nil {
		return t.save(ctx, from, tok), RefreshEvent{Attempts: attempts}
	}
	v := classify(err)
	re := &RefreshError{Permanent: v.permanent, StatusCode: v.status, Code: v.code, Attempts: attempts, Err: err}
	if !v.permanent {
		return nil, RefreshEvent{Attempts: attempts, Err: re}
	}
	// Before ending the session: did another holder of the store refresh
	// while this one failed? Then its token is the way on.
	if stored, err := t.cfg.Store.Load(ctx); err == nil && !sameToken(stored, base) && stored.AccessToken != "" {
		return t.adopt(from, stored), RefreshEvent{Attempts: attempts, Adopted: true}
	}
	if from.tok == nil {
		return nil, RefreshEvent{Attempts: attempts, Err: re} // never logged in: nothing to log out of
	}
	return t.logout(ctx, from, re), RefreshEvent{Attempts: attempts, Err: re}
}

// call asks the refresher for a token, retrying transient failures with a
// short backoff within ctx's deadline.
func (t *Transport) call(ctx context.Context, base *oauth2.Token) (*oauth2.Token, int, error) {
	for attempt := 1; ; attempt++ {
		var cur *oauth2.Token
		if base != nil {
			c := *base
			cur = &c
		}
		tok, err := t.cfg.Refresher.Refresh(ctx, cur)
		if err == nil && (tok == nil || tok.AccessToken == "") {
			err = errors.New("bearer: the refresher returned no access token")
		}
		if err == nil {
			c := *tok
			if c.RefreshToken == "" && base != nil {
				c.RefreshToken = base.RefreshToken // the server kept the old one (RFC 6749 §6)
			}
			return &c, attempt, nil
		}
		v := classify(err)
		if v.permanent || attempt >= t.attempts || ctx.Err() != nil {
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

// replace makes the state that next builds current, unless SetToken or
// Logout replaced from while the refresh ran: then that newer state stands,
// and next does not run. next runs under t.mu, so what it writes to the
// store cannot overwrite a login or a logout either. ok tells whether next
// ran.
func (t *Transport) replace(from *state, next func() *state) (s *state, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.cur.Load(); cur != nil && cur.gen != from.gen {
		return cur, false
	}
	s = next()
	t.cur.Store(s)
	return s, true
}

// adopt makes tok, which another holder of the store saved, current.
func (t *Transport) adopt(from *state, tok *oauth2.Token) *state {
	s, _ := t.replace(from, func() *state { return t.newState(tok, t.now()) })
	return s
}

// save persists a refreshed token and makes it current.
func (t *Transport) save(ctx context.Context, from *state, tok *oauth2.Token) *state {
	s, _ := t.replace(from, func() *state {
		if err := t.cfg.Store.Save(ctx, tok); err != nil {
			// The refresh token may have been rotated: whoever shares the
			// store will now present a spent one. Nothing can undo that here.
			t.log(ctx, slog.LevelError, "bearer: saving the new token failed; it is used but not persisted", "error", err)
		}
		return t.newState(tok, t.now())
	})
	return s
}

// logout ends the session after a permanent failure: it clears the store,
// enters the logged-out state and calls OnLogout, before any waiting request
// returns.
func (t *Transport) logout(ctx context.Context, from *state, re *RefreshError) *state {
	s, ok := t.replace(from, func() *state {
		if err := t.cfg.Store.Clear(ctx); err != nil {
			t.log(ctx, slog.LevelWarn, "bearer: clearing the token store failed", "error", err)
		}
		s := t.newState(nil, t.now())
		s.loggedOut = &loggedOutError{re}
		return s
	})
	if !ok {
		return s // SetToken came first: keep the new session
	}
	t.log(ctx, slog.LevelWarn, "bearer: logged out", "error", re)
	if t.cfg.OnLogout != nil {
		t.cfg.OnLogout(ctx, re)
	}
	return s
}

// fresh reports whether a stored token can be used now.
func (t *Transport) fresh(tok *oauth2.Token) bool {
	return tok.AccessToken != "" && (tok.Expiry.IsZero() || t.now().Before(tok.Expiry))
}

func sameToken(a, b *oauth2.Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

func (t *Transport) log(ctx context.Context, level slog.Level, msg string, args ...any) {
	if t.cfg.Logger != nil {
		t.cfg.Logger.Log(ctx, level, msg, args...)
	}
}

func (t *Transport) logRefresh(ctx context.Context, ev RefreshEvent) {
	if t.cfg.Logger == nil {
		return
	}
	args := []any{"reason", ev.Reason.String(), "duration", ev.Duration, "attempts", ev.Attempts, "adopted", ev.Adopted}
	if ev.Err != nil {
		t.log(ctx, slog.LevelWarn, "bearer: token refresh failed", append(args, "error", ev.Err)...)
		return
	}
	t.log(ctx, slog.LevelDebug, "bearer: token refreshed", append(args, "expiry", ev.Expiry)...)
}
