package bearertest_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestIssue(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, bearertest.Options{AccessTTL: 10 * time.Minute, Now: clock.Now})

	tok := srv.Issue()

	assert.True(t, strings.HasPrefix(tok.AccessToken, bearertest.AccessPrefix))
	assert.True(t, strings.HasPrefix(tok.RefreshToken, bearertest.RefreshPrefix))
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.Equal(t, clock.Now().Add(10*time.Minute), tok.Expiry)
	assert.NotEqual(t, tok.AccessToken, srv.Issue().AccessToken, "tokens are random")
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
	assert.Equal(t, int64(2), srv.Stats().Issued)
}

func TestRefreshWithoutRotation(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	cfg := headerConfig(srv)
	rt := srv.Issue().RefreshToken

	seen := map[string]bool{}
	for range 3 {
		tok, err := refreshWith(t, srv, cfg, rt)
		require.NoError(t, err)
		assert.Equal(t, rt, tok.RefreshToken, "x/oauth2 keeps the refresh token the server did not replace")
		assert.False(t, seen[tok.AccessToken], "each refresh mints a new access token")
		seen[tok.AccessToken] = true
		assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute)
		assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "/x", tok.AccessToken, "").status)
	}
	for access := range seen {
		assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", access, "").status,
			"older access tokens of the lineage stay valid")
	}
	st := srv.Stats()
	assert.Equal(t, int64(3), st.Refreshes)
	assert.Equal(t, int64(4), st.Issued)
	assert.Zero(t, st.RefreshFailures)
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name           string
		reuseDetection bool
		wantReuse      int64
		wantNewWorks   bool // after the reuse, the newest tokens still work
	}{
		{name: "rotation only", reuseDetection: false, wantReuse: 0, wantNewWorks: true},
		{name: "with reuse detection", reuseDetection: true, wantReuse: 1, wantNewWorks: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: tt.reuseDetection})
			cfg := headerConfig(srv)
			first := srv.Issue()

			second, err := refreshWith(t, srv, cfg, first.RefreshToken)
			require.NoError(t, err)
			require.NotEqual(t, first.RefreshToken, second.RefreshToken, "rotation issues a new refresh token")

			_, err = refreshWith(t, srv, cfg, first.RefreshToken)
			var rerr *oauth2.RetrieveError
			require.ErrorAs(t, err, &rerr)
			assert.Equal(t, "invalid_grant", rerr.ErrorCode)
			assert.Equal(t, http.StatusBadRequest, rerr.Response.StatusCode)

			_, err = refreshWith(t, srv, cfg, second.RefreshToken)
			assert.Equal(t, tt.wantNewWorks, err == nil, "newest refresh token: %v", err)
			wantStatus := http.StatusUnauthorized
			if tt.wantNewWorks {
				wantStatus = http.StatusOK
			}
			assert.Equal(t, wantStatus, callAPI(t, srv, http.MethodGet, "", second.AccessToken, "").status)
			assert.Equal(t, wantStatus, callAPI(t, srv, http.MethodGet, "", first.AccessToken, "").status)
			assert.Equal(t, tt.wantReuse, srv.Stats().ReuseDetections)

			other := srv.Issue()
			_, err = refreshWith(t, srv, cfg, other.RefreshToken)
			assert.NoError(t, err, "other lineages are not affected")
		})
	}
}

func TestConcurrentRotationHasOneWinner(t *testing.T) {
	const n = 20
	tests := []struct {
		name           string
		reuseDetection bool
		wantReuse      int64
	}{
		{name: "rotation only", wantReuse: 0},
		{name: "with reuse detection", reuseDetection: true, wantReuse: n - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{Rotate: true, ReuseDetection: tt.reuseDetection})
			rt := srv.Issue().RefreshToken

			statuses := make(chan int, n)
			start := make(chan struct{})
			for range n {
				go func() {
					<-start
					resp, err := srv.Client().Post(srv.RefreshURL, "application/json",
						strings.NewReader(`{"token":"`+rt+`"}`))
					if err != nil {
						statuses <- 0
						return
					}
					resp.Body.Close()
					statuses <- resp.StatusCode
				}()
			}
			close(start)
			count := map[int]int{}
			for range n {
				count[<-statuses]++
			}
			assert.Equal(t, map[int]int{http.StatusOK: 1, http.StatusUnauthorized: n - 1}, count)
			st := srv.Stats()
			assert.Equal(t, int64(1), st.Refreshes)
			assert.Equal(t, int64(n-1), st.RefreshFailures)
			assert.Equal(t, tt.wantReuse, st.ReuseDetections)
		})
	}
}

