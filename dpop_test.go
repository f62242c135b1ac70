package bearer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/dpop"
	"github.com/seamlessauth/bearer/internal/dpopcheck"
)

// dpopServer is a bearertest server that binds tokens to DPoP keys and
// requires its nonce at the token endpoint and the API.
func dpopServer(t *testing.T) (*bearertest.Server, *oauth2.Config) {
	return newServer(t, bearertest.Options{DPoP: true, DPoPNonce: true, Rotate: true, ReuseDetection: true})
}

// dpopLogin logs in through the server's authorization code flow with PKCE,
// every token request carrying a proof of key, as a user of the package
// does: key.Client under oauth2.HTTPClient for cfg.Exchange.
func dpopLogin(t *testing.T, srv *bearertest.Server, cfg *oauth2.Config, key *dpop.Key) *oauth2.Token {
	t.Helper()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, key.Client(srv.Client()))
	verifier := oauth2.GenerateVerifier()
	code, _, err := srv.Authorize(ctx, cfg.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)))
	require.NoError(t, err)
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	return tok
}

func getURL(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestDPoPLoginRefreshAndNonces(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	assert.Equal(t, "DPoP", tok.TokenType, "the login's tokens are bound to the key")
	assert.Equal(t, int64(1), srv.Stats().DPoPNonceChallenges, "the login's first token request was asked for a nonce, and retried")

	base := &fakeBase{next: loopbackBase(t, 4)}
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key, Base: base, TokenClient: srv.Client()}, nil)
	require.NoError(t, tr.SetToken(context.Background(), tok))
	c := tr.Client()

	assert.Equal(t, 200, getURL(t, c, srv.APIURL).StatusCode, "the API takes the bound token with a proof")
	assert.Equal(t, int64(1), srv.Stats().DPoPNonceChallenges, "the token endpoint's nonce serves the API on the same origin")

	srv.RotateDPoPNonce()
	assert.Equal(t, 200, getURL(t, c, srv.APIURL+"/a").StatusCode)
	assert.Equal(t, int64(2), srv.Stats().DPoPNonceChallenges, "the API asked for the new nonce once")

	srv.RevokeAccessTokens()
	srv.RotateDPoPNonce()
	before := srv.Stats()
	assert.Equal(t, 200, getURL(t, c, srv.APIURL+"/b").StatusCode, "a rejected token is refreshed, with a proof, and the request retried")
	after := srv.Stats()
	assert.Equal(t, int64(1), after.Refreshes-before.Refreshes)
	assert.Equal(t, int64(0), after.DPoPNonceChallenges-before.DPoPNonceChallenges,
		"the API's 401 gave the new nonce, so the refresh's proof carried it at once")
	assert.Equal(t, int64(2), after.DPoPProofs-before.DPoPProofs, "the refresh's proof and the retry's")
	assert.Zero(t, after.DPoPRejected, "no proof was refused: no jti repeated, every htu and ath right")
	assert.Zero(t, after.RefreshFailures)

	cur, err := tr.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "DPoP", cur.TokenType, "the refreshed token is bound too")
	assert.NotEqual(t, tok.RefreshToken, cur.RefreshToken, "rotated")

	// Every send carried a new proof of the key, for its own URL and token.
	jtis := map[string]bool{}
	for _, r := range base.requests() {
		p, err := dpopcheck.Verify(r.req.Header.Get("DPoP"))
		require.NoError(t, err)
		assert.False(t, jtis[p.JTI], "jti %s sent twice", p.JTI)
		jtis[p.JTI] = true
		assert.Equal(t, key.Thumbprint(), p.JKT)
		// The loopback URLs have no default port, query or fragment to drop.
		assert.Equal(t, r.req.URL.Scheme+"://"+r.req.URL.Host+r.req.URL.Path, p.HTU)
		_, at, _ := strings.Cut(r.auth, " ")
		assert.Equal(t, dpopcheck.Hash(at), p.ATH)
		assert.Regexp(t, "^DPoP ", r.auth, "a bound token goes as DPoP, never as Bearer")
	}
	assert.Len(t, jtis, 5, "3 requests, one retry for the nonce and one after the refresh: a proof for each send")
}

