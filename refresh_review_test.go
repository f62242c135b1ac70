package bearer_test

// Regression tests for what a review of the rewritten refresh engine found:
// each failed on the engine it was written against; the comment of each says
// what broke for a user.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// gatedLocker is a Memory whose Lock reports each call on entered and, for
// the calls named in gates (1-based), waits for that gate before taking the
// lock.
type gatedLocker struct {
	*store.Memory
	calls   atomic.Int32
	entered chan int32
	gates   map[int32]chan struct{}
}

func newGatedLocker(m *store.Memory, gated ...int32) *gatedLocker {
	g := &gatedLocker{Memory: m, entered: make(chan int32, 16), gates: map[int32]chan struct{}{}}
	for _, n := range gated {
		g.gates[n] = make(chan struct{})
	}
	return g
}

func (g *gatedLocker) Lock(ctx context.Context) (func() error, error) {
	n := g.calls.Add(1)
	g.entered <- n
	if gate, ok := g.gates[n]; ok {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Memory.Lock(ctx)
}

// rotatingServer is a refresher with refresh-token rotation and reuse
// detection, as the token endpoint of a real provider: presenting a
// refresh token a second time revokes the lineage (invalid_grant).
type rotatingServer struct {
	mu        sync.Mutex
	used      map[string]int
	n         int
	ttl       time.Duration
	now       func() time.Time
	reused    []string
	presented []string
}

func newRotatingServer(now func() time.Time, ttl time.Duration) *rotatingServer {
	return &rotatingServer{used: map[string]int{}, now: now, ttl: ttl}
}

func (s *rotatingServer) Refresh(_ context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur == nil || cur.RefreshToken == "" {
		return nil, bearer.ErrNoToken
	}
	s.presented = append(s.presented, cur.RefreshToken)
	s.used[cur.RefreshToken]++
	if s.used[cur.RefreshToken] > 1 {
		s.reused = append(s.reused, cur.RefreshToken)
		return nil, bearer.Permanent(errors.New("refresh token reused: lineage revoked"))
	}
	s.n++
	tok := &oauth2.Token{
		AccessToken:  "at-" + string(rune('a'+s.n)),
		RefreshToken: "rt-" + string(rune('a'+s.n)),
		TokenType:    "Bearer",
	}
	if s.ttl > 0 {
		tok.Expiry = s.now().Add(s.ttl)
	}
	return tok, nil
}

func (s *rotatingServer) reuses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reused...)
}

// TestSetTokenRefreshOnlyDuringWaitingRefresh: a refresh that waits for
// the store lock while SetToken logs in with a refresh-only token (the
// documented way to start from a refresh token) finds the login's refresh
// token in the store, spends it at the token endpoint, and then throws the
// new pair away because SetToken replaced its generation. The request that
// waited gets ErrNoToken, and the next request presents the login's refresh
// token a second time: with rotation and reuse detection the server revokes
// the lineage and the user is logged out right after logging in.
func TestSetTokenRefreshOnlyDuringWaitingRefresh(t *testing.T) {
	clk := newClock()
	srv := newRotatingServer(clk.Now, time.Hour)
	expired := &oauth2.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: clk.Now().Add(-time.Minute)}
	mem := store.NewMemory(expired)
	// Lock call 1 is the refresh's: it waits until SetToken (call 2) is done.
	locker := newGatedLocker(mem, 1)
	var logouts atomic.Int32
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr := newTransport(t, bearer.Config{
		Refresher: srv, Base: base, Store: locker,
		OnLogout: func(context.Context, error) { logouts.Add(1) },
	}, nil)
	bearer.SetClock(tr, clk.Now)

	first := make(chan error, 1)
	go func() {
		resp, err := tr.Client().Get("https://api.example.com/a")
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	require.Equal(t, int32(1), <-locker.entered) // the refresh of the expired token waits for the lock

	// The user logs in again, from a refresh token.
	require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{RefreshToken: "login-refresh"}))
	require.Equal(t, int32(2), <-locker.entered)
	close(locker.gates[1])
	errFirst := <-first

	resp, errSecond := tr.Client().Get("https://api.example.com/b")
	if errSecond == nil {
		resp.Body.Close()
	}

	assert.NoError(t, errFirst, "the request that waited must get the login's refreshed token, not ErrNoToken")
	assert.NoError(t, errSecond, "the next request after a login must work")
	assert.Empty(t, srv.reuses(), "a refresh token was presented twice (rotation: lineage revoked)")
	assert.Zero(t, logouts.Load(), "OnLogout right after a login")
}

