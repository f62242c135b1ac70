package bearer_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strings"
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

// Soak test sizes.
const (
	soakWorkers       = 64
	soakRequestTime   = 30 * time.Second // beyond it, a request counts as hung
	soakHeapSlack     = 1 << 20          // heap growth allowed between the two measurements, plus soakHeapPerReq
	soakHeapPerReq    = 64               // bytes per request of the second phase: a leak of one small object per request fails
	soakGoroutineRoom = 4                // goroutines allowed above the count before the test while the server is up
)

// soakTag marks the API answers that the soak test injects, so that a
// request that ends with one is known to have failed because of it.
const soakTag = "X-Soak-Injected"

// TestSoak runs demo-like load for BEARER_SOAK (a duration): 64 workers
// POST through one Transport to an bearertest server with rotation, reuse
// detection and 2-second access tokens, while faults are injected:
//
//   - at the start of each shared refresh, one time in two, one transient
//     token endpoint fault (500, 502, 503, 429, invalid_request, a reset, a
//     half-written or malformed answer, a delay), which the refresh's
//     three attempts must absorb;
//   - every 20ms one of: an API 503 or 401 (both tagged with soakTag), an
//     API delay, or (one time in 25) the revocation of every access token.
//
// A request fails as expected only when its last answer is a tagged one
// (an injected 503, or an injected 401 that hit the retry), or a 401 while
// a revocation happened during the request (its retry carried a token
// revoked on the way). Every other request must succeed: no request is
// lost. No refresh may fail, no logout happen, no refresh token be used
// twice. The run has two phases; after each, the workers stop and idle
// connections are closed: the goroutine count must come back to where it
// was before the server started (plus room for the server itself), and the
// heap after the second phase may exceed the heap after the first by at
// most soakHeapSlack plus soakHeapPerReq per request of the second phase.
func TestSoak(t *testing.T) {
	env := os.Getenv("BEARER_SOAK")
	if env == "" {
		t.Skip("set BEARER_SOAK to a duration (BEARER_SOAK=20s) to run the soak test")
	}
	total, err := time.ParseDuration(env)
	require.NoError(t, err, "BEARER_SOAK")
	require.GreaterOrEqual(t, total, 2*time.Second, "BEARER_SOAK")

	g0 := runtime.NumGoroutine()
	s := newSoak(t)
	warm := min(total/4, 5*time.Second)

	s.phase(t, warm)
	g1 := s.quiesce(t, g0+soakGoroutineRoom, "after the first phase")
	h1 := heapAlloc()
	first := s.tally.snapshot()

	s.phase(t, total-warm)
	g2 := s.quiesce(t, g0+soakGoroutineRoom, "after the second phase")
	h2 := heapAlloc()
	all := s.tally.snapshot()

	st := s.srv.Stats()
	t.Logf("soak %v: %d requests (%d in the second phase), %d ok, %d expected failures %v; %d refreshes, "+
		"%d token faults, %d API faults, %d revocations; goroutines %d before, %d and %d quiesced; heap %d KiB, then %d KiB",
		total, all.requests, all.requests-first.requests, all.ok, all.expected(), all.expectedBy,
		st.Refreshes, s.tokenFaults.Load(), s.apiFaults.Load(), s.revocations.Load(), g0, g1, g2, h1>>10, h2>>10)

	assert.Zero(t, all.lost, "lost requests; first ones: %v", all.lostWhy)
	assert.GreaterOrEqual(t, st.APIRequests, int64(all.requests), "API requests: each request reached the API")
	assert.LessOrEqual(t, st.APIRequests, 2*int64(all.requests), "API requests: a request is retried at most once")
	assert.Positive(t, all.ok)
	assert.Zero(t, s.failedRefreshes.Load(), "failed refreshes")
	assert.Zero(t, s.logouts.Load(), "logouts")
	assert.Zero(t, st.ReuseDetections, "refresh tokens presented twice")
	allowed := int64(soakHeapSlack + soakHeapPerReq*(all.requests-first.requests))
	assert.LessOrEqual(t, int64(h2)-int64(h1), allowed, "heap growth")

	s.close()
	assert.LessOrEqual(t, settle(g0), g0, "goroutines after the server closed")
}

// soak is the soak test's world.
type soak struct {
	srv    *bearertest.Server
	base   *http.Transport
	tr     *bearer.Transport
	client *http.Client
	url    string
	tally  soakTally
	ctx    context.Context // of every request; stop ends it
	stop   context.CancelFunc

	revocations     atomic.Int64
	tokenFaults     atomic.Int64
	apiFaults       atomic.Int64
	failedRefreshes atomic.Int64
	logouts         atomic.Int64
}

