package conformance

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/dpop"
	"github.com/seamlessauth/bearer/store"
)

// provider is one third-party server under test.
type provider struct {
	short   string // the subtest's name
	name    string // the Go module, or the npm package
	version string // as pinned
	pinned  string // the file that pins the version: go.mod when empty, or a package-lock.json
	// start runs a fresh server whose access tokens live accessTTL, logs a
	// client in and returns the fixture.
	start func(t *testing.T, accessTTL time.Duration) *fixture
	// unsupported maps a scenario the server cannot run to the reason.
	unsupported map[string]string
	// noDPoP says why the server cannot run the dpop- scenarios; empty: it
	// can.
	noDPoP string
}

// fixture is a running server with a client logged in to it through the
// authorization-code flow, and a protected resource that validates tokens
// against that server.
type fixture struct {
	meta   metadata       // the server's discovery document
	cfg    *oauth2.Config // the registered client
	login  *oauth2.Token  // what the login gave
	hc     *http.Client   // loopback client for everything: token endpoint, API
	api    *resource
	grants *grantCounter

	// service is a confidential client for the client credentials grant
	// (nil: not wired for this server).
	service *clientcredentials.Config

	// DPoP (nil: the server has none). dpopLogin logs in again with the
	// code exchanged under the key's proofs; userinfo is the server's own
	// DPoP-protected resource, counted in front of the server.
	dpopLogin func(t *testing.T, key *dpop.Key) *oauth2.Token
	userinfo  *statusCounter

	// introspect asks the server whether a token is active, as the
	// resource server does (nil: the server has no introspection);
	// introspectsRefresh says that it knows refresh tokens too.
	introspect         validator
	introspectsRefresh bool

	// adjust corrects a token as a client of this server must (nil: as is).
	adjust func(*oauth2.Token) *oauth2.Token

	// Server-side controls. A nil one is something the server cannot do.
	revokeAccess  func(t *testing.T, tok *oauth2.Token) // the access token only
	revokeRefresh func(t *testing.T, tok *oauth2.Token) // the refresh token, so that refreshing fails
	expireAccess  func(t *testing.T)                    // every access token issued so far
	expireBy      func(t *testing.T, ago time.Duration) // as expireAccess, their expiry ago in the past (oidc-provider)
	rotates       bool                                  // each refresh returns a new refresh token
	// reuseDetection: a rotated-away refresh token, used again, revokes
	// the whole lineage (RFC 9700 §4.14.2).
	reuseDetection bool
}

// loopbackClient returns a client on its own transport, whose idle
// connections are closed when the test ends.
func loopbackClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// refresher is bearer.OAuth2(cfg) with the server's adjustment applied to
// what it returns. Its token requests go through the Transport's
// TokenClient, the fixture's loopback client (see newClient).
func (f *fixture) refresher(cfg *oauth2.Config) bearer.Refresher {
	r := bearer.OAuth2(cfg)
	return bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		tok, err := r.Refresh(ctx, cur)
		if err == nil && f.adjust != nil {
			tok = f.adjust(tok)
		}
		return tok, err
	})
}

// clientCredentials is bearer.FromTokenSource over the fixture's
// confidential client.
func (f *fixture) clientCredentials() bearer.Refresher {
	return bearer.FromTokenSource(f.service.TokenSource)
}

// directRefresh asks the token endpoint for a refresh with rt, outside any
// Transport, to see what the server thinks of rt.
func (f *fixture) directRefresh(t *testing.T, rt string) (*oauth2.Token, error) {
	return f.directRefreshVia(t, f.hc, rt)
}

// directRefreshVia is directRefresh through hc, such as a dpop.Key's client
// for a bound refresh token.
func (f *fixture) directRefreshVia(t *testing.T, hc *http.Client, rt string) (*oauth2.Token, error) {
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, hc)
	return f.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

// client is a bearer.Transport under test with what its hooks saw.
type client struct {
	tr *bearer.Transport

	mu        sync.Mutex
	reasons   []bearer.Reason // one per shared refresh that started
	logouts   atomic.Int32
	logoutErr error
}

// options of a client; the zero value is the default.
type clientOptions struct {
	cfg   *oauth2.Config // nil: the fixture's
	store store.Store    // nil: in-memory
	// refresher, when set, replaces bearer.OAuth2 over cfg, and the client
	// starts with no token instead of the login's.
	refresher bearer.Refresher
	dpop      *dpop.Key     // Config.DPoP
	login     *oauth2.Token // nil: the fixture's
	// revoke makes the refresher an OAuth2Refresher that revokes at the
	// server's revocation endpoint, so that Logout ends the session there.
	revoke bool
}

