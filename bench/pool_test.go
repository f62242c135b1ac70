package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
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
	{name: "transports", new: newTransportsOf},
}

// transportsByUser is what a backend writes without a Pool: one Transport
// per user in a map, looked up by the identity the request names. It is the
// pool's fair baseline: its users' state is as spread out in memory as the
// pool's, where the single Transport's stays in the cache.
type transportsByUser map[string]*bearer.Transport

func (m transportsByUser) RoundTrip(req *http.Request) (*http.Response, error) {
	id, _ := bearer.IdentityFrom(req.Context())
	return m[id].RoundTrip(req)
}

// newTransportsOf builds one Transport per user over e, each logged in with
// a token of its own, as newPoolOf does for the pool.
func newTransportsOf(b *testing.B, e env) http.RoundTripper {
	m := make(transportsByUser, poolIdentities)
	for i := range poolIdentities {
		tr, err := newBearer(e)
		if err != nil {
			b.Fatal(err)
		}
		tok := *e.tok
		tok.AccessToken = fmt.Sprintf("%s-%05d", e.tok.AccessToken, i)
		if err := tr.(*bearer.Transport).SetToken(context.Background(), &tok); err != nil {
			b.Fatal(err)
		}
		m[poolUser(i)] = tr.(*bearer.Transport)
	}
	return m
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

// BenchmarkPoolHotPathMixed is BenchmarkPoolHotPath at burst=1 with the
// contenders taking turns of mixedBatch requests within one loop, in a new
// random order each round, so that a busy moment of a shared machine falls
// on all alike. Each contender sends requests of its own: were they shared,
// the first contender of a round would bring the next requests into the
// cache for the others. It reports each one's wall time per request
// ("<name>-ns/op"), the ratios of the pool and of the map of Transports to
// the single Transport ("pool-vs-bearer", "transports-vs-bearer"), and the
// pool's to the map ("pool-vs-transports"). One op is one round.
func BenchmarkPoolHotPathMixed(b *testing.B) {
	var lanes []*lane
	byName := make(map[string]*lane, len(poolContenders))
	reqsOf := make(map[*lane][]*http.Request, len(poolContenders))
	next := make(map[*lane]int, len(poolContenders))
	for _, c := range poolContenders {
		l := &lane{name: c.name, rt: c.new(b, hotPathEnv())}
		lanes, byName[c.name], reqsOf[l] = append(lanes, l), l, poolRequests(b)
	}
	roundsAgainst(b, lanes, "bearer", func(l *lane) int {
		i, reqs := next[l], reqsOf[l]
		for range mixedBatch {
			resp, err := l.rt.RoundTrip(reqs[i])
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: RoundTrip: %v", l.name, err)
			}
			i = (i + 1) % len(reqs)
		}
		next[l] = i
		return mixedBatch
	})
	b.ReportMetric(byName["pool"].perReq()/byName["transports"].perReq(), "pool-vs-transports")
}

// BenchmarkPoolExpiry sends requests for 2,000 users, each logged in with a
// token of 3 s, through one Pool on the loopback bearertest server (rotation
// and reuse detection on): 32 workers for 2 s, past every token's refresh
// point (1.5 s, half its life), then one request per user, so that each
// user's token has passed that point once and only once (the new tokens'
// come at 3 s at the earliest). WaitForRefresh makes the count exact at the
// end, with no refresh left in the background. Reported: token refreshes
// per user expiry (target 1), reuse detections and failed requests (target
// 0), requests.
func BenchmarkPoolExpiry(b *testing.B) {
	const users, life = 2000, 3 * time.Second
	for b.Loop() {
		l := newLoopback(bearertest.Options{AccessTTL: life, Rotate: true, ReuseDetection: true}, 64)
		e := l.env()
		p, err := bearer.NewPool(bearer.PoolConfig{Transport: bearer.Config{
			Base:           e.base,
			Refresher:      bearer.OAuth2(e.cfg),
			TokenClient:    e.tokenClient,
			WaitForRefresh: true,
		}})
		if err != nil {
			b.Fatal(err)
		}
		for i := range users {
			if err := p.SetToken(context.Background(), poolUser(i), l.srv.Issue()); err != nil {
				b.Fatal(err)
			}
		}
		before := l.srv.Stats()
		var failed, requests atomic.Int64
		get := func(i int) {
			ctx := bearer.WithIdentity(context.Background(), poolUser(i%users))
			if send(p, l.apiRequest(ctx)) != nil {
				failed.Add(1)
			}
			requests.Add(1)
		}
		deadline := time.Now().Add(life * 2 / 3)
		const workers = 32
		done := make(chan struct{})
		for w := range workers {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := w; time.Now().Before(deadline) && i < 1<<20; i += workers {
					get(i)
				}
			}()
		}
		for range workers {
			<-done
		}
		for i := range users {
			get(i)
		}
		after := l.srv.Stats()
		p.CloseIdleConnections()
		l.close()
		b.ReportMetric(float64(after.Refreshes-before.Refreshes)/users, "refreshes/expiry")
		b.ReportMetric(float64(after.ReuseDetections-before.ReuseDetections), "reuse")
		b.ReportMetric(float64(failed.Load()), "failures")
		b.ReportMetric(float64(requests.Load()), "requests")
	}
}
