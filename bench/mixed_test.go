package bench

import (
	"context"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/seamlessauth/bearer/bearertest"
)

// mixedBatch is how many requests a contender sends in one turn.
const mixedBatch = 64

// lane is one contender in a mixed benchmark, with the time it has spent.
type lane struct {
	name  string
	rt    http.RoundTripper
	req   *http.Request
	spent time.Duration
	sent  int
}

// rounds runs every lane once per iteration of b.Loop, in a new random order
// each time; turn sends one lane's share and returns how many requests that
// was. Then it reports each lane's time per request and its ratio to the
// header lane of the same rounds.
func rounds(b *testing.B, lanes []*lane, turn func(l *lane) int) {
	roundsAgainst(b, lanes, header.name, turn)
}

// roundsAgainst is rounds with the ratios taken to the lane named limit
// ("<name>-vs-<limit>").
func roundsAgainst(b *testing.B, lanes []*lane, limit string, turn func(l *lane) int) {
	order := make([]*lane, len(lanes))
	copy(order, lanes)
	for b.Loop() {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, l := range order {
			start := time.Now()
			l.sent += turn(l)
			l.spent += time.Since(start)
		}
	}
	var base float64
	for _, l := range lanes {
		if l.name == limit {
			base = l.perReq()
		}
	}
	for _, l := range lanes {
		b.ReportMetric(l.perReq(), l.name+"-ns/op")
		if l.name != limit && base > 0 {
			b.ReportMetric(l.perReq()/base, l.name+"-vs-"+limit)
		}
	}
}

// perReq is the lane's wall time per request, in nanoseconds.
func (l *lane) perReq() float64 { return float64(l.spent) / float64(max(l.sent, 1)) }

// BenchmarkHotPathMixed is BenchmarkHotPath with the contenders taking turns
// within one loop, in a new random order each round, so that a busy moment
// of a shared machine falls on all of them alike. It reports, for each
// contender, the wall time per request ("<name>-ns/op") and its ratio to the
// header-only limit measured in the same rounds ("<name>-vs-header"). One op
// is one round: a batch of requests from every contender.
func BenchmarkHotPathMixed(b *testing.B) {
	lanes := make([]*lane, len(everyone))
	for i, c := range everyone {
		rt, req := hotPathContender(b, c)
		lanes[i] = &lane{name: c.name, rt: rt, req: req}
	}
	rounds(b, lanes, func(l *lane) int {
		for range mixedBatch {
			resp, err := l.rt.RoundTrip(l.req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: RoundTrip: %v", l.name, err)
			}
		}
		return mixedBatch
	})
}

// BenchmarkThroughputMixed is BenchmarkThroughput with the contenders taking
// turns of 10 requests per goroutine (640 in all) against one server, each
// over its own pool of 64 connections, in a new random order each round. It
// reports what BenchmarkHotPathMixed reports; one op is one round.
func BenchmarkThroughputMixed(b *testing.B) {
	lb := newLoopback(bearertest.Options{}, throughputWorkers)
	defer lb.close()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	lanes := make([]*lane, len(everyone))
	var fails failCount
	for i, c := range everyone {
		e := lb.env()
		pool := newBaseTransport(throughputWorkers)
		defer pool.CloseIdleConnections()
		e.base = pool
		rt, err := c.new(e)
		if err != nil {
			b.Fatal(err)
		}
		lanes[i] = &lane{name: c.name, rt: rt}
		newReq := func() *http.Request { return c.request(e, lb.apiRequest(ctx)) }
		spread(throughputWorkers, throughputWorkers, rt, newReq, &fails) // open the connections
		lanes[i].req = newReq()
	}
	const perTurn = 10 * throughputWorkers
	rounds(b, lanes, func(l *lane) int {
		spread(throughputWorkers, perTurn, l.rt, func() *http.Request { return l.req.Clone(ctx) }, &fails)
		return perTurn
	})
	fails.check(b)
}
