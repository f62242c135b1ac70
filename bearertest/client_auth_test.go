package bearertest_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestClientAuthStyles(t *testing.T) {
	tests := []struct {
		name      string
		style     oauth2.AuthStyle
		wantBasic int64
		wantBody  int64
	}{
		{name: "header", style: oauth2.AuthStyleInHeader, wantBasic: 1},
		{name: "params", style: oauth2.AuthStyleInParams, wantBody: 1},
		{name: "autodetect tries header first", style: oauth2.AuthStyleAutoDetect, wantBasic: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Odd characters check the form-urlencoding of Basic credentials.
			srv := newServer(t, bearertest.Options{ClientID: "my client", ClientSecret: "s3cr:t/+%"})
			cfg := srv.Config()
			cfg.Endpoint.AuthStyle = tt.style

			_, err := refreshWith(t, srv, cfg, srv.Issue().RefreshToken)
			require.NoError(t, err)
			st := srv.Stats()
			assert.Equal(t, tt.wantBasic, st.BasicAuth)
			assert.Equal(t, tt.wantBody, st.BodyAuth)
			assert.Equal(t, int64(1), st.Refreshes)
		})
	}
}

func TestClientAuthFailures(t *testing.T) {
	tests := []struct {
		name          string
		user, pass    string // Basic credentials, if user is set
		form          url.Values
		wantStatus    int
		wantChallenge string
	}{
		{name: "wrong basic secret", user: "bearer-client", pass: "nope",
			wantStatus: http.StatusUnauthorized, wantChallenge: `Basic realm="bearertest"`},
		{name: "wrong basic id", user: "someone", pass: "bearer-secret",
			wantStatus: http.StatusUnauthorized, wantChallenge: `Basic realm="bearertest"`},
		{name: "no credentials",
			wantStatus: http.StatusUnauthorized, wantChallenge: `Basic realm="bearertest"`},
		{name: "wrong body secret",
			form:       url.Values{"client_id": {"bearer-client"}, "client_secret": {"nope"}},
			wantStatus: http.StatusBadRequest},
		{name: "body without secret",
			form:       url.Values{"client_id": {"bearer-client"}},
			wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {srv.Issue().RefreshToken}}
			for k, v := range tt.form {
				form[k] = v
			}

			r := postForm(t, srv, form, tt.user, tt.pass)

			assert.Equal(t, tt.wantStatus, r.status)
			assert.Equal(t, "invalid_client", r.json(t)["error"])
			assert.Equal(t, tt.wantChallenge, r.header.Get("WWW-Authenticate"))
			st := srv.Stats()
			assert.Zero(t, st.Refreshes)
			assert.Equal(t, int64(1), st.RefreshFailures)
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
	}{
		{name: "missing grant_type", form: url.Values{},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "unknown grant_type", form: url.Values{"grant_type": {"password"}},
			wantStatus: http.StatusBadRequest, wantError: "unsupported_grant_type"},
		{name: "missing refresh_token", form: url.Values{"grant_type": {"refresh_token"}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "unknown refresh_token", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt_nope"}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_grant"},
		{name: "missing code", form: url.Values{"grant_type": {"authorization_code"}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "basic and body secret", form: url.Values{"grant_type": {"client_credentials"}, "client_secret": {"bearer-secret"}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})

			r := postForm(t, srv, tt.form, "bearer-client", "bearer-secret")

			assert.Equal(t, tt.wantStatus, r.status)
			body := r.json(t)
			assert.Equal(t, tt.wantError, body["error"])
			assert.NotEmpty(t, body["error_description"])
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Zero(t, srv.Stats().Issued)
		})
	}
}

func TestTokenEndpointsRejectGet(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	for i, u := range []string{srv.TokenURL, srv.RefreshURL} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		require.NoError(t, err)

		r := do(t, srv, req)

		assert.Equal(t, http.StatusMethodNotAllowed, r.status, u)
		assert.Equal(t, http.MethodPost, r.header.Get("Allow"), u)
		assert.Equal(t, "invalid_request", r.json(t)["error"], u)
		assert.Equal(t, int64(i+1), srv.Stats().TokenRequests, u)
	}
}

func TestTokenResponse(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {srv.Issue().RefreshToken}}

	r := postForm(t, srv, form, "bearer-client", "bearer-secret")

	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	body := r.json(t)
	assert.Equal(t, "Bearer", body["token_type"])
	assert.InDelta(t, 3600, body["expires_in"], 0)
	assert.Contains(t, body, "access_token")
	assert.NotContains(t, body, "refresh_token", "without rotation the refresh token is not resent")
}

func TestClientCredentials(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	cfg := clientcredentials.Config{
		ClientID:     bearertest.DefaultClientID,
		ClientSecret: bearertest.DefaultClientSecret,
		TokenURL:     srv.TokenURL,
	}

	tok, err := cfg.Token(oauthCtx(t, srv))

	require.NoError(t, err)
	assert.Empty(t, tok.RefreshToken, "client_credentials returns no refresh token")
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
	assert.Equal(t, int64(1), srv.Stats().Issued)

	cfg.ClientSecret = "wrong"
	_, err = cfg.Token(oauthCtx(t, srv))
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, "invalid_client", rerr.ErrorCode)
}
