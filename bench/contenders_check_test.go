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
	"github.com/seamlessauth/bearer/internal/dpopcheck"
)

// These tests check that each contender does what the benchmarks claim it
// does, so that the numbers compare like with like.

// recordingBase answers 200 and records the Authorization and DPoP
// headers of each request.
type recordingBase struct {
	mu   sync.Mutex
	auth []string
	dpop [][]string
}

func (r *recordingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.dpop = append(r.dpop, req.Header.Values("DPoP"))
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

// TestDPoPContendersSendAProof: each DPoP contender sends the token in
// the DPoP scheme with one DPoP header per request, and bearer's is a
// whole proof of that request, new each time; the floor's only prices one.
func TestDPoPContendersSendAProof(t *testing.T) {
	for _, c := range dpopContenders(t, dpopEnv()) {
		t.Run(c.name, func(t *testing.T) {
			e := dpopEnv()
			rec := &recordingBase{}
			e.base = rec
			rt := newDPoPContender(t, e, c.name)
			req := hotPathRequest(t)
			for range 2 {
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			want := "DPoP " + e.tok.AccessToken
			assert.Equal(t, []string{want, want}, rec.auth)
			require.Len(t, rec.dpop, 2)
			jtis := map[string]bool{}
			for _, proofs := range rec.dpop {
				require.Len(t, proofs, 1, "one DPoP header per request")
				require.NotEmpty(t, proofs[0])
				if c.name == "floor" {
					continue
				}
				p, err := dpopcheck.Verify(proofs[0])
				require.NoError(t, err)
				assert.Equal(t, http.MethodGet, p.HTM)
				assert.Equal(t, "https://api.example.com/v1/things", p.HTU)
				assert.Equal(t, dpopcheck.Hash(e.tok.AccessToken), p.ATH)
				jtis[p.JTI] = true
			}
			if c.name == "bearer" {
				assert.Len(t, jtis, 2, "a proof was sent twice")
			}
		})
	}
}

// newDPoPContender builds the DPoP contender named name over e.
func newDPoPContender(t *testing.T, e env, name string) http.RoundTripper {
	for _, c := range dpopContenders(t, e) {
		if c.name == name {
			return c.new()
		}
	}
	t.Fatalf("no DPoP contender %q", name)
	return nil
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
			e := lb.env()
			// Every request is sent before any 401 comes back, as in a
			// storm: otherwise a request that starts after a refresh has
			// stored its token is not rejected, and axios refreshes less.
			e.base = &gate{base: e.base, held: n, all: make(chan struct{})}
			rt, err := tt.c.new(e)
			require.NoError(t, err)
			lb.srv.RevokeAccessTokens()

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			lat, ok := burst(ctx, lb, rt, n)
			assert.Equal(t, tt.wantOK, ok, "successful requests")
			assert.Equal(t, tt.wantRefreshes, lb.srv.Stats().TokenRequests, "token requests")
			assert.Len(t, lat, n)
			for _, l := range lat {
				assert.Positive(t, l)
			}
		})
	}
}

// gate holds the answers to the first held requests until all of them have
// been sent; the requests after them pass.
type gate struct {
	base http.RoundTripper
	mu   sync.Mutex
	held int
	all  chan struct{} // closed when the last held request is sent
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	hold := g.held > 0
	if hold {
		if g.held--; g.held == 0 {
			close(g.all)
		}
	}
	g.mu.Unlock()
	resp, err := g.base.RoundTrip(req)
	if hold {
		select {
		case <-g.all:
		case <-req.Context().Done(): // fewer requests came than the gate holds
		}
	}
	return resp, err
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
