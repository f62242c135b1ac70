package invariant

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// This file builds the world of one history and carries out its steps.

// stepTimeout bounds one step, and settleTimeout the wait for the shared
// refreshes at the end: only a Transport that hangs reaches them.
const (
	stepTimeout   = 30 * time.Second
	settleTimeout = 5 * time.Second
)

// world is everything one history runs in.
type world struct {
	t   testing.TB
	cfg *Config
	h   *history

	srv     *bearertest.Server
	inner   bearer.Refresher // the OAuth2 refresher over srv
	loop    *http.Transport
	api     string // the API, on a host that gets the token
	other   string // the API under another name, which must not get it
	apiHost string
	clk     *clocks
	hs      []*holder
	seed    *oauth2.Token
	lastRT  sync.Map // "rt": the newest refresh token seen, for opRevokeLineage

	rec     recorder
	flt     faults
	flights flights
	stats   bearertest.Stats // the server's, taken before it closed
}

// clocks are the server's clock and the Transports'. With virtual clocks
// every one is the world's time plus its skew; with real ones the
// Transports keep time.Now and only the server's clock is moved, ahead.
type clocks struct {
	mu     sync.Mutex
	real   bool
	at     time.Time     // the world's time (virtual)
	offset time.Duration // the server ahead of real time (real)
	skew   []time.Duration
}

func (c *clocks) server() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now().Add(c.offset)
	}
	return c.at
}

func (c *clocks) of(i int) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real {
		return time.Now()
	}
	return c.at.Add(c.skew[i])
}

func (c *clocks) jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
	c.offset += d
}

func (c *clocks) setSkew(i int, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skew[i] = d
}

// newWorld starts the server and the Transports of h, the store holding a
// fresh login.
func newWorld(t testing.TB, cfg *Config, h *history) *world {
	n := len(h.waitFor)
	w := &world{t: t, cfg: cfg, h: h, clk: &clocks{
		real: cfg.Prepare == nil,
		at:   time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		skew: make([]time.Duration, n),
	}}
	w.srv = bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true, AccessTTL: accessTTL, Now: w.clk.server})
	oc := w.srv.Config()
	oc.Endpoint.AuthStyle = oauth2.AuthStyleInHeader // one token request per refresh
	w.inner = bearer.OAuth2(oc)
	w.loop = http.DefaultTransport.(*http.Transport).Clone()
	w.loop.MaxIdleConnsPerHost = 64
	w.api = w.srv.APIURL + "/things"
	w.other = strings.Replace(w.api, "127.0.0.1", "localhost", 1)
	u, err := url.Parse(w.api)
	if err != nil {
		t.Fatal(err)
	}
	w.apiHost = u.Host

	open := cfg.Stores[h.store].New(t)
	w.seed = w.srv.Issue()
	w.lastRT.Store("rt", w.seed.RefreshToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := open(0).Save(ctx, w.seed); err != nil {
		t.Fatalf("invariant: seeding the %s store: %v", cfg.Stores[h.store].Name, err)
	}
	for i := range n {
		hd := &holder{w: w, i: i}
		tr, err := bearer.New(bearer.Config{
			Refresher:      bearer.RefresherFunc(hd.refresh),
			Store:          newFaultyStore(w, open(i)),
			Base:           &base{w: w, i: i},
			OnLogout:       hd.onLogout,
			Leeway:         h.leeway,
			WaitForRefresh: h.waitFor[i],
			RefreshTimeout: cfg.RefreshTimeout,
			Hosts:          []string{w.apiHost},
			Logger:         slog.New(logHandler{hd}),
			OnRefreshStart: hd.onRefreshStart,
			OnRefresh:      hd.onRefresh,
			OnRetry:        hd.onRetry,
		})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Prepare != nil {
			cfg.Prepare(tr, func() time.Time { return w.clk.of(i) })
		}
		hd.tr = tr
		w.hs = append(w.hs, hd)
	}
	return w
}

// runHistory runs h in a world of its own and checks it.
func runHistory(t testing.TB, cfg *Config, h *history) *result {
	baseline := goleak.IgnoreCurrent()
	w := newWorld(t, cfg, h)
	for _, i := range h.running() {
		if !w.step(i) {
			break
		}
	}
	w.heal()
	w.settle()
	w.finish()
	w.close()
	res := w.check()
	if err := goleak.Find(baseline); err != nil {
		res.add("goroutines", "goroutines outlived the history: %v", err)
	}
	return res
}

