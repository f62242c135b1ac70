package bearer_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// tokenRefresherKinds are the refreshers of this package, and a custom one
// that uses the client the Transport puts in the refresh context, each
// built for a token endpoint at tokenURL whose requests base answers.
var tokenRefresherKinds = []struct {
	name string
	make func(tokenURL string, base http.RoundTripper) bearer.Refresher
}{
	{"OAuth2", func(u string, _ http.RoundTripper) bearer.Refresher {
		return bearer.OAuth2(&oauth2.Config{ClientID: "client", ClientSecret: "client-secret-value",
			Endpoint: oauth2.Endpoint{TokenURL: u, AuthStyle: oauth2.AuthStyleInParams}})
	}},
	{"FromTokenSource", func(u string, _ http.RoundTripper) bearer.Refresher {
		cc := &clientcredentials.Config{ClientID: "client", ClientSecret: "client-secret-value", TokenURL: u,
			AuthStyle: oauth2.AuthStyleInParams}
		return bearer.FromTokenSource(cc.TokenSource)
	}},
	{"Endpoint", func(u string, _ http.RoundTripper) bearer.Refresher { return &bearer.Endpoint{URL: u} }},
	{"Endpoint with its own client", func(u string, base http.RoundTripper) bearer.Refresher {
		return &bearer.Endpoint{URL: u, HTTPClient: &http.Client{Transport: base}}
	}},
	{"custom, with the context's client", func(u string, _ http.RoundTripper) bearer.Refresher {
		return bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("refresh_token="+cur.RefreshToken))
			if err != nil {
				return nil, err
			}
			resp, err := ctx.Value(oauth2.HTTPClient).(*http.Client).Do(req)
			if err != nil {
				return nil, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return &oauth2.Token{AccessToken: "custom-new"}, nil
		})
	}},
}

// TestTokenRequestsStayInTheirOrigin: a token endpoint that redirects a
// token request (with 307 or 308, which replay its body: the refresh token
// and the client secret) to another host, another port or plain http is
// not followed, whatever the refresher; a redirect within the origin is.
func TestTokenRequestsStayInTheirOrigin(t *testing.T) {
	const tokenURL = "https://auth.example.com/token"
	targets := []struct {
		name, location string
		wantFollowed   bool
	}{
		{name: "another host", location: "https://evil.example.net/token"},
		{name: "another port", location: "https://auth.example.com:8443/token"},
		{name: "plain http", location: "http://auth.example.com/token"},
		{name: "the same origin", location: "https://auth.example.com/token2", wantFollowed: true},
	}
	for _, kind := range tokenRefresherKinds {
		for _, target := range targets {
			for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
				t.Run(kind.name+"/"+target.name+"/"+http.StatusText(code), func(t *testing.T) {
					base := &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
						if req.URL.String() == tokenURL {
							resp := answer(code)
							resp.Header.Set("Location", target.location)
							return resp, nil
						}
						resp := answer(http.StatusOK)
						resp.Header.Set("Content-Type", "application/json")
						resp.Body = io.NopCloser(strings.NewReader(
							`{"access_token":"new","accessToken":"new","token_type":"Bearer","expires_in":3600}`))
						return resp, nil
					}}
					tr := newTransport(t, bearer.Config{Refresher: kind.make(tokenURL, base), Base: base},
						&oauth2.Token{AccessToken: "old", RefreshToken: "refresh-token-value", Expiry: time.Now().Add(-time.Minute)})
					bearer.SetRetry(tr, 1, nil)
					_, err := tr.Token(context.Background())
					var followed bool
					for _, s := range base.requests() {
						followed = followed || s.req.URL.String() == target.location
					}
					assert.Equal(t, target.wantFollowed, followed, "the redirect to %s was followed", target.location)
					if target.wantFollowed {
						assert.NoError(t, err)
					} else {
						assert.Error(t, err)
					}
				})
			}
		}
	}
}

// sentTo returns how many requests the base got for the given paths.
func sentTo(b *fakeBase, paths ...string) int {
	n := 0
	for _, s := range b.requests() {
		for _, p := range paths {
			if s.req.URL.Path == p {
				n++
			}
		}
	}
	return n
}

// TestTokenClient: with Config.TokenClient, every refresher's token requests
// go through it and none through Base (a retrying Base would multiply
// them); CloseIdleConnections reaches it too.
func TestTokenClient(t *testing.T) {
	for _, kind := range tokenRefresherKinds {
		if kind.name == "Endpoint with its own client" {
			continue // its own client comes first, by design
		}
		t.Run(kind.name, func(t *testing.T) {
			srv, _ := newServer(t, bearertest.Options{})
			loop := loopbackBase(t, 4)
			base := &fakeBase{next: loop}
			tokens := &fakeBase{next: loop}
			tokenURL := srv.TokenURL
			if strings.HasPrefix(kind.name, "Endpoint") {
				tokenURL = srv.RefreshURL
			}
			tr := newTransport(t, bearer.Config{
				Refresher:   kind.make(tokenURL, loop),
				Base:        base,
				TokenClient: &http.Client{Transport: tokens},
			}, &oauth2.Token{AccessToken: "not-known-to-the-server", RefreshToken: "rt"})
			resp, err := tr.Client().Get(srv.APIURL)
			if err == nil {
				resp.Body.Close()
			}
			assert.Zero(t, sentTo(base, "/token", "/refresh"), "no token request through Base")
			assert.Equal(t, 1, sentTo(tokens, "/token", "/refresh"), "the token request went through TokenClient")
			assert.GreaterOrEqual(t, sentTo(base, "/api"), 1)
			tr.CloseIdleConnections()
			assert.Equal(t, 1, tokens.closes())
		})
	}
}

