package bearertest_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestAPIChallenges(t *testing.T) {
	tests := []struct {
		name          string
		authorization string
		wantChallenge string
	}{
		{name: "missing", wantChallenge: `Bearer realm="bearertest"`},
		{name: "other scheme", authorization: "Basic Zm9vOmJhcg==", wantChallenge: `Bearer realm="bearertest"`},
		{name: "unknown token", authorization: "Bearer at_nope",
			wantChallenge: `Bearer realm="bearertest", error="invalid_token", error_description="unknown access token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.APIURL, nil)
			require.NoError(t, err)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}

			r := do(t, srv, req)

			assert.Equal(t, http.StatusUnauthorized, r.status)
			assert.Equal(t, tt.wantChallenge, r.header.Get("WWW-Authenticate"))
			st := srv.Stats()
			assert.Equal(t, int64(1), st.APIRequests)
			assert.Equal(t, int64(1), st.APIUnauthorized)
		})
	}
}

func TestAPIValid(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	access := srv.Issue().AccessToken

	tests := []struct {
		method, path, body string
	}{
		{http.MethodGet, "", ""},
		{http.MethodPost, "/items/7", `{"name":"seven"}`},
		{http.MethodDelete, "/items/7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := callAPI(t, srv, tt.method, tt.path, access, tt.body)

			require.Equal(t, http.StatusOK, r.status)
			body := r.json(t)
			assert.Equal(t, true, body["ok"])
			assert.Equal(t, tt.method, body["method"])
			assert.Equal(t, "/api"+tt.path, body["path"])
			assert.InDelta(t, len(tt.body), body["bodyBytes"], 0)
		})
	}
	assert.Zero(t, srv.Stats().APIUnauthorized)
}

func TestAPIEcho(t *testing.T) {
	srv := newServer(t, bearertest.Options{})

	r := callAPI(t, srv, http.MethodPut, "/echo", srv.Issue().AccessToken, "hello, body")

	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "hello, body", string(r.body))
}

func TestAPIConcurrent(t *testing.T) {
	const n = 200
	srv := newServer(t, bearertest.Options{})
	good := srv.Issue().AccessToken

	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := range n {
		access := good
		if i%4 == 0 {
			access = "at_bad"
		}
		wg.Go(func() {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.APIURL+"/load", strings.NewReader("x"))
			if err != nil {
				statuses <- 0
				return
			}
			req.Header.Set("Authorization", "Bearer "+access)
			resp, err := srv.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	assert.Equal(t, map[int]int{http.StatusOK: n * 3 / 4, http.StatusUnauthorized: n / 4}, count)
	st := srv.Stats()
	assert.Equal(t, int64(n), st.APIRequests)
	assert.Equal(t, int64(n/4), st.APIUnauthorized)
}

func TestErrorsNeverCarryTokens(t *testing.T) {
	srv := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: true})
	tok := srv.Issue()
	require.Equal(t, http.StatusOK, refreshJSON(t, srv, tok.RefreshToken).status)

	answers := []reply{
		refreshJSON(t, srv, tok.RefreshToken), // reuse
		callAPI(t, srv, http.MethodGet, "", tok.AccessToken, ""),
	}
	for _, r := range answers {
		require.NotEqual(t, http.StatusOK, r.status)
		text := string(r.body) + r.header.Get("WWW-Authenticate")
		assert.NotContains(t, text, tok.AccessToken)
		assert.NotContains(t, text, tok.RefreshToken)
		assert.NotContains(t, text, tok.RefreshToken[len(bearertest.RefreshPrefix):], "not even without its prefix")
	}
}
