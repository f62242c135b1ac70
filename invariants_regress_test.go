package bearer_test

import (
	"context"
	"net/http"
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

// The defects that TestInvariants found, each as the shortest history that
// shows it.

// twoHolders is two Transports, A and B, on one store whose saves fail on
// demand, against a server with rotation and reuse detection.
type twoHolders struct {
	srv     *bearertest.Server
	st      *failingSaves
	a, b    *bearer.Transport
	logouts atomic.Int32
}

func newTwoHolders(t *testing.T) *twoHolders {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	h := &twoHolders{srv: srv, st: &failingSaves{Memory: store.NewMemory(srv.Issue())}}
	for _, tr := range []**bearer.Transport{&h.a, &h.b} {
		*tr = newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Store: h.st, Base: loopbackBase(t, 4),
			OnLogout: func(context.Context, error) { h.logouts.Add(1) }}, nil)
	}
	return h
}

// get sends one API request through tr.
func (h *twoHolders) get(t *testing.T, tr *bearer.Transport) (int, error) {
	t.Helper()
	resp, err := tr.Client().Get(h.srv.APIURL)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// refreshWithFailedSave makes A refresh once with its save failing, after
// both Transports have read the store: the store keeps the first pair, whose
// refresh token the server has rotated away, and A holds the new one.
func (h *twoHolders) refreshWithFailedSave(t *testing.T) {
	t.Helper()
	for _, tr := range []*bearer.Transport{h.a, h.b} {
		_, err := tr.Token(context.Background())
		require.NoError(t, err)
	}
	h.st.fail = 1
	h.srv.RevokeAccessTokens()
	code, err := h.get(t, h.a)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "A refreshed; its save failed")
}

// TestFailedSaveThenLogoutElsewhere: A's save fails, then B logs out. At its
// next refresh A found the store empty and, taking that for its own failed
// save, refreshed and saved again: the logout was undone. A failed save
// leaves the older pair in the store, never an empty one, so an empty store
// means a logout. (TestInvariants: seed 0x1d24e62cbab1483d.)
func TestFailedSaveThenLogoutElsewhere(t *testing.T) {
	h := newTwoHolders(t)
	h.refreshWithFailedSave(t)
	require.NoError(t, h.b.Logout(context.Background()))

	h.srv.RevokeAccessTokens()
	_, err := h.get(t, h.a)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut, "A follows the logout at its next refresh")
	_, err = h.st.Load(context.Background())
	assert.ErrorIs(t, err, store.ErrNotFound, "the logout stands")
	assert.EqualValues(t, 1, h.logouts.Load())
	assert.EqualValues(t, 1, h.srv.Stats().Refreshes, "no refresh after the logout")
}

// gatedLock is a Memory whose first Lock call says that it was made and
// then waits for the test to open the gate.
type gatedLock struct {
	*store.Memory
	waiting chan struct{}
	gate    chan struct{}
	once    atomic.Bool
}

func (s *gatedLock) Lock(ctx context.Context) (func() error, error) {
	if s.once.CompareAndSwap(false, true) {
		close(s.waiting)
		<-s.gate
	}
	return s.Memory.Lock(ctx)
}

// TestRefreshReplacedWhileWaitingForTheLock: a refresh waits for the store
// lock while SetToken logs in (the clock has moved, so the login is already
// due). Once it had the lock, the refresh went on although its token had been
// replaced: it refreshed the login's refresh token, and threw the answer
// away, since its state was no longer current. The store kept the login,
// whose refresh token the server had rotated away; the next refresh
// presented it again, and reuse detection ended the new session.
// (TestInvariants: seed 0xe4a3339481376f41.)
func TestRefreshReplacedWhileWaitingForTheLock(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	st := &gatedLock{Memory: store.NewMemory(srv.Issue()), waiting: make(chan struct{}), gate: make(chan struct{})}
	var logouts atomic.Int32
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Store: st, Base: loopbackBase(t, 4),
		OnLogout: func(context.Context, error) { logouts.Add(1) }}, nil)
	clk := newClock()
	bearer.SetClock(tr, clk.Now)
	_, err := tr.Token(context.Background())
	require.NoError(t, err)
	get := func() (int, error) {
		resp, err := tr.Client().Get(srv.APIURL)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	clk.Advance(2 * time.Hour) // the token has expired: the next request waits for a refresh
	done := make(chan error, 1)
	go func() {
		_, err := get()
		done <- err
	}()
	<-st.waiting // the refresh waits for the store lock
	require.NoError(t, tr.SetToken(context.Background(), srv.Issue()))
	close(st.gate)
	require.NoError(t, <-done)

	code, err := get()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Zero(t, srv.Stats().ReuseDetections, "no refresh token presented twice")
	assert.Zero(t, logouts.Load())
}

