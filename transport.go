package bearer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/seamlessauth/bearer/internal/resend"
	"github.com/seamlessauth/bearer/store"
)

// Transport is an [http.RoundTripper] that attaches the access token to
// requests, refreshes it before it expires and when the server rejects it,
// and retries a rejected request once with the new token. Create it with
// [New]. A Transport is safe for concurrent use by any number of goroutines.
type Transport struct {
	// What every request reads comes first, within one cache line, so that
	// a request for a Pool's identity that is out of the cache misses one
	// line of its Transport; the Config is the one its identities share.
	cfg   *Config // read-only; shared by the Transports of a Pool
	hosts *hostSet
	now   func() time.Time
	cur   atomic.Pointer[state] // nil until the store has been read
	dpop  http.RoundTripper     // Base with DPoP proofs, for bound tokens; nil without Config.DPoP

	store    store.Store                          // cfg.Store, or a Pool identity's; see locker
	onLogout func(ctx context.Context, err error) // cfg.OnLogout, or a Pool's told the identity
	// tokenClient sends token requests when the context names no client.
	tokenClient *http.Client

	mu   sync.Mutex // serialises installing a new state
	gen  uint64     // guarded by mu
	past pastTokens // guarded by mu
	// hookDone is the ended channel of the last logout a refresh made,
	// closed once its OnLogout has returned; nil before one. Guarded by mu.
	hookDone chan struct{}
	flights  singleflight.Group
	bg       sync.WaitGroup // background refreshes under way
	// refreshing counts the shared refreshes under way, from before
	// OnRefreshStart to before OnRefresh, by when the new token is saved.
	refreshing atomic.Int32

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
		cfg:         &cfg,
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
	if cfg.DPoP != nil {
		t.dpop = cfg.DPoP.Transport(cfg.Base)
		t.tokenClient = cfg.DPoP.Client(t.tokenClient)
	}
	t.store, t.onLogout = cfg.Store, cfg.OnLogout
	return t, nil
}

// sibling returns a new Transport that shares t's Config, hosts and token
// client, with st as its store: a Pool's identity.
func (t *Transport) sibling(st store.Store) *Transport {
	return &Transport{
		cfg:         t.cfg,
		hosts:       t.hosts,
		tokenClient: t.tokenClient,
		dpop:        t.dpop,
		now:         t.now,
		store:       st,
		onLogout:    t.onLogout,
		attempts:    t.attempts,
		backoff:     t.backoff,
		sleep:       t.sleep,
	}
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
	resp, err := t.send(authorize(req, s), s)
	if err != nil || !t.cfg.ShouldRefresh(resp) {
		return resp, err
	}
	if !resend.Replayable(req) {
		return t.renewOnly(req, s, resp)
	}
	return t.retry(req, s, resp)
}

// retry sends req again with a token newer than the rejected one. If that
// token was adopted from the store and is rejected too, it refreshes for
// real and sends once more: at most two sends after the first.
func (t *Transport) retry(req *http.Request, used *state, resp *http.Response) (*http.Response, error) {
	for sends := 1; ; sends++ {
		resend.Discard(resp)
		s, err := t.newer(req.Context(), used)
		if err != nil {
			return nil, err
		}
		again := authorize(req, s)
		if again.Body, err = resend.Body(req); err != nil { // replayable: GetBody is set
			return nil, fmt.Errorf("bearer: replaying request body: %w", err)
		}
		if t.cfg.OnRetry != nil {
			t.hook(req.Context(), "OnRetry", func() { t.cfg.OnRetry(req) })
		}
		resp, err = t.send(again, s)
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
		resend.Discard(resp)
		return nil, err
	}
	return resp, nil
}

// send sends req, which carries s's token, as the token's type wants: a
// DPoP-bound one with a new proof, or not at all without a key.
func (t *Transport) send(req *http.Request, s *state) (*http.Response, error) {
	if !s.dpop {
		return t.cfg.Base.RoundTrip(req)
	}
	if t.dpop == nil {
		closeBody(req)
		return nil, errNoDPoPKey
	}
	return t.dpop.RoundTrip(req)
}

// errNoDPoPKey is the error for a DPoP-bound token without a key to prove
// its possession: sending it as a Bearer token would not work, and would
// show it to a server that may not know what binding means.
var errNoDPoPKey = errors.New("bearer: the token is DPoP-bound (token_type DPoP) and Config.DPoP has no key to prove it")

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
// If the Config.OnLogout of a session that a refresh ended has not returned
// yet (the refresh failed while SetToken waited for the lock, say), it
// returns once the hook has, so that the old session's end is not heard of
// after the new login; it waits no longer than ctx and Config.RefreshTimeout
// allow, and not at all when called from OnLogout with the hook's ctx. Do
// not call it holding a lock that OnLogout takes.
func (t *Transport) SetToken(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return errors.New("bearer: SetToken: the token has neither an access nor a refresh token")
	}
	hookDone, err := t.setToken(ctx, tok)
	if err == nil && hookDone != nil && !t.inRefresh(ctx) {
		t.awaitOnLogout(ctx, hookDone) // the login stands whatever the wait
	}
	return err
}

