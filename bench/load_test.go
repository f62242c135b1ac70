package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamlessauth/bearer/bearertest"
)

// loadTimeout bounds every load loop, whatever happens to the server.
const loadTimeout = time.Minute

// loopback is an bearertest server and the transports that talk to it.
type loopback struct {
	srv    *bearertest.Server
	api    *http.Transport // base of every contender
	tokens *http.Transport // under the token client
}

// newLoopback starts a server; conns bounds the connections of each
// transport, and as many stay idle between requests, so that bursts never
// redial.
func newLoopback(opts bearertest.Options, conns int) *loopback {
	return &loopback{
		srv:    bearertest.NewServer(opts),
		api:    newBaseTransport(conns),
		tokens: newBaseTransport(conns),
	}
}

func newBaseTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
	}
}

// env returns the env of a contender logged in with a new token pair.
func (l *loopback) env() env {
	return env{
		base:        l.api,
		tok:         l.srv.Issue(),
		cfg:         l.srv.Config(),
		refreshURL:  l.srv.RefreshURL,
		tokenClient: &http.Client{Transport: l.tokens},
	}
}

func (l *loopback) close() {
	l.api.CloseIdleConnections()
	l.tokens.CloseIdleConnections()
	l.srv.Close()
}

// apiRequest is a GET of the API under ctx.
func (l *loopback) apiRequest(ctx context.Context) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.srv.APIURL+"/things", nil)
	if err != nil {
		panic(err) // the URL is the server's own
	}
	req.Header.Set("Accept", "application/json")
	return req
}

// send makes one API call and reads the answer to the end; anything but a
// 200 is an error. Errors never carry a token.
func send(rt http.RoundTripper, req *http.Request) error {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("bench: reading the answer: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("bench: the API answered %d", resp.StatusCode)
	}
	return nil
}

// failCount counts failures from any goroutine and keeps the first error,
// for the benchmark goroutine to report.
type failCount struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (f *failCount) add(err error) {
	if err == nil {
		err = fmt.Errorf("bench: unexpected answer")
	}
	if f.n.Add(1) == 1 {
		f.mu.Lock()
		f.first = err
		f.mu.Unlock()
	}
}

// check fails the benchmark (or test) if anything failed. Call it on its
// goroutine, after the load.
func (f *failCount) check(tb testing.TB) {
	if n := f.n.Load(); n > 0 {
		f.mu.Lock()
		defer f.mu.Unlock()
		tb.Fatalf("%d requests failed; the first: %v", n, f.first)
	}
}

// spread makes n requests with rt from workers goroutines, each reusing one
// request made by newReq.
func spread(workers, n int, rt http.RoundTripper, newReq func() *http.Request, fails *failCount) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		req := newReq()
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := send(rt, req); err != nil {
					fails.add(err)
				}
			}
		})
	}
	wg.Wait()
}

// latencies is a sample of request latencies.
type latencies []time.Duration

// quantile returns the q-quantile (0 < q ≤ 1) in milliseconds, nearest rank.
func (l latencies) quantile(q float64) float64 {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	i = min(max(i, 0), len(s)-1)
	return float64(s[i]) / float64(time.Millisecond)
}

// median returns the median of a small sample, in milliseconds.
func (l latencies) median() float64 { return l.quantile(0.5) }
