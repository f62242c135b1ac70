package bearer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
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

// newPool builds a Pool for cfg.
func newPool(t *testing.T, cfg bearer.PoolConfig) *bearer.Pool {
	t.Helper()
	p, err := bearer.NewPool(cfg)
	require.NoError(t, err)
	return p
}

// signIn logs each identity in with a fresh lineage of srv's and returns
// their tokens.
func signIn(t *testing.T, p *bearer.Pool, srv *bearertest.Server, ids ...string) map[string]*oauth2.Token {
	t.Helper()
	toks := make(map[string]*oauth2.Token, len(ids))
	for _, id := range ids {
		toks[id] = srv.Issue()
		require.NoError(t, p.SetToken(context.Background(), id, toks[id]))
	}
	return toks
}

// poolGet sends a GET for id through p's Client and returns its status.
func poolGet(p *bearer.Pool, id, url string) (int, error) {
	req, err := http.NewRequestWithContext(bearer.WithIdentity(context.Background(), id), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// memoryStores is a PoolConfig.Store that keeps one Memory store per
// identity across the pool's evictions, and counts how often each is opened.
type memoryStores struct {
	mu     sync.Mutex
	stores map[string]*store.Memory
	opens  map[string]int
	fail   func(id string) error // if set, decides the error of each open
}

func newMemoryStores() *memoryStores {
	return &memoryStores{stores: map[string]*store.Memory{}, opens: map[string]int{}}
}

func (s *memoryStores) open(id string) (store.Store, error) {
	if s.fail != nil {
		if err := s.fail(id); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opens[id]++
	if s.stores[id] == nil {
		s.stores[id] = store.NewMemory(nil)
	}
	return s.stores[id], nil
}

func (s *memoryStores) opened(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens[id]
}

func TestNewPoolChecksConfig(t *testing.T) {
	ref := bearer.RefresherFunc(func(context.Context, *oauth2.Token) (*oauth2.Token, error) { return nil, nil })
	tests := []struct {
		name string
		cfg  bearer.PoolConfig
		want string
	}{
		{name: "no refresher", cfg: bearer.PoolConfig{}, want: "Refresher is required"},
		{name: "template store", cfg: bearer.PoolConfig{Transport: bearer.Config{Refresher: ref, Store: store.NewMemory(nil)}}, want: "PoolConfig.Store"},
		{name: "bad host", cfg: bearer.PoolConfig{Transport: bearer.Config{Refresher: ref, Hosts: []string{"*.example.com"}}}, want: "Config.Hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bearer.NewPool(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "bearer: "), err.Error())
		})
	}
}

// TestPoolNoIdentity: a request that names no identity fails with
// ErrNoIdentity, reaches no server and has its body closed once, even when
// other identities are logged in.
func TestPoolNoIdentity(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)}})
	signIn(t, p, srv, "alice")
	for _, ctx := range []context.Context{context.Background(), bearer.WithIdentity(context.Background(), "")} {
		body := newBody("payload")
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.APIURL+"/x", body)
		require.NoError(t, err)
		resp, err := p.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, bearer.ErrNoIdentity)
		assert.EqualValues(t, 1, body.closes.Load(), "body closed once")
	}
	_, err := p.Token(context.Background(), "")
	assert.ErrorIs(t, err, bearer.ErrNoIdentity)
	assert.ErrorIs(t, p.SetToken(context.Background(), "", srv.Issue()), bearer.ErrNoIdentity)
	assert.ErrorIs(t, p.Logout(context.Background(), ""), bearer.ErrNoIdentity)
	assert.Zero(t, srv.Stats().APIRequests, "nothing reached the API")
	assert.Zero(t, srv.Stats().TokenRequests)
}