func TestAccessExpiry(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, bearertest.Options{AccessTTL: time.Minute, Now: clock.Now})
	tok := srv.Issue()

	clock.Advance(time.Minute - time.Second)
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)

	clock.Advance(time.Second)
	r := callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error_description="access token expired"`)

	fresh, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
	require.NoError(t, err, "a refresh token without RefreshTTL does not expire")
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", fresh.AccessToken, "").status)
}

func TestRefreshExpiry(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, bearertest.Options{RefreshTTL: time.Hour, Rotate: true, Now: clock.Now})
	cfg := headerConfig(srv)
	tok := srv.Issue()

	clock.Advance(59 * time.Minute)
	tok, err := refreshWith(t, srv, cfg, tok.RefreshToken)
	require.NoError(t, err)

	clock.Advance(59 * time.Minute)
	tok, err = refreshWith(t, srv, cfg, tok.RefreshToken)
	require.NoError(t, err, "a rotated refresh token gets a lifetime of its own")

	clock.Advance(time.Hour)
	_, err = refreshWith(t, srv, cfg, tok.RefreshToken)
	var rerr *oauth2.RetrieveError
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, "invalid_grant", rerr.ErrorCode)
	assert.Equal(t, "refresh token expired", rerr.ErrorDescription)
}

func TestRevokeAccessTokens(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	tok := srv.Issue()
	other := srv.Issue()

	srv.RevokeAccessTokens()

	for _, access := range []string{tok.AccessToken, other.AccessToken} {
		r := callAPI(t, srv, http.MethodGet, "", access, "")
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	}
	fresh, err := refreshWith(t, srv, headerConfig(srv), tok.RefreshToken)
	require.NoError(t, err, "refresh tokens survive")
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", fresh.AccessToken, "").status)
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", srv.Issue().AccessToken, "").status)
}

func TestRevokeRefreshTokens(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	cfg := headerConfig(srv)
	a, b := srv.Issue(), srv.Issue()

	srv.RevokeRefreshTokens()

	for _, tok := range []*oauth2.Token{a, b} {
		_, err := refreshWith(t, srv, cfg, tok.RefreshToken)
		var rerr *oauth2.RetrieveError
		require.ErrorAs(t, err, &rerr)
		assert.Equal(t, "invalid_grant", rerr.ErrorCode)
		assert.Equal(t, http.StatusUnauthorized, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
	}
	later := srv.Issue()
	_, err := refreshWith(t, srv, cfg, later.RefreshToken)
	assert.NoError(t, err, "a login after the revocation works")
	assert.Equal(t, int64(2), srv.Stats().RefreshFailures)
}

func TestRevokeLineage(t *testing.T) {
	srv := newServer(t, bearertest.Options{Rotate: true})
	cfg := headerConfig(srv)
	first := srv.Issue()
	second, err := refreshWith(t, srv, cfg, first.RefreshToken)
	require.NoError(t, err)
	other := srv.Issue()

	srv.RevokeLineage(first.RefreshToken) // a retired token still names its lineage
	srv.RevokeLineage("rt_unknown")       // ignored

	_, err = refreshWith(t, srv, cfg, second.RefreshToken)
	assert.Error(t, err)
	assert.Equal(t, http.StatusUnauthorized, callAPI(t, srv, http.MethodGet, "", second.AccessToken, "").status)
	_, err = refreshWith(t, srv, cfg, other.RefreshToken)
	assert.NoError(t, err)
	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", other.AccessToken, "").status)
}

func TestOnTokenHoldsRefresh(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	arrived := make(chan string, 1)
	release := make(chan struct{})
	srv.OnToken(func(r *http.Request) {
		arrived <- r.URL.Path
		<-release
	})
	rt := srv.Issue().RefreshToken

	done := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Post(srv.RefreshURL, "application/json", strings.NewReader(`{"token":"`+rt+`"}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		done <- err
	}()

	assert.Equal(t, "/refresh", <-arrived)
	assert.Zero(t, srv.Stats().Refreshes, "the refresh is held by the hook")
	close(release)
	assert.NoError(t, <-done)
	assert.Equal(t, int64(1), srv.Stats().Refreshes)

	srv.OnToken(nil)
	assert.Equal(t, http.StatusOK, refreshJSON(t, srv, rt).status, "hook removed")
}
