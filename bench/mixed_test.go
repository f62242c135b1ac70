package bench

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// mixedBatch is how many requests a contender sends in one turn.
const mixedBatch = 64

// BenchmarkHotPathMixed is BenchmarkHotPath with the contenders taking turns
// within one loop, in a new random order each round, so that a busy moment
// of a shared machine falls on all of them alike. It reports, for each
// contender, the wall time per request ("<name>-ns/op") and its ratio to the
// header-only limit measured in the same rounds ("<name>-vs-header"). One op
// is one round: a batch of requests from every contender.
func BenchmarkHotPathMixed(b *testing.B) {
	type lane struct {
		name  string
		rt    http.RoundTripper
		req   *http.Request
		spent time.Duration
		sent  int
	}
	lanes := make([]*lane, len(everyone))
	for i, c := range everyone {
		e := hotPathEnv()
		rt, err := c.new(e)
		if err != nil {
			b.Fatal(err)
		}
		lanes[i] = &lane{name: c.name, rt: rt, req: c.request(e, hotPathRequest(b))}
	}
	order := make([]*lane, len(lanes))
	copy(order, lanes)
	for b.Loop() {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, l := range order {
			start := time.Now()
			for range mixedBatch {
				resp, err := l.rt.RoundTrip(l.req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: RoundTrip: %v", l.name, err)
				}
			}
			l.spent += time.Since(start)
			l.sent += mixedBatch
		}
	}
	perReq := func(l *lane) float64 { return float64(l.spent) / float64(l.sent) }
	var limit float64
	for _, l := range lanes {
		if l.name == header.name {
			limit = perReq(l)
		}
	}
	for _, l := range lanes {
		b.ReportMetric(perReq(l), l.name+"-ns/op")
		if l.name != header.name && limit > 0 {
			b.ReportMetric(perReq(l)/limit, l.name+"-vs-header")
		}
	}
}
