package compat_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// The tests in this file run every check of issue 19 under every library of
// setups, wired as the README says.

func forEachSetup(t *testing.T, fn func(t *testing.T, e *env, w wired, s setup)) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			e := newEnv(t)
			fn(t, e, s.wire(e), s)
		})
	}
}

func TestTokenAttached(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		status, body, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status, "the API accepted the token")
		assert.Contains(t, string(body), `"ok":true`)
		assert.EqualValues(t, 1, w.attempts.n.Load())
	})
}

// TestBurstAfterRevocation: 50 concurrent requests whose token the server
// revoked cost one refresh, and every one of them succeeds.
func TestBurstAfterRevocation(t *testing.T) {
	const burst = 50
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		e.srv.RevokeAccessTokens()
		before := e.stats()
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range burst {
			wg.Go(func() {
				if status, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/things", nil); err == nil && status == http.StatusOK {
					ok.Add(1)
				}
			})
		}
		wg.Wait()
		got := e.since(before)
		t.Logf("%d requests: %d ok, %d refreshes, %d token requests, %d reuse, %d API requests",
			burst, ok.Load(), got.Refreshes, got.TokenRequests, got.ReuseDetections, got.APIRequests)
		assert.EqualValues(t, burst, ok.Load())
		assert.EqualValues(t, 1, got.Refreshes)
		assert.EqualValues(t, 1, got.TokenRequests)
		assert.Zero(t, got.ReuseDetections)
		assert.Zero(t, e.logouts.Load())
	})
}

// TestPOSTBodyReplayed: a POST rejected for its token is sent again, body
// and all, with the new one.
func TestPOSTBodyReplayed(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		e.srv.RevokeAccessTokens()
		before := e.stats()
		status, body, err := w.send(context.Background(), http.MethodPost, e.srv.APIURL+"/echo", []byte(`{"n":42}`))
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.JSONEq(t, `{"n":42}`, string(body))
		got := e.since(before)
		assert.EqualValues(t, 1, got.Refreshes)
		assert.EqualValues(t, 2, got.APIRequests, "the rejected send and its replay")
	})
}

// TestServerErrorsUntouched: a 503 from the API is no reason to refresh;
// whether it is retried is the library's business.
func TestServerErrorsUntouched(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, s setup) {
		e.srv.FailAPI(1, bearertest.ServerError(http.StatusServiceUnavailable))
		before := e.stats()
		status, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
		require.NoError(t, err)
		if s.retries5xx {
			assert.Equal(t, http.StatusOK, status, "the library retried the 503")
		} else {
			assert.Equal(t, http.StatusServiceUnavailable, status)
		}
		assert.Zero(t, e.since(before).TokenRequests)
	})
}

// TestNoTokenAcrossHosts: the token goes to the API's host and not to the
// host it redirects to.
func TestNoTokenAcrossHosts(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		var apiAuth, otherAuth atomic.Value
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			otherAuth.Store(r.Header.Get("Authorization"))
		}))
		t.Cleanup(other.Close)
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apiAuth.Store(r.Header.Get("Authorization"))
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		}))
		t.Cleanup(api.Close)
		// other is reached as 127.0.0.1, the API as localhost: two hosts.
		apiURL := strings.Replace(api.URL, "127.0.0.1", "localhost", 1)

		status, _, err := w.send(context.Background(), http.MethodGet, apiURL+"/start", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.True(t, strings.HasPrefix(apiAuth.Load().(string), "Bearer "), "the API got the token")
		assert.Equal(t, "", otherAuth.Load(), "the other host did not")
	})
}

// TestLoggedOutDetectable: a dead refresh token ends the session; the
// request that found out, and every one after it, fail with an error that
// errors.Is finds ErrLoggedOut in, after one attempt: no retry layer retries
// it.
func TestLoggedOutDetectable(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		e.srv.RevokeRefreshTokens()
		for i := range 2 {
			_, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
			require.Error(t, err)
			assert.ErrorIs(t, err, bearer.ErrLoggedOut)
			var re *bearer.RefreshError
			if assert.ErrorAs(t, err, &re) {
				assert.True(t, re.Permanent)
			}
			assert.EqualValues(t, i+1, w.attempts.n.Load(), "one attempt per request")
		}
		assert.EqualValues(t, 1, e.logouts.Load())
	})
}

// TestOutageCosts: while the token endpoint answers 503, one request costs
// the Transport's own three refresh attempts, whatever retry layer is
// above it, and fails with a transient *RefreshError after one attempt.
func TestOutageCosts(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, _ setup) {
		e.srv.RevokeAccessTokens()
		e.srv.FailToken(-1, bearertest.ServerError(http.StatusServiceUnavailable))
		before := e.stats()
		_, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
		require.Error(t, err)
		var re *bearer.RefreshError
		if assert.ErrorAs(t, err, &re) {
			assert.False(t, re.Permanent)
			assert.Equal(t, http.StatusServiceUnavailable, re.StatusCode)
		}
		got := e.since(before)
		t.Logf("token requests %d, attempts %d", got.TokenRequests, w.attempts.n.Load())
		assert.EqualValues(t, 3, got.TokenRequests)
		assert.EqualValues(t, 1, w.attempts.n.Load())
		assert.Zero(t, e.logouts.Load())
	})
}

// TestDeadlineIsTimeout: a request whose deadline passes while it waits for
// a refresh fails with an error that wraps context.DeadlineExceeded and,
// where the library hands on http.Client's *url.Error, is a timeout to
// net.Error and os.IsTimeout. retryablehttp puts its own "giving up" error
// in front, whose Timeout nobody asks.
func TestDeadlineIsTimeout(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env, w wired, s setup) {
		release := e.holdTokens()
		e.srv.RevokeAccessTokens()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _, err := w.send(ctx, http.MethodGet, e.srv.APIURL+"/me", nil)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		if !s.wrapsErrors {
			var ne net.Error
			if assert.ErrorAs(t, err, &ne) {
				assert.True(t, ne.Timeout())
			}
			assert.True(t, os.IsTimeout(err), "os.IsTimeout(%v)", err)
		}
		assert.EqualValues(t, 1, w.attempts.n.Load())

		release()
		status, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	})
}
