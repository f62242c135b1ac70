package bearer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

var tok1 = &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", TokenType: "Bearer"}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  bearer.Config
		want string
	}{
		{"no refresher", bearer.Config{}, "Refresher is required"},
		{"bad host", bearer.Config{Refresher: &countingRefresher{}, Hosts: []string{"https://api.example.com"}}, "not a host"},
		{"empty port", bearer.Config{Refresher: &countingRefresher{}, Hosts: []string{"api.example.com:"}}, "empty port"},
		{"negative timeout", bearer.Config{Refresher: &countingRefresher{}, RefreshTimeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bearer.New(tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "bearer: "))
		})
	}
}

func TestAttachClonesAndLeavesRequestAlone(t *testing.T) {
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)

	body := newBody("payload")
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/things", body)
	require.NoError(t, err)
	req.Header.Set("X-Trace", "abc")
	before := req.Header.Clone()
	headerMap := req.Header

	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()

	seen := base.requests()
	require.Len(t, seen, 1)
	assert.Equal(t, "Bearer access-0", seen[0].auth)
	assert.Equal(t, "abc", seen[0].req.Header.Get("X-Trace"))
	assert.Equal(t, "payload", seen[0].body)
	assert.NotSame(t, req, seen[0].req, "the request sent must be a copy")
	assert.Equal(t, before, req.Header, "the caller's headers must be unchanged")
	assert.Empty(t, req.Header.Get("Authorization"))
	assert.Equal(t, reflect.ValueOf(headerMap).Pointer(), reflect.ValueOf(req.Header).Pointer(), "the caller's header map must not be replaced")
	assert.NotEqual(t, reflect.ValueOf(req.Header).Pointer(), reflect.ValueOf(seen[0].req.Header).Pointer(), "the header map sent must be a copy")
	assert.EqualValues(t, 1, body.closes.Load())
}

func TestTokenTypeIsUsed(t *testing.T) {
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(200), nil }}
	tok := &oauth2.Token{AccessToken: "access-0", TokenType: "mac"}
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok)
	resp, err := tr.Client().Get("https://api.example.com/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "MAC access-0", base.last(t).auth)
}

// TestBodyClosedOnceOnEveryPath sends a request with a tracked body down
// each path through RoundTrip and checks the body was closed exactly once.
func TestBodyClosedOnceOnEveryPath(t *testing.T) {
	errBase := errors.New("connection refused")
	tests := []struct {
		name      string
		respond   func(*http.Request) (*http.Response, error)
		refresher *countingRefresher
		setup     func(t *testing.T, tr *bearer.Transport)
		getBody   bool
		url       string
		wantErr   bool
	}{
		{name: "success", respond: status(200)},
		{name: "base error", respond: func(*http.Request) (*http.Response, error) { return nil, errBase }, wantErr: true},
		{name: "logged out", respond: status(200), wantErr: true, setup: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.Logout(context.Background()))
		}},
		{name: "refresh fails after 401", respond: status(401), wantErr: true,
			refresher: &countingRefresher{fail: func(int32) error { return bearer.Permanent(errors.New("dead")) }}},
		{name: "401 then retry with GetBody", respond: statusSeq(401, 200), getBody: true},
		{name: "401 without GetBody", respond: statusSeq(401, 200)},
		{name: "foreign scheme passes through", respond: status(200), url: "http://api.example.com/"},
		{name: "expired token, refresh fails", respond: status(200), wantErr: true, setup: func(t *testing.T, tr *bearer.Transport) {
			require.NoError(t, tr.SetToken(context.Background(), &oauth2.Token{AccessToken: "old", RefreshToken: "r", Expiry: time.Now().Add(-time.Hour)}))
		}, refresher: &countingRefresher{fail: func(int32) error { return errors.New("down") }}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.refresher
			if ref == nil {
				ref = &countingRefresher{}
			}
			base := &fakeBase{respond: tt.respond}
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
			if tt.setup != nil {
				tt.setup(t, tr)
			}
			url := tt.url
			if url == "" {
				url = "https://api.example.com/"
			}
			body := newBody("payload")
			req, err := http.NewRequest(http.MethodPut, url, body)
			require.NoError(t, err)
			if tt.getBody {
				req.GetBody = func() (io.ReadCloser, error) { return newBody("payload"), nil }
			}
			resp, err := tr.RoundTrip(req)
			if tt.wantErr {
				assert.Error(t, err)
			} else {
				require.NoError(t, err)
				resp.Body.Close()
			}
			assert.EqualValues(t, 1, body.closes.Load(), "request body closes")
		})
	}
}

