package bearer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// This file builds the world of one fault matrix row (refresh_faults_test.go)
// and makes its requests; the other tests that need a Transport logged in to
// a bearertest server build theirs from a row too.

// refresherKinds are the refreshers a token endpoint fault is tried with
// (faultRow.refresher).
var refresherKinds = []string{"OAuth2", "Endpoint"}

// faultResult is what one request got.
type faultResult struct {
	status int
	err    error
}

// faultEnv is one row's world: an bearertest server, the Transport, and what
// they recorded.
type faultEnv struct {
	srv       *bearertest.Server
	issued    *oauth2.Token
	store     store.Store
	tr        *bearer.Transport
	cfg       bearer.Config // tr's
	rec       *fakeBase     // tr's base, in front of the API
	bodies    bodyLog
	logouts   atomic.Int32
	refreshed chan struct{} // a shared refresh ended
	ctx       context.Context
	apiURL    string
	other     *httptest.Server // the redirect target, or the https origin

	mu     sync.Mutex
	waits  []time.Duration // between refresh attempts, recorded, not taken
	events []bearer.RefreshEvent
}

func newFaultEnv(t *testing.T, row faultRow) *faultEnv {
	e := &faultEnv{refreshed: make(chan struct{}, 16)}
	var oauthCfg *oauth2.Config
	e.srv, oauthCfg = newServer(t, bearertest.Options{Rotate: !row.noRotation, ReuseDetection: true})
	e.issued = e.srv.Issue()
	e.apiURL = e.srv.APIURL + "/things"

	loop := e.srv.Client().Transport.(*http.Transport).Clone()
	loop.MaxIdleConnsPerHost = 256
	t.Cleanup(loop.CloseIdleConnections)
	var tokenBase http.RoundTripper = loop
	if row.tokenWrap != nil {
		tokenBase = row.tokenWrap(loop)
	}
	e.ctx = context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: tokenBase})

	var api http.RoundTripper = loop
	switch row.client {
	case clientHugeBody:
		api = rejectingAPI("Bearer " + e.issued.AccessToken)
	case clientCrossHost:
		e.other = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(e.other.Close)
		e.srv.FailAPI(1, bearertest.Fault{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {e.other.URL + "/landing"}}})
		// bearertest listens on 127.0.0.1; reach it as localhost so that the
		// two hosts differ by name.
		e.apiURL = strings.Replace(e.apiURL, "127.0.0.1", "localhost", 1)
	case clientHTTPSToHTTP:
		plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(plain.Close)
		landing := "http://example.com:" + port(plain.URL) + "/landing"
		e.other = httptest.NewTLSServer(http.RedirectHandler(landing, http.StatusFound))
		t.Cleanup(e.other.Close)
		api = exampleDialer(t, e.other.Client().Transport.(*http.Transport))
		e.apiURL = "https://example.com:" + port(e.other.URL) + "/start"
	case clientPlainHTTP:
		api = exampleDialer(t, loop)
		e.apiURL = "http://example.com:" + port(e.srv.URL) + "/api/things"
	}
	e.rec = &fakeBase{next: api}

	var ref bearer.Refresher
	switch row.refresher {
	case "wrong-secret":
		oauthCfg.ClientSecret = "not-the-secret"
		fallthrough
	case "", "OAuth2":
		ref = bearer.OAuth2(oauthCfg)
	case "Endpoint":
		ref = &bearer.Endpoint{URL: e.srv.RefreshURL}
	default:
		t.Fatalf("unknown refresher %q", row.refresher)
	}
	timeout := row.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	e.store = store.NewMemory(e.issued)
	if row.unlocked {
		e.store = struct{ store.Store }{e.store} // hides Lock
	}
	cfg := bearer.Config{
		Refresher:      ref,
		Store:          e.store,
		Base:           e.rec,
		RefreshTimeout: timeout,
		OnLogout:       func(context.Context, error) { e.logouts.Add(1) },
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
			select {
			case e.refreshed <- struct{}{}:
			default:
			}
		},
	}
	e.cfg = cfg
	e.tr = newTransport(t, cfg, nil)
	bearer.SetSleep(e.tr, func(ctx context.Context, d time.Duration) error {
		e.mu.Lock()
		e.waits = append(e.waits, d)
		e.mu.Unlock()
		return ctx.Err()
	})

	if row.revoke {
		e.srv.RevokeAccessTokens()
	}
	if row.revokeRefresh {
		e.srv.RevokeRefreshTokens()
	}
	for _, q := range row.tokenFaults {
		e.srv.FailToken(q.n, q.f)
	}
	for _, q := range row.apiFaults {
		e.srv.FailAPI(q.n, q.f)
	}
	return e
}