func newSoak(t *testing.T) *soak {
	s := &soak{}
	srv, oauthCfg := newServer(t, bearertest.Options{AccessTTL: 2 * time.Second, Rotate: true, ReuseDetection: true})
	s.srv = srv
	s.url = s.srv.APIURL + "/soak"
	s.ctx, s.stop = context.WithCancel(context.Background())
	s.base = s.srv.Client().Transport.(*http.Transport).Clone()
	s.base.MaxIdleConnsPerHost = soakWorkers
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(oauthCfg),
		Store:     store.NewMemory(s.srv.Issue()),
		Base:      s.base,
		OnLogout:  func(context.Context, error) { s.logouts.Add(1) },
		OnRefreshStart: func(ctx context.Context, _ bearer.Reason) context.Context {
			if rand.N(2) == 0 {
				s.tokenFaults.Add(1)
				s.srv.FailToken(1, soakTokenFaults[rand.N(len(soakTokenFaults))])
			}
			return ctx
		},
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			if ev.Err != nil {
				s.failedRefreshes.Add(1)
			}
		},
	})
	require.NoError(t, err)
	s.tr = tr
	s.client = tr.Client()
	return s
}

// soakTokenFaults are transient: a refresh's next attempt gets through.
var soakTokenFaults = []bearertest.Fault{
	bearertest.ServerError(500), bearertest.ServerError(502), bearertest.ServerError(503),
	jsonAnswer(429, `{"error":"slow_down"}`), jsonAnswer(400, `{"error":"invalid_request"}`),
	{Reset: true}, {Truncate: true}, bearertest.Malformed(), {Delay: 50 * time.Millisecond},
}

// phase runs the workers and the API fault injector for d.
func (s *soak) phase(t *testing.T, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { s.inject(ctx) })
	for range soakWorkers {
		wg.Go(func() {
			for ctx.Err() == nil {
				s.tally.add(s.request())
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	hung := time.NewTimer(d + soakRequestTime)
	defer hung.Stop()
	select {
	case <-done:
	case <-hung.C:
		t.Errorf("requests still running %v after the phase ended", soakRequestTime)
		s.stop() // ends them
		<-done
	}
}

// inject adds an API fault every 20ms until ctx ends.
func (s *soak) inject(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	tagged := func(status int) bearertest.Fault {
		return bearertest.Fault{Status: status, Header: http.Header{soakTag: {"1"}}}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		switch rand.N(25) {
		case 0:
			s.srv.RevokeAccessTokens()
			s.revocations.Add(1)
		case 1, 2, 3, 4, 5, 6, 7, 8:
			s.srv.FailAPI(1, tagged(http.StatusServiceUnavailable))
		case 9, 10, 11, 12, 13, 14, 15, 16:
			s.srv.FailAPI(1, tagged(http.StatusUnauthorized))
		default:
			s.srv.FailAPI(1, bearertest.Fault{Delay: 10 * time.Millisecond})
			continue
		}
		s.apiFaults.Add(1)
	}
}

// soakOutcome is how one request ended: "ok", an expected failure's kind,
// or "lost: why".
type soakOutcome string

// request makes one request and classifies its outcome.
func (s *soak) request() soakOutcome {
	// Not a context of its own: one cancelled on return would hide a
	// response body the Transport forgot to close (net/http closes the
	// connection of a cancelled request).
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.url, strings.NewReader("soak"))
	if err != nil {
		return soakOutcome("lost: " + err.Error())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return soakOutcome("lost: " + err.Error())
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return "ok"
	case resp.Header.Get(soakTag) != "":
		return soakOutcome(fmt.Sprintf("injected %d", resp.StatusCode))
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(body), "access token revoked"):
		return "401 revoked"
	}
	return soakOutcome(fmt.Sprintf("lost: status %d %.80s", resp.StatusCode, body))
}

// quiesce closes idle connections and waits until at most want goroutines
// run; it returns the count then.
func (s *soak) quiesce(t *testing.T, want int, when string) int {
	s.tr.CloseIdleConnections()
	n := settle(want)
	assert.LessOrEqual(t, n, want, "goroutines %s", when)
	return n
}

// settle waits up to 10s for the goroutines of closed connections to end,
// until at most want run, and returns how many run. (It polls on the test's
// own goroutine: assert.Eventually would count its own.)
func settle(want int) int {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		<-tick.C
	}
	return runtime.NumGoroutine()
}

func (s *soak) close() {
	s.stop()
	s.tr.CloseIdleConnections()
	s.srv.Close()
}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// soakTally counts outcomes.
type soakTally struct {
	mu sync.Mutex
	soakCounts
}

type soakCounts struct {
	requests, ok, lost int
	expectedBy         map[soakOutcome]int
	lostWhy            []soakOutcome
}

func (c soakCounts) expected() int {
	n := 0
	for _, v := range c.expectedBy {
		n += v
	}
	return n
}

func (t *soakTally) add(o soakOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	switch {
	case o == "ok":
		t.ok++
	case strings.HasPrefix(string(o), "lost: "):
		t.lost++
		if len(t.lostWhy) < 10 {
			t.lostWhy = append(t.lostWhy, o)
		}
	default:
		if t.expectedBy == nil {
			t.expectedBy = map[soakOutcome]int{}
		}
		t.expectedBy[o]++
	}
}

func (t *soakTally) snapshot() soakCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.soakCounts
	c.expectedBy = make(map[soakOutcome]int, len(t.expectedBy))
	for k, v := range t.expectedBy {
		c.expectedBy[k] = v
	}
	c.lostWhy = append([]soakOutcome(nil), t.lostWhy...)
	return c
}
