package bearer_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

func TestOAuth2AuthStyle(t *testing.T) {
	tests := []struct {
		name      string
		style     oauth2.AuthStyle
		wantBasic int64
		wantBody  int64
	}{
		{"in header", oauth2.AuthStyleInHeader, 1, 0},
		{"in params", oauth2.AuthStyleInParams, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg := newServer(t, bearertest.Options{})
			issued := srv.Issue()
			cfg.Endpoint.AuthStyle = tt.style
			before := srv.Stats()

			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
			tok, err := bearer.OAuth2(cfg).Refresh(ctx, issued)
			require.NoError(t, err)

			st := srv.Stats()
			assert.Equal(t, tt.wantBasic, st.BasicAuth-before.BasicAuth, "Basic")
			assert.Equal(t, tt.wantBody, st.BodyAuth-before.BodyAuth, "in the body")
			assert.EqualValues(t, 1, st.Refreshes-before.Refreshes)
			assert.NotEqual(t, issued.AccessToken, tok.AccessToken)
		})
	}
}

func TestOAuth2Token(t *testing.T) {
	tests := []struct {
		name        string
		rotate      bool
		wantRotated bool
	}{
		{"server rotates", true, true},
		{"server keeps the refresh token", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg := newServer(t, bearertest.Options{AccessTTL: 90 * time.Second, Rotate: tt.rotate})
			issued := srv.Issue()
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
			tok, err := bearer.OAuth2(cfg).Refresh(ctx, issued)
			require.NoError(t, err)
			assert.NotEmpty(t, tok.RefreshToken)
			assert.Equal(t, tt.wantRotated, tok.RefreshToken != issued.RefreshToken)
			assert.Equal(t, "Bearer", tok.Type())
			assert.WithinDuration(t, time.Now().Add(90*time.Second), tok.Expiry, 5*time.Second, "expires_in becomes Expiry")
		})
	}
}

func TestOAuth2WithoutRefreshToken(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{})
	for _, cur := range []*oauth2.Token{nil, {AccessToken: "access-only"}} {
		_, err := bearer.OAuth2(cfg).Refresh(t.Context(), cur)
		assert.ErrorIs(t, err, bearer.ErrNoToken)
	}
	assert.Zero(t, srv.Stats().TokenRequests, "nothing to send")
	assert.Panics(t, func() { bearer.OAuth2(nil) })
}

// TestRefreshUsesTheRequestContextClient puts a client under
// oauth2.HTTPClient on the request's context and checks that the refresh
// the request causes goes through it, for each refresher.
func TestRefreshUsesTheRequestContextClient(t *testing.T) {
	for _, kind := range refresherKinds {
		t.Run(kind, func(t *testing.T) {
			e := newFaultEnv(t, faultRow{refresher: kind, revoke: true})
			counter := &fakeBase{next: e.srv.Client().Transport}

			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: counter})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.APIURL, nil)
			require.NoError(t, err)
			resp, err := e.tr.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()

			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, 1, counter.count(), "the token request went through the context's client")
			assert.EqualValues(t, 1, e.srv.Stats().Refreshes)
		})
	}
}

// TestRefreshErrorsNeverShowTokens has the token endpoint echo the refresh
// token in its error answer and checks that no error text shows it.
func TestRefreshErrorsNeverShowTokens(t *testing.T) {
	for _, kind := range refresherKinds {
		t.Run(kind, func(t *testing.T) {
			e := newFaultEnv(t, faultRow{refresher: kind, revoke: true})
			rt := e.issued.RefreshToken
			e.srv.FailToken(1, jsonAnswer(400, `{"error":"invalid_grant","error_description":"unknown token `+rt+`","error_uri":"https://auth.example.com/?t=`+rt+`"}`))

			err := e.once(t, clientPlain).err
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid_grant")
			assert.NotContains(t, err.Error(), rt)
			var oe *oauth2.RetrieveError
			require.ErrorAs(t, err, &oe)
			assert.NotContains(t, oe.Error(), rt)
			assert.NotContains(t, string(oe.Body), rt)
			assert.NotContains(t, oe.ErrorURI, rt)
		})
	}
}