// TestPoolStorm: 1,000 identities, each with 5 concurrent requests whose
// token the server has just revoked: exactly one refresh per identity, no
// reuse, no failure.
func TestPoolStorm(t *testing.T) {
	const identities, perIdentity = 1000, 5
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	base := loopbackBase(t, 128)
	base.MaxConnsPerHost = 128 // bounds the sockets of 5,000 requests at once
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{Refresher: bearer.OAuth2(cfg), Base: base}})
	all := ids("user", identities)
	signIn(t, p, srv, all...)
	srv.RevokeAccessTokens()

	var ok atomic.Int32
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, id := range all {
		for range perIdentity {
			wg.Go(func() {
				<-start
				status, err := poolGet(p, id, srv.APIURL+"/storm")
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("%s: status %d", id, status)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				ok.Add(1)
			})
		}
	}
	close(start)
	wg.Wait()

	assert.EqualValues(t, identities*perIdentity, ok.Load())
	assert.Empty(t, errs)
	st := srv.Stats()
	assert.EqualValues(t, identities, st.Refreshes, "one refresh per identity")
	assert.EqualValues(t, identities, st.TokenRequests)
	assert.Zero(t, st.ReuseDetections)
}

// TestPoolSlowRefreshIsolation: while one identity's refresh is held at its
// refresher, the other identities refresh and send, and its own request
// ends well once it is let go.
func TestPoolSlowRefreshIsolation(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	ref := bearer.OAuth2(cfg)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{
		Base: loopbackBase(t, 16),
		Refresher: bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
			if id, _ := bearer.IdentityFrom(ctx); id == "slow" {
				once.Do(func() { close(entered) })
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return ref.Refresh(ctx, cur)
		}),
	}})
	others := ids("fast", 10)
	signIn(t, p, srv, append(others, "slow")...)
	srv.RevokeAccessTokens()

	slow := make(chan error, 1)
	go func() {
		status, err := poolGet(p, "slow", srv.APIURL+"/slow")
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d", status)
		}
		slow <- err
	}()
	<-entered
	for _, id := range others {
		status, err := poolGet(p, id, srv.APIURL+"/fast")
		require.NoError(t, err, id)
		assert.Equal(t, http.StatusOK, status, id)
	}
	select {
	case err := <-slow:
		t.Fatalf("the slow identity's request ended before its refresh was let go: %v", err)
	default:
	}
	assert.EqualValues(t, len(others), srv.Stats().Refreshes, "the others refreshed meanwhile")

	close(release)
	assert.NoError(t, <-slow)
	assert.EqualValues(t, len(others)+1, srv.Stats().Refreshes)
	assert.Zero(t, srv.Stats().ReuseDetections)
}

// TestPoolStoreIsolation: an identity whose store fails gets that error and
// reaches no server, and tries its store again on its next request; one
// whose store is slow to open delays nobody else.
func TestPoolStoreIsolation(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	errBroken := errors.New("disk on fire")
	entered, release := make(chan struct{}), make(chan struct{})
	stores := newMemoryStores()
	var brokenOpens atomic.Int32
	stores.fail = func(id string) error {
		switch id {
		case "broken":
			brokenOpens.Add(1)
			return errBroken
		case "slow":
			close(entered)
			<-release
		}
		return nil
	}
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)}, Store: stores.open})
	signIn(t, p, srv, "alice", "bob")

	for range 2 {
		_, err := poolGet(p, "broken", srv.APIURL+"/x")
		assert.ErrorIs(t, err, errBroken)
	}
	assert.EqualValues(t, 2, brokenOpens.Load(), "each request tries the store again")
	assert.Zero(t, srv.Stats().APIRequests, "the broken identity reached no server")

	slow := make(chan error, 1)
	go func() {
		_, err := p.Token(context.Background(), "slow")
		slow <- err
	}()
	<-entered
	for _, id := range []string{"alice", "bob"} {
		status, err := poolGet(p, id, srv.APIURL+"/x")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	close(release)
	assert.Error(t, <-slow, "the slow identity was never logged in")
	assert.Zero(t, srv.Stats().Refreshes)
}

