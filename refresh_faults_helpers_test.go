package bearer_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// This file holds the doubles of the fault matrix (refresh_faults_test.go)
// and the rule of where a token may go, which the fuzz targets share.

// bodyLog keeps every request body a test created, the ones GetBody made
// included, to check that each was closed exactly once.
type bodyLog struct {
	mu     sync.Mutex
	bodies []*trackedBody
}

func (l *bodyLog) add(b *trackedBody) *trackedBody {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bodies = append(l.bodies, b)
	return b
}

func (l *bodyLog) all() []*trackedBody {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*trackedBody(nil), l.bodies...)
}

// assertClosedOnce waits until every body was closed (net/http's transport
// may close a body on its write loop just after RoundTrip returned), then
// checks that none was closed twice.
func (l *bodyLog) assertClosedOnce(t *testing.T) {
	t.Helper()
	closed := func() bool {
		for _, b := range l.all() {
			if b.closes.Load() == 0 {
				return false
			}
		}
		return true
	}
	assert.Eventually(t, closed, 5*time.Second, 2*time.Millisecond, "a request body was never closed")
	for i, b := range l.all() {
		assert.EqualValues(t, 1, b.closes.Load(), "closes of request body %d", i)
	}
}

// request creates a POST to url whose body, and each replay of it, is
// logged; withGetBody decides whether it can be replayed.
func (l *bodyLog) request(ctx context.Context, url string, withGetBody bool) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, l.add(newBody("payload")))
	if err != nil {
		panic(err) // the URLs are the test's own
	}
	req.ContentLength = int64(len("payload"))
	if withGetBody {
		req.GetBody = func() (io.ReadCloser, error) { return l.add(newBody("payload")), nil }
	}
	return req
}

// endless is a request body that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// tokenAllowed is the rule of DESIGN.md, written independently of scope.go:
// the token goes only to Config.Hosts when set; otherwise to the request's
// host, and on a redirect hop only to the original host or a subdomain of
// it; over https, or plain http to loopback or with AllowHTTP. (SkipAuth
// and a caller's own Authorization are the callers' to check: they are not
// visible on the request.) Hosts entries are matched as names or host:port
// as written.
func tokenAllowed(cfg bearer.Config, req *http.Request) bool {
	host := strings.ToLower(req.URL.Hostname())
	switch {
	case len(cfg.Hosts) > 0:
		listed := false
		for _, h := range cfg.Hosts {
			listed = listed || strings.EqualFold(h, host) || strings.EqualFold(h, req.URL.Host)
		}
		if !listed {
			return false
		}
	case req.Response != nil:
		orig := req
		for orig.Response != nil && orig.Response.Request != nil {
			orig = orig.Response.Request
		}
		o := strings.ToLower(orig.URL.Hostname())
		if host != o && !strings.HasSuffix(host, "."+o) {
			return false
		}
	}
	loopback := host == "localhost" || host == "127.0.0.1" || host == "::1"
	switch req.URL.Scheme {
	case "https":
		return true
	case "http":
		return cfg.AllowHTTP || loopback
	}
	return false
}

// assertTokenOnlyWhereAllowed checks that no request sent under cfg carried
// a bearer token (as the Transport writes it) to a place where tokenAllowed
// forbids it.
func assertTokenOnlyWhereAllowed(t *testing.T, cfg bearer.Config, sent []seenRequest) {
	t.Helper()
	for _, s := range sent {
		if strings.HasPrefix(s.auth, "Bearer "+bearertest.AccessPrefix) {
			assert.True(t, tokenAllowed(cfg, s.req), "a token was sent to %s", s.req.URL)
		}
	}
}

// rejectingAPI is an API that answers 401 invalid_token to the
// Authorization value rejected and 200 to others. Like a server that
// rejects a request early, it reads at most 64 KiB of a body before closing
// it (fakeBase would read an endless one for ever).
func rejectingAPI(rejected string) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			io.CopyN(io.Discard, req.Body, 64<<10)
			req.Body.Close()
		}
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}
		if req.Header.Get("Authorization") == rejected {
			resp.StatusCode = http.StatusUnauthorized
			resp.Header.Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		return resp, nil
	})
}

// Token answers spoiled on their way back, on the client's side:
// stallAnswers' bodies never arrive (reading blocks until the request's
// context ends); dripAnswers' arrive 8 bytes at a time, each after a
// millisecond.
var (
	stallAnswers = slowAnswers(false)
	dripAnswers  = slowAnswers(true)
)

func slowAnswers(drip bool) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			if err == nil {
				resp.Body = &slowBody{ReadCloser: resp.Body, ctx: req.Context(), drip: drip}
			}
			return resp, err
		})
	}
}

type slowBody struct {
	io.ReadCloser
	ctx  context.Context
	drip bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	var tick <-chan time.Time // nil: the body never arrives
	if b.drip {
		timer := time.NewTimer(time.Millisecond)
		defer timer.Stop()
		tick = timer.C
	}
	select {
	case <-tick:
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
	return b.ReadCloser.Read(p[:min(len(p), 8)])
}

// loseFirstAnswer lets the first token request reach the server, which
// handles it, and loses the answer on its way back.
func loseFirstAnswer(next http.RoundTripper) http.RoundTripper {
	var calls atomic.Int32
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || calls.Add(1) > 1 {
			return resp, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("faults: the answer was lost on the way back")
	})
}

// exampleDialer returns a clone of base that connects example.com and its
// subdomains to loopback, so that a test can use a host name that is not a
// loopback one. (httptest's TLS certificate is valid for example.com.)
func exampleDialer(t *testing.T, base *http.Transport) *http.Transport {
	tr := base.Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "example.com" || strings.HasSuffix(host, ".example.com")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// jsonAnswer is a token endpoint fault with a JSON body.
func jsonAnswer(status int, body string, header ...string) bearertest.Fault {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return bearertest.Fault{Status: status, Body: body, Header: h}
}

// port is the port of a URL such as an httptest server's.
func port(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(err)
	}
	return u.Port()
}
