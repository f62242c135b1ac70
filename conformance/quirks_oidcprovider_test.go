package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// What README.md says oidc-provider does differently, pinned down on the
// wire as quirks_test.go does for the other servers.

// publicRefresh is a refresh_token grant of a public client: client_id in
// the form, no secret.
func publicRefresh(f *fixture, rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {f.cfg.ClientID}}
}

func TestOIDCProviderDepartures(t *testing.T) {
	const grantInvalid = "grant request is invalid" // every invalid_grant's description
	departures(t, &oidcProvider, time.Minute, []departure{
		{"a reused refresh token revokes the whole grant", func(t *testing.T, f *fixture) {
			status, next := tokenCall(t, f, publicRefresh(f, f.login.RefreshToken), false)
			require.Equal(t, http.StatusOK, status)
			status, body := tokenCall(t, f, publicRefresh(f, f.login.RefreshToken), false)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
			status, _ = tokenCall(t, f, publicRefresh(f, next["refresh_token"].(string)), false)
			assert.Equal(t, http.StatusBadRequest, status, "RFC 9700 §4.14.2: the new refresh token is revoked too")
			st, err := f.api.validate(t.Context(), next["access_token"].(string))
			require.NoError(t, err)
			assert.False(t, st.active, "and so is the newest access token")
		}},
		{"two refreshes at once with one token end the grant", func(t *testing.T, f *fixture) {
			type answer struct {
				status int
				body   map[string]any
				err    error
			}
			answers := make(chan answer, 2)
			for range 2 {
				go func() { // no require off the test goroutine
					resp, err := f.hc.PostForm(f.cfg.Endpoint.TokenURL, publicRefresh(f, f.login.RefreshToken))
					a := answer{err: err}
					if err == nil {
						a.status = resp.StatusCode
						a.err = json.NewDecoder(resp.Body).Decode(&a.body)
						resp.Body.Close()
					}
					answers <- a
				}()
			}
			a, b := <-answers, <-answers
			require.NoError(t, a.err)
			require.NoError(t, b.err)
			if a.status != http.StatusOK {
				a, b = b, a
			}
			require.Equal(t, http.StatusOK, a.status, "one wins")
			assert.Equal(t, "invalid_grant", b.body["error"], "the other is a reuse: no grace period")
			status, _ := tokenCall(t, f, publicRefresh(f, a.body["refresh_token"].(string)), false)
			assert.Equal(t, http.StatusBadRequest, status, "and the winner's new refresh token is revoked with the grant")
		}},
		{"a refresh leaves the previous access token valid", func(t *testing.T, f *fixture) {
			status, _ := tokenCall(t, f, publicRefresh(f, f.login.RefreshToken), false)
			require.Equal(t, http.StatusOK, status)
			st, err := f.api.validate(t.Context(), f.login.AccessToken)
			require.NoError(t, err)
			assert.True(t, st.active, "valid until it expires")
		}},
		{"every invalid_grant has one description", func(t *testing.T, f *fixture) {
			status, body := tokenCall(t, f, publicRefresh(f, "not-a-refresh-token"), false)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
			assert.Equal(t, grantInvalid, body["error_description"], "unknown")
			f.revokeRefresh(t, f.login)
			_, body = tokenCall(t, f, publicRefresh(f, f.login.RefreshToken), false)
			assert.Equal(t, grantInvalid, body["error_description"], "revoked")
		}},
		{"a public client that sends a secret is refused", func(t *testing.T, f *fixture) {
			form := publicRefresh(f, f.login.RefreshToken)
			form.Set("client_secret", "not-the-client-secret")
			status, body := tokenCall(t, f, form, false)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, "invalid_client", body["error"])
			assert.NotContains(t, body["error_description"], "not-the-client-secret")
			status, _ = tokenCall(t, f, publicRefresh(f, f.login.RefreshToken), false)
			assert.Equal(t, http.StatusOK, status, "the refresh token was not spent")
		}},
		{"userinfo accepts an access token 15 s past its expiry, introspection does not", func(t *testing.T, f *fixture) {
			f.expireBy(t, 5*time.Second)
			status, _ := userinfoCall(t, f, "Bearer", f.login.AccessToken, "")
			assert.Equal(t, http.StatusOK, status, "clockTolerance, 15 s by default")
			st, err := f.api.validate(t.Context(), f.login.AccessToken)
			require.NoError(t, err)
			assert.False(t, st.active)
			f.expireBy(t, time.Minute)
			status, _ = userinfoCall(t, f, "Bearer", f.login.AccessToken, "")
			assert.Equal(t, http.StatusUnauthorized, status)
		}},
		{"PKCE is required, S256 only", func(t *testing.T, f *fixture) {
			noFollow := &http.Client{
				Transport:     f.hc.Transport,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			for _, opts := range []string{"", "&code_challenge_method=plain&code_challenge=" + strings.Repeat("a", 43)} {
				resp, err := noFollow.Get(f.cfg.AuthCodeURL("state") + opts)
				require.NoError(t, err)
				resp.Body.Close()
				back, err := url.Parse(resp.Header.Get("Location"))
				require.NoError(t, err)
				assert.Equal(t, "invalid_request", back.Query().Get("error"), "redirected to the client (RFC 6749 §4.1.2.1)")
			}
		}},
	})
}