func status(code int) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return answer(code), nil }
}

// statusSeq answers the given statuses in turn, then the last one forever.
func statusSeq(codes ...int) func(*http.Request) (*http.Response, error) {
	var mu sync.Mutex
	i := 0
	return func(*http.Request) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		c := codes[min(i, len(codes)-1)]
		i++
		return answer(c), nil
	}
}

func TestRetryOnce(t *testing.T) {
	t.Run("second 401 is returned as is", func(t *testing.T) {
		ref := &countingRefresher{}
		base := &fakeBase{respond: status(401)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 401, resp.StatusCode)
		assert.EqualValues(t, 1, ref.calls.Load())
		seen := base.requests()
		require.Len(t, seen, 2)
		assert.Equal(t, "Bearer access-0", seen[0].auth)
		assert.Equal(t, "Bearer access-1", seen[1].auth)
	})
	t.Run("body replayed through GetBody", func(t *testing.T) {
		base := &fakeBase{respond: statusSeq(401, 200)}
		tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)
		resp, err := tr.Client().Post("https://api.example.com/", "text/plain", strings.NewReader("hello"))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		seen := base.requests()
		require.Len(t, seen, 2)
		assert.Equal(t, "hello", seen[0].body)
		assert.Equal(t, "hello", seen[1].body)
	})
	t.Run("body without GetBody is not resent but the refresh happens", func(t *testing.T) {
		ref := &countingRefresher{}
		base := &fakeBase{respond: statusSeq(401, 200)}
		tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/", io.NopCloser(strings.NewReader("once")))
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 401, resp.StatusCode)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "answer", string(got), "the 401 is returned unread")
		resp.Body.Close()
		assert.EqualValues(t, 1, ref.calls.Load())
		assert.Len(t, base.requests(), 1)
		tok, err := tr.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "access-1", tok.AccessToken, "the next request uses the new token")
	})
	t.Run("401 body drained and closed before the retry", func(t *testing.T) {
		first := newBody(strings.Repeat("x", 1000))
		var closedBeforeRetry bool
		var mu sync.Mutex
		calls := 0
		base := &fakeBase{respond: func(*http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return &http.Response{StatusCode: 401, Header: http.Header{}, Body: first}, nil
			}
			closedBeforeRetry = first.closes.Load() == 1
			return answer(200), nil
		}}
		tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)
		resp, err := tr.Client().Get("https://api.example.com/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.True(t, closedBeforeRetry)
		rest, _ := io.ReadAll(first.r)
		assert.Empty(t, rest, "the 401 body was drained")
	})
}

// TestLate401 checks that a 401 for a token older than the current one is
// retried with the current one, without another refresh.
func TestLate401(t *testing.T) {
	ref := &countingRefresher{}
	release := make(chan struct{})
	arrived := make(chan struct{})
	base := &fakeBase{respond: func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/slow" && r.Header.Get("Authorization") == "Bearer access-0" {
			close(arrived)
			<-release
			return answer(401), nil
		}
		if r.Header.Get("Authorization") == "Bearer access-0" {
			return answer(401), nil
		}
		return answer(200), nil
	}}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)

	slow := make(chan *http.Response, 1)
	go func() {
		resp, err := tr.Client().Get("https://api.example.com/slow")
		if err != nil {
			slow <- nil
			return
		}
		resp.Body.Close()
		slow <- resp
	}()
	<-arrived
	resp, err := tr.Client().Get("https://api.example.com/fast")
	require.NoError(t, err)
	resp.Body.Close()
	require.EqualValues(t, 1, ref.calls.Load())

	close(release)
	late := <-slow
	require.NotNil(t, late)
	assert.Equal(t, 200, late.StatusCode)
	assert.EqualValues(t, 1, ref.calls.Load(), "a late 401 must not refresh again")
	var retried []string
	for _, s := range base.requests() {
		if s.req.URL.Path == "/slow" {
			retried = append(retried, s.auth)
		}
	}
	assert.Equal(t, []string{"Bearer access-0", "Bearer access-1"}, retried)
}