// awaitOnLogout waits until hookDone is closed (the OnLogout of a refresh's
// logout has returned), ctx has ended or Config.RefreshTimeout has passed.
// The last is a hook that never returns, or one that calls SetToken
// without its ctx and so waits for itself: it is logged.
func (t *Transport) awaitOnLogout(ctx context.Context, hookDone chan struct{}) {
	select {
	case <-hookDone:
		return
	default:
	}
	timer := time.NewTimer(t.cfg.RefreshTimeout)
	defer timer.Stop()
	select {
	case <-hookDone:
	case <-ctx.Done():
	case <-timer.C:
		t.log(ctx, slog.LevelWarn, "bearer: SetToken stopped waiting for the OnLogout of the session it replaced; a call from OnLogout should pass the hook's ctx")
	}
}

// setToken saves and installs a copy of tok. It returns the channel of the
// last logout that a refresh made, whose OnLogout may still be running.
func (t *Transport) setToken(ctx context.Context, tok *oauth2.Token) (hookDone chan struct{}, err error) {
	c := *tok
	if t.locker() != nil {
		unlock, err := t.lockStore(ctx)
		if err != nil {
			return nil, fmt.Errorf("bearer: SetToken: locking token store: %w", err)
		}
		defer unlock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.protect(ctx, "store Save", func() error { return t.store.Save(ctx, &c) }, &c); err != nil {
		return nil, fmt.Errorf("bearer: SetToken: saving token: %w", err)
	}
	s := t.newState(&c, t.now(), false)
	s.inStore = &c
	if old := t.cur.Load(); old != nil {
		t.past.add(old.tok, s.tok)
	}
	t.cur.Store(s)
	return t.hookDone, nil
}

// Logout enters the logged-out state, in which requests fail with an error
// wrapping [ErrLoggedOut] until [Transport.SetToken], and clears the store,
// holding its lock if it has one. Other holders of the store end their
// session at their next refresh. Logout does not call Config.OnLogout.
//
// Then, when Config.Refresher is a [Revoker] (an [OAuth2Refresher] with a
// RevocationURL, for one), Logout revokes the token at the server: the pair
// the store held, read under its lock before it was cleared, if another
// holder refreshed it or the Transport had not read it yet, else the
// Transport's own. The revocation runs after the store lock is released,
// with the values of ctx but not its cancellation, under
// Config.RefreshTimeout, as a refresh does: a logout is not left half done
// because the caller's request ended. Its failure is returned as a
// [*RevocationError]: logged out here, not at the server. Any other error
// means that the local logout failed: the Transport is logged out, but the
// store may still hold the token and nothing was revoked; calling Logout
// again clears and revokes what the store holds.
func (t *Transport) Logout(ctx context.Context) error {
	t.mu.Lock()
	s := t.newState(nil, t.now(), false)
	s.loggedOut = fmt.Errorf("%w (Logout was called)", ErrLoggedOut)
	var held *oauth2.Token
	if old := t.cur.Swap(s); old != nil {
		held = old.tok
		t.past.add(old.tok, nil)
	}
	t.mu.Unlock()
	ended, err := t.clearForLogout(ctx, s, held)
	if err != nil || ended == nil {
		return err
	}
	return t.revoke(ctx, ended)
}

// clearForLogout clears the store for the Logout that made s current,
// under the store lock if there is one, and returns the token to revoke
// (see loggedOutToken): nil if a SetToken came after this Logout, whose
// login stands.
func (t *Transport) clearForLogout(ctx context.Context, s *state, held *oauth2.Token) (*oauth2.Token, error) {
	if t.locker() != nil {
		unlock, err := t.lockStore(ctx)
		if err != nil {
			return nil, fmt.Errorf("bearer: Logout: locking token store: %w", err)
		}
		defer unlock()
		if t.cur.Load() != s {
			return nil, nil // a SetToken came after this Logout: its login stands
		}
	}
	ended := t.loggedOutToken(ctx, held)
	if err := t.protect(ctx, "store Clear", func() error { return t.store.Clear(ctx) }); err != nil {
		return nil, fmt.Errorf("bearer: Logout: clearing token store: %w", err)
	}
	return ended, nil
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
