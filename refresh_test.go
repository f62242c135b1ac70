package bearer_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// revokingAPI is a fake API that rejects the access tokens it was told to.
type revokingAPI struct {
	mu      sync.Mutex
	revoked map[string]bool
}

func (a *revokingAPI) revoke(access ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked == nil {
		a.revoked = map[string]bool{}
	}
	for _, at := range access {
		a.revoked["Bearer "+at] = true
	}
}

func (a *revokingAPI) respond(r *http.Request) (*http.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revoked[r.Header.Get("Authorization")] {
		return answer(401), nil
	}
	return answer(200), nil
}

// TestAdoptedTokenRejected: B adopts the token that A saved, the server
// has ended it too, and B refreshes for real instead of returning the 401.
func TestAdoptedTokenRejected(t *testing.T) {
	api := &revokingAPI{}
	base := &fakeBase{respond: api.respond}
	st := store.NewMemory(tok1)
	refA := &countingRefresher{}
	a := newTransport(t, bearer.Config{Refresher: refA, Base: base, Store: st}, nil)
	refB := bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "access-b", RefreshToken: "refresh-b"}, nil
	})
	b := newTransport(t, bearer.Config{Refresher: refB, Base: base, Store: st}, nil)

	_, err := b.Token(context.Background()) // B holds access-0
	require.NoError(t, err)
	api.revoke("access-0")
	code, err := get(t, a) // A refreshes and saves access-1
	require.NoError(t, err)
	require.Equal(t, 200, code)
	api.revoke("access-1") // the server ends A's token early

	before := len(base.requests())
	code, err = get(t, b)
	require.NoError(t, err)
	assert.Equal(t, 200, code, "one real refresh fixes it")
	var sent []string
	for _, s := range base.requests()[before:] {
		sent = append(sent, s.auth)
	}
	assert.Equal(t, []string{"Bearer access-0", "Bearer access-1", "Bearer access-b"}, sent, "two sends after the first, no more")

	// Bounded: a server that rejects every token gets three sends, not a loop.
	api.revoke("access-b", "access-c")
	st2 := store.NewMemory(&oauth2.Token{AccessToken: "access-b", RefreshToken: "refresh-b"})
	c := newTransport(t, bearer.Config{Refresher: refB, Base: base, Store: st2}, nil)
	_, err = c.Token(context.Background())
	require.NoError(t, err)
	require.NoError(t, st2.Save(context.Background(), &oauth2.Token{AccessToken: "access-c", RefreshToken: "refresh-c"}))
	before = len(base.requests())
	code, err = get(t, c)
	require.NoError(t, err)
	assert.Equal(t, 401, code)
	assert.Len(t, base.requests()[before:], 3)
}

// failingSaves is a Memory whose Save fails while fail is set.
type failingSaves struct {
	*store.Memory
	mu   sync.Mutex
	fail int // saves still to fail
}

func (s *failingSaves) Save(ctx context.Context, tok *oauth2.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("disk full")
	}
	return s.Memory.Save(ctx, tok)
}

// TestFailedSaveKeepsLineage: after a save fails, the store holds the pair
// whose refresh token the server rotated away. The next refresh must not go
// back to it: with reuse detection that would revoke the whole session.
func TestFailedSaveKeepsLineage(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	st := &failingSaves{Memory: store.NewMemory(srv.Issue())}
	var logouts int
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Store: st, Base: loopbackBase(t, 4),
		OnLogout: func(context.Context, error) { logouts++ }}, nil)
	client := tr.Client()
	do := func() int {
		resp, err := client.Get(srv.APIURL)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}

	require.Equal(t, 200, do())
	st.fail = 3 // every attempt of the save: the store is left with the older pair
	srv.RevokeAccessTokens()
	require.Equal(t, 200, do(), "refreshed; the save failed")
	srv.RevokeAccessTokens()
	assert.Equal(t, 200, do(), "refreshed again, with the refresh token it holds")
	srv.RevokeAccessTokens()
	assert.Equal(t, 200, do())

	stats := srv.Stats()
	assert.Zero(t, stats.ReuseDetections)
	assert.EqualValues(t, 3, stats.Refreshes)
	assert.Zero(t, logouts)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	now, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, now.RefreshToken, saved.RefreshToken, "the store was repaired")
}

// deadlineStore is a Memory whose Save and Clear fail with an ended context,
// as a network store's would.
type deadlineStore struct{ *store.Memory }

