package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// requestTimeout bounds each request a worker sends.
const requestTimeout = 10 * time.Second

// scenario is the server side of a run, the same for both clients: an
// bearertest server whose access tokens live ttl, whose refresh tokens rotate
// on each use, and which revokes a whole session when a retired refresh
// token comes back.
type scenario struct {
	srv  *bearertest.Server
	base *http.Transport // for the API and the refresh endpoint
	tl   *timeline

	revoked atomic.Bool // the access tokens have been revoked once
}

func newScenario(o options) *scenario {
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: o.ttl, Rotate: true, ReuseDetection: true})
	base := http.DefaultTransport.(*http.Transport).Clone()
	// One kept-alive connection per worker, so that the run does not run
	// out of ports opening and closing connections.
	base.MaxIdleConns = o.workers + 16
	base.MaxIdleConnsPerHost = o.workers + 16
	return &scenario{srv: srv, base: base, tl: newTimeline(o.ttl)}
}

func (s *scenario) close() {
	s.base.CloseIdleConnections()
	s.srv.Close()
}

// run sends requests from o.workers workers through c for o.duration, or
// until stop reports true, and revokes every access token once on the way.
func (s *scenario) run(o options, d *display, c *http.Client, stop func() bool) *tally {
	d.restart()
	start := time.Now()
	t := &tally{lastAt: start}
	revoke := time.AfterFunc(revokeAt(o.duration, o.ttl), func() {
		s.srv.RevokeAccessTokens()
		s.revoked.Store(true)
		d.event("server: every access token revoked (a password change, an admin action...)")
	})
	defer revoke.Stop()
	d.startProgress(func() string { return s.progress(t) })
	drive(c, s.srv.APIURL, o.workers, 1_000_000, start.Add(o.duration), stop, t)
	d.stopProgress()
	return t
}

// progress is the live line: what the workers saw, and what the server saw.
func (s *scenario) progress(t *tally) string {
	st := s.srv.Stats()
	return fmt.Sprintf("ok %s  failed %s  refresh calls %s  reuse %d  401s %s (absorbed %s)  %s req/s",
		count(t.ok.Load()), count(t.failed.Load()), count(st.TokenRequests), st.ReuseDetections,
		count(st.APIUnauthorized), count(t.absorbed.Load()), count(t.rate()))
}

// tally counts what the workers saw.
type tally struct {
	requests  atomic.Int64
	ok        atomic.Int64
	absorbed  atomic.Int64 // requests that met a 401, were retried and succeeded
	loggedOut atomic.Int64 // errors wrapping bearer.ErrLoggedOut
	failed    atomic.Int64 // every other error or status

	mu       sync.Mutex
	firstErr string
	last     int64     // requests at lastAt, for rate
	lastAt   time.Time // zero before the first call to rate
}

func (t *tally) record(status int, retried bool, err error) {
	t.requests.Add(1)
	switch {
	case errors.Is(err, bearer.ErrLoggedOut):
		t.loggedOut.Add(1)
	case err != nil:
		t.failed.Add(1)
		t.note(err.Error())
	case status == http.StatusOK:
		t.ok.Add(1)
		if retried {
			t.absorbed.Add(1)
		}
	default:
		t.failed.Add(1)
		t.note(fmt.Sprintf("the API answered %d", status))
	}
}

// note keeps the first failure, to say what it was.
func (t *tally) note(msg string) {
	t.mu.Lock()
	if t.firstErr == "" {
		t.firstErr = msg
	}
	t.mu.Unlock()
}

func (t *tally) first() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.firstErr
}

// rate returns the requests per second since its previous call.
func (t *tally) rate() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	now, n := time.Now(), t.requests.Load()
	var r int64
	if !t.lastAt.IsZero() {
		if dt := now.Sub(t.lastAt).Seconds(); dt > 0 {
			r = int64(float64(n-t.last) / dt)
		}
	}
	t.last, t.lastAt = n, now
	return r
}

// drive runs workers that each send GET requests to their own path under
// api through c, until the deadline passes, stop reports true or the worker
// has sent limit requests, and waits for all of them.
func drive(c *http.Client, api string, workers, limit int, until time.Time, stop func() bool, t *tally) {
	var wg sync.WaitGroup
	for w := range workers {
		url := fmt.Sprintf("%s/items/%d", api, w)
		wg.Go(func() {
			for n := 0; n < limit && time.Now().Before(until) && !stop(); n++ {
				t.record(get(c, url))
			}
		})
	}
	wg.Wait()
}

// get sends one GET request and reads the whole answer. retried reports
// whether the client sent it a second time after a 401.
func get(c *http.Client, url string) (status int, retried bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	mark := new(atomic.Bool)
	ctx = context.WithValue(ctx, retryKey{}, mark)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, mark.Load(), err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, mark.Load(), fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, mark.Load(), nil
}

type retryKey struct{}

// markRetried notes, in a worker's request context, that the client sent
// the request again after a 401.
func markRetried(ctx context.Context) {
	if m, ok := ctx.Value(retryKey{}).(*atomic.Bool); ok {
		m.Store(true)
	}
}

// never is a stop function that never stops.
func never() bool { return false }
