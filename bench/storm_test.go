package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

// stormConns bounds the connections of a storm: 10,000 goroutines queue for
// them, as they would behind any client's pool, and the process stays far
// below its file limit (each loopback connection costs two descriptors).
const stormConns = 256

// BenchmarkStorm fires n requests at once, from n goroutines, with a token
// the server has just revoked, and reports per storm:
//
//	refreshes     calls to the token endpoint
//	success-%     requests that ended with a 200
//	p50-ms p99-ms latency from the common start to the end of the answer
//	noref-p99-ms  p99 of the same burst with a valid token, just before
//	p99-ratio     p99 / noref-p99: every request of a storm is sent twice
//	              (rejected, then retried), so 2 is the floor once the
//	              burst saturates the machine
//	refresh-ms    one refresh round trip, measured alone just before
//	excess-ms     p99 - noref-p99 - refresh-ms
//
// ns/op is the wall time of one storm.
func BenchmarkStorm(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for _, c := range refreshers {
				b.Run(c.name, func(b *testing.B) { storm(b, c, n) })
			}
		})
	}
}

// storm runs b.N storms of n requests with contender c.
func storm(b *testing.B, c contender, n int) {
	lb := newLoopback(bearertest.Options{}, stormConns)
	defer lb.close()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	newReq := func() *http.Request { return lb.apiRequest(ctx) }
	var (
		lat, noref, rtt latencies
		refreshes, ok   int64
	)
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		rt, err := c.new(lb.env())
		if err != nil {
			b.Fatal(err)
		}
		var fails failCount
		spread(stormConns, stormConns, rt, newReq, &fails) // open the connections
		fails.check(b)
		rtt = append(rtt, refreshRoundTrip(ctx, b, lb))
		l, good := burst(ctx, lb, rt, n)
		if good != int64(n) {
			b.Fatalf("%d of %d requests failed with a valid token", int64(n)-good, n)
		}
		noref = append(noref, l...)

		lb.srv.RevokeAccessTokens()
		before := lb.srv.Stats().TokenRequests
		b.StartTimer()
		l, good = burst(ctx, lb, rt, n)
		b.StopTimer()
		refreshes += lb.srv.Stats().TokenRequests - before
		lat = append(lat, l...)
		ok += good
	}
	p99, norefP99, refresh := lat.quantile(0.99), noref.quantile(0.99), rtt.median()
	b.ReportMetric(float64(refreshes)/float64(b.N), "refreshes")
	b.ReportMetric(100*float64(ok)/float64(n*b.N), "success-%")
	b.ReportMetric(lat.quantile(0.5), "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(norefP99, "noref-p99-ms")
	b.ReportMetric(p99/norefP99, "p99-ratio")
	b.ReportMetric(refresh, "refresh-ms")
	b.ReportMetric(p99-norefP99-refresh, "excess-ms")
}

// burst releases n goroutines at once, each sending one API request with rt.
// It returns each one's latency, counted from the common start, and how many
// got a 200.
func burst(ctx context.Context, lb *loopback, rt http.RoundTripper, n int) (latencies, int64) {
	lat := make(latencies, n)
	var ok atomic.Int64
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	var t0 time.Time
	for i := range n {
		req := lb.apiRequest(ctx)
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			if send(rt, req) == nil {
				ok.Add(1)
			}
			lat[i] = time.Since(t0)
		})
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()
	return lat, ok.Load()
}

// refreshRoundTrip times one refresh at the token endpoint, with a lineage
// of its own: the median of three, after one that warms the connection.
func refreshRoundTrip(ctx context.Context, b *testing.B, lb *loopback) time.Duration {
	e := lb.env()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, e.tokenClient)
	var rtt latencies
	for i := range 4 {
		start := time.Now()
		_, err := e.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: e.tok.RefreshToken}).Token()
		if err != nil {
			b.Fatalf("bench: refreshing: %v", err)
		}
		if i > 0 {
			rtt = append(rtt, time.Since(start))
		}
	}
	return time.Duration(rtt.median() * float64(time.Millisecond))
}