// TestLogoutClearsALaterLogin: Logout enters the logged-out state at
// once but clears the store only once it holds the store lock. A SetToken
// that runs in between (it takes the lock first) is then live in memory
// while Logout deletes it from the store: the Transport sends the login's
// token, a restart finds no session, and the next refresh reads the empty
// store as "logged out elsewhere" and calls OnLogout for a session that no
// one ended.
func TestLogoutLeavesALaterLogin(t *testing.T) {
	clk := newClock()
	mem := store.NewMemory(&oauth2.Token{AccessToken: "old-access", RefreshToken: "old-refresh", Expiry: clk.Now().Add(time.Hour)})
	locker := newGatedLocker(mem, 1) // call 1 is Logout's: it waits until SetToken is done
	var logouts atomic.Int32
	ref := &countingRefresher{ttl: time.Hour, now: clk.Now}
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr := newTransport(t, bearer.Config{
		Refresher: ref, Base: base, Store: locker,
		OnLogout: func(context.Context, error) { logouts.Add(1) },
	}, nil)
	bearer.SetClock(tr, clk.Now)
	_, err := tr.Token(context.Background()) // first use: the store is read
	require.NoError(t, err)

	loggedOut := make(chan error, 1)
	go func() { loggedOut <- tr.Logout(context.Background()) }()
	require.Equal(t, int32(1), <-locker.entered)
	login := &oauth2.Token{AccessToken: "login-access", RefreshToken: "login-refresh", Expiry: clk.Now().Add(time.Hour)}
	require.NoError(t, tr.SetToken(context.Background(), login))
	require.Equal(t, int32(2), <-locker.entered)
	close(locker.gates[1])
	require.NoError(t, <-loggedOut)

	got, err := tr.Token(context.Background())
	require.NoError(t, err)
	stored, lerr := mem.Load(context.Background())
	if assert.NoError(t, lerr, "the Transport is logged in as %q but the store is empty", got.AccessToken) {
		assert.Equal(t, got.AccessToken, stored.AccessToken, "memory and store disagree")
	}

	clk.Advance(59*time.Minute + 59*time.Second) // the login's token must now be refreshed
	_, _ = tr.Token(context.Background())
	bearer.Settle(tr)
	assert.Zero(t, logouts.Load(), "OnLogout for a session that was never ended")
}

// TestOnLogoutCallingBack: an OnLogout that calls Token with the context it
// was given is answered at once (ErrLoggedOut) instead of waiting for the
// hook it runs in; with another context it waits for OnLogout to return, as
// every request failing with the logout does, for as long as that context
// allows.
func TestOnLogoutCallingBack(t *testing.T) {
	ref := bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) {
		return nil, bearer.Permanent(errors.New("revoked"))
	})
	var tr *bearer.Transport
	hookErr, outsideErr := make(chan error, 1), make(chan error, 1)
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(401), nil }}
	tr = newTransport(t, bearer.Config{
		Refresher: ref, Base: base,
		OnLogout: func(ctx context.Context, _ error) {
			_, err := tr.Token(ctx)
			hookErr <- err
			outside, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			_, err = tr.Token(outside)
			outsideErr <- err
		},
	}, tok1)

	done := make(chan error, 1)
	go func() {
		_, err := tr.Client().Get("https://api.example.com/")
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		assert.ErrorIs(t, <-hookErr, bearer.ErrLoggedOut)
		assert.ErrorIs(t, <-outsideErr, bearer.ErrLoggedOut, "once its context ended")
	case <-time.After(5 * time.Second): // watchdog: a failure, not a wait for behaviour
		t.Fatal("deadlock: Token called from OnLogout waits for OnLogout to return")
	}
}

