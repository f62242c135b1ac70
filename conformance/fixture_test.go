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

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// provider is one third-party server under test.
type provider struct {
	short   string // the subtest's name
	name    string // the Go module
	version string // as in go.mod
	// start runs a fresh server whose access tokens live accessTTL, logs a
	// client in and returns the fixture.
	start func(t *testing.T, accessTTL time.Duration) *fixture
	// unsupported maps a scenario the server cannot run to the reason.
	unsupported map[string]string
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

	// adjust corrects a token as a client of this server must (nil: as is).
	adjust func(*oauth2.Token) *oauth2.Token

	// Server-side controls. A nil one is something the server cannot do.
	revokeAccess  func(t *testing.T, tok *oauth2.Token) // the access token only
	revokeRefresh func(t *testing.T, tok *oauth2.Token) // the refresh token, so that refreshing fails
	expireAccess  func(t *testing.T)                    // every access token issued so far
	rotates       bool                                  // each refresh returns a new refresh token
}

// loopbackClient returns a client on its own transport, whose idle
// connections are closed when the test ends.
func loopbackClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// refresher is bearer.OAuth2(cfg), sending its token requests through the
// fixture's loopback client (the x/oauth2 way: the context's HTTPClient)
// and applying the server's adjustment to what it returns.
func (f *fixture) refresher(cfg *oauth2.Config) bearer.Refresher {
	r := bearer.OAuth2(cfg)
	return bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		tok, err := r.Refresh(context.WithValue(ctx, oauth2.HTTPClient, f.hc), cur)
		if err == nil && f.adjust != nil {
			tok = f.adjust(tok)
		}
		return tok, err
	})
}

// directRefresh asks the token endpoint for a refresh with rt, outside any
// Transport, to see what the server thinks of rt.
func (f *fixture) directRefresh(t *testing.T, rt string) (*oauth2.Token, error) {
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, f.hc)
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
}

// newClient builds a Transport on bearer.OAuth2 and logs it in with the
// fixture's token.
func (f *fixture) newClient(t *testing.T, opts clientOptions) *client {
	t.Helper()
	cfg := opts.cfg
	if cfg == nil {
		cfg = f.cfg
	}
	c := &client{}
	tr, err := bearer.New(bearer.Config{
		Refresher: f.refresher(cfg),
		Store:     opts.store,
		Base:      f.hc.Transport,
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
	if opts.store == nil || !stored(t, opts.store) {
		require.NoError(t, tr.SetToken(t.Context(), f.login))
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.api.url(), nil)
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
