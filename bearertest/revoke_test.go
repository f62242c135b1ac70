package bearertest_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

// postRevoke posts a form to the revocation endpoint, with Basic
// credentials when user is not empty.
func postRevoke(t *testing.T, srv *bearertest.Server, form url.Values, user, pass string) reply {
	t.Helper()
	return postFormTo(t, srv, srv.RevocationURL, form, user, pass)
}

// TestRevoke revokes each kind of token, with and without a hint (a wrong
// one included), and checks what stays active: a refresh token takes its
// lineage with it, an access token only itself.
func TestRevoke(t *testing.T) {
	tests := []struct {
		name              string
		refresh           bool   // revoke the refresh token, else the access token
		hint              string // token_type_hint sent; "" sends none
		wantRefreshActive bool
	}{
		{name: "refresh token", refresh: true, hint: "refresh_token"},
		{name: "refresh token without a hint", refresh: true},
		{name: "refresh token hinted as access token", refresh: true, hint: "access_token"},
		{name: "access token", hint: "access_token", wantRefreshActive: true},
		{name: "access token hinted as refresh token", hint: "refresh_token", wantRefreshActive: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			tok := srv.Issue()
			other := srv.Issue()
			require.True(t, srv.Active(tok.AccessToken))
			require.True(t, srv.Active(tok.RefreshToken))

			form := url.Values{"token": {tok.AccessToken}}
			if tt.refresh {
				form.Set("token", tok.RefreshToken)
			}
			if tt.hint != "" {
				form.Set("token_type_hint", tt.hint)
			}
			r := postRevoke(t, srv, form, bearertest.DefaultClientID, bearertest.DefaultClientSecret)

			assert.Equal(t, http.StatusOK, r.status)
			assert.Empty(t, r.body)
			assert.False(t, srv.Active(tok.AccessToken), "access token active")
			assert.Equal(t, tt.wantRefreshActive, srv.Active(tok.RefreshToken), "refresh token active")
			assert.Equal(t, http.StatusUnauthorized, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
			_, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
			assert.Equal(t, tt.wantRefreshActive, err == nil, "refresh: %v", err)
			assert.True(t, srv.Active(other.AccessToken), "another login is untouched")
			assert.True(t, srv.Active(other.RefreshToken), "another login is untouched")
			st := srv.Stats()
			assert.EqualValues(t, 1, st.RevocationRequests)
			assert.EqualValues(t, 1, st.Revocations)
		})
	}
}

// TestRevokeRefreshTokenEndsLaterAccessTokens: the access tokens that a
// refresh token's lineage issued after the login die with it, and so does
// a rotated successor of the revoked token.
func TestRevokeRefreshTokenEndsLaterAccessTokens(t *testing.T) {
	srv := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	tok := srv.Issue()
	next, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
	require.NoError(t, err)
	require.False(t, srv.Active(tok.RefreshToken), "retired by rotation")

	r := postRevoke(t, srv, url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}},
		bearertest.DefaultClientID, bearertest.DefaultClientSecret)

	assert.Equal(t, http.StatusOK, r.status)
	assert.False(t, srv.Active(next.AccessToken))
	assert.False(t, srv.Active(next.RefreshToken))
	assert.Zero(t, srv.Stats().ReuseDetections, "revoking a retired token is no reuse")
}

func TestRevokeUnknownToken(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	r := postRevoke(t, srv, url.Values{"token": {"rt_unknown"}}, bearertest.DefaultClientID, bearertest.DefaultClientSecret)
	assert.Equal(t, http.StatusOK, r.status, "RFC 7009 §2.2: 200 for a token the server does not know")
	assert.EqualValues(t, 1, srv.Stats().Revocations)
}

