package bench

import (
	"context"
	"net/http"
	"testing"

	"github.com/seamlessauth/bearer/bearertest"
)

// throughputWorkers is the number of goroutines sending at once.
const throughputWorkers = 64

// BenchmarkThroughput sends requests with a valid token from 64 goroutines
// to an bearertest API on loopback. ns/op is wall time per request: its
// inverse is the throughput.
func BenchmarkThroughput(b *testing.B) {
	for _, c := range everyone {
		b.Run(c.name, func(b *testing.B) {
			lb := newLoopback(bearertest.Options{}, throughputWorkers)
			defer lb.close()
			e := lb.env()
			rt, err := c.new(e)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
			defer cancel()
			newReq := func() *http.Request { return c.request(e, lb.apiRequest(ctx)) }
			var fails failCount
			spread(throughputWorkers, throughputWorkers, rt, newReq, &fails) // open the connections
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			spread(throughputWorkers, b.N, rt, newReq, &fails)
			b.StopTimer()
			cpu.report(b, b.N)
			fails.check(b)
		})
	}
}
