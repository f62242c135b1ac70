package bearer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/seamlessauth/bearer/store"
)

// Transport is an [http.RoundTripper] that attaches the access token to
// requests, refreshes it before it expires and when the server rejects it,
// and retries a rejected request once with the new token. Create it with
// [New]. A Transport is safe for concurrent use by any number of goroutines.
type Transport struct {
	cfg    Config
	hosts  *hostSet
	locker store.Locker // cfg.Store as a Locker, or nil
	// tokenClient sends token requests when the context names no client.
	tokenClient *http.Client
	now         func() time.Time

	cur     atomic.Pointer[state] // nil until the store has been read
	mu      sync.Mutex            // serialises installing a new state
	gen     uint64                // guarded by mu
	past    pastTokens            // guarded by mu
	flights singleflight.Group
	bg      sync.WaitGroup // background refreshes under way

	attempts int                             // refresher calls per shared refresh
	backoff  func(attempt int) time.Duration // wait after a transient failure
	sleep    func(ctx context.Context, d time.Duration) error

	closing atomic.Bool // closing the refresher's connections, which may come back through t
}

// New returns a Transport for cfg. It checks cfg once; it does not read the
// store or refresh: that happens on the first request.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:         cfg,
		hosts:       newHostSet(cfg.Hosts),
		tokenClient: newTokenClient(cfg.Base),
		now:         time.Now,
		attempts:    3,
		backoff:     defaultBackoff,
		sleep:       sleep,
	}
	if cfg.TokenClient != nil {
		t.tokenClient = withinOrigin(cfg.TokenClient)
	}
	t.locker, _ = cfg.Store.(store.Locker)
	return t, nil
}

// RoundTrip sends req with the current access token, and once more with a
// newer one if the server rejects it. See the package documentation for when
// a request waits for a refresh, and for when it returns a refresh error
// instead of a response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.mayCarry(req) {
		return t.cfg.Base.RoundTrip(req)
	}
	s, err := t.tokenFor(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.cfg.Base.RoundTrip(authorize(req, s))
	if err != nil || !t.cfg.ShouldRefresh(resp) {
		return resp, err
	}
	if !replayable(req) {
		return t.renewOnly(req, s, resp)
	}
	return t.retry(req, s, resp)
}

// retry sends req again with a token newer than the rejected one. If that
// token was adopted from the store and is rejected too, it refreshes for
// real and sends once more: at most two sends after the first.
func (t *Transport) retry(req *http.Request, used *state, resp *http.Response) (*http.Response, error) {
	for sends := 1; ; sends++ {
		discard(resp)
		s, err := t.newer(req.Context(), used)
		if err != nil {
			return nil, err
		}
		again := authorize(req, s)
		if req.Body != nil && req.Body != http.NoBody { // replayable: GetBody is set
			if again.Body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("bearer: replaying request body: %w", err)
			}
		}
		if t.cfg.OnRetry != nil {
			t.hook(req.Context(), "OnRetry", func() { t.cfg.OnRetry(req) })
		}
		resp, err = t.cfg.Base.RoundTrip(again)
		if err != nil || sends == 2 || !s.adopted || !t.cfg.ShouldRefresh(resp) {
			return resp, err
		}
		used = s
	}
}

// renewOnly handles the rejection of a request whose body cannot be sent
// again: the refresh happens, so that the next request works, and the
// rejection is returned unread.
func (t *Transport) renewOnly(req *http.Request, used *state, resp *http.Response) (*http.Response, error) {
	if _, err := t.newer(req.Context(), used); err != nil {
		discard(resp)
		return nil, err
	}
	return resp, nil
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// authorize returns a shallow copy of req that carries the token. The
// caller's request and header map are left as they were.
func authorize(req *http.Request, s *state) *http.Request {
	r := new(http.Request)
	*r = *req
	r.Header = cloneWithAuth(req.Header, s.auth)
	return r
}

// cloneWithAuth is h.Clone() plus the Authorization value, in one map and
// one backing array for all the values: this runs on every request.
func cloneWithAuth(h http.Header, auth string) http.Header {
	n := 1
	for _, vv := range h {
		n += len(vv)
	}
	values := make([]string, n)
	c := make(http.Header, len(h)+1)
	for k, vv := range h {
		if vv == nil {
			c[k] = nil // as Clone keeps a nil value
			continue
		}
		m := copy(values, vv)
		c[k] = values[:m:m]
		values = values[m:]
	}
	values[0] = auth
	c["Authorization"] = values[:1:1]
	return c
}

// Client returns an *http.Client that sends its requests through t.
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t}
}

// Token returns a copy of the current valid token. Like a request, it
// waits for a refresh only when the token must be waited for (see the
// package documentation); it never returns a token without an access token.
// It fails with an error wrapping [ErrLoggedOut] after a logout.
func (t *Transport) Token(ctx context.Context) (*oauth2.Token, error) {
	s, err := t.tokenFor(ctx)
	if err != nil {
		return nil, err
	}
	c := *s.tok
	return &c, nil
}