// step runs the operations of step i at once, and reports false if they
// did not end in time.
func (w *world) step(i int) bool {
	var wg sync.WaitGroup
	for _, o := range w.h.steps[i] {
		wg.Go(func() { w.guard(o.String(), func() { w.do(o) }) })
	}
	return w.await(&wg, fmt.Sprintf("step %d", i))
}

// await waits for wg, or records the stacks of everything left if it takes
// longer than stepTimeout.
func (w *world) await(wg *sync.WaitGroup, what string) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(stepTimeout)
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		w.rec.add(func() {
			w.rec.stuck = append(w.rec.stuck, fmt.Sprintf("%s did not end in %v:\n%s", what, stepTimeout, buf))
		})
		w.t.Fatalf("invariant: %s of history %#x did not end in %v; stacks:\n%s\n%s", what, w.h.seed, stepTimeout, buf, w.h)
		return false
	}
}

// guard runs fn, recording a panic that reached the caller of a Transport.
func (w *world) guard(what string, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			w.rec.add(func() { w.rec.panics = append(w.rec.panics, fmt.Sprintf("%s: %v", what, r)) })
		}
	}()
	fn()
}

// do carries out one operation.
func (w *world) do(o op) {
	ctx := context.WithValue(context.Background(), holderKey{}, o.tr)
	switch o.kind {
	case opRequests:
		var wg sync.WaitGroup
		for _, r := range o.reqs {
			wg.Go(func() { w.guard(r.String(), func() { w.request(r, false) }) })
		}
		wg.Wait()
	case opRevokeAccess:
		w.revoke("access", "", w.srv.RevokeAccessTokens)
	case opEndOne:
		w.srv.FailAPI(1, bearertest.Fault{Status: http.StatusUnauthorized, Body: `{"error":"invalid_token"}`, Header: http.Header{
			"Www-Authenticate": {`Bearer realm="bearertest", error="invalid_token", error_description="ended early"`},
			"Content-Type":     {"application/json"},
		}})
	case opRevokeRefresh:
		w.revoke("lineages", "", w.srv.RevokeRefreshTokens)
	case opRevokeLineage:
		rt, _ := w.lastRT.Load("rt")
		w.revoke("lineage", rt.(string), func() { w.srv.RevokeLineage(rt.(string)) })
	case opJump:
		w.clk.jump(o.d)
	case opSkew:
		w.clk.setSkew(o.tr, o.d)
	case opTokenFault:
		w.srv.FailToken(o.n, tokenFault(o.what, w.cfg.RefreshTimeout))
	case opLose:
		w.flt.lose.Add(int32(o.n))
	case opStoreFault:
		w.flt.addStore(o.what, o.n, o.d)
	case opRefresherPanic:
		w.flt.refresher.Add(int32(o.n))
	case opHookPanic:
		w.flt.addHook(o.what, o.n)
	case opSetToken:
		u := &userRec{tr: o.tr, what: "SetToken", start: w.rec.tick()}
		u.tok = w.srv.Issue()
		u.tok.Expiry = w.clk.of(o.tr).Add(accessTTL) // as the client reads expires_in
		w.lastRT.Store("rt", u.tok.RefreshToken)
		u.err = w.hs[o.tr].tr.SetToken(ctx, u.tok)
		u.end = w.rec.tick()
		w.rec.add(func() { w.rec.users = append(w.rec.users, u) })
	case opLogout:
		u := &userRec{tr: o.tr, what: "Logout", start: w.rec.tick()}
		u.err = w.hs[o.tr].tr.Logout(ctx)
		u.end = w.rec.tick()
		w.rec.add(func() { w.rec.users = append(w.rec.users, u) })
	case opCloseIdle:
		w.hs[o.tr].tr.CloseIdleConnections()
	case opExtra:
		o.do()
	}
}

func (w *world) revoke(what, rt string, fn func()) {
	r := &revokeRec{what: what, rt: rt, start: w.rec.tick()}
	fn()
	r.end = w.rec.tick()
	w.rec.add(func() { w.rec.revokes = append(w.rec.revokes, r) })
}