func TestDPoPTokenEndpointNonceRotation(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	events := make(chan bearer.RefreshEvent, 1)
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key, Base: loopbackBase(t, 2),
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) { events <- ev }}, nil)
	require.NoError(t, tr.SetToken(context.Background(), tok))

	// The nonce changes as the refresh's token request arrives: its proof
	// carries the old one, and the token endpoint asks for the new one.
	var rotated atomic.Bool
	srv.OnToken(func(*http.Request) {
		if rotated.CompareAndSwap(false, true) {
			srv.RotateDPoPNonce()
		}
	})
	srv.RevokeAccessTokens()
	before := srv.Stats()
	assert.Equal(t, 200, getURL(t, tr.Client(), srv.APIURL).StatusCode)
	after := srv.Stats()
	assert.Equal(t, int64(1), after.DPoPNonceChallenges-before.DPoPNonceChallenges, "asked once, at the token endpoint")
	assert.Equal(t, int64(2), after.TokenRequests-before.TokenRequests, "the token request and its one retry")
	assert.Equal(t, int64(1), after.Refreshes-before.Refreshes)
	ev := <-events
	assert.NoError(t, ev.Err)
	assert.Equal(t, 1, ev.Attempts, "the nonce retry is the DPoP client's, not another refresh attempt")
}

func TestDPoPBoundTokenWithoutKeyIsNeverSent(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 2)}, nil)
	require.NoError(t, tr.SetToken(context.Background(), tok))
	before := srv.Stats().APIRequests
	_, err = tr.Client().Get(srv.APIURL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DPoP-bound")
	assert.NotContains(t, err.Error(), tok.AccessToken)
	assert.Equal(t, before, srv.Stats().APIRequests, "the request reached no server")
}

func TestDPoPKeyWithBearerServer(t *testing.T) {
	// A server that does not do DPoP ignores the proofs and issues Bearer
	// tokens: they are sent as the server issued them, with no proof.
	srv, cfg := newServer(t, bearertest.Options{Rotate: true})
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	require.Equal(t, "Bearer", tok.TokenType)
	base := &fakeBase{next: loopbackBase(t, 2)}
	tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key, Base: base}, nil)
	require.NoError(t, tr.SetToken(context.Background(), tok))
	assert.Equal(t, 200, getURL(t, tr.Client(), srv.APIURL).StatusCode)
	seen := base.requests()
	require.Len(t, seen, 1)
	assert.Equal(t, "Bearer "+tok.AccessToken, seen[0].auth)
	assert.Empty(t, seen[0].req.Header.Values("DPoP"))
}

func TestDPoPChallengesAreToldApart(t *testing.T) {
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tests := []struct {
		challenge string
		refreshes int32
	}{
		{`DPoP error="invalid_token"`, 1},
		{`DPoP algs="ES256"`, 1},
		{`DPoP error="invalid_dpop_proof"`, 0},
		{`DPoP error="use_dpop_nonce"`, 0}, // no nonce given: not retried, and not the token's fault
		{`Bearer realm="api", DPoP error="invalid_dpop_proof"`, 0},
		{`Bearer error="invalid_token"`, 1}, // a server that answers a DPoP token in Bearer words
		{`DPoP error="insufficient_scope"`, 0},
		{`Basic realm="x"`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.challenge, func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", tt.challenge)
				w.WriteHeader(http.StatusUnauthorized)
			}))
			defer api.Close()
			r := &countingRefresher{}
			bound := func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				tok, err := r.Refresh(ctx, cur)
				if tok != nil {
					tok.TokenType = "DPoP"
				}
				return tok, err
			}
			tr := newTransport(t, bearer.Config{Refresher: bearer.RefresherFunc(bound), DPoP: key, Base: loopbackBase(t, 2)},
				&oauth2.Token{AccessToken: "at-0", TokenType: "DPoP", RefreshToken: "rt-0"})
			resp := getURL(t, tr.Client(), api.URL)
			assert.Equal(t, 401, resp.StatusCode)
			assert.Equal(t, tt.refreshes, r.calls.Load())
		})
	}
}