// TestPoolLogoutIsolation: one identity whose refresh token dies is logged
// out, and OnLogout is told which; a Logout of another ends only that one;
// the rest go on without a refresh.
func TestPoolLogoutIsolation(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	var mu sync.Mutex
	var ended []string
	p := newPool(t, bearer.PoolConfig{
		Transport: bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)},
		OnLogout: func(_ context.Context, id string, err error) {
			mu.Lock()
			ended = append(ended, id)
			mu.Unlock()
		},
	})
	toks := signIn(t, p, srv, "alice", "bob", "carol")
	srv.RevokeLineage(toks["alice"].RefreshToken)

	_, err := poolGet(p, "alice", srv.APIURL+"/x")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	require.NoError(t, p.Logout(context.Background(), "bob"))
	_, err = poolGet(p, "bob", srv.APIURL+"/x")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)

	status, err := poolGet(p, "carol", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	mu.Lock()
	assert.Equal(t, []string{"alice"}, ended, "OnLogout: the dead refresh token's identity, not bob's Logout")
	mu.Unlock()
	assert.Zero(t, srv.Stats().Refreshes)

	// alice logs in again; bob stays out.
	require.NoError(t, p.SetToken(context.Background(), "alice", srv.Issue()))
	status, err = poolGet(p, "alice", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	_, err = p.Token(context.Background(), "bob")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
}

// TestPoolIdleEviction: an identity idle for longer than IdleTimeout is
// dropped as the pool is used, and its next request loads it from its store
// and is sent without a refresh, its token being still valid.
func TestPoolIdleEviction(t *testing.T) {
	clk := newClock()
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true, Now: clk.Now})
	stores := newMemoryStores()
	p := newPool(t, bearer.PoolConfig{
		Transport:   bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)},
		Store:       stores.open,
		IdleTimeout: 10 * time.Minute,
	})
	bearer.SetPoolClock(p, clk.Now)
	signIn(t, p, srv, "alice", "bob")
	assert.Equal(t, 2, bearer.PoolHeld(p))

	clk.Advance(9 * time.Minute)
	_, err := poolGet(p, "bob", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, 2, bearer.PoolHeld(p), "alice not idle for long enough yet")

	clk.Advance(2 * time.Minute)
	_, err = poolGet(p, "bob", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, 1, bearer.PoolHeld(p), "alice was dropped")

	status, err := poolGet(p, "alice", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 2, stores.opened("alice"), "alice came back from her store")
	assert.Equal(t, 1, stores.opened("bob"))
	assert.Zero(t, srv.Stats().Refreshes, "her token was still valid")
}

// TestPoolMemoryStoreOutlivesEviction: without a Store func, a dropped
// identity's in-memory token is kept, and it comes back logged in.
func TestPoolMemoryStoreOutlivesEviction(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	p := newPool(t, bearer.PoolConfig{
		Transport:     bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)},
		MaxIdentities: 2,
	})
	all := ids("user", 6)
	signIn(t, p, srv, all...)
	assert.Equal(t, 2, bearer.PoolHeld(p))
	for _, id := range all {
		status, err := poolGet(p, id, srv.APIURL+"/x")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	assert.Zero(t, srv.Stats().Refreshes)
}

// TestPoolCap: MaxIdentities bounds the identities held; those pushed out
// come back from their stores without a refresh.
func TestPoolCap(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	stores := newMemoryStores()
	p := newPool(t, bearer.PoolConfig{
		Transport:     bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 4)},
		Store:         stores.open,
		MaxIdentities: 10,
		IdleTimeout:   -1,
	})
	all := ids("user", 30)
	signIn(t, p, srv, all...)
	assert.Equal(t, 10, bearer.PoolHeld(p))
	for range 2 {
		for _, id := range all {
			status, err := poolGet(p, id, srv.APIURL+"/x")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, status)
			assert.LessOrEqual(t, bearer.PoolHeld(p), 10)
		}
	}
	assert.Equal(t, 3, stores.opened("user-0"), "SetToken, then once per round")
	assert.Zero(t, srv.Stats().Refreshes)
}