// TestFailedSaveLeavesOthersASpentToken: A's save fails once, so the store
// would keep the pair whose refresh token the server has just rotated away,
// and B, rejected next, would present that spent token: reuse detection
// revokes the lineage. A tries the save again while it still holds the lock,
// so a store that fails once leaves no spent token behind. (A store that
// keeps failing still does: only A knows.) (TestInvariants: seed
// 0x898aa6c5e39342d4, steps 8,11.)
func TestFailedSaveLeavesOthersASpentToken(t *testing.T) {
	h := newTwoHolders(t)
	h.refreshWithFailedSave(t)

	code, err := h.get(t, h.b)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Zero(t, h.srv.Stats().ReuseDetections)
	assert.Zero(t, h.logouts.Load())
}

// secondLockWaits is a Memory whose second Lock call through it says that
// it was made and then waits for the test to open the gate; the others go
// straight through.
type secondLockWaits struct {
	*store.Memory
	calls   atomic.Int32
	waiting chan struct{}
	gate    chan struct{}
}

func (s *secondLockWaits) Lock(ctx context.Context) (func() error, error) {
	if s.calls.Add(1) == 2 {
		close(s.waiting)
		<-s.gate
	}
	return s.Memory.Lock(ctx)
}

// TestLogoutDuringRefresh: A logs out while its refresh is at the token
// endpoint. The refresh got the new pair and dropped it, A being logged out,
// and left the store with the pair whose refresh token it had just spent;
// B took the lock before A's Logout did, presented that token, and reuse
// detection revoked the lineage. (TestInvariants: seed 0x4ac10966cff75945.)
func TestLogoutDuringRefresh(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	mem := store.NewMemory(srv.Issue())
	started, release := make(chan struct{}), make(chan struct{})
	inner := bearer.OAuth2(cfg)
	gated := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		close(started)
		<-release
		return inner.Refresh(ctx, cur)
	})
	stA := &secondLockWaits{Memory: mem, waiting: make(chan struct{}), gate: make(chan struct{})}
	a := newTransport(t, bearer.Config{Refresher: gated, Store: stA, Base: loopbackBase(t, 4)}, nil)
	b := newTransport(t, bearer.Config{Refresher: inner, Store: mem, Base: loopbackBase(t, 4)}, nil)
	for _, tr := range []*bearer.Transport{a, b} {
		_, err := tr.Token(context.Background())
		require.NoError(t, err)
	}
	get := func(tr *bearer.Transport) error {
		resp, err := tr.Client().Get(srv.APIURL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	srv.RevokeAccessTokens()
	refreshed := make(chan error, 1)
	go func() { refreshed <- get(a) }() // A's refresh holds the store lock (A's first Lock)
	<-started
	loggedOut := make(chan error, 1)
	go func() { loggedOut <- a.Logout(context.Background()) }()
	<-stA.waiting // A is logged out; its Logout waits for the store lock (A's second Lock)
	close(release)
	assert.ErrorIs(t, <-refreshed, bearer.ErrLoggedOut)

	assert.ErrorIs(t, get(b), bearer.ErrLoggedOut, "B follows the logout")
	close(stA.gate)
	require.NoError(t, <-loggedOut)
	assert.Zero(t, srv.Stats().ReuseDetections, "no refresh token presented twice")
}
