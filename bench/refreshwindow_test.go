package bench

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamlessauth/bearer/bearertest"
)

var (
	refreshWindowFor = flag.Duration("bench.refreshwindow", 3*time.Second,
		"how long one BenchmarkRefreshWindow run lasts, counted from the login")
	refreshWindowCSV = flag.String("bench.refreshwindow.csv", "",
		"write every request and token request of BenchmarkRefreshWindow to this CSV file (for bench/plot)")
)

// rwScenario is the load and the server of one BenchmarkRefreshWindow run.
type rwScenario struct {
	workers  int           // goroutines sending requests
	think    time.Duration // each worker's pause after each request
	ttl      time.Duration // access token lifetime, whole seconds (expires_in)
	leeway   time.Duration // refresh this long before expiry (oauth2, bearer)
	latency  time.Duration // every token request takes latency…
	jitter   time.Duration // …plus a random [0, jitter)
	duration time.Duration // the run, from the login
	held     time.Duration // a request held this long before its first send waited
}

// refreshWindow is the scenario of issue 12: a 300–600 ms token endpoint,
// 32 workers, 4 s tokens refreshed 2 s before expiry (half their lifetime,
// the most bearer allows), so that a 12 s run sees five proactive refreshes.
var refreshWindow = rwScenario{
	workers: 32,
	think:   10 * time.Millisecond,
	ttl:     4 * time.Second,
	leeway:  2 * time.Second,
	latency: 300 * time.Millisecond,
	jitter:  300 * time.Millisecond,
	held:    20 * time.Millisecond,
}

// refreshWindowContenders are bearer by default and with its opt-out from
// background refreshes, against oauth2.Transport (over a ReuseTokenSource
// with the same early expiry) and the axios port (which refreshes on 401
// only).
var refreshWindowContenders = []contender{bearerTransport, bearerWaiting, oauth2Transport, axiosPort}

// rwMaxPerWorker bounds the requests of one worker in one run.
const rwMaxPerWorker = 1 << 16

// BenchmarkRefreshWindow sends requests from 32 workers, each pausing 10 ms
// after every answer, for -bench.refreshwindow (3s; 12s for the table in
// BENCHMARKS.md) after a login whose tokens live 4 s, through a token
// endpoint that takes 300–600 ms. A refresh window is the time during which
// a token request is in flight (overlapping ones form one window); an
// expiry is a group of windows less than a quarter of the token lifetime
// apart. It reports, per run or over all the runs of b.N:
//
//	requests           requests sent
//	failures           requests that did not end with a 200
//	waited-valid       requests held 20 ms or more before their first send,
//	                   in flight during a refresh window, while the token
//	                   the contender held when they started was still valid
//	p99-window-ms      p99 latency of the requests in flight during a window
//	p99-steady-ms      p99 latency of the others
//	p99-window/p99-steady
//	expiries           expiries in the run
//	refreshes/expiry   token requests per expiry
//
// ns/op is the wall time of one run. With -bench.refreshwindow.csv every
// request and token request is written to a CSV file for bench/plot.
func BenchmarkRefreshWindow(b *testing.B) {
	sc := refreshWindow
	sc.duration = *refreshWindowFor
	for _, c := range refreshWindowContenders {
		b.Run("contender="+c.name, func(b *testing.B) {
			var total rwSummary
			for i := 0; i < b.N; i++ {
				r := sc.run(b, c)
				total.add(r.summary())
				if *refreshWindowCSV != "" {
					if err := writeRefreshWindowCSV(*refreshWindowCSV, c.name, r); err != nil {
						b.Fatal(err)
					}
				}
			}
			total.report(b)
		})
	}
}