func (s deadlineStore) Save(ctx context.Context, tok *oauth2.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Memory.Save(ctx, tok)
}

// TestSaveHasItsOwnDeadline: a refresh that succeeds at the very end of
// RefreshTimeout still saves what it got.
func TestSaveHasItsOwnDeadline(t *testing.T) {
	st := deadlineStore{store.NewMemory(tok1)}
	ref := bearer.RefresherFunc(func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
		<-ctx.Done() // the token endpoint answered just as the refresh's time ran out
		return &oauth2.Token{AccessToken: "access-1", RefreshToken: "refresh-1"}, nil
	})
	tr := newTransport(t, bearer.Config{Refresher: ref, Store: st, RefreshTimeout: 20 * time.Millisecond,
		Base: &fakeBase{respond: statusSeq(401, 200)}}, nil)
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "refresh-1", saved.RefreshToken)
}

// TestLoginAndLogoutHoldTheStoreLock: with two Transports on one store, a
// SetToken or Logout on one while the other refreshes waits for the store
// lock and is not undone by that refresh, and the other follows it at its
// next refresh.
func TestLoginAndLogoutHoldTheStoreLock(t *testing.T) {
	type rig struct {
		st      *store.Memory
		a, b    *bearer.Transport
		apiA    *revokingAPI
		refA    *gatedRefresher
		locking chan struct{} // B's Lock calls
		logouts int           // A's
		done    chan error    // A's request that refreshes
	}
	setup := func(t *testing.T) *rig {
		r := &rig{st: store.NewMemory(tok1), apiA: &revokingAPI{}, refA: newGatedRefresher(0, nil), locking: make(chan struct{}, 4), done: make(chan error, 1)}
		r.a = newTransport(t, bearer.Config{Refresher: r.refA, Store: r.st, Base: &fakeBase{respond: r.apiA.respond},
			OnLogout: func(context.Context, error) { r.logouts++ }}, nil)
		r.b = newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Store: &signalLocker{Memory: r.st, locking: r.locking},
			Base: &fakeBase{respond: status(200)}}, nil)
		_, err := r.b.Token(context.Background())
		require.NoError(t, err)
		// A's request is rejected; its refresh holds the store lock until released.
		r.apiA.revoke("access-0")
		go func() {
			resp, err := r.a.Client().Get("https://api.example.com/")
			if err == nil {
				resp.Body.Close()
			}
			r.done <- err
		}()
		<-r.refA.started
		return r
	}
	waitLock := func(t *testing.T, r *rig) {
		select {
		case <-r.locking:
		case <-time.After(5 * time.Second):
			t.Fatal("B did not take the store lock")
		}
	}

	t.Run("a login is not overwritten by a refresh under way", func(t *testing.T) {
		r := setup(t)
		login := make(chan error, 1)
		go func() {
			login <- r.b.SetToken(context.Background(), &oauth2.Token{AccessToken: "login", RefreshToken: "login-r"})
		}()
		waitLock(t, r)
		close(r.refA.release)
		require.NoError(t, <-r.done)
		require.NoError(t, <-login)
		saved, err := r.st.Load(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "login", saved.AccessToken)

		// A adopts the login at its next refresh.
		r.apiA.revoke("access-1")
		code, err := get(t, r.a)
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		got, err := r.a.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "login", got.AccessToken)
	})
	t.Run("a logout is not undone by a refresh under way, nor by the next one", func(t *testing.T) {
		r := setup(t)
		logout := make(chan error, 1)
		go func() { logout <- r.b.Logout(context.Background()) }()
		waitLock(t, r)
		close(r.refA.release)
		require.NoError(t, <-r.done)
		require.NoError(t, <-logout)
		_, err := r.st.Load(context.Background())
		assert.ErrorIs(t, err, store.ErrNotFound, "the refresh's save came before the logout's clear")

		// A's next refresh finds the store cleared: it ends its session too.
		r.apiA.revoke("access-1")
		_, err = get(t, r.a)
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		_, err = r.st.Load(context.Background())
		assert.ErrorIs(t, err, store.ErrNotFound, "A did not bring the session back")
		assert.Equal(t, 1, r.logouts)
		_, err = get(t, r.a)
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		assert.Equal(t, 1, r.logouts, "once per lineage")
		assert.EqualValues(t, 1, r.refA.calls.Load())
	})
}

