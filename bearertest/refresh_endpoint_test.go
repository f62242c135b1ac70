package bearertest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestRefreshEndpoint(t *testing.T) {
	tests := []struct {
		name            string
		opts            bearertest.Options
		wantNewRefresh  bool
		wantOldWorks    bool
		wantReuse       int64
		wantNewWorksEnd bool // the refresh token from the first refresh, after the old one was presented again
	}{
		{name: "no rotation", wantOldWorks: true, wantNewWorksEnd: true},
		{name: "rotation", opts: bearertest.Options{Rotate: true},
			wantNewRefresh: true, wantNewWorksEnd: true},
		{name: "rotation with reuse detection", opts: bearertest.Options{Rotate: true, ReuseDetection: true},
			wantNewRefresh: true, wantReuse: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			rt := srv.Issue().RefreshToken

			r := refreshJSON(t, srv, rt)

			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
			body := r.json(t)
			access, _ := body["accessToken"].(string)
			assert.True(t, strings.HasPrefix(access, bearertest.AccessPrefix))
			assert.InDelta(t, 3600, body["expiresIn"], 0)
			newRT, _ := body["refreshToken"].(string)
			assert.Equal(t, tt.wantNewRefresh, newRT != "")
			if newRT == "" {
				newRT = rt
			}
			assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", access, "").status)

			again := refreshJSON(t, srv, rt)
			assert.Equal(t, tt.wantOldWorks, again.status == http.StatusOK)
			if !tt.wantOldWorks {
				assert.Equal(t, http.StatusUnauthorized, again.status)
				assert.Equal(t, "invalid_grant", again.json(t)["error"])
			}
			assert.Equal(t, tt.wantNewWorksEnd, refreshJSON(t, srv, newRT).status == http.StatusOK)
			assert.Equal(t, tt.wantReuse, srv.Stats().ReuseDetections)
		})
	}
}

func TestRefreshEndpointBadRequests(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantError  string
	}{
		{name: "unknown token", body: `{"token":"rt_nope"}`, wantStatus: http.StatusUnauthorized, wantError: "invalid_grant"},
		{name: "missing token", body: `{}`, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "not JSON", body: `token=x`, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})

			r := postRefresh(t, srv, tt.body)

			assert.Equal(t, tt.wantStatus, r.status)
			assert.Equal(t, tt.wantError, r.json(t)["error"])
			st := srv.Stats()
			assert.Equal(t, int64(1), st.TokenRequests)
			assert.Equal(t, int64(1), st.RefreshFailures)
			assert.Zero(t, st.Refreshes)
		})
	}
}