func TestDPoPRefreshTokenNeedsItsKey(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	refreshOnly := &oauth2.Token{RefreshToken: tok.RefreshToken}

	t.Run("no proof: invalid_dpop_proof, transient", func(t *testing.T) {
		logouts := 0
		tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), Base: loopbackBase(t, 2),
			OnLogout: func(context.Context, error) { logouts++ }}, nil)
		require.NoError(t, tr.SetToken(context.Background(), refreshOnly))
		_, err := tr.Token(context.Background())
		re, ok := isRefreshError(err)
		require.True(t, ok, "%v", err)
		assert.False(t, errors.Is(err, bearer.ErrLoggedOut), "a proof problem is not a dead refresh token: %v", re)
		assert.Zero(t, logouts)
		assert.NotContains(t, err.Error(), tok.RefreshToken)
	})
	t.Run("another key: invalid_grant, the session ends", func(t *testing.T) {
		other, err := dpop.GenerateKey()
		require.NoError(t, err)
		logouts := 0
		tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: other, Base: loopbackBase(t, 2),
			OnLogout: func(context.Context, error) { logouts++ }}, nil)
		require.NoError(t, tr.SetToken(context.Background(), refreshOnly))
		_, err = tr.Token(context.Background())
		assert.True(t, errors.Is(err, bearer.ErrLoggedOut), "%v", err)
		assert.Equal(t, 1, logouts)
		assert.NotContains(t, err.Error(), tok.RefreshToken)
	})
	t.Run("its key: refreshed", func(t *testing.T) {
		tr := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key, Base: loopbackBase(t, 2)}, nil)
		require.NoError(t, tr.SetToken(context.Background(), refreshOnly))
		got, err := tr.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "DPoP", got.TokenType)
	})
}

func TestDPoPRedirectHopGetsItsOwnProof(t *testing.T) {
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	proofs := make(chan *dpopcheck.Proof, 4)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := dpopcheck.Verify(r.Header.Get("DPoP"))
		if !assert.NoError(t, err, r.URL.Path) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		proofs <- p
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new?x=1", http.StatusTemporaryRedirect)
		}
	}))
	defer api.Close()
	tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, DPoP: key, Base: loopbackBase(t, 2)},
		&oauth2.Token{AccessToken: "at-0", TokenType: "DPoP"})
	resp := getURL(t, tr.Client(), api.URL+"/old")
	assert.Equal(t, 200, resp.StatusCode)
	close(proofs)
	var got []*dpopcheck.Proof
	for p := range proofs {
		got = append(got, p)
	}
	require.Len(t, got, 2)
	assert.Equal(t, api.URL+"/old", got[0].HTU)
	assert.Equal(t, api.URL+"/new", got[1].HTU, "the hop's proof names the hop's URL, without its query")
	assert.NotEqual(t, got[0].JTI, got[1].JTI)
	assert.Equal(t, dpopcheck.Hash("at-0"), got[1].ATH)
}

// A Pool's identities prove possession of the template's key, each with
// its own DPoP-bound tokens, refreshes included.
func TestDPoPPoolIdentities(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	base := &fakeBase{next: loopbackBase(t, 4)}
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{Refresher: bearer.OAuth2(cfg), DPoP: key, Base: base}})
	for _, id := range []string{"alice", "bob"} {
		require.NoError(t, p.SetToken(t.Context(), id, srv.IssueDPoP(key.Thumbprint())))
	}
	send := func(id string) int {
		req, err := http.NewRequestWithContext(bearer.WithIdentity(t.Context(), id), http.MethodGet, srv.APIURL, nil)
		require.NoError(t, err)
		resp, err := p.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	var sent []string // the token of each send's last request
	for _, id := range []string{"alice", "bob", "alice"} {
		assert.Equal(t, 200, send(id), id)
		last := base.last(t)
		assert.True(t, strings.HasPrefix(last.auth, "DPoP "), "%s: sent as %q", id, last.auth)
		assert.Len(t, last.req.Header.Values("DPoP"), 1, "%s: one proof", id)
		sent = append(sent, last.auth)
	}
	assert.Equal(t, sent[0], sent[2], "alice's token, both times")
	assert.NotEqual(t, sent[0], sent[1], "bob was sent alice's token")
	srv.RevokeAccessTokens()
	for _, id := range []string{"bob", "alice"} {
		assert.Equal(t, 200, send(id), "%s after the revocation", id)
	}
	st := srv.Stats()
	assert.EqualValues(t, 2, st.Refreshes, "one refresh each, with a proof")
	assert.Zero(t, st.DPoPRejected)
}