// TestOnLogoutAfterUnlock: OnLogout runs once the store lock is released,
// so a hook that takes its time does not block the other holders.
func TestOnLogoutAfterUnlock(t *testing.T) {
	st := store.NewMemory(tok1)
	lockErr := make(chan error, 1)
	tr := newTransport(t, bearer.Config{
		Refresher: &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("revoked")) }},
		Store:     st,
		Base:      &fakeBase{respond: status(401)},
		OnLogout: func(context.Context, error) {
			lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			unlock, err := st.Lock(lctx)
			if err == nil {
				err = unlock()
			}
			lockErr <- err
		},
	}, nil)
	_, err := get(t, tr)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	assert.NoError(t, <-lockErr, "another holder could take the store lock during OnLogout")
}

// TestOnLogoutCallsBack: an OnLogout that uses the Transport (a request, a
// Token, a new login) gets an answer instead of waiting for itself.
func TestOnLogoutCallsBack(t *testing.T) {
	var tr *bearer.Transport
	hookErrs := make(chan error, 2)
	tr = newTransport(t, bearer.Config{
		Refresher: &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("revoked")) }},
		Base:      &fakeBase{respond: statusSeq(401, 200)},
		OnLogout: func(ctx context.Context, _ error) {
			_, err := tr.Token(ctx)
			hookErrs <- err
			hookErrs <- tr.SetToken(ctx, &oauth2.Token{AccessToken: "again", RefreshToken: "again-r"})
		},
	}, tok1)
	_, err := get(t, tr)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	assert.ErrorIs(t, <-hookErrs, bearer.ErrLoggedOut, "Token in OnLogout")
	assert.NoError(t, <-hookErrs, "SetToken in OnLogout")
	got, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "again", got.AccessToken)
}

type spanKey struct{}

// TestOnRefreshStartContext: the context OnRefreshStart returns is the one
// the refresh runs with, so a trace span started there is the parent of the
// token request and ends in OnRefresh.
func TestOnRefreshStartContext(t *testing.T) {
	var seenByRefresher, seenByOnRefresh any
	tr := newTransport(t, bearer.Config{
		Refresher: bearer.RefresherFunc(func(ctx context.Context, _ *oauth2.Token) (*oauth2.Token, error) {
			seenByRefresher = ctx.Value(spanKey{})
			return &oauth2.Token{AccessToken: "access-1"}, nil
		}),
		Base: &fakeBase{respond: statusSeq(401, 200)},
		OnRefreshStart: func(ctx context.Context, _ bearer.Reason) context.Context {
			return context.WithValue(ctx, spanKey{}, "span-1")
		},
		OnRefresh: func(ctx context.Context, _ bearer.RefreshEvent) { seenByOnRefresh = ctx.Value(spanKey{}) },
	}, tok1)
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Equal(t, "span-1", seenByRefresher)
	assert.Equal(t, "span-1", seenByOnRefresh)
}

// TestStoreThatLostItsToken: a shared store found empty without having been
// cleared (a Redis without persistence after a restart) lost the token: the
// Transport saves its own back instead of logging out, as it does after a
// Logout elsewhere (TestLoginAndLogoutHoldTheStoreLock).
func TestStoreThatLostItsToken(t *testing.T) {
	st := &losingStore{Memory: store.NewMemory(tok1)}
	var logouts int
	api := &revokingAPI{}
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Store: st, Base: &fakeBase{respond: api.respond},
		OnLogout: func(context.Context, error) { logouts++ }}, nil)
	_, err := tr.Token(context.Background())
	require.NoError(t, err)
	st.lose()
	api.revoke("access-0")
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	assert.Zero(t, logouts)
	saved, err := st.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "access-1", saved.AccessToken, "saved back")
}

// losingStore is a Memory that can lose what it holds, as a restarted Redis
// without persistence does: it is then empty, not cleared.
type losingStore struct {
	*store.Memory
	mu sync.Mutex
}

func (s *losingStore) lose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Memory = store.NewMemory(nil)
}

func (s *losingStore) mem() *store.Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Memory
}

func (s *losingStore) Load(ctx context.Context) (*oauth2.Token, error) { return s.mem().Load(ctx) }
func (s *losingStore) Save(ctx context.Context, tok *oauth2.Token) error {
	return s.mem().Save(ctx, tok)
}
func (s *losingStore) Lock(ctx context.Context) (func() error, error) { return s.mem().Lock(ctx) }