// TestRefresherCallingToken: a Refresher (or a hook) that calls tr.Token
// with the context it was given, while the token must be waited for, gets
// the current token at once instead of joining the very refresh it runs in
// (which would wait for itself until its context ended). A call with an
// unrelated context cannot be told from another caller's, and waits; the
// Refresher's documentation says so.
func TestRefresherCallingToken(t *testing.T) {
	var tr *bearer.Transport
	innerErr := make(chan error, 1)
	ref := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		got, err := tr.Token(ctx) // e.g. a token-exchange refresher reading the subject token
		if err == nil && got.AccessToken != "old" {
			err = errors.New("not the current token: " + got.AccessToken)
		}
		innerErr <- err
		return &oauth2.Token{AccessToken: "new-access", RefreshToken: "new-refresh", Expiry: time.Now().Add(time.Hour)}, nil
	})
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr = newTransport(t, bearer.Config{Refresher: ref, Base: base},
		&oauth2.Token{AccessToken: "old", RefreshToken: "r", Expiry: time.Now().Add(-time.Minute)})

	done := make(chan error, 1)
	go func() {
		_, err := tr.Token(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		assert.NoError(t, err)
		assert.NoError(t, <-innerErr)
	case <-time.After(5 * time.Second):
		t.Fatal("deadlock: Token called from the Refresher waits for the refresh it runs in")
	}
}

// TestRefresherErrorLeaksToken: only the package's own refreshers pass
// their errors through redact; the engine wraps a custom Refresher's error
// as it is. A hand-written refresher over net/http that sends the refresh
// token in the query (GET /refresh?refresh_token=...) fails with a
// *url.Error whose message is the URL, and the refresh token then shows in
// the error RoundTrip returns and in the Logger's record, though the
// engine knows exactly which token it handed the refresher (it already
// scrubs it from panic values).
func TestRefresherErrorIsRedacted(t *testing.T) {
	const secret = "rt-SECRET-refresh-token"
	ref := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		return nil, &url.Error{Op: "Get", URL: "https://auth.example.com/refresh?refresh_token=" + cur.RefreshToken,
			Err: errors.New("connection reset by peer")}
	})
	var logs bytes.Buffer
	var logsMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logsMu}, nil))
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Logger: logger},
		&oauth2.Token{AccessToken: "at-expired", RefreshToken: secret, Expiry: time.Now().Add(-time.Minute)})

	_, err := tr.Client().Get("https://api.example.com/")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret, "the refresh token is in the error")
	assert.NotContains(t, fmt.Sprintf("%+v", err), secret, "the refresh token is in the error's %+v")
	logsMu.Lock()
	defer logsMu.Unlock()
	assert.NotContains(t, logs.String(), secret, "the refresh token is in a log record")
}

// failingSave is a Memory whose Save fails on the calls named in fail.
type failingSave struct {
	*store.Memory
	calls atomic.Int32
	fail  map[int32]bool
}

func (f *failingSave) Save(ctx context.Context, tok *oauth2.Token) error {
	if f.fail[f.calls.Add(1)] {
		return errors.New("store blip")
	}
	return f.Memory.Save(ctx, tok)
}

// TestUnsavedRefreshUndoesLogoutElsewhere: after one failed Save the
// state is marked unsaved, and an empty store is then read as "my save
// failed", never as "another holder logged out". So when another holder
// logs out in between, this one refreshes and saves again: the logout is
// undone in the store (every process that starts now is logged in again),
// and no OnLogout is called. The store was not empty when the save failed
// (it held the pair the refresh started from), so the empty store can only
// mean a Clear.
func TestUnsavedRefreshKeepsLogoutElsewhere(t *testing.T) {
	clk := newClock()
	p1 := &oauth2.Token{AccessToken: "p1-access", RefreshToken: "p1-refresh", Expiry: clk.Now().Add(time.Minute)}
	st := &failingSave{Memory: store.NewMemory(p1), fail: map[int32]bool{1: true}}
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	var logoutsA atomic.Int32
	a := newTransport(t, bearer.Config{Refresher: &countingRefresher{ttl: time.Minute, now: clk.Now}, Base: base, Store: st,
		WaitForRefresh: true, OnLogout: func(context.Context, error) { logoutsA.Add(1) }}, nil)
	b := newTransport(t, bearer.Config{Refresher: &countingRefresher{ttl: time.Minute, now: clk.Now}, Base: base, Store: st}, nil)
	bearer.SetClock(a, clk.Now)
	bearer.SetClock(b, clk.Now)
	_, err := b.Token(context.Background())
	require.NoError(t, err)
	_, err = a.Token(context.Background())
	require.NoError(t, err)

	clk.Advance(59 * time.Second) // p1 must be refreshed
	_, err = a.Token(context.Background())
	require.NoError(t, err) // a refreshed; its save failed, the store still holds p1

	require.NoError(t, b.Logout(context.Background())) // the user logs out on b

	clk.Advance(59 * time.Second) // a's token must be refreshed
	_, errA := a.Token(context.Background())

	_, lerr := st.Memory.Load(context.Background())
	assert.ErrorIs(t, lerr, store.ErrNotFound, "the logout on b was undone in the store by a")
	assert.ErrorIs(t, errA, bearer.ErrLoggedOut, "a must end its session at its next refresh")
	assert.Equal(t, int32(1), logoutsA.Load(), "one OnLogout on a")
}

