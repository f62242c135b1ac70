package bench

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

// These tests check that each contender does what the benchmarks claim it
// does, so that the numbers compare like with like.

// recordingBase answers 200 and records the Authorization of each request.
type recordingBase struct {
	mu   sync.Mutex
	auth []string
}

func (r *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.mu.Unlock()
	return newStubBase().RoundTrip(req)
}

func TestHotPathSendsTheTokenWithoutTouchingTheRequest(t *testing.T) {
	for _, c := range everyone {
		t.Run(c.name, func(t *testing.T) {
			e := hotPathEnv()
			rec := &recordingBase{}
			e.base = rec
			rt, err := c.new(e)
			require.NoError(t, err)
			req := c.request(e, hotPathRequest(t))
			before := req.Header.Clone()

			for range 2 {
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			assert.Equal(t, []string{"Bearer " + e.tok.AccessToken, "Bearer " + e.tok.AccessToken}, rec.auth)
			assert.Equal(t, before, req.Header, "the caller's header changed")
		})
	}
}

func TestThroughputContendersReachTheAPI(t *testing.T) {
	for _, c := range everyone {
		t.Run(c.name, func(t *testing.T) {
			lb := newLoopback(bearertest.Options{}, 4)
			defer lb.close()
			e := lb.env()
			rt, err := c.new(e)
			require.NoError(t, err)
			var fails failCount
			spread(4, 20, rt, func() *http.Request { return c.request(e, lb.apiRequest(context.Background())) }, &fails)
			assert.Zero(t, fails.n.Load(), "failed requests")
			assert.EqualValues(t, 20, lb.srv.Stats().APIRequests)
			assert.Zero(t, lb.srv.Stats().TokenRequests)
		})
	}
}

func TestStormRefreshes(t *testing.T) {
	const n = 8
	tests := []struct {
		c             contender
		wantRefreshes int64
		wantOK        int64
	}{
		{oauth2Transport, 0, 0}, // the token has not expired: the 401 is returned
		{axiosPort, n, n},       // one refresh per rejected request
		{bearerTransport, 1, n}, // one refresh for all
	}
	for _, tt := range tests {
		t.Run(tt.c.name, func(t *testing.T) {
			lb := newLoopback(bearertest.Options{}, n)
			defer lb.close()
			rt, err := tt.c.new(lb.env())
			require.NoError(t, err)
			lb.srv.RevokeAccessTokens()

			lat, ok := burst(context.Background(), lb, rt, n)
			assert.Equal(t, tt.wantOK, ok, "successful requests")
			assert.Equal(t, tt.wantRefreshes, lb.srv.Stats().TokenRequests, "token requests")
			assert.Len(t, lat, n)
			for _, l := range lat {
				assert.Positive(t, l)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	ms := func(n ...int) latencies {
		var l latencies
		for _, v := range n {
			l = append(l, time.Duration(v)*time.Millisecond)
		}
		return l
	}
	tests := []struct {
		name string
		l    latencies
		q    float64
		want float64
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7},
		{"median of odd", ms(3, 1, 2), 0.5, 2},
		{"p99 of 100", ms(seq(100)...), 0.99, 99},
		{"p50 of 100", ms(seq(100)...), 0.5, 50},
		{"max", ms(5, 9, 1), 1, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.l.quantile(tt.q))
		})
	}
}

// seq returns 1..n in reverse, so that quantile has to sort.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = n - i
	}
	return s
}