// TestOAuth2Revoke calls OAuth2Refresher.Revoke on its own, for each client
// authentication style and kind of token, and checks the requests it sends
// and what the server revoked.
func TestOAuth2Revoke(t *testing.T) {
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	refused := bearertest.Fault{Status: 401, Body: `{"error":"invalid_client"}`, Header: jsonHeader}
	tests := []struct {
		name         string
		style        oauth2.AuthStyle
		noSecret     bool
		noURL        bool
		tok          func(issued *oauth2.Token) *oauth2.Token // nil: the issued pair
		fault        *bearertest.Fault                        // for the first revocation request
		wantRequests int
		wantBasic    []bool // per request: Basic, else the client in the form
		wantHint     string
		wantStatus   int // of the error; 0: no error
		wantCode     string
		wantRevoked  string // at the server: "refresh_token" (its lineage), "access_token" or nothing
	}{
		{name: "header", style: oauth2.AuthStyleInHeader, wantRequests: 1, wantBasic: []bool{true}, wantHint: "refresh_token", wantRevoked: "refresh_token"},
		{name: "params", style: oauth2.AuthStyleInParams, wantRequests: 1, wantBasic: []bool{false}, wantHint: "refresh_token", wantRevoked: "refresh_token"},
		{name: "autodetect with a secret", style: oauth2.AuthStyleAutoDetect, wantRequests: 1, wantBasic: []bool{true}, wantHint: "refresh_token", wantRevoked: "refresh_token"},
		{name: "autodetect falls back to the form when Basic is refused", style: oauth2.AuthStyleAutoDetect, fault: &refused,
			wantRequests: 2, wantBasic: []bool{true, false}, wantHint: "refresh_token", wantRevoked: "refresh_token"},
		{name: "autodetect sends a 503 once", style: oauth2.AuthStyleAutoDetect, fault: ptr(bearertest.ServerError(503)),
			wantRequests: 1, wantBasic: []bool{true}, wantHint: "refresh_token", wantStatus: 503, wantCode: "server_error"},
		{name: "header sends a refused Basic once", style: oauth2.AuthStyleInHeader, fault: &refused,
			wantRequests: 1, wantBasic: []bool{true}, wantHint: "refresh_token", wantStatus: 401, wantCode: "invalid_client"},
		{name: "autodetect without a secret sends client_id alone", style: oauth2.AuthStyleAutoDetect, noSecret: true,
			wantRequests: 1, wantBasic: []bool{false}, wantHint: "refresh_token", wantStatus: 400, wantCode: "invalid_client"},
		{name: "access token only", style: oauth2.AuthStyleInHeader, wantRequests: 1, wantBasic: []bool{true}, wantHint: "access_token", wantRevoked: "access_token",
			tok: func(issued *oauth2.Token) *oauth2.Token { return &oauth2.Token{AccessToken: issued.AccessToken} }},
		{name: "204 is success", style: oauth2.AuthStyleInHeader, fault: &bearertest.Fault{Status: http.StatusNoContent}, // the fault answers for the server, which revokes nothing
			wantRequests: 1, wantBasic: []bool{true}, wantHint: "refresh_token"},
		{name: "no RevocationURL", style: oauth2.AuthStyleInHeader, noURL: true},
		{name: "no token", style: oauth2.AuthStyleInHeader, tok: func(*oauth2.Token) *oauth2.Token { return &oauth2.Token{} }},
		{name: "nil token", style: oauth2.AuthStyleInHeader, tok: func(*oauth2.Token) *oauth2.Token { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Odd characters check the URL-encoding of Basic credentials.
			srv, cfg := newServer(t, bearertest.Options{ClientID: "my client", ClientSecret: "s3cr:t/+%"})
			cfg.Endpoint.AuthStyle = tt.style
			if tt.noSecret {
				cfg.ClientSecret = ""
			}
			issued := srv.Issue()
			tok := issued
			if tt.tok != nil {
				tok = tt.tok(issued)
			}
			if tt.fault != nil {
				srv.FailRevoke(1, *tt.fault)
			}
			ref := &bearer.OAuth2Refresher{Config: cfg, RevocationURL: srv.RevocationURL}
			if tt.noURL {
				ref.RevocationURL = ""
			}
			sent := &fakeBase{next: srv.Client().Transport}
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: sent})

			err := ref.Revoke(ctx, tok)

			reqs := sent.to("/revoke")
			require.Len(t, reqs, tt.wantRequests)
			for i, r := range reqs {
				assert.Equal(t, tt.wantHint, r.form.Get("token_type_hint"))
				assert.Equal(t, map[string]string{"refresh_token": issued.RefreshToken, "access_token": issued.AccessToken}[tt.wantHint], r.form.Get("token"))
				if tt.wantBasic[i] {
					_, secret, ok := (&http.Request{Header: r.header}).BasicAuth()
					assert.True(t, ok, "Basic")
					assert.Equal(t, url.QueryEscape(cfg.ClientSecret), secret)
					assert.False(t, r.form.Has("client_id") || r.form.Has("client_secret"), "no credentials in the form")
				} else {
					assert.Empty(t, r.header.Get("Authorization"))
					assert.Equal(t, cfg.ClientID, r.form.Get("client_id"))
					assert.Equal(t, cfg.ClientSecret, r.form.Get("client_secret"))
					assert.Equal(t, cfg.ClientSecret != "", r.form.Has("client_secret"))
				}
			}
			if tt.wantStatus != 0 {
				var re *oauth2.RetrieveError
				require.ErrorAs(t, err, &re)
				require.NotNil(t, re.Response)
				assert.Equal(t, tt.wantStatus, re.Response.StatusCode)
				assert.Equal(t, tt.wantCode, re.ErrorCode)
				assert.Contains(t, err.Error(), "the revocation endpoint answered")
				assert.NotContains(t, err.Error(), "bearer: ", "the Transport's RevocationError says bearer, once")
				assert.True(t, srv.Active(issued.RefreshToken), "nothing revoked")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantRevoked == "", srv.Active(issued.AccessToken), "access token active")
			assert.Equal(t, tt.wantRevoked != "refresh_token", srv.Active(issued.RefreshToken), "refresh token active")
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestOAuth2IsAnOAuth2Refresher(t *testing.T) {
	cfg := &oauth2.Config{ClientID: "id"}
	ref, ok := bearer.OAuth2(cfg).(*bearer.OAuth2Refresher)
	require.True(t, ok)
	assert.Same(t, cfg, ref.Config)
	assert.Empty(t, ref.RevocationURL, "OAuth2 revokes nothing")

	var none bearer.OAuth2Refresher
	_, err := none.Refresh(t.Context(), &oauth2.Token{RefreshToken: "refresh"})
	assert.Error(t, err, "no Config")
	none.RevocationURL = "https://auth.example.com/revoke"
	assert.Error(t, none.Revoke(t.Context(), &oauth2.Token{RefreshToken: "refresh"}), "no Config")
}
