package axios_test

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/internal/axios"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newPort returns an Interceptor logged in at srv, over a base with room
// for conns idle connections.
func newPort(t *testing.T, srv *bearertest.Server, conns int) *axios.Interceptor {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = conns
	t.Cleanup(base.CloseIdleConnections)
	c := &axios.Interceptor{Base: base, RefreshClient: &http.Client{Transport: base}, RefreshURL: srv.RefreshURL}
	c.Login(srv.Issue())
	return c
}

// get sends a GET of the API through c and returns the status.
func get(c *axios.Interceptor, srv *bearertest.Server) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.APIURL+"/x", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// TestRefreshesPerRequest: the port does what the axios pattern does. 20
// requests that get a 401 together each call the refresh endpoint with the
// same refresh token; with rotation, one wins, the other 19 are reuse, which
// revokes the session: 19 logouts, and at most the winner's own retry
// served, when it reaches the API before the reuses have revoked its token.
func TestRefreshesPerRequest(t *testing.T) {
	const n = 20
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	allIn, release := make(chan struct{}), make(chan struct{})
	var arrived atomic.Int32
	srv.OnToken(func(*http.Request) {
		if arrived.Add(1) == n {
			close(allIn)
		}
		<-release // hold every refresh until all n have asked
	})
	c := newPort(t, srv, n)
	var logouts atomic.Int32
	c.OnLogout = func(error) { logouts.Add(1) }
	srv.RevokeAccessTokens()

	var ok atomic.Int32
	done := make(chan struct{})
	for range n {
		go func() {
			defer func() { done <- struct{}{} }()
			if status, err := get(c, srv); err == nil && status == http.StatusOK {
				ok.Add(1)
			}
		}()
	}
	select {
	case <-allIn:
	case <-time.After(10 * time.Second):
		t.Error("not every request called the refresh endpoint")
	}
	close(release)
	for range n {
		<-done
	}

	st := srv.Stats()
	assert.EqualValues(t, n, st.TokenRequests, "one refresh call per request")
	assert.EqualValues(t, 1, st.Refreshes)
	assert.EqualValues(t, n-1, st.ReuseDetections)
	assert.EqualValues(t, n-1, logouts.Load())
	// The one refresh that won may have its request retried before the
	// server has processed the reuses that revoke its new token: that
	// request may succeed; every other fails.
	assert.LessOrEqual(t, ok.Load(), int32(1))
	assert.True(t, c.LoggedOut())
}

// TestStoresTheRotatedRefreshToken: one request at a time, the port
// refreshes with the refresh token the last refresh stored, so rotation
// never looks like reuse.
func TestStoresTheRotatedRefreshToken(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	c := newPort(t, srv, 1)
	var retries atomic.Int32
	c.OnRetry = func(*http.Request) { retries.Add(1) }

	for range 3 {
		srv.RevokeAccessTokens()
		status, err := get(c, srv)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	st := srv.Stats()
	assert.EqualValues(t, 3, st.Refreshes)
	assert.Zero(t, st.ReuseDetections)
	assert.EqualValues(t, 3, retries.Load())
	assert.False(t, c.LoggedOut())
}

func TestRetriesOnlyOnce(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	c := newPort(t, srv, 2)
	srv.FailAPI(2, bearertest.Fault{Status: http.StatusUnauthorized})

	status, err := get(c, srv)
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, status)
	st := srv.Stats()
	assert.EqualValues(t, 2, st.APIRequests)
	assert.EqualValues(t, 1, st.TokenRequests)
}

func TestLogsOutWhenTheRefreshFails(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	c := newPort(t, srv, 2)
	var logoutErr error
	c.OnLogout = func(err error) { logoutErr = err }
	srv.RevokeRefreshTokens()

	_, err := get(c, srv)
	require.Error(t, err)
	assert.Equal(t, err, logoutErr, "logout() gets the refresh error")
	assert.NotContains(t, err.Error(), bearertest.AccessPrefix)
	assert.NotContains(t, err.Error(), bearertest.RefreshPrefix)
	access, refresh := c.Tokens()
	assert.Empty(t, access)
	assert.Empty(t, refresh)
	assert.True(t, c.LoggedOut())
}
