package bearer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeBase is the recording base RoundTripper every test uses. It answers
// each request with respond or, when respond is nil, sends it on to next (a
// real transport, which reads and closes the body itself); when it answers
// itself, it reads and closes the request body first, as a real transport
// does. It records every request with the Authorization it carried, its body
// (the one it read, or, when it sends the request on, a copy from GetBody if
// the request has one) and what it answered, and then calls observe, if set,
// with that record. It counts its CloseIdleConnections calls, calls
// onIdleClose, if set, with that count, and passes them on to next. Set the
// hooks before use.
type fakeBase struct {
	respond     func(req *http.Request) (*http.Response, error)
	next        http.RoundTripper
	observe     func(seenRequest)
	onIdleClose func(n int)

	mu         sync.Mutex
	seen       []seenRequest
	idleCloses int
}

// seenRequest is one request a fakeBase got, and its answer.
type seenRequest struct {
	req  *http.Request
	auth string
	body string
	resp *http.Response
	err  error
}

func (f *fakeBase) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	switch {
	case f.respond != nil && req.Body != nil:
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	case f.respond == nil && req.GetBody != nil:
		if copied, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(copied)
			copied.Close()
		}
	}
	f.mu.Lock()
	i := len(f.seen)
	f.seen = append(f.seen, seenRequest{req: req, auth: req.Header.Get("Authorization"), body: string(body)})
	f.mu.Unlock()

	var resp *http.Response
	var err error
	if f.respond != nil {
		resp, err = f.respond(req)
	} else {
		resp, err = f.next.RoundTrip(req)
	}

	f.mu.Lock()
	f.seen[i].resp, f.seen[i].err = resp, err
	s := f.seen[i]
	f.mu.Unlock()
	if f.observe != nil {
		f.observe(s)
	}
	return resp, err
}

// requests returns what the base got so far, in order.
func (f *fakeBase) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

// count returns how many requests the base got.
func (f *fakeBase) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// last returns the latest request the base got; it fails the test if there
// was none.
func (f *fakeBase) last(t *testing.T) seenRequest {
	t.Helper()
	seen := f.requests()
	require.NotEmpty(t, seen, "no request reached the base")
	return seen[len(seen)-1]
}

func (f *fakeBase) CloseIdleConnections() {
	f.mu.Lock()
	f.idleCloses++
	n := f.idleCloses
	f.mu.Unlock()
	if f.onIdleClose != nil {
		f.onIdleClose(n)
	}
	if c, ok := f.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// closes returns how many CloseIdleConnections calls the base got.
func (f *fakeBase) closes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idleCloses
}

// unauthorizedAfter returns an observe hook for a fakeBase and a channel
// that the hook closes once n answers were 401s.
func unauthorizedAfter(n int) (func(seenRequest), <-chan struct{}) {
	var count atomic.Int32
	reached := make(chan struct{})
	return func(s seenRequest) {
		if s.resp != nil && s.resp.StatusCode == http.StatusUnauthorized && count.Add(1) == int32(n) {
			close(reached)
		}
	}, reached
}

// rtFunc adapts a function to http.RoundTripper, for a base that records
// nothing (fakeBase records).
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// answer is a response with the given status and a small tracked body.
func answer(status int) *http.Response {
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: newBody("answer")}
}

// trackedBody is a request or response body that counts its closes.
type trackedBody struct {
	r      io.Reader
	closes atomic.Int32
}

func newBody(s string) *trackedBody { return &trackedBody{r: strings.NewReader(s)} }

func (b *trackedBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *trackedBody) Close() error               { b.closes.Add(1); return nil }

// countingRefresher hands out tokens "access-1", "access-2", ... and counts
// its calls. fail, if set, decides the error of each call.
type countingRefresher struct {
	calls atomic.Int32
	ttl   time.Duration
	now   func() time.Time
	fail  func(call int32) error
}

func (r *countingRefresher) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	n := r.calls.Add(1)
	if r.fail != nil {
		if err := r.fail(n); err != nil {
			return nil, err
		}
	}
	tok := &oauth2.Token{AccessToken: "access-" + strconv.Itoa(int(n)), RefreshToken: "refresh-" + strconv.Itoa(int(n)), TokenType: "Bearer"}
	if r.ttl > 0 {
		tok.Expiry = r.now().Add(r.ttl)
	}
	return tok, nil
}

// clock is the settable clock of the tests. It starts at the real time, so
// that it agrees with what reads the real time (x/oauth2, which turns
// expires_in into an Expiry by time.Now; a bearertest server without
// Options.Now), and moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTransport builds a Transport over base with the initial token tok and
// a fast retry policy.
func newTransport(t *testing.T, cfg bearer.Config, tok *oauth2.Token) *bearer.Transport {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = store.NewMemory(tok)
	}
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	bearer.SetRetry(tr, 3, func(int) time.Duration { return time.Millisecond })
	return tr
}

// refreshFailure sends one request through tr, which must fail with a
// *RefreshError, and returns it with the error itself.
func refreshFailure(t *testing.T, tr *bearer.Transport) (*bearer.RefreshError, error) {
	t.Helper()
	resp, err := tr.Client().Get("https://api.example.com/")
	if resp != nil {
		resp.Body.Close()
	}
	re, ok := isRefreshError(err)
	require.True(t, ok, "want a *RefreshError, got %v", err)
	return re, err
}

func isRefreshError(err error) (*bearer.RefreshError, bool) {
	var re *bearer.RefreshError
	ok := errors.As(err, &re)
	return re, ok
}

// newServer starts an bearertest server; its Config uses Basic client
// authentication so that each refresh is exactly one token request.
func newServer(t *testing.T, opts bearertest.Options) (*bearertest.Server, *oauth2.Config) {
	t.Helper()
	srv := bearertest.NewServer(opts)
	t.Cleanup(srv.Close)
	cfg := srv.Config()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	return srv, cfg
}

// loopbackBase is a base transport for many concurrent loopback requests;
// its idle connections are closed when the test ends.
func loopbackBase(t *testing.T, conns int) *http.Transport {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = conns
	t.Cleanup(base.CloseIdleConnections)
	return base
}

// loggedRequest is what a test of the token and revocation requests reads
// of one: its path, header and form.
type loggedRequest struct {
	path   string
	header http.Header
	form   url.Values
}

// to returns the requests f got for path, with their forms parsed.
func (f *fakeBase) to(path string) []loggedRequest {
	var out []loggedRequest
	for _, r := range f.requests() {
		if r.req.URL.Path == path {
			form, _ := url.ParseQuery(r.body)
			out = append(out, loggedRequest{path: path, header: r.req.Header, form: form})
		}
	}
	return out
}
