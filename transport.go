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
	flights singleflight.Group

	attempts int                             // refresher calls per shared refresh
	backoff  func(attempt int) time.Duration // wait after a transient failure
	sleep    func(ctx context.Context, d time.Duration) error

	closing atomic.Bool // in CloseIdleConnections, which may come back through a refresher's client
}

// state is one immutable snapshot of the token; requests read it lock-free.
type state struct {
	tok       *oauth2.Token // nil: no token yet, or logged out
	gen       uint64        // increases with every new state
	auth      string        // the Authorization value, built once
	refreshAt time.Time     // zero: never refresh before sending
	loggedOut error         // non-nil: requests fail fast with it
	holdUntil atomic.Int64  // unix nanos: after a failed early refresh, send without refreshing until then
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
	t.locker, _ = cfg.Store.(store.Locker)
	return t, nil
}

// RoundTrip sends req with the current access token, refreshing it first if
// it expires within the leeway, and once more after a 401. See the package
// documentation for when it returns a refresh error instead of a response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.mayCarry(req) {
		return t.cfg.Base.RoundTrip(req)
	}
	s, err := t.current(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.cfg.Base.RoundTrip(authorize(req, s))
	if err != nil || !t.cfg.ShouldRefresh(resp) {
		return resp, err
	}
	return t.retry(req, s, resp)
}

// retry handles a rejected token: it gets a newer one (refreshing if no
// newer one exists) and sends the request once more, if its body can be
// replayed. Otherwise it returns the rejection, after the refresh.
func (t *Transport) retry(req *http.Request, used *state, resp *http.Response) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if replayable {
		discard(resp)
	}
	s, err := t.renew(req.Context(), used)
	if err != nil {
		if !replayable {
			discard(resp)
		}
		return nil, err
	}
	if !replayable {
		return resp, nil
	}
	again := authorize(req, s)
	if req.Body != nil && req.Body != http.NoBody { // replayable: GetBody is set
		if again.Body, err = req.GetBody(); err != nil {
			return nil, fmt.Errorf("bearer: replaying the request body: %w", err)
		}
	}
	if t.cfg.OnRetry != nil {
		t.cfg.OnRetry(req)
	}
	return t.cfg.Base.RoundTrip(again)
}

// current returns the state to send with: it reads the store on first use,
// fails fast when logged out, and refreshes a token that is due.
func (t *Transport) current(ctx context.Context) (*state, error) {
	s := t.cur.Load()
	if s == nil {
		var err error
		if s, err = t.load(ctx); err != nil {
			return nil, err
		}
	}
	switch {
	case s.loggedOut != nil:
		return nil, s.loggedOut
	case s.tok == nil:
		return t.refresh(ctx, s, ReasonNoToken)
	case s.refreshAt.IsZero():
		return s, nil
	}
	now := t.now()
	if now.Before(s.refreshAt) || now.UnixNano() < s.holdUntil.Load() {
		return s, nil
	}
	ns, err := t.refresh(ctx, s, ReasonExpiring)
	if err == nil {
		return ns, nil
	}
	var re *RefreshError
	if expiry := s.tok.Expiry; errors.As(err, &re) && !re.Permanent && now.Before(expiry) {
		// Still valid: use it, and give the token endpoint a moment before
		// the next early refresh.
		s.holdUntil.Store(now.Add(min(5*time.Second, expiry.Sub(now)/2)).UnixNano())
		return s, nil
	}
	return nil, err
}

// renew returns a token newer than used: the current one if another request
// already replaced it, else the result of the shared refresh.
func (t *Transport) renew(ctx context.Context, used *state) (*state, error) {
	if s := t.cur.Load(); s != nil && s.gen != used.gen {
		return usable(s)
	}
	return t.refresh(ctx, used, ReasonRejected)
}

// usable returns s if it has a token to send, else why not.
func usable(s *state) (*state, error) {
	switch {
	case s.loggedOut != nil:
		return nil, s.loggedOut
	case s.tok == nil:
		return nil, ErrNoToken
	}
	return s, nil
}

// load reads the store once, on first use, shared by concurrent callers.
func (t *Transport) load(ctx context.Context) (*state, error) {
	ch := t.flights.DoChan("load", func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RefreshTimeout)
		defer cancel()
		tok, err := t.cfg.Store.Load(lctx)
		if err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("bearer: reading the token store: %w", err)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if s := t.cur.Load(); s != nil {
			return s, nil // SetToken won the race
		}
		s := t.newState(tok, t.now())
		t.cur.Store(s)
		return s, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*state), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("bearer: waiting for the token store: %w", ctx.Err())
	}
}

// newState builds the state for tok, obtained (or loaded) at the given time.
// Its caller holds t.mu.
func (t *Transport) newState(tok *oauth2.Token, obtained time.Time) *state {
	t.gen++
	s := &state{tok: tok, gen: t.gen}
	if tok == nil {
		return s
	}
	s.auth = tok.Type() + " " + tok.AccessToken
	if tok.Expiry.IsZero() {
		return s
	}
	leeway := max(t.cfg.Leeway, 0)
	if life := tok.Expiry.Sub(obtained); leeway > life/2 {
		leeway = max(life/2, 0)
	}
	s.refreshAt = tok.Expiry.Add(-leeway)
	return s
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

// Token returns a copy of the current valid token, refreshing it first if it
// is due. It fails with an error wrapping [ErrLoggedOut] after a logout.
func (t *Transport) Token(ctx context.Context) (*oauth2.Token, error) {
	s, err := t.current(ctx)
	if err != nil {
		return nil, err
	}
	c := *s.tok
	return &c, nil
}

// TokenSource returns an [oauth2.TokenSource] backed by t, for code that
// wants an oauth2.TokenSource. Its Token method calls t.Token(ctx).
func (t *Transport) TokenSource(ctx context.Context) oauth2.TokenSource {
	return tokenSource{t: t, ctx: ctx}
}

type tokenSource struct {
	t   *Transport
	ctx context.Context
}

func (ts tokenSource) Token() (*oauth2.Token, error) { return ts.t.Token(ts.ctx) }

// SetToken logs in with tok: it saves it to the store and makes it the
// current token, ending a logged-out state.
func (t *Transport) SetToken(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("bearer: SetToken: the token has no access token")
	}
	c := *tok
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.cfg.Store.Save(ctx, &c); err != nil {
		return fmt.Errorf("bearer: SetToken: saving the token: %w", err)
	}
	t.cur.Store(t.newState(&c, t.now()))
	return nil
}

// Logout clears the store and enters the logged-out state: requests fail
// with an error wrapping [ErrLoggedOut] until [Transport.SetToken]. It does
// not call Config.OnLogout.
func (t *Transport) Logout(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.newState(nil, t.now())
	s.loggedOut = fmt.Errorf("%w (Logout was called)", ErrLoggedOut)
	t.cur.Store(s)
	if err := t.cfg.Store.Clear(ctx); err != nil {
		return fmt.Errorf("bearer: Logout: clearing the store: %w", err)
	}
	return nil
}

// CloseIdleConnections closes the idle connections of the base transport
// and, if it has any, of the refresher. [http.Client.CloseIdleConnections]
// relies on it.
func (t *Transport) CloseIdleConnections() {
	if !t.closing.CompareAndSwap(false, true) {
		return // a refresher whose client is t itself called back
	}
	defer t.closing.Store(false)
	type closer interface{ CloseIdleConnections() }
	if c, ok := t.cfg.Base.(closer); ok {
		c.CloseIdleConnections()
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

// discard drains a little of a response body, so that the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
