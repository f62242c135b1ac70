package bearer_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// fire sends n GET requests at once and returns how many got a 200 and the
// errors of the others.
func fire(client *http.Client, url string, n int) (ok int, errs []error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Get(url)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok++
			} else {
				errs = append(errs, errors.New(resp.Status))
			}
		}()
	}
	close(start)
	wg.Wait()
	return ok, errs
}

// TestStorm: 1,000 requests whose token the server has just revoked cause
// exactly one refresh, all succeed, and the server sees no reuse.
func TestStorm(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	tr := newTransport(t, bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		Base:      loopbackBase(t, 1000),
	}, srv.Issue())
	srv.RevokeAccessTokens()

	ok, errs := fire(tr.Client(), srv.APIURL+"/storm", 1000)

	assert.Equal(t, 1000, ok)
	assert.Empty(t, errs)
	st := srv.Stats()
	assert.EqualValues(t, 1, st.Refreshes, "refreshes")
	assert.EqualValues(t, 1, st.TokenRequests, "token requests")
	assert.Zero(t, st.ReuseDetections)
}

// TestWaiterLeavesAtOnce: the request that started a refresh is cancelled
// while 50 others wait for it; it returns context.Canceled before the refresh
// ends, and the others still succeed with that one refresh.
func TestWaiterLeavesAtOnce(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	started := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	srv.OnToken(func(*http.Request) {
		once.Do(func() { close(started) })
		<-release
	})
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 64)}, srv.Issue())
	srv.RevokeAccessTokens()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIURL+"/first", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	<-started // the first request's refresh is at the token endpoint

	others := make(chan int, 1)
	go func() {
		ok, _ := fire(tr.Client(), srv.APIURL+"/other", 50)
		others <- ok
	}()
	// Wait until the 50 have had their 401s and so are joining the refresh.
	assert.Eventually(t, func() bool { return srv.Stats().APIUnauthorized >= 51 }, 10*time.Second, time.Millisecond)

	cancel()
	err := <-first // returns while the refresh is still held at the server
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case <-others:
		t.Fatal("the others finished before the refresh was released")
	default:
	}

	close(release)
	assert.Equal(t, 50, <-others)
	assert.EqualValues(t, 1, srv.Stats().Refreshes)
	srv.OnToken(nil)
}

// TestLogoutOnce: a dead refresh token logs out exactly once for 100
// concurrent requests; later requests fail fast until SetToken.
func TestLogoutOnce(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	st := store.NewMemory(srv.Issue())
	var logouts atomic.Int32
	var logoutErr error
	tr := newTransport(t, bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		Store:     st,
		Base:      loopbackBase(t, 100),
		OnLogout: func(_ context.Context, err error) {
			logouts.Add(1)
			logoutErr = err
		},
	}, nil)
	srv.RevokeRefreshTokens()

	ok, errs := fire(tr.Client(), srv.APIURL+"/x", 100)
	assert.Zero(t, ok)
	require.Len(t, errs, 100)
	for _, err := range errs {
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	}
	assert.EqualValues(t, 1, logouts.Load())
	re, isRE := isRefreshError(logoutErr)
	require.True(t, isRE, "OnLogout gets the *RefreshError")
	assert.True(t, re.Permanent)
	assert.Equal(t, "invalid_grant", re.Code)
	assert.EqualValues(t, 1, srv.Stats().TokenRequests, "one refresh attempt for all")

	_, err := st.Load(context.Background())
	assert.ErrorIs(t, err, store.ErrNotFound, "the store is cleared")

	// Fail fast: nothing reaches the API or the token endpoint.
	before := srv.Stats()
	_, err = tr.Client().Get(srv.APIURL + "/later")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	after := srv.Stats()
	assert.Equal(t, before.APIRequests, after.APIRequests)
	assert.Equal(t, before.TokenRequests, after.TokenRequests)

	// SetToken logs in again.
	require.NoError(t, tr.SetToken(context.Background(), srv.Issue()))
	resp, err := tr.Client().Get(srv.APIURL + "/again")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, logouts.Load())
}
