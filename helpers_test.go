package bearer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
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

// fakeBase is a recording base RoundTripper. Like a real transport it reads
// and closes each request body; it answers with respond.
type fakeBase struct {
	respond func(req *http.Request) (*http.Response, error)

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	req  *http.Request
	auth string
	body string
}

func (f *fakeBase) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
	}
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{req: req, auth: req.Header.Get("Authorization"), body: string(body)})
	f.mu.Unlock()
	return f.respond(req)
}

func (f *fakeBase) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

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

// clock is a settable clock for one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

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