func TestDPoPRefreshWithoutTokenTypeStaysBound(t *testing.T) {
	// A server that leaves token_type out of a refresh's answer (RFC 6749
	// §5.1 requires it) bound the new token to the proof it was sent: the
	// lineage stays DPoP, never a Bearer downgrade. An answer that says
	// Bearer is taken at its word.
	for _, tt := range []struct{ answered, want string }{{"", "DPoP"}, {"Bearer", "Bearer"}} {
		t.Run("token_type="+tt.answered, func(t *testing.T) {
			srv, cfg := dpopServer(t)
			key, err := dpop.GenerateKey()
			require.NoError(t, err)
			tok := dpopLogin(t, srv, cfg, key)
			refresher := bearer.OAuth2(cfg)
			var asked atomic.Int32
			strip := bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
				asked.Add(1)
				got, err := refresher.Refresh(ctx, cur)
				if err == nil {
					got.TokenType = tt.answered
				}
				return got, err
			})
			base := &fakeBase{next: loopbackBase(t, 2)}
			tr := newTransport(t, bearer.Config{Refresher: strip, DPoP: key, Base: base}, nil)
			require.NoError(t, tr.SetToken(context.Background(), tok))
			srv.RevokeAccessTokens()
			resp := getURL(t, tr.Client(), srv.APIURL)
			require.EqualValues(t, 1, asked.Load())
			last := base.last(t)
			scheme, _, _ := strings.Cut(last.auth, " ")
			assert.Equal(t, tt.want, scheme)
			assert.Equal(t, tt.want == "DPoP", len(last.req.Header.Values("DPoP")) == 1, "a proof sent with the token")
			if tt.want == "DPoP" {
				assert.Equal(t, 200, resp.StatusCode)
			}
		})
	}
}

func TestDPoPEndpointRefreshKeepsTheBinding(t *testing.T) {
	// The JSON Endpoint's answer may name the type (tokenType); without
	// one, the refresh of a bound token, sent with a proof, is bound too.
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	for _, tt := range []struct{ answer, want string }{
		{`{"accessToken":"new"}`, "DPoP"},
		{`{"accessToken":"new","tokenType":"DPoP"}`, "DPoP"},
		{`{"accessToken":"new","tokenType":"Bearer"}`, "Bearer"},
	} {
		t.Run(tt.answer, func(t *testing.T) {
			base := &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
				switch {
				case req.URL.Path == "/refresh":
					if len(req.Header.Values("DPoP")) != 1 {
						return answer(http.StatusBadRequest), nil
					}
					resp := answer(http.StatusOK)
					resp.Body = io.NopCloser(strings.NewReader(tt.answer))
					return resp, nil
				case req.Header.Get("Authorization") == "DPoP old":
					return answer(http.StatusUnauthorized), nil
				}
				return answer(http.StatusOK), nil
			}}
			tr := newTransport(t, bearer.Config{
				Refresher: &bearer.Endpoint{URL: "https://auth.example.com/refresh"},
				DPoP:      key,
				Base:      base,
			}, &oauth2.Token{AccessToken: "old", RefreshToken: "r", TokenType: "DPoP"})
			code, err := get(t, tr)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, code)
			last := base.last(t)
			scheme, _, _ := strings.Cut(last.auth, " ")
			assert.Equal(t, tt.want, scheme)
			assert.Equal(t, tt.want == "DPoP", len(last.req.Header.Values("DPoP")) == 1, "a proof sent with the token")
		})
	}
}