// tokenFault is the bearertest fault of a name drawn by draw.
func tokenFault(name string, timeout time.Duration) bearertest.Fault {
	json := func(status int, body string, header ...string) bearertest.Fault {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return bearertest.Fault{Status: status, Body: body, Header: h}
	}
	switch name {
	case "503":
		return bearertest.ServerError(http.StatusServiceUnavailable)
	case "503 Retry-After:1":
		return json(http.StatusServiceUnavailable, `{"error":"temporarily_unavailable"}`, "Retry-After", "1")
	case "429":
		return json(http.StatusTooManyRequests, `{"error":"slow_down"}`)
	case "reset":
		return bearertest.Fault{Reset: true}
	case "truncated":
		return bearertest.Fault{Truncate: true}
	case "malformed":
		return bearertest.Malformed()
	case "invalid_request":
		return json(http.StatusBadRequest, `{"error":"invalid_request","error_description":"please retry"}`)
	case "slow":
		return bearertest.Fault{Delay: 20 * time.Millisecond}
	case "timeout":
		return bearertest.Fault{Delay: 10 * timeout}
	case "invalid_grant":
		return bearertest.InvalidGrant()
	}
	panic("invariant: unknown token fault " + name)
}

// request makes one request of a burst, or of the final round, and
// records it.
func (w *world) request(s reqSpec, final bool) {
	hd := w.hs[s.tr]
	r := &requestRec{id: w.rec.reqIDs.Add(1), tr: s.tr, kind: s.kind, cancelled: s.cancel >= 0, final: final}
	ctx := context.WithValue(context.Background(), holderKey{}, s.tr)
	ctx = context.WithValue(ctx, requestKey{}, r.id)
	if s.cancel >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := time.AfterFunc(s.cancel, cancel)
		defer stop.Stop()
	}
	began := time.Now()
	r.start = w.rec.tick()
	defer func() {
		r.end, r.took = w.rec.tick(), time.Since(began)
		w.rec.add(func() { w.rec.requests = append(w.rec.requests, r) })
		if r.err != nil {
			w.rec.leak("request error", r.err.Error())
		}
	}()
	if s.kind == reqToken {
		r.token, r.err = hd.tr.Token(ctx)
		return
	}
	req := newRequest(ctx, s.kind, w.api, w.other)
	resp, err := hd.tr.RoundTrip(req)
	if r.err = err; err == nil {
		r.status = resp.StatusCode
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// newRequest builds a request of kind k.
func newRequest(ctx context.Context, k reqKind, api, other string) *http.Request {
	var req *http.Request
	var err error
	switch k {
	case reqGet:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, api, nil)
	case reqOther:
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, other, nil)
	case reqPost:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, api, strings.NewReader("payload"))
	case reqOneShot:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, api, struct{ io.Reader }{strings.NewReader("payload")})
	}
	if err != nil {
		panic(err) // the URLs are the world's own
	}
	return req
}

// heal ends every fault, so that the history can settle.
func (w *world) heal() {
	w.srv.ClearFaults()
	w.flt.clear()
	for _, f := range w.cfg.Faults {
		if f.Heal != nil {
			f.Heal()
		}
	}
}

// settle waits until no refresh is under way in any Transport. Once a
// refresh has not ended in time, it waits no more.
func (w *world) settle() {
	if len(w.rec.stuck) > 0 {
		return
	}
	for range 2 { // a flight may start another's wait
		if w.cfg.Settle != nil {
			var wg sync.WaitGroup
			for _, hd := range w.hs {
				wg.Go(func() { w.cfg.Settle(hd.tr) })
			}
			if !w.await(&wg, "settling") {
				return
			}
		}
		if err := w.flights.wait(settleTimeout); err != nil {
			w.rec.add(func() { w.rec.stuck = append(w.rec.stuck, err.Error()) })
			return
		}
	}
}

// finish sends one more request through each Transport, in turn, after the
// faults are gone.
func (w *world) finish() {
	for i := range w.hs {
		w.guard("final request", func() { w.request(reqSpec{tr: i, kind: reqGet, cancel: -1}, true) })
		w.settle()
	}
}

// close stops the server and the connections, keeping the server's counts.
func (w *world) close() {
	w.stats = w.srv.Stats()
	for _, hd := range w.hs {
		hd.tr.CloseIdleConnections()
	}
	w.loop.CloseIdleConnections()
	w.srv.Close()
}
