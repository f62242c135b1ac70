package bearertest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestAuthorizationCodePKCE(t *testing.T) {
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name         string
		authOpts     []oauth2.AuthCodeOption
		exchangeOpts []oauth2.AuthCodeOption
		wantErr      string // RFC 6749 error code; empty: success
	}{
		{name: "S256 good verifier",
			authOpts:     []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)},
			exchangeOpts: []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}},
		{name: "S256 bad verifier",
			authOpts:     []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)},
			exchangeOpts: []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())},
			wantErr:      "invalid_grant"},
		{name: "S256 missing verifier",
			authOpts: []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)},
			wantErr:  "invalid_grant"},
		{name: "plain good verifier",
			authOpts:     []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", verifier)},
			exchangeOpts: []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}},
		{name: "plain bad verifier",
			authOpts:     []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", verifier)},
			exchangeOpts: []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())},
			wantErr:      "invalid_grant"},
		{name: "no PKCE"},
		{name: "verifier without challenge (downgrade)",
			exchangeOpts: []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)},
			wantErr:      "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			cfg := headerConfig(srv)

			code, state, err := srv.Authorize(t.Context(), cfg.AuthCodeURL("st-123", tt.authOpts...))
			require.NoError(t, err)
			assert.Equal(t, "st-123", state)
			assert.True(t, strings.HasPrefix(code, bearertest.CodePrefix))

			tok, err := cfg.Exchange(oauthCtx(t, srv), code, tt.exchangeOpts...)

			if tt.wantErr != "" {
				var rerr *oauth2.RetrieveError
				require.ErrorAs(t, err, &rerr)
				assert.Equal(t, tt.wantErr, rerr.ErrorCode)
				assert.Zero(t, srv.Stats().Issued)
				return
			}
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(tok.RefreshToken, bearertest.RefreshPrefix))
			assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
			_, err = refreshWith(t, srv, cfg, tok.RefreshToken)
			assert.NoError(t, err, "the code starts a lineage that refreshes")
		})
	}
}

func TestAuthorizationCodeRules(t *testing.T) {
	tests := []struct {
		name     string
		exchange func(t *testing.T, srv *bearertest.Server, clock *fakeClock, cfg *oauth2.Config, code string) error
	}{
		{name: "single use", exchange: func(t *testing.T, srv *bearertest.Server, _ *fakeClock, cfg *oauth2.Config, code string) error {
			_, err := cfg.Exchange(oauthCtx(t, srv), code)
			require.NoError(t, err)
			_, err = cfg.Exchange(oauthCtx(t, srv), code)
			return err
		}},
		{name: "expired", exchange: func(t *testing.T, srv *bearertest.Server, clock *fakeClock, cfg *oauth2.Config, code string) error {
			clock.Advance(bearertest.CodeTTL)
			_, err := cfg.Exchange(oauthCtx(t, srv), code)
			return err
		}},
		{name: "redirect_uri mismatch", exchange: func(t *testing.T, srv *bearertest.Server, _ *fakeClock, cfg *oauth2.Config, code string) error {
			cfg.RedirectURL = srv.URL + "/elsewhere"
			_, err := cfg.Exchange(oauthCtx(t, srv), code)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newServer(t, bearertest.Options{Now: clock.Now})
			cfg := headerConfig(srv)
			code, _, err := srv.Authorize(t.Context(), cfg.AuthCodeURL("s"))
			require.NoError(t, err)

			err = tt.exchange(t, srv, clock, cfg, code)

			var rerr *oauth2.RetrieveError
			require.ErrorAs(t, err, &rerr)
			assert.Equal(t, "invalid_grant", rerr.ErrorCode)
		})
	}
}

func TestAuthorizeRedirect(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	client := *srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(q url.Values) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.AuthURL+"?"+q.Encode(), nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	base := func() url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {bearertest.DefaultClientID},
			"redirect_uri": {"http://127.0.0.1:1/cb?keep=1"}, "state": {"xyz"}}
	}

	t.Run("approves and keeps the redirect query", func(t *testing.T) {
		resp := get(base())
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := resp.Location()
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1:1", loc.Host)
		assert.Equal(t, "1", loc.Query().Get("keep"))
		assert.Equal(t, "xyz", loc.Query().Get("state"))
		assert.True(t, strings.HasPrefix(loc.Query().Get("code"), bearertest.CodePrefix))
	})
	t.Run("unknown client is not redirected", func(t *testing.T) {
		q := base()
		q.Set("client_id", "stranger")
		assert.Equal(t, http.StatusBadRequest, get(q).StatusCode)
	})
	t.Run("relative redirect_uri is refused", func(t *testing.T) {
		q := base()
		q.Set("redirect_uri", "/cb")
		assert.Equal(t, http.StatusBadRequest, get(q).StatusCode)
	})
	for _, tc := range []struct{ name, key, value, wantErr string }{
		{"unsupported response_type", "response_type", "token", "unsupported_response_type"},
		{"unsupported challenge method", "code_challenge_method", "S512", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := base()
			q.Set("code_challenge", strings.Repeat("a", 43))
			q.Set(tc.key, tc.value)
			resp := get(q)
			require.Equal(t, http.StatusFound, resp.StatusCode)
			loc, err := resp.Location()
			require.NoError(t, err)
			assert.Equal(t, tc.wantErr, loc.Query().Get("error"))
			assert.Empty(t, loc.Query().Get("code"))
			assert.Equal(t, "xyz", loc.Query().Get("state"))
		})
	}
}

func TestAuthorizeHelperReportsErrors(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	cfg := srv.Config()
	cfg.ClientID = "stranger"

	_, _, err := srv.Authorize(t.Context(), cfg.AuthCodeURL("s"))

	require.Error(t, err)
	assert.Contains(t, err.Error(), "bearertest: authorize answered 400")
}
