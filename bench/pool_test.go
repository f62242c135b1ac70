package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// poolIdentities is how many users the pool benchmarks spread requests over.
const poolIdentities = 10_000

// poolContenders are a single Transport, sending every user's request with
// the one token it holds (the hot path the pool must stay close to), and a
// Pool holding each user's own token.
var poolContenders = []struct {
	name string
	new  func(b *testing.B, e env) http.RoundTripper
}{
	{name: "bearer", new: func(b *testing.B, e env) http.RoundTripper {
		rt, err := newBearer(e)
		if err != nil {
			b.Fatal(err)
		}
		return rt
	}},
	{name: "pool", new: newPoolOf},
}

// newPoolOf builds a Pool over e with poolIdentities users logged in, each
// with a token of its own.
func newPoolOf(b *testing.B, e env) http.RoundTripper {
	ref := bearer.OAuth2(e.cfg)
	p, err := bearer.NewPool(bearer.PoolConfig{
		Transport: bearer.Config{
			Base: e.base,
			Refresher: bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				return ref.Refresh(context.WithValue(ctx, oauth2.HTTPClient, e.tokenClient), cur)
			}),
		},
		MaxIdentities: poolIdentities,
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := range poolIdentities {
		tok := *e.tok
		tok.AccessToken = fmt.Sprintf("%s-%05d", e.tok.AccessToken, i)
		if err := p.SetToken(context.Background(), poolUser(i), &tok); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

func poolUser(i int) string { return fmt.Sprintf("user-%05d", i) }

// poolRequests returns one hot-path request per user, each naming its user.
func poolRequests(b *testing.B) []*http.Request {
	reqs := make([]*http.Request, poolIdentities)
	for i := range reqs {
		reqs[i] = hotPathRequest(b).WithContext(bearer.WithIdentity(context.Background(), poolUser(i)))
	}
	return reqs
}

// BenchmarkPoolHotPath measures one RoundTrip with a valid token over a
// stub base, the requests going round 10,000 users: through one Transport
// and through a Pool of one Transport per user. With burst=1 each request is
// for another user than the one before, so each of the pool's finds a cold
// user; with burst=8 each user sends 8 in a row, as a backend's handler
// making several calls for one user does. Compare them with benchstat
// -col /contender.
func BenchmarkPoolHotPath(b *testing.B) {
	for _, burst := range []int{1, 8} {
		for _, c := range poolContenders {
			b.Run(fmt.Sprintf("burst=%d/contender=%s", burst, c.name), func(b *testing.B) {
				rt, reqs := c.new(b, hotPathEnv()), poolRequests(b)
				b.ReportAllocs()
				cpu := startCPU()
				i := 0
				for b.Loop() {
					resp, err := rt.RoundTrip(reqs[i/burst])
					if err != nil || resp.StatusCode != http.StatusOK {
						b.Fatalf("RoundTrip: %v", err)
					}
					i = (i + 1) % (len(reqs) * burst)
				}
				cpu.report(b, b.N) // after b.Loop, b.N is the number of iterations
			})
		}
	}
}

// BenchmarkPoolHotPathParallel is BenchmarkPoolHotPath from GOMAXPROCS
// goroutines, as the goroutines of a backend serving many users share one
// client.
func BenchmarkPoolHotPathParallel(b *testing.B) {
	for _, c := range poolContenders {
		b.Run("contender="+c.name, func(b *testing.B) {
			e := hotPathEnv()
			rt, reqs := c.new(b, e), poolRequests(b)
			var next atomic.Uint64
			var failures failCount
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919)) // each goroutine its own walk over the users
				for pb.Next() {
					resp, err := rt.RoundTrip(reqs[i%len(reqs)])
					if err != nil || resp.StatusCode != http.StatusOK {
						failures.add(err)
						return
					}
					i++
				}
			})
			failures.check(b)
		})
	}
}

// BenchmarkPoolHotPathMixed is BenchmarkPoolHotPath with the two contenders
// taking turns of mixedBatch requests within one loop, in a new random
// order each round, so that a busy moment of a shared machine falls on both
// alike. It reports each one's wall time per request ("<name>-ns/op") and
// the pool's ratio to the single Transport ("pool-vs-bearer"). One op is one
// round.
func BenchmarkPoolHotPathMixed(b *testing.B) {
	reqs := poolRequests(b)
	lanes := make([]*lane, len(poolContenders))
	next := make(map[*lane]int, len(lanes))
	for i, c := range poolContenders {
		lanes[i] = &lane{name: c.name, rt: c.new(b, hotPathEnv())}
	}
	order := append([]*lane(nil), lanes...)
	for b.Loop() {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, l := range order {
			i := next[l]
			start := time.Now()
			for range mixedBatch {
				resp, err := l.rt.RoundTrip(reqs[i])
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: RoundTrip: %v", l.name, err)
				}
				i = (i + 1) % len(reqs)
			}
			l.spent += time.Since(start)
			l.sent += mixedBatch
			next[l] = i
		}
	}
	perReq := func(l *lane) float64 { return float64(l.spent) / float64(max(l.sent, 1)) }
	for _, l := range lanes {
		b.ReportMetric(perReq(l), l.name+"-ns/op")
	}
	b.ReportMetric(perReq(lanes[1])/perReq(lanes[0]), "pool-vs-bearer")
}
