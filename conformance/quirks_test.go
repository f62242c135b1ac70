package conformance

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests in this file pin down, on the wire, what README.md says each
// server does differently from RFC 6749, so that the notes stay true when
// a server's version changes.

// tokenCall posts form to the token endpoint, with HTTP Basic client
// authentication when basic is set, and returns the status and the JSON
// answer.
func tokenCall(t *testing.T, f *fixture, form url.Values, basic bool) (int, map[string]any) {
	t.Helper()
	status, body, _ := tokenCallWithProof(t, f, form, basic, "")
	return status, body
}

// tokenCallWithProof is tokenCall with a DPoP proof when proof is not
// empty; it returns the response's headers too.
func tokenCallWithProof(t *testing.T, f *fixture, form url.Values, basic bool, proof string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.cfg.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(f.cfg.ClientID), url.QueryEscape(f.cfg.ClientSecret))
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := f.hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "the token endpoint answers JSON")
	return resp.StatusCode, body, resp.Header
}

// departure is one way a server departs from the RFCs or from what its
// documentation says, pinned down on the wire.
type departure struct {
	name  string
	check func(t *testing.T, f *fixture)
}

// departures runs each check on a server of its own from p, whose access
// tokens live ttl.
func departures(t *testing.T, p *provider, ttl time.Duration, ds []departure) {
	for _, d := range ds {
		t.Run(d.name, func(t *testing.T) { d.check(t, p.start(t, ttl)) })
	}
}

// refreshForm is a refresh_token grant with the client's credentials in the
// form (client_secret_post).
func refreshForm(f *fixture, rt string) url.Values {
	return url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {rt},
		"client_id":     {f.cfg.ClientID},
		"client_secret": {f.cfg.ClientSecret},
	}
}

func TestMockOIDCDepartures(t *testing.T) {
	const ttl = 10 * time.Minute
	departures(t, &mock, ttl, []departure{
		{"expires_in is in nanoseconds", func(t *testing.T, f *fixture) {
			status, body := tokenCall(t, f, refreshForm(f, f.login.RefreshToken), false)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, float64(ttl.Nanoseconds()), body["expires_in"], "RFC 6749 §5.1: seconds")
			assert.Greater(t, time.Until(mockRawExpiry(t, f)), 60*365*24*time.Hour,
				"x/oauth2 caps the value at 2^31-1 seconds: the token looks valid for 68 years")
		}},
		{"the refresh token is not rotated", func(t *testing.T, f *fixture) {
			status, body := tokenCall(t, f, refreshForm(f, f.login.RefreshToken), false)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, f.login.RefreshToken, body["refresh_token"])
		}},
		{"client_secret_basic is refused although discovery lists it", func(t *testing.T, f *fixture) {
			assert.Contains(t, f.meta.TokenAuthMethods, "client_secret_basic")
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.login.RefreshToken}}
			status, body := tokenCall(t, f, form, true)
			assert.Equal(t, http.StatusBadRequest, status, "RFC 6749 §2.3.1: servers MUST support Basic")
			assert.Equal(t, "invalid_request", body["error"])
		}},
		{"invalid_grant comes with 401, not 400", func(t *testing.T, f *fixture) {
			f.revokeRefresh(t, f.login)
			status, body := tokenCall(t, f, refreshForm(f, f.login.RefreshToken), false)
			assert.Equal(t, http.StatusUnauthorized, status, "RFC 6749 §5.2: 400")
			assert.Equal(t, "invalid_grant", body["error"])
		}},
		{"the access token is accepted as a refresh token", func(t *testing.T, f *fixture) {
			status, body := tokenCall(t, f, refreshForm(f, f.login.AccessToken), false)
			assert.Equal(t, http.StatusOK, status, "both are JWTs naming the session; the type is not checked")
			assert.NotEmpty(t, body["access_token"])
		}},
		{"offline_access is refused, yet every login gets a refresh token", func(t *testing.T, f *fixture) {
			require.NotEmpty(t, f.login.RefreshToken, "the login asked for openid only")
			cfg := *f.cfg
			cfg.Scopes = []string{"openid", "offline_access"}
			noFollow := &http.Client{
				Transport:     f.hc.Transport,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			resp, err := noFollow.Get(cfg.AuthCodeURL("state"))
			require.NoError(t, err)
			defer resp.Body.Close()
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "answered to the browser, not redirected (RFC 6749 §4.1.2.1)")
			assert.Equal(t, "invalid_scope", body["error"])
		}},
		{"error_description echoes the submitted client_secret", func(t *testing.T, f *fixture) {
			form := refreshForm(f, f.login.RefreshToken)
			form.Set("client_secret", "not-the-client-secret")
			status, body := tokenCall(t, f, form, false)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, "invalid_client", body["error"])
			assert.Contains(t, body["error_description"], "not-the-client-secret")
		}},
	})
}