// TestRefresherUsesTheTransportItself gives the refresher the Transport it
// serves as its HTTP client. The token request must go out without the
// access token, and a 401 from the token endpoint, even one with a Bearer
// challenge, must end the session at once: no loop, no deadlock until the
// refresh timeout, no goroutine left.
func TestRefresherUsesTheTransportItself(t *testing.T) {
	const timeout = 3 * time.Second
	bearerChallenge := bearertest.Fault{Status: http.StatusUnauthorized, Body: `{"error":"invalid_token"}`,
		Header: http.Header{"Content-Type": {"application/json"}, "Www-Authenticate": {`Bearer error="invalid_token"`}}}
	tests := []struct {
		name          string
		viaContext    bool // OAuth2 finds the client under oauth2.HTTPClient; else Endpoint's HTTPClient
		fault         *bearertest.Fault
		wantPermanent bool
	}{
		{name: "Endpoint, 401 from the token endpoint", fault: &bearerChallenge, wantPermanent: true},
		{name: "OAuth2, 401 from the token endpoint", viaContext: true, fault: &bearerChallenge, wantPermanent: true},
		{name: "Endpoint, the refresh works"},
		{name: "OAuth2, the refresh works", viaContext: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

			srv := bearertest.NewServer(bearertest.Options{})
			defer srv.Close()
			issued := srv.Issue()
			var mu sync.Mutex
			var withAuth []bool // per token request: did it carry an Authorization header?
			srv.OnToken(func(r *http.Request) {
				mu.Lock()
				withAuth = append(withAuth, r.Header.Get("Authorization") != "")
				mu.Unlock()
			})

			self := &http.Client{} // its Transport is set below: the Transport itself, by mistake
			var ref bearer.Refresher
			if tt.viaContext {
				cfg := srv.Config()
				cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams // nothing else in the Authorization header
				ref = bearer.OAuth2(cfg)
			} else {
				ref = &bearer.Endpoint{URL: srv.RefreshURL, HTTPClient: self}
			}
			var logouts atomic.Int32
			tr := newTransport(t, bearer.Config{
				Refresher:      ref,
				Base:           srv.Client().Transport,
				RefreshTimeout: timeout,
				OnLogout:       func(context.Context, error) { logouts.Add(1) },
			}, issued)
			self.Transport = tr
			defer tr.CloseIdleConnections()

			srv.RevokeAccessTokens()
			if tt.fault != nil {
				srv.FailToken(1, *tt.fault)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*timeout) // a regression fails, not hangs
			defer cancel()
			if tt.viaContext {
				ctx = context.WithValue(ctx, oauth2.HTTPClient, self)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIURL, nil)
			require.NoError(t, err)
			start := time.Now()
			resp, err := tr.Client().Do(req)
			elapsed := time.Since(start)
			if resp != nil {
				resp.Body.Close()
			}

			assert.Less(t, elapsed, timeout, "no wait for the refresh timeout")
			assert.EqualValues(t, 1, srv.Stats().TokenRequests, "one token request, no loop")
			mu.Lock()
			assert.Equal(t, []bool{false}, withAuth, "the token request carries no access token")
			mu.Unlock()
			if !tt.wantPermanent {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Zero(t, logouts.Load())
				return
			}
			re, ok := isRefreshError(err)
			require.True(t, ok, "want a *RefreshError, got %v", err)
			assert.True(t, re.Permanent)
			assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
			assert.Equal(t, 1, re.Attempts)
			assert.ErrorIs(t, err, bearer.ErrLoggedOut)
			assert.EqualValues(t, 1, logouts.Load())
		})
	}
}

// TestSelfClientCloseIdleConnections checks that closing idle connections
// ends when the refresher's client is the Transport itself.
func TestSelfClientCloseIdleConnections(t *testing.T) {
	self := &http.Client{}
	base := &fakeBase{respond: status(200)}
	tr := newTransport(t, bearer.Config{
		Refresher: &bearer.Endpoint{URL: "https://auth.example.com/refresh", HTTPClient: self},
		Base:      base,
	}, tok1)
	self.Transport = tr

	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.CloseIdleConnections()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("CloseIdleConnections did not return")
	}
	assert.Equal(t, 2, base.closes(), "the base is closed directly and once more through the refresher's client, and there it stops")
}