// TestRevokeClientAuth: the revocation endpoint authenticates the client as
// the token endpoint does, and refuses a request without a token.
func TestRevokeClientAuth(t *testing.T) {
	tests := []struct {
		name       string
		user, pass string
		form       url.Values
		wantStatus int
		wantError  string
		wantBasic  int64
		wantBody   int64
	}{
		{name: "basic", user: bearertest.DefaultClientID, pass: bearertest.DefaultClientSecret,
			wantStatus: http.StatusOK, wantBasic: 1},
		{name: "in the body", form: url.Values{"client_id": {bearertest.DefaultClientID}, "client_secret": {bearertest.DefaultClientSecret}},
			wantStatus: http.StatusOK, wantBody: 1},
		{name: "wrong basic secret", user: bearertest.DefaultClientID, pass: "nope",
			wantStatus: http.StatusUnauthorized, wantError: "invalid_client", wantBasic: 1},
		{name: "wrong body secret", form: url.Values{"client_id": {bearertest.DefaultClientID}, "client_secret": {"nope"}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_client", wantBody: 1},
		{name: "no credentials", wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "no token", user: bearertest.DefaultClientID, pass: bearertest.DefaultClientSecret, form: url.Values{"token": {""}},
			wantStatus: http.StatusBadRequest, wantError: "invalid_request", wantBasic: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			tok := srv.Issue()
			form := url.Values{"token": {tok.RefreshToken}}
			for k, v := range tt.form {
				form[k] = v
			}

			r := postRevoke(t, srv, form, tt.user, tt.pass)

			assert.Equal(t, tt.wantStatus, r.status)
			if tt.wantError != "" {
				assert.Equal(t, tt.wantError, r.json(t)["error"])
			}
			st := srv.Stats()
			assert.Equal(t, tt.wantStatus == http.StatusOK, !srv.Active(tok.RefreshToken), "revoked")
			assert.Equal(t, map[bool]int64{true: 1}[tt.wantStatus == http.StatusOK], st.Revocations)
			assert.Equal(t, tt.wantBasic, st.BasicAuth)
			assert.Equal(t, tt.wantBody, st.BodyAuth)
		})
	}
}

func TestRevokeRejectsGet(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.RevocationURL, nil)
	require.NoError(t, err)

	r := do(t, srv, req)

	assert.Equal(t, http.StatusMethodNotAllowed, r.status)
	assert.Equal(t, http.MethodPost, r.header.Get("Allow"))
	assert.EqualValues(t, 1, srv.Stats().RevocationRequests)
	assert.Zero(t, srv.Stats().Revocations)
}

// TestFailRevoke: faults queued for /revoke spoil revocation requests only,
// and ClearFaults removes them.
func TestFailRevoke(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	tok := srv.Issue()
	srv.FailRevoke(-1, bearertest.ServerError(http.StatusServiceUnavailable))
	form := url.Values{"token": {tok.RefreshToken}}

	r := postRevoke(t, srv, form, bearertest.DefaultClientID, bearertest.DefaultClientSecret)
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.True(t, srv.Active(tok.RefreshToken), "a faulted revocation revokes nothing")
	_, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
	assert.NoError(t, err, "the token endpoint is not faulted")

	srv.ClearFaults()
	r = postRevoke(t, srv, form, bearertest.DefaultClientID, bearertest.DefaultClientSecret)
	assert.Equal(t, http.StatusOK, r.status)
	assert.False(t, srv.Active(tok.RefreshToken))
	st := srv.Stats()
	assert.EqualValues(t, 2, st.RevocationRequests)
	assert.EqualValues(t, 1, st.Revocations)
}

// TestActive: what Active says of tokens in each state, without changing
// any: asking about a retired refresh token is no reuse.
func TestActive(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true, RefreshTTL: 2 * bearertest.DefaultAccessTTL, Now: clk.Now})
	tok := srv.Issue()
	next, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
	require.NoError(t, err)

	assert.False(t, srv.Active("at_unknown"))
	assert.False(t, srv.Active(""))
	assert.False(t, srv.Active(tok.RefreshToken), "retired by rotation")
	assert.True(t, srv.Active(tok.AccessToken), "rotation leaves the access token alone")
	assert.True(t, srv.Active(next.RefreshToken))
	assert.Zero(t, srv.Stats().ReuseDetections)
	assert.True(t, srv.Active(next.RefreshToken), "asking did not revoke the lineage")

	clk.Advance(bearertest.DefaultAccessTTL)
	assert.False(t, srv.Active(tok.AccessToken), "expired")
	assert.True(t, srv.Active(next.RefreshToken))
	clk.Advance(2 * bearertest.DefaultAccessTTL)
	assert.False(t, srv.Active(next.RefreshToken), "expired")
}