// mockRawExpiry is the Expiry that x/oauth2 alone computes for a mockoidc
// token.
func mockRawExpiry(t *testing.T, f *fixture) time.Time {
	t.Helper()
	tok, err := f.directRefresh(t, f.login.RefreshToken)
	require.NoError(t, err)
	return tok.Expiry
}

func TestZitadelDepartures(t *testing.T) {
	departures(t, &zitadel, time.Minute, []departure{
		{"expires_in is rounded down", func(t *testing.T, f *fixture) {
			status, body := tokenCall(t, f, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.login.RefreshToken}}, true)
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, float64(59), body["expires_in"], "a 60 s token is announced as 59 s")
		}},
		{"rotation without reuse detection", func(t *testing.T, f *fixture) {
			next, err := f.directRefresh(t, f.login.RefreshToken)
			require.NoError(t, err)
			require.NotEqual(t, f.login.RefreshToken, next.RefreshToken, "rotated")
			_, err = f.directRefresh(t, f.login.RefreshToken)
			assert.Error(t, err, "the old refresh token is refused")
			_, err = f.directRefresh(t, next.RefreshToken)
			assert.NoError(t, err, "RFC 9700 §4.14.2 would revoke the new one after a reuse; it stays good")
		}},
		{"error codes and statuses follow RFC 6749", func(t *testing.T, f *fixture) {
			wrong := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.login.RefreshToken},
				"client_id": {f.cfg.ClientID}, "client_secret": {"not-the-client-secret"}}
			status, body := tokenCall(t, f, wrong, false)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, "invalid_client", body["error"])
			assert.NotContains(t, body["error_description"], "not-the-client-secret")

			f.revokeRefresh(t, f.login)
			status, body = tokenCall(t, f, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {f.login.RefreshToken}}, true)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
		}},
		{"a refresh revokes the previous access token", func(t *testing.T, f *fixture) {
			_, err := f.directRefresh(t, f.login.RefreshToken)
			require.NoError(t, err)
			st, err := f.api.validate(t.Context(), f.login.AccessToken)
			require.NoError(t, err)
			assert.False(t, st.active, "requests in flight with the old token get 401")
		}},
	})
}

// TestVersions checks that the versions the tests report are the ones
// pinned: in go.mod for a Go module, in its package-lock.json for an npm
// package.
func TestVersions(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	for _, p := range providers {
		if p.pinned == "" {
			assert.Contains(t, string(mod), p.name+" "+p.version, p.short)
			continue
		}
		raw, err := os.ReadFile(p.pinned)
		require.NoError(t, err)
		var lock struct {
			Packages map[string]struct {
				Version      string            `json:"version"`
				Dependencies map[string]string `json:"dependencies"`
			} `json:"packages"`
		}
		require.NoError(t, json.Unmarshal(raw, &lock), p.pinned)
		assert.Equal(t, p.version, lock.Packages[""].Dependencies[p.name], "%s: package.json pins the exact version", p.short)
		assert.Equal(t, p.version, lock.Packages["node_modules/"+p.name].Version, "%s: the lockfile installs it", p.short)
	}
}
