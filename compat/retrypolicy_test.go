package compat_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// TestRetryPolicies measures what one request costs when the token endpoint
// is down, or the session is over, under each library's default retry
// policy and under the one the README documents. The default rows are the
// "before" of issue 19: retry layers that retry bearer's errors multiply the
// Transport's own three refresh attempts, and keep retrying a logout.
func TestRetryPolicies(t *testing.T) {
	tests := []struct {
		name string
		wire func(e *env) wired
		// One request during an outage of the token endpoint.
		wantOutageTokenRequests int64
		wantOutageAttempts      int32
		// One request whose refresh token is dead.
		wantLoggedOutAttempts int32
	}{
		{"retryablehttp, default policy", func(e *env) wired { return retryableWired(e, nil) }, 15, 5, 5},
		{"retryablehttp, checkRetry", wireRetryablehttp, 3, 1, 1},
		{"resty v2, SetRetryCount(3) only", func(e *env) wired { return restyV2Wired(e, nil) }, 12, 4, 4},
		{"resty v2, restyV2Condition", wireRestyV2, 3, 1, 1},
		// resty v3's default condition retries an error whose Temporary()
		// is true: a RefreshError's is false (it was retried already), a
		// logout's error has none.
		{"resty v3, SetRetryCount(3) only", func(e *env) wired { return restyV3Wired(e, nil) }, 3, 1, 1},
		{"resty v3, restyV3Condition", wireRestyV3, 3, 1, 1},
		// On top of a retrying Base, the Transport sees no retry of its
		// own requests; without TokenClient its token requests go through
		// the Base, and each of the three is sent five times.
		{"retryablehttp as Base, no TokenClient", func(e *env) wired { return retryableBase(e, false) }, 15, 1, 1},
		{"retryablehttp as Base, with TokenClient", wireRetryablehttpAsBase, 3, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("outage", func(t *testing.T) {
				e := newEnv(t)
				w := tt.wire(e)
				e.srv.RevokeAccessTokens()
				e.srv.FailToken(-1, bearertest.ServerError(http.StatusServiceUnavailable))
				before := e.stats()
				_, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
				require.Error(t, err)
				assert.ErrorAs(t, err, new(*bearer.RefreshError))
				got := e.since(before)
				t.Logf("one request: %d token requests, %d attempts", got.TokenRequests, w.attempts.n.Load())
				assert.Equal(t, tt.wantOutageTokenRequests, got.TokenRequests)
				assert.Equal(t, tt.wantOutageAttempts, w.attempts.n.Load())
			})
			t.Run("logged out", func(t *testing.T) {
				e := newEnv(t)
				w := tt.wire(e)
				e.srv.RevokeRefreshTokens()
				_, _, err := w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil)
				require.Error(t, err)
				assert.ErrorIs(t, err, bearer.ErrLoggedOut)
				t.Logf("ErrLoggedOut after %d attempts", w.attempts.n.Load())
				assert.Equal(t, tt.wantLoggedOutAttempts, w.attempts.n.Load())
				assert.EqualValues(t, 1, e.logouts.Load())
			})
		})
	}
}

// TestBurstDuringOutage: 50 concurrent requests while the token endpoint is
// down. Under the documented policies they share one refresh of three
// attempts and each reaches the API once; the default policies' figures are
// logged, for comparison.
func TestBurstDuringOutage(t *testing.T) {
	const burst = 50
	tests := []struct {
		name       string
		wire       func(e *env) wired
		documented bool
	}{
		{"retryablehttp, default policy", func(e *env) wired { return retryableWired(e, nil) }, false},
		{"retryablehttp, checkRetry", wireRetryablehttp, true},
		{"resty v2, SetRetryCount(3) only", func(e *env) wired { return restyV2Wired(e, nil) }, false},
		{"resty v2, restyV2Condition", wireRestyV2, true},
		{"resty v3, SetRetryCount(3) only", func(e *env) wired { return restyV3Wired(e, nil) }, false},
		{"resty v3, restyV3Condition", wireRestyV3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := tt.wire(e)
			e.srv.RevokeAccessTokens()
			e.srv.FailToken(-1, bearertest.ServerError(http.StatusServiceUnavailable))
			before := e.stats()
			var wg sync.WaitGroup
			for range burst {
				wg.Go(func() { _, _, _ = w.send(context.Background(), http.MethodGet, e.srv.APIURL+"/me", nil) })
			}
			wg.Wait()
			got := e.since(before)
			t.Logf("%d requests: %d attempts, %d API requests, %d token requests",
				burst, w.attempts.n.Load(), got.APIRequests, got.TokenRequests)
			if tt.documented {
				assert.EqualValues(t, burst, w.attempts.n.Load())
				assert.EqualValues(t, burst, got.APIRequests)
				assert.EqualValues(t, 3, got.TokenRequests)
			}
		})
	}
}