// revocable is the fixture's refresher with an OAuth2Refresher's Revoke.
type revocable struct {
	bearer.Refresher
	revoker *bearer.OAuth2Refresher
}

func (r revocable) Revoke(ctx context.Context, tok *oauth2.Token) error {
	return r.revoker.Revoke(ctx, tok)
}

// newClient builds a Transport on bearer.OAuth2 and logs it in with the
// fixture's token, or on opts.refresher with no token.
func (f *fixture) newClient(t *testing.T, opts clientOptions) *client {
	t.Helper()
	cfg := opts.cfg
	if cfg == nil {
		cfg = f.cfg
	}
	refresher := opts.refresher
	if refresher == nil {
		refresher = f.refresher(cfg)
	}
	if opts.revoke {
		refresher = revocable{refresher, &bearer.OAuth2Refresher{Config: cfg, RevocationURL: f.meta.Revocation}}
	}
	c := &client{}
	tr, err := bearer.New(bearer.Config{
		Refresher: refresher,
		Store:     opts.store,
		Base:      f.hc.Transport,
		// Token requests go through the loopback client, with the key's
		// proofs when there is a key.
		TokenClient: f.hc,
		DPoP:        opts.dpop,
		OnLogout: func(_ context.Context, err error) {
			c.mu.Lock()
			c.logoutErr = err
			c.mu.Unlock()
			c.logouts.Add(1)
		},
		OnRefreshStart: func(ctx context.Context, reason bearer.Reason) context.Context {
			c.mu.Lock()
			c.reasons = append(c.reasons, reason)
			c.mu.Unlock()
			return ctx
		},
	})
	require.NoError(t, err)
	if opts.refresher == nil && (opts.store == nil || !stored(t, opts.store)) {
		tok := opts.login
		if tok == nil {
			tok = f.login
		}
		require.NoError(t, tr.SetToken(t.Context(), tok))
	}
	c.tr = tr
	return c
}

func stored(t *testing.T, s store.Store) bool {
	_, err := s.Load(t.Context())
	return err == nil
}

// refreshReasons returns why each shared refresh started, in order.
func (c *client) refreshReasons() []bearer.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bearer.Reason(nil), c.reasons...)
}

func (c *client) lastLogoutErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logoutErr
}

// get calls the protected resource through the Transport and returns the
// status, or the error of RoundTrip.
func (c *client) get(ctx context.Context, f *fixture) (int, error) {
	return c.call(ctx, f.api.url())
}

// call is get with another URL.
func (c *client) call(ctx context.Context, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// result is what one of many concurrent calls got.
type result struct {
	status int
	err    error
}

// together makes n calls at once through the clients, round robin, released
// by one signal, and returns what each got. It is bounded: each call has the
// test's context and the loopback client's timeout.
func together(t *testing.T, f *fixture, n int, clients ...*client) []result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := make(chan struct{})
	results := make(chan result, n)
	for i := range n {
		c := clients[i%len(clients)]
		go func() {
			<-start
			status, err := c.get(ctx, f)
			results <- result{status, err}
		}()
	}
	close(start)
	out := make([]result, 0, n)
	for range n {
		out = append(out, <-results)
	}
	return out
}

// allSucceed sends n calls at once through the clients, as together
// does, and checks that every one got a 200.
func allSucceed(t *testing.T, f *fixture, n int, clients ...*client) {
	t.Helper()
	for i, r := range together(t, f, n, clients...) {
		if assert.NoError(t, r.err, "call %d", i) {
			assert.Equal(t, http.StatusOK, r.status, "call %d", i)
		}
	}
}

// assertNoTokenIn checks that err's message leaks none of the tokens.
func assertNoTokenIn(t *testing.T, err error, toks ...*oauth2.Token) {
	t.Helper()
	if err == nil {
		return
	}
	for _, tok := range toks {
		for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
			if secret != "" {
				assert.NotContains(t, err.Error(), secret, "a token in an error message")
			}
		}
	}
}

// refreshError returns err as a *bearer.RefreshError, failing the test if it
// is not one.
func refreshError(t *testing.T, err error) *bearer.RefreshError {
	t.Helper()
	var re *bearer.RefreshError
	require.True(t, errors.As(err, &re), "want a *bearer.RefreshError, got %v", err)
	return re
}