// hookRig is a Transport whose refresh ends the session, with an OnLogout
// that waits for release; a request that gets a 401 is sent at once. Its
// tests run in a synctest bubble, which reports a request that hangs.
type hookRig struct {
	tr      *bearer.Transport
	inHook  chan struct{} // OnLogout has begun
	release chan struct{} // OnLogout may return
	reqErr  chan error    // the request's error
}

func newHookRig(t *testing.T, refresher bearer.Refresher) *hookRig {
	r := &hookRig{inHook: make(chan struct{}), release: make(chan struct{}), reqErr: make(chan error, 1)}
	r.tr = newTransport(t, bearer.Config{
		Refresher: refresher,
		Base:      &fakeBase{respond: status(401)},
		OnLogout:  func(context.Context, error) { close(r.inHook); <-r.release },
	}, tok1)
	go func() { // not get: its guard would call t.Fatal off the test's goroutine
		resp, err := r.tr.Client().Get("https://api.example.com/")
		if resp != nil {
			resp.Body.Close()
		}
		r.reqErr <- err
	}()
	return r
}

// setToken calls SetToken on a goroutine of its own; the channel gets its
// error.
func (r *hookRig) setToken() chan error {
	setErr := make(chan error, 1)
	go func() {
		setErr <- r.tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "again", RefreshToken: "again-r"})
	}()
	return setErr
}

// TestSetTokenReturnsAfterTheLogoutItFollows: a SetToken that waited for
// the store lock while a refresh ended the session returns only after that
// session's OnLogout has, so an application never hears of the old
// session's end after its new login is done.
func TestSetTokenReturnsAfterTheLogoutItFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		locked := make(chan struct{}) // the refresh holds the store lock
		fail := make(chan struct{})   // the refresh may fail
		r := newHookRig(t, bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
			close(locked)
			<-fail
			return nil, bearer.Permanent(errors.New("revoked"))
		}))
		<-locked
		setErr := r.setToken()
		synctest.Wait() // SetToken waits for the store lock
		close(fail)
		<-r.inHook
		synctest.Wait()
		assert.Zero(t, len(setErr), "SetToken returned while the OnLogout of the session it followed was running")
		close(r.release)
		require.NoError(t, <-setErr)
		assert.ErrorIs(t, <-r.reqErr, bearer.ErrLoggedOut)
		got, err := r.tr.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "again", got.AccessToken, "the new login stands")
	})
}

// TestSetTokenFromOnLogoutWithoutItsContext: an OnLogout that logs in again
// with a context of its own, not the hook's, would wait for itself; the
// wait ends at Config.RefreshTimeout, the login stands and the wait is
// logged.
func TestSetTokenFromOnLogoutWithoutItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		var mu sync.Mutex
		var tr *bearer.Transport
		setErr := make(chan error, 1)
		start := time.Now()
		var waited time.Duration
		tr = newTransport(t, bearer.Config{
			Refresher:      &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("revoked")) }},
			Base:           &fakeBase{respond: status(401)},
			RefreshTimeout: 3 * time.Second, // within get's guard of 5s
			Logger:         slog.New(slog.NewTextHandler(lockedWriter{&logs, &mu}, nil)),
			OnLogout: func(context.Context, error) {
				err := tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "again", RefreshToken: "again-r"})
				waited = time.Since(start)
				setErr <- err
			},
		}, tok1)
		_, err := get(t, tr)
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		require.NoError(t, <-setErr)
		assert.Equal(t, 3*time.Second, waited, "SetToken waited Config.RefreshTimeout for the hook it ran in")
		got, err := tr.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "again", got.AccessToken)
		mu.Lock()
		defer mu.Unlock()
		assert.Contains(t, logs.String(), "SetToken stopped waiting for the OnLogout")
	})
}

// TestSetTokenAfterLogoutWaitsForOnLogout: a Logout between the refresh's
// logout and the new login does not let SetToken return before the old
// session's OnLogout has.
func TestSetTokenAfterLogoutWaitsForOnLogout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newHookRig(t, &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("revoked")) }})
		<-r.inHook
		require.NoError(t, r.tr.Logout(context.Background()))
		setErr := r.setToken()
		synctest.Wait()
		assert.Zero(t, len(setErr), "SetToken returned while the OnLogout of the session before the Logout was running")
		close(r.release)
		require.NoError(t, <-setErr)
		assert.ErrorIs(t, <-r.reqErr, bearer.ErrLoggedOut)
	})
}