// TokenSource returns an [oauth2.TokenSource] backed by t, for code that
// wants an oauth2.TokenSource (a gRPC credential, a cloud SDK). Its Token
// method calls t.Token(ctx).
//
// Do not hand it to [oauth2.NewClient] or wrap it in an [oauth2.Transport]
// to send requests: x/oauth2 then sets the Authorization header itself, and
// whatever t sits under passes the request through untouched, so nothing of
// what t does happens: no refresh on a 401, no [ErrLoggedOut], no host
// check on redirects. Send requests with [Transport.Client], or give t to
// the other library as its transport (go-retryablehttp, resty, a generated
// client); see the README's recipes.
func (t *Transport) TokenSource(ctx context.Context) oauth2.TokenSource {
	return tokenSource{t: t, ctx: ctx}
}

type tokenSource struct {
	t   *Transport
	ctx context.Context
}

func (ts tokenSource) Token() (*oauth2.Token, error) { return ts.t.Token(ts.ctx) }

// SetToken logs in with tok: it saves it to the store and makes it the
// current token, ending a logged-out state. tok needs an access token, a
// refresh token or both; a token with only a refresh token is refreshed
// before the first request. With a store that is a [store.Locker], SetToken
// holds its lock, so that no refresh of another holder overwrites the login.
func (t *Transport) SetToken(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return errors.New("bearer: SetToken: the token has neither an access nor a refresh token")
	}
	c := *tok
	if t.locker != nil {
		unlock, err := t.lockStore(ctx)
		if err != nil {
			return fmt.Errorf("bearer: SetToken: locking token store: %w", err)
		}
		defer unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.protect(ctx, "store Save", func() error { return t.cfg.Store.Save(ctx, &c) }, &c); err != nil {
		return fmt.Errorf("bearer: SetToken: saving token: %w", err)
	}
	s := t.newState(&c, t.now(), false)
	s.inStore = &c
	if old := t.cur.Load(); old != nil {
		t.past.add(old.tok, s.tok)
	}
	t.cur.Store(s)
	return nil
}

// Logout enters the logged-out state, in which requests fail with an error
// wrapping [ErrLoggedOut] until [Transport.SetToken], and clears the store,
// holding its lock if it has one. Other holders of the store end their
// session at their next refresh. Logout does not call Config.OnLogout.
func (t *Transport) Logout(ctx context.Context) error {
	t.mu.Lock()
	s := t.newState(nil, t.now(), false)
	s.loggedOut = fmt.Errorf("%w (Logout was called)", ErrLoggedOut)
	if old := t.cur.Swap(s); old != nil {
		t.past.add(old.tok, nil)
	}
	t.mu.Unlock()
	if t.locker != nil {
		unlock, err := t.lockStore(ctx)
		if err != nil {
			return fmt.Errorf("bearer: Logout: locking token store: %w", err)
		}
		defer unlock()
		if t.cur.Load() != s {
			return nil // a SetToken came after this Logout: its login stands
		}
	}
	if err := t.protect(ctx, "store Clear", func() error { return t.cfg.Store.Clear(ctx) }); err != nil {
		return fmt.Errorf("bearer: Logout: clearing token store: %w", err)
	}
	return nil
}

// CloseIdleConnections closes the idle connections of the base transport,
// of Config.TokenClient and, if it has any, of the refresher.
// [http.Client.CloseIdleConnections] relies on it. Every call reaches the
// base; the others are closed by one call at a time, which also ends a
// client that calls back into t.
func (t *Transport) CloseIdleConnections() {
	type closer interface{ CloseIdleConnections() }
	if c, ok := t.cfg.Base.(closer); ok {
		c.CloseIdleConnections()
	}
	if !t.closing.CompareAndSwap(false, true) {
		return
	}
	defer t.closing.Store(false)
	if t.cfg.TokenClient != nil {
		t.cfg.TokenClient.CloseIdleConnections()
	}
	if c, ok := t.cfg.Refresher.(closer); ok {
		c.CloseIdleConnections()
	}
}

// String describes t without its token.
func (t *Transport) String() string { return "bearer.Transport" }

// GoString is String, so that %#v prints no token and reads no state that
// another goroutine may be changing.
func (t *Transport) GoString() string { return t.String() }

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// drainTimeout bounds how long a rejected response's body is drained before
// the retry: a body that does not arrive by then is closed unread.
const drainTimeout = 50 * time.Millisecond

// discard drains what arrives quickly of a response body, so that the
// connection can be reused, and closes it, exactly once.
func discard(resp *http.Response) {
	var once sync.Once
	closeIt := func() { once.Do(func() { resp.Body.Close() }) }
	timer := time.AfterFunc(drainTimeout, closeIt) // ends a Read that stalls
	io.CopyN(io.Discard, resp.Body, 64<<10)
	timer.Stop()
	closeIt()
}