// TestPoolKeepsRefreshingIdentity: an identity whose background refresh is
// under way is not pushed out, though its request has returned; once the
// refresh saved its token, it is, and comes back with the new token from its
// store, without another refresh and without reuse.
func TestPoolKeepsRefreshingIdentity(t *testing.T) {
	clk := newClock()
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true, AccessTTL: 10 * time.Minute, Now: clk.Now})
	ref := bearer.OAuth2(cfg)
	entered, release, refreshed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	stores := newMemoryStores()
	p := newPool(t, bearer.PoolConfig{
		Transport: bearer.Config{
			Base: loopbackBase(t, 4),
			Refresher: bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				close(entered)
				<-release
				return ref.Refresh(ctx, cur)
			}),
			OnRefresh: func(context.Context, bearer.RefreshEvent) { close(refreshed) },
		},
		Store:         stores.open,
		MaxIdentities: 1,
		IdleTimeout:   -1,
	})
	bearer.SetPoolClock(p, clk.Now)
	signIn(t, p, srv, "alice")
	clk.Advance(10*time.Minute - 20*time.Second) // stale: refreshed in the background

	status, err := poolGet(p, "alice", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "sent with the stale token at once")
	<-entered
	signIn(t, p, srv, "bob") // over the cap, but alice's refresh is under way
	assert.Equal(t, 2, bearer.PoolHeld(p), "alice kept while her refresh runs")

	close(release)
	<-refreshed
	signIn(t, p, srv, "carol")
	assert.Equal(t, 1, bearer.PoolHeld(p), "the cap holds again")

	before := stores.opened("alice")
	status, err = poolGet(p, "alice", srv.APIURL+"/x")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, before+1, stores.opened("alice"), "alice came back from her store")
	st := srv.Stats()
	assert.EqualValues(t, 1, st.Refreshes, "the background refresh's token was saved and used")
	assert.Zero(t, st.ReuseDetections)
}

// TestPoolHotPathAllocations: a request with a valid token allocates no
// more through a Pool than through a Transport.
func TestPoolHotPathAllocations(t *testing.T) {
	resp200 := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}
	base := rtFunc(func(*http.Request) (*http.Response, error) { return resp200, nil }) // records nothing: no allocations of its own
	tok := &oauth2.Token{AccessToken: "at_valid", RefreshToken: "rt_valid", Expiry: time.Now().Add(time.Hour)}
	cfg := bearer.Config{Refresher: &countingRefresher{}, Base: base}
	tr := newTransport(t, cfg, tok)
	p := newPool(t, bearer.PoolConfig{Transport: cfg, Store: func(string) (store.Store, error) { return store.NewMemory(tok), nil }})
	req, err := http.NewRequestWithContext(bearer.WithIdentity(context.Background(), "alice"), http.MethodGet, "https://api.example.com/x", nil)
	require.NoError(t, err)
	send := func(rt http.RoundTripper) {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("RoundTrip: %v", err)
		}
	}
	send(p) // builds alice
	trAllocs := testing.AllocsPerRun(200, func() { send(tr) })
	poolAllocs := testing.AllocsPerRun(200, func() { send(p) })
	t.Logf("allocations per request: Transport %v, Pool %v", trAllocs, poolAllocs)
	assert.LessOrEqual(t, poolAllocs, trAllocs)
}

// TestPoolBytesPerIdentity measures the heap a pool holds per logged-in
// identity (its Transport, token state and in-memory store) over 10,000
// identities, and keeps it bounded.
func TestPoolBytesPerIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10,000 identities")
	}
	const n = 10_000
	all := ids("user", n)
	toks := make([]*oauth2.Token, n)
	for i := range toks {
		toks[i] = &oauth2.Token{
			AccessToken:  fmt.Sprintf("at_%060d", i),
			RefreshToken: fmt.Sprintf("rt_%040d", i),
			TokenType:    "Bearer",
			Expiry:       time.Now().Add(time.Hour),
		}
	}
	cfg := bearer.Config{Refresher: &countingRefresher{}, Base: &fakeBase{}}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := newPool(t, bearer.PoolConfig{Transport: cfg, MaxIdentities: n})
	for i, id := range all {
		require.NoError(t, p.SetToken(context.Background(), id, toks[i]))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	require.Equal(t, n, bearer.PoolHeld(p))
	perIdentity := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("heap held per identity: %d bytes (token strings of %d+%d bytes included)", perIdentity, len(toks[0].AccessToken), len(toks[0].RefreshToken))
	assert.Less(t, perIdentity, int64(1280), "BENCHMARKS.md section 6 gives 1,083 bytes")
	runtime.KeepAlive(p)
	runtime.KeepAlive(toks)
}
