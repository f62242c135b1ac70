package bench

import (
	"context"
	"flag"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamlessauth/bearer/bearertest"
)

var soakFor = flag.Duration("bench.soak", 2*time.Second, "how long one BenchmarkSoak run lasts")

const (
	soakWorkers = 32
	soakTTL     = 200 * time.Millisecond
	// soakMaxPerWorker bounds the requests of one worker in one run.
	soakMaxPerWorker = 1 << 20
)

// BenchmarkSoak sends requests from 32 goroutines for -bench.soak (2s) while
// access tokens live 200ms and the server rotates refresh tokens and
// revokes the lineage when a retired one comes back. It reports per run:
//
//	ok         requests answered 200
//	failures   requests that failed (an error, or any other answer)
//	refreshes  successful refreshes at the server
//	rejected   refreshes the server rejected
//	reuse      retired refresh tokens presented (each revokes the lineage)
//
// The server announces expires_in in whole seconds (at least 1), so clients
// believe a token lives 1s while the server rejects it after 200ms: the
// reactive path (401, refresh, retry) carries the load.
func BenchmarkSoak(b *testing.B) {
	for _, c := range refreshers {
		b.Run(c.name, func(b *testing.B) {
			var total soakResult
			for i := 0; i < b.N; i++ {
				r := soak(b, c)
				total.ok += r.ok
				total.failures += r.failures
				total.stats.Refreshes += r.stats.Refreshes
				total.stats.RefreshFailures += r.stats.RefreshFailures
				total.stats.ReuseDetections += r.stats.ReuseDetections
			}
			n := float64(b.N)
			b.ReportMetric(float64(total.ok)/n, "ok")
			b.ReportMetric(float64(total.failures)/n, "failures")
			b.ReportMetric(float64(total.stats.Refreshes)/n, "refreshes")
			b.ReportMetric(float64(total.stats.RefreshFailures)/n, "rejected")
			b.ReportMetric(float64(total.stats.ReuseDetections)/n, "reuse")
		})
	}
}

type soakResult struct {
	ok, failures int64
	stats        bearertest.Stats
}

func soak(b *testing.B, c contender) soakResult {
	lb := newLoopback(bearertest.Options{AccessTTL: soakTTL, Rotate: true, ReuseDetection: true}, soakWorkers)
	defer lb.close()
	rt, err := c.new(lb.env())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *soakFor+loadTimeout)
	defer cancel()
	end := time.Now().Add(*soakFor)
	var ok, failures atomic.Int64
	var wg sync.WaitGroup
	for range soakWorkers {
		req := lb.apiRequest(ctx)
		wg.Go(func() {
			for i := 0; i < soakMaxPerWorker && time.Now().Before(end); i++ {
				if send(rt, req) == nil {
					ok.Add(1)
				} else {
					failures.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return soakResult{ok: ok.Load(), failures: failures.Load(), stats: lb.srv.Stats()}
}
