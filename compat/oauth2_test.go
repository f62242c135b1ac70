package compat_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// TestOAuth2HelpersBypassBearer records what Transport.TokenSource's doc
// warns about. Wrapped in oauth2.NewClient, or in an oauth2.Transport over
// the Transport, the token source makes x/oauth2 set the Authorization
// header itself, and the request goes out over x/oauth2's base, or through
// the Transport, which passes a request with that header through untouched:
// a revoked token is sent again and again (x/oauth2's ReuseTokenSource
// keeps it until its expiry), every request gets the 401, nothing refreshes,
// and the token follows a redirect to another host. Neither wiring is
// right; see TestOAuth2RightWays.
func TestOAuth2HelpersBypassBearer(t *testing.T) {
	wirings := []struct {
		name   string
		client func(tr *bearer.Transport) *http.Client
	}{
		{"oauth2.NewClient(ctx, tr.TokenSource(ctx))", func(tr *bearer.Transport) *http.Client {
			ctx := context.Background()
			return oauth2.NewClient(ctx, tr.TokenSource(ctx))
		}},
		{"the same, with tr.Client() as the context's client", func(tr *bearer.Transport) *http.Client {
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tr.Client())
			return oauth2.NewClient(ctx, tr.TokenSource(ctx))
		}},
		{"oauth2.Transport over the Transport", func(tr *bearer.Transport) *http.Client {
			return &http.Client{Transport: &oauth2.Transport{Source: tr.TokenSource(context.Background()), Base: tr}}
		}},
	}
	for _, wr := range wirings {
		t.Run(wr.name, func(t *testing.T) {
			e := newEnv(t)
			c := wr.client(e.transport(bearer.Config{}))

			resp, err := c.Get(e.srv.APIURL + "/me")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			e.srv.RevokeAccessTokens()
			before := e.stats()
			var wg sync.WaitGroup
			var rejected atomic.Int32
			for range 50 {
				wg.Go(func() {
					if resp, err := c.Get(e.srv.APIURL + "/me"); err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusUnauthorized {
							rejected.Add(1)
						}
					}
				})
			}
			wg.Wait()
			assert.EqualValues(t, 50, rejected.Load(), "every request got the 401")
			assert.Zero(t, e.since(before).TokenRequests, "and nothing was refreshed")

			var otherAuth atomic.Value
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				otherAuth.Store(r.Header.Get("Authorization"))
			}))
			defer other.Close()
			api := httptest.NewServer(http.RedirectHandler(other.URL+"/landing", http.StatusFound))
			defer api.Close()
			resp, err = c.Get(strings.Replace(api.URL, "127.0.0.1", "localhost", 1))
			require.NoError(t, err)
			resp.Body.Close()
			assert.True(t, strings.HasPrefix(otherAuth.Load().(string), "Bearer "), "the token followed the redirect to another host")
		})
	}
}

// TestOAuth2RightWays: what to use instead. Requests go through
// tr.Client(), or through any *http.Client whose Transport is tr; code that
// takes its client from a context under oauth2.HTTPClient (x/oauth2's own
// oauth2.NewClient(ctx, nil) and the libraries built like it) gets
// tr.Client() there. TokenSource is for what needs a token and sends no
// HTTP request through a client of its own (a gRPC per-RPC credential).
func TestOAuth2RightWays(t *testing.T) {
	clients := []struct {
		name   string
		client func(tr *bearer.Transport) *http.Client
	}{
		{"tr.Client()", func(tr *bearer.Transport) *http.Client { return tr.Client() }},
		{"oauth2.NewClient(ctx with oauth2.HTTPClient: tr.Client(), nil)", func(tr *bearer.Transport) *http.Client {
			return oauth2.NewClient(context.WithValue(context.Background(), oauth2.HTTPClient, tr.Client()), nil)
		}},
	}
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) {
			e := newEnv(t)
			c := cl.client(e.transport(bearer.Config{}))
			e.srv.RevokeAccessTokens()
			before := e.stats()
			resp, err := c.Get(e.srv.APIURL + "/me")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.EqualValues(t, 1, e.since(before).Refreshes)

			e.srv.RevokeRefreshTokens()
			_, err = c.Get(e.srv.APIURL + "/me")
			assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		})
	}

	t.Run("TokenSource beside tr.Client()", func(t *testing.T) {
		e := newEnv(t)
		tr := e.transport(bearer.Config{})
		ts := tr.TokenSource(context.Background())
		tok, err := ts.Token()
		require.NoError(t, err)
		assert.True(t, tok.Valid())

		e.srv.RevokeRefreshTokens()
		_, err = tr.Client().Get(e.srv.APIURL + "/me")
		assert.ErrorIs(t, err, bearer.ErrLoggedOut)
		_, err = ts.Token()
		assert.ErrorIs(t, err, bearer.ErrLoggedOut, "the token source shares the session's end")
	})
}