// TestOIDCProviderDPoP pins down how the server treats DPoP proofs (RFC
// 9449), as configured in server.mjs: nonces required everywhere.
func TestOIDCProviderDPoP(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, f *fixture, k *proofKey)
	}{
		{"nonces are required at the token endpoint and at userinfo, and one nonce serves both", func(t *testing.T, f *fixture, k *proofKey) {
			tok, nonce := dpopRefresh(t, f, k, f.login.RefreshToken)
			assert.Equal(t, "DPoP", tok["token_type"])
			at := tok["access_token"].(string)

			status, hdr := userinfoCall(t, f, "DPoP", at, k.proof(t, http.MethodGet, f.meta.Userinfo, "", at))
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Contains(t, hdr.Get("WWW-Authenticate"), `error="use_dpop_nonce"`)
			assert.NotEmpty(t, hdr.Get("DPoP-Nonce"))
			status, _ = userinfoCall(t, f, "DPoP", at, k.proof(t, http.MethodGet, f.meta.Userinfo, nonce, at))
			assert.Equal(t, http.StatusOK, status, "the token endpoint's nonce is good at userinfo")
		}},
		{"a DPoP-bound access token is refused as Bearer", func(t *testing.T, f *fixture, k *proofKey) {
			tok, _ := dpopRefresh(t, f, k, f.login.RefreshToken)
			status, hdr := userinfoCall(t, f, "Bearer", tok["access_token"].(string), "")
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.True(t, strings.HasPrefix(hdr.Get("WWW-Authenticate"), "DPoP "), "the challenge names DPoP: %q", hdr.Get("WWW-Authenticate"))
		}},
		{"an expired DPoP-bound token is refused with a Bearer challenge", func(t *testing.T, f *fixture, k *proofKey) {
			tok, nonce := dpopRefresh(t, f, k, f.login.RefreshToken)
			at := tok["access_token"].(string)
			f.expireAccess(t)
			status, hdr := userinfoCall(t, f, "DPoP", at, k.proof(t, http.MethodGet, f.meta.Userinfo, nonce, at))
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.True(t, strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer "),
				"RFC 9449 §7.1 would answer a DPoP request with a DPoP challenge: %q", hdr.Get("WWW-Authenticate"))
			assert.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)
		}},
		{"a refresh with a proof does not bind a refresh token that the login left unbound", func(t *testing.T, f *fixture, k *proofKey) {
			tok, _ := dpopRefresh(t, f, k, f.login.RefreshToken)
			status, body := tokenCall(t, f, publicRefresh(f, tok["refresh_token"].(string)), false)
			assert.Equal(t, http.StatusOK, status, "refreshed without a proof: only the code exchange binds a public client's refresh token")
			assert.Equal(t, "Bearer", body["token_type"])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, oidcProvider.start(t, time.Minute), newProofKey(t)) })
	}
}

// dpopRefresh refreshes with a DPoP proof the way a client must here: the
// first proof carries no nonce and is refused with use_dpop_nonce and a
// DPoP-Nonce header; the second carries that nonce. It returns the token
// response and the nonce.
func dpopRefresh(t *testing.T, f *fixture, k *proofKey, rt string) (map[string]any, string) {
	t.Helper()
	htu := f.cfg.Endpoint.TokenURL
	status, body, hdr := tokenCallWithProof(t, f, publicRefresh(f, rt), false, k.proof(t, http.MethodPost, htu, "", ""))
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "use_dpop_nonce", body["error"], "RFC 9449 §8")
	nonce := hdr.Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)
	status, body, _ = tokenCallWithProof(t, f, publicRefresh(f, rt), false, k.proof(t, http.MethodPost, htu, nonce, ""))
	require.Equal(t, http.StatusOK, status, "%v", body)
	return body, nonce
}

// userinfoCall calls the userinfo endpoint with the access token under
// scheme and the DPoP proof, if any, and returns the status and headers.
func userinfoCall(t *testing.T, f *fixture, scheme, at, proof string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, f.meta.Userinfo, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", scheme+" "+at)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}