func TestCallerAuthorizationPassesThrough(t *testing.T) {
	ref := &countingRefresher{}
	base := &fakeBase{respond: status(401)}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Zero(t, ref.calls.Load(), "never refreshed for")
	seen := base.requests()
	require.Len(t, seen, 1)
	assert.Equal(t, "Basic dXNlcjpwYXNz", seen[0].auth)
	assert.Same(t, req, seen[0].req, "passed through untouched")
}

// TestWhereTheTokenGoes covers Hosts, plain http, SkipAuth and redirect hops.
func TestWhereTheTokenGoes(t *testing.T) {
	hop := func(from, to string) *http.Request {
		orig, _ := http.NewRequest(http.MethodGet, from, nil)
		next, _ := http.NewRequest(http.MethodGet, to, nil)
		next.Response = &http.Response{StatusCode: 302, Request: orig}
		return next
	}
	get := func(u string) *http.Request { r, _ := http.NewRequest(http.MethodGet, u, nil); return r }
	skip := func(u string) *http.Request {
		return get(u).WithContext(bearer.SkipAuth(context.Background()))
	}
	tests := []struct {
		name      string
		hosts     []string
		allowHTTP bool
		req       *http.Request
		wantToken bool
	}{
		{name: "https host of the request", req: get("https://api.example.com/x"), wantToken: true},
		{name: "plain http to a remote host", req: get("http://api.example.com/x")},
		{name: "plain http allowed", allowHTTP: true, req: get("http://api.example.com/x"), wantToken: true},
		{name: "plain http to loopback", req: get("http://127.0.0.1:8080/x"), wantToken: true},
		{name: "plain http to localhost", req: get("http://localhost:8080/x"), wantToken: true},
		{name: "plain http to ::1", req: get("http://[::1]:8080/x"), wantToken: true},
		{name: "other scheme", req: get("ftp://api.example.com/x")},
		{name: "hosts: listed", hosts: []string{"api.example.com"}, req: get("https://api.example.com/x"), wantToken: true},
		{name: "hosts: listed, case", hosts: []string{"API.example.com"}, req: get("https://api.EXAMPLE.com/x"), wantToken: true},
		{name: "hosts: not listed", hosts: []string{"api.example.com"}, req: get("https://evil.example.net/x")},
		{name: "hosts: port listed", hosts: []string{"api.example.com:8443"}, req: get("https://api.example.com:8443/x"), wantToken: true},
		{name: "hosts: other port", hosts: []string{"api.example.com:8443"}, req: get("https://api.example.com/x")},
		{name: "hosts: default port", hosts: []string{"api.example.com:443"}, req: get("https://api.example.com/x"), wantToken: true},
		{name: "hosts: subdomain is not listed", hosts: []string{"example.com"}, req: get("https://api.example.com/x")},
		{name: "redirect to the same host", req: hop("https://api.example.com/a", "https://api.example.com/b"), wantToken: true},
		{name: "redirect to a subdomain", req: hop("https://example.com/a", "https://api.example.com/b"), wantToken: true},
		{name: "redirect to another host", req: hop("https://api.example.com/a", "https://evil.example.net/b")},
		{name: "redirect to a lookalike host", req: hop("https://example.com/a", "https://badexample.com/b")},
		{name: "redirect https to http", req: hop("https://api.example.com/a", "http://api.example.com/b")},
		{name: "redirect within Hosts", hosts: []string{"a.example.com", "b.example.org"}, req: hop("https://a.example.com/", "https://b.example.org/"), wantToken: true},
		{name: "SkipAuth", req: skip("https://api.example.com/x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := &countingRefresher{}
			base := &fakeBase{respond: status(401)}
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base, Hosts: tt.hosts, AllowHTTP: tt.allowHTTP}, tok1)
			resp, err := tr.RoundTrip(tt.req)
			require.NoError(t, err)
			resp.Body.Close()
			seen := base.requests()
			require.NotEmpty(t, seen)
			if tt.wantToken {
				assert.Equal(t, "Bearer access-0", seen[0].auth)
				assert.EqualValues(t, 1, ref.calls.Load(), "a 401 with the token refreshes")
			} else {
				assert.Empty(t, seen[0].auth)
				assert.Len(t, seen, 1, "no retry")
				assert.Zero(t, ref.calls.Load(), "never refreshed for")
			}
		})
	}
}