// sleeps returns the waits between refresh attempts so far.
func (e *faultEnv) sleeps() []time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Duration{}, e.waits...)
}

// refreshEvents returns the refreshes the Transport reported so far.
func (e *faultEnv) refreshEvents() []bearer.RefreshEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]bearer.RefreshEvent(nil), e.events...)
}

// run makes the row's requests.
func (e *faultEnv) run(t *testing.T, row faultRow) []faultResult {
	n := max(row.requests, 1)
	switch row.client {
	case clientStorm:
		return e.storm(n)
	case clientCancel, clientDeadline:
		return []faultResult{e.leaveWhileWaiting(t, row.client)}
	}
	var results []faultResult
	for range n {
		results = append(results, e.once(t, row.client))
	}
	return results
}

// once makes one request of the given kind.
func (e *faultEnv) once(t *testing.T, kind clientFault) faultResult {
	ctx := e.ctx
	if kind == clientSkipAuth {
		ctx = bearer.SkipAuth(ctx)
	}
	var req *http.Request
	switch kind {
	case clientCrossHost, clientHTTPSToHTTP:
		// A GET through http.Client, which follows the redirect: it would
		// close a POST body a second time itself after the hop.
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.apiURL, nil)
		return e.do(func() (*http.Response, error) { return e.tr.Client().Do(req) })
	case clientHugeBody:
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.apiURL, e.bodies.add(&trackedBody{r: endless{}}))
		if !assert.Nil(t, req.GetBody) {
			return faultResult{}
		}
	default:
		req = e.bodies.request(ctx, e.apiURL, true)
	}
	if kind == clientCallerAuth {
		req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	}
	res := e.do(func() (*http.Response, error) { return e.tr.RoundTrip(req) })
	if kind == clientCallerAuth {
		sent := e.rec.requests()
		if assert.Len(t, sent, 1) {
			assert.Equal(t, "Basic dXNlcjpwYXNz", sent[0].auth, "the caller's Authorization passes through")
		}
	}
	return res
}

// do runs one request and closes its response.
func (e *faultEnv) do(send func() (*http.Response, error)) faultResult {
	resp, err := send()
	r := faultResult{err: err}
	if err == nil {
		r.status = resp.StatusCode
		resp.Body.Close()
	}
	return r
}

// storm sends n requests at once. The token endpoint holds the refresh
// until all n got their 401, so that every one of them needs it.
func (e *faultEnv) storm(n int) []faultResult {
	var all401 <-chan struct{}
	e.rec.observe, all401 = unauthorizedAfter(n)
	e.srv.OnToken(func(*http.Request) {
		select {
		case <-all401:
		case <-time.After(10 * time.Second): // the checks report the shortfall
		}
	})
	results := make([]faultResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			req := e.bodies.request(e.ctx, e.apiURL, true)
			<-start
			results[i] = e.do(func() (*http.Response, error) { return e.tr.RoundTrip(req) })
		})
	}
	close(start)
	wg.Wait()
	return results
}

// leaveWhileWaiting holds the refresh at the token endpoint while the
// request that started it is cancelled or runs out of time; then it lets
// the refresh finish and checks that the next request gets its token.
func (e *faultEnv) leaveWhileWaiting(t *testing.T, kind clientFault) faultResult {
	started, release := make(chan struct{}), make(chan struct{})
	var startOnce, releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	defer letGo()
	e.srv.OnToken(func(*http.Request) {
		startOnce.Do(func() { close(started) })
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	})

	ctx, cancel := context.WithCancel(e.ctx)
	if kind == clientDeadline {
		ctx, cancel = context.WithTimeout(e.ctx, 500*time.Millisecond)
	}
	defer cancel()
	done := make(chan faultResult, 1)
	go func() {
		req := e.bodies.request(ctx, e.apiURL, true)
		done <- e.do(func() (*http.Response, error) { return e.tr.RoundTrip(req) })
	}()
	var res faultResult
	select {
	case <-started:
		if kind == clientCancel {
			cancel()
		}
		res = <-done
	case res = <-done:
		t.Errorf("the request ended (%v) before its refresh started", res.err)
	}
	select {
	case <-e.refreshed:
		t.Error("the refresh ended before the request left")
	default:
	}

	letGo()
	select {
	case <-e.refreshed:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh never ended")
	}
	next := e.once(t, clientPlain)
	assert.NoError(t, next.err)
	assert.Equal(t, http.StatusOK, next.status, "the request after gets the refreshed token")
	return res
}