// run logs in, sends the load with contender c until sc.duration after the
// login, and returns what it recorded.
func (sc rwScenario) run(tb testing.TB, c contender) *rwRun {
	lb := newLoopback(bearertest.Options{AccessTTL: sc.ttl, Latency: sc.latency}, sc.workers)
	defer lb.close()
	sc.queueJitter(lb.srv)
	login := time.Now()
	e := lb.env()
	refreshes := &refreshLog{base: e.tokenClient.Transport, t0: login}
	e.tokenClient = &http.Client{Transport: refreshes}
	e.base = sendLog{base: e.base, t0: login}
	e.leeway = sc.leeway
	rt, err := c.new(e)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sc.duration+loadTimeout)
	defer cancel()
	var fails failCount
	spread(sc.workers, sc.workers, rt, func() *http.Request { return lb.apiRequest(ctx) }, &fails) // open the connections
	fails.check(tb)

	end := login.Add(sc.duration)
	perWorker := make([][]*rwRequest, sc.workers)
	var wg sync.WaitGroup
	for w := range perWorker {
		wg.Go(func() {
			for i := 0; i < rwMaxPerWorker && time.Now().Before(end); i++ {
				r := &rwRequest{}
				req := lb.apiRequest(context.WithValue(ctx, rwRequestKey{}, r))
				r.start = time.Since(login)
				r.ok = send(rt, req) == nil
				r.end = time.Since(login)
				perWorker[w] = append(perWorker[w], r)
				time.Sleep(sc.think)
			}
		})
	}
	wg.Wait()
	select { // a refresh the last requests started ends before the server does
	case <-refreshes.settled():
	case <-ctx.Done():
	}
	run := &rwRun{sc: sc, tokenExpiry: e.tok.Expiry.Sub(login), refreshes: refreshes.until(sc.duration)}
	for _, rs := range perWorker {
		run.requests = append(run.requests, rs...)
	}
	return run
}

// queueJitter gives each of the next 4096 token requests its own random
// delay on top of the server's latency, the same sequence in every run.
func (sc rwScenario) queueJitter(srv *bearertest.Server) {
	if sc.jitter <= 0 {
		return
	}
	rng := rand.New(rand.NewPCG(12, 300))
	for range 4096 {
		srv.FailToken(1, bearertest.Fault{Delay: time.Duration(rng.Int64N(int64(sc.jitter)))})
	}
}

// rwRequestKey is the context key of the *rwRequest a request records into.
type rwRequestKey struct{}

// rwRequest is one request of a run; times are offsets from the login.
type rwRequest struct {
	start, end time.Duration
	sent       atomic.Int64 // offset of its first send to the base; 0: never sent
	ok         bool
}

// sendLog is the base of every contender in a run: it notes when each
// request of the run first reaches it, that is, once the contender has let
// it go.
type sendLog struct {
	base http.RoundTripper
	t0   time.Time
}

func (l sendLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if r, ok := req.Context().Value(rwRequestKey{}).(*rwRequest); ok {
		r.sent.CompareAndSwap(0, int64(time.Since(l.t0)))
	}
	return l.base.RoundTrip(req)
}

// span is a stretch of a run, as offsets from the login.
type span struct {
	start, end time.Duration
	ok         bool // for a token request: the server answered 200
}

// refreshLog sends the token requests of a run and records when each left
// and when its answer came back.
type refreshLog struct {
	base http.RoundTripper
	t0   time.Time

	mu       sync.Mutex
	spans    []span
	inflight int
	idle     chan struct{} // closed when inflight drops to 0
}

func (l *refreshLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.inflight++
	l.mu.Unlock()
	start := time.Since(l.t0)
	resp, err := l.base.RoundTrip(req)
	s := span{start: start, end: time.Since(l.t0), ok: err == nil && resp.StatusCode == http.StatusOK}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.spans = append(l.spans, s)
	if l.inflight--; l.inflight == 0 && l.idle != nil {
		close(l.idle)
		l.idle = nil
	}
	return resp, err
}

// settled returns a channel that is closed once no token request is in
// flight.
func (l *refreshLog) settled() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idle == nil {
		l.idle = make(chan struct{})
	}
	ch := l.idle
	if l.inflight == 0 {
		close(ch)
		l.idle = nil
	}
	return ch
}

// until returns the token requests that started before d.
func (l *refreshLog) until(d time.Duration) []span {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []span
	for _, s := range l.spans {
		if s.start < d {
			out = append(out, s)
		}
	}
	return out
}