// TestRedirectToAnotherHostDropsToken follows a real redirect between two
// loopback servers with different host names.
func TestRedirectToAnotherHostDropsToken(t *testing.T) {
	got := make(chan string, 2)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- "other:" + r.Header.Get("Authorization")
	}))
	defer other.Close()
	// other's URL uses 127.0.0.1; reach the API through "localhost" so the
	// two hosts differ by name.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- "api:" + r.Header.Get("Authorization")
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	defer api.Close()
	apiURL := strings.Replace(api.URL, "127.0.0.1", "localhost", 1)

	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: api.Client().Transport}, tok1)
	resp, err := tr.Client().Get(apiURL + "/start")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "api:Bearer access-0", <-got)
	assert.Equal(t, "other:", <-got, "the token must not follow the redirect to another host")
}

func TestCloseIdleConnectionsIsForwarded(t *testing.T) {
	base := &fakeBase{respond: status(200)}
	ref := &closeCountingRefresher{}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
	tr.Client().CloseIdleConnections()
	assert.Equal(t, 1, base.closes())
	assert.Equal(t, 1, ref.n)
}

type closeCountingRefresher struct {
	countingRefresher
	n int
}

func (c *closeCountingRefresher) CloseIdleConnections() { c.n++ }

func TestSetTokenValidates(t *testing.T) {
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}}, nil)
	assert.Error(t, tr.SetToken(context.Background(), nil))
	assert.Error(t, tr.SetToken(context.Background(), &oauth2.Token{TokenType: "Bearer"}), "neither an access nor a refresh token")
}

func TestTokenSource(t *testing.T) {
	st := store.NewMemory(tok1)
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Store: st}, nil)
	tok, err := tr.TokenSource(context.Background()).Token()
	require.NoError(t, err)
	assert.Equal(t, "access-0", tok.AccessToken)
	tok.AccessToken = "changed"
	again, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "access-0", again.AccessToken, "Token returns a copy")
}

// stalledBody is a response body that sends a little and then stalls
// until it is closed, as a slow or hostile server's would.
type stalledBody struct {
	sent   bool
	closed chan struct{}
	once   sync.Once
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "partial"), nil
	}
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *stalledBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// TestStalledRejectionBody: the retry does not wait for a 401 body that
// stops arriving; the body is closed instead.
func TestStalledRejectionBody(t *testing.T) {
	body := &stalledBody{closed: make(chan struct{})}
	var calls atomic.Int32
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			return &http.Response{StatusCode: 401, Header: http.Header{}, Body: body}, nil
		}
		return answer(200), nil
	}}
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)
	code, err := get(t, tr)
	require.NoError(t, err)
	assert.Equal(t, 200, code)
	select {
	case <-body.closed:
	default:
		t.Error("the stalled body was not closed")
	}
}

// TestConcurrentCloseIdleConnections: a second CloseIdleConnections while
// one is under way still reaches the base.
func TestConcurrentCloseIdleConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	base := &fakeBase{respond: status(200), onIdleClose: func(n int) {
		if n == 1 { // the first call blocks until released
			close(entered)
			<-release
		}
	}}
	tr := newTransport(t, bearer.Config{Refresher: &closeCountingRefresher{}, Base: base}, tok1)
	first := make(chan struct{})
	go func() {
		defer close(first)
		tr.CloseIdleConnections()
	}()
	<-entered
	tr.CloseIdleConnections()
	assert.Equal(t, 2, base.closes(), "the second call reached the base")
	close(release)
	<-first
}
