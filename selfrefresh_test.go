package bearer_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

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
	base := &closeCounter{}
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
	assert.Equal(t, 2, base.n, "the base is closed directly and once more through the refresher's client, and there it stops")
}