// TestLineageGoesBackAfterManyFailedSaves: the pairs a Transport moved
// past are remembered in a ring of 16 strings, two per refresh. While the
// store keeps failing Save (a full disk under store.File: Lock and Load
// still work), every refresh is kept in memory and the store keeps the last
// pair saved. After 8 such refreshes that pair has fallen out of the ring,
// so the next coordination no longer sees it as older: it has expired, so
// it is not adopted, and its refresh token, spent long ago, is presented as
// "the newest of the lineage". With reuse detection the server revokes the
// lineage and the Transport logs out, though it held a valid refresh token
// all along.
func TestLineageHoldsThroughManyFailedSaves(t *testing.T) {
	clk := newClock()
	srv := newRotatingServer(clk.Now, time.Hour)
	first := &oauth2.Token{AccessToken: "at-0", RefreshToken: "rt-0", TokenType: "Bearer", Expiry: clk.Now().Add(time.Hour)}
	fail := map[int32]bool{}
	for i := int32(1); i <= 100; i++ {
		fail[i] = true // the disk is full
	}
	st := &failingSave{Memory: store.NewMemory(first), fail: fail}
	var logouts atomic.Int32
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr := newTransport(t, bearer.Config{Refresher: srv, Base: base, Store: st, WaitForRefresh: true,
		OnLogout: func(context.Context, error) { logouts.Add(1) }}, nil)
	bearer.SetClock(tr, clk.Now)

	for i := range 12 {
		_, err := tr.Token(context.Background())
		if !assert.NoError(t, err, "refresh number %d, every save failing", i) {
			break
		}
		clk.Advance(59*time.Minute + 58*time.Second) // within the must-wait margin // the token must now be refreshed
	}
	assert.Empty(t, srv.reuses(), "a spent refresh token was presented again")
	assert.Zero(t, logouts.Load())
}

// unclearable is a Memory whose Clear fails and whose Lock says that it was
// called.
type unclearable struct {
	*store.Memory
	locking chan struct{}
}

func (s *unclearable) Clear(context.Context) error { return errors.New("store: read-only") }
func (s *unclearable) Lock(ctx context.Context) (func() error, error) {
	s.locking <- struct{}{}
	return s.Memory.Lock(ctx)
}

// TestLogoutDuringRefreshStoreCannotClear: a Logout overtakes a refresh that
// has spent the stored refresh token, and the store refuses to be cleared.
// The refresh leaves its new pair in the store, not the spent one, so the
// other holder's next refresh is no reuse (which would revoke the lineage).
// Found by TestInvariants (seed 0x6bc747d674c39b70).
func TestLogoutDuringRefreshStoreCannotClear(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	st := &unclearable{Memory: store.NewMemory(srv.Issue()), locking: make(chan struct{}, 8)}
	ref := bearer.OAuth2(cfg)
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	gated := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		entered <- struct{}{}
		<-gate
		return ref.Refresh(ctx, cur)
	})
	a := newTransport(t, bearer.Config{Refresher: gated, Store: st, Base: loopbackBase(t, 2)}, nil)
	b := newTransport(t, bearer.Config{Refresher: ref, Store: st, Base: loopbackBase(t, 2)}, nil)
	for _, tr := range []*bearer.Transport{a, b} {
		_, err := tr.Token(context.Background())
		require.NoError(t, err)
	}
	srv.RevokeAccessTokens()
	done := make(chan error, 1)
	go func() {
		resp, err := a.Client().Get(srv.APIURL)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	<-st.locking // the refresh's
	logout := make(chan error, 1)
	go func() { logout <- a.Logout(context.Background()) }()
	<-st.locking // the Logout's, which waits for the refresh
	close(gate)
	<-done
	assert.Error(t, <-logout, "the store could not be cleared")

	resp, err := b.Client().Get(srv.APIURL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Zero(t, srv.Stats().ReuseDetections, "no refresh token presented twice")
}
