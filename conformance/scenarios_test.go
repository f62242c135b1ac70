package conformance

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/store"
)

// providers are the servers under test.
var providers = []provider{zitadel, mock}

// scenarios run against every provider, each on a fresh server.
var scenarios = []struct {
	name string
	run  func(t *testing.T, p provider)
}{
	{"proactive-refresh", proactiveRefresh},
	{"reactive-after-revocation", reactiveAfterRevocation},
	{"reactive-after-expiry", reactiveAfterExpiry},
	{"rotation-64-concurrent", rotation64Concurrent},
	{"rotation-two-transports-one-store", rotationSharedStore},
	{"revoked-refresh-token-logs-out-once", revokedRefreshToken},
	{"wrong-client-credentials", wrongClientCredentials},
}

func TestConformance(t *testing.T) {
	for _, p := range providers {
		t.Run(p.short, func(t *testing.T) {
			t.Logf("%s %s", p.name, p.version)
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					if why, ok := p.unsupported[sc.name]; ok {
						t.Skip("unsupported: " + why)
					}
					sc.run(t, p)
				})
			}
		})
	}
}

// longTTL outlives every scenario that does not wait for expiry.
const longTTL = time.Hour

// proactiveRefresh: a token near its expiry is refreshed before it
// expires, in the background while calls go on with it. The server's tokens
// expire on the real clock, which the Transport reads (its clock cannot be
// set from outside its package), so the test polls with a short tick until
// the new token is in use, at most a few seconds. A server that revokes the
// previous access token when it refreshes (zitadel) may refuse the one call
// that was under way with it meanwhile: that call is retried with the new
// token, without another refresh, and succeeds.
func proactiveRefresh(t *testing.T, p provider) {
	f := p.start(t, 3*time.Second)
	c := f.newClient(t, clientOptions{})
	var calls, failures atomic.Int32
	assert.Eventually(t, func() bool {
		calls.Add(1)
		if status, err := c.get(t.Context(), f); err != nil || status != http.StatusOK {
			failures.Add(1)
		}
		tok, err := c.tr.Token(t.Context())
		return err == nil && tok.AccessToken != f.login.AccessToken
	}, 10*time.Second, 50*time.Millisecond, "no new token before the old one expired")

	assert.Zero(t, failures.Load(), "every call succeeds")
	assert.LessOrEqual(t, f.api.rejected.Load(), int64(1), "at most the call under way during the refresh met a refused token")
	assert.Equal(t, int64(calls.Load()), f.api.accepted.Load(), "each call accepted once, retried or not")
	for _, r := range c.refreshReasons() {
		assert.Equal(t, bearer.ReasonExpiring, r, "no refresh for a refused token: it was retried with the new one")
	}
	assert.Equal(t, 1, f.grants.refreshes())
}

// reactiveAfterRevocation: the server revokes the access token; the next
// call is refused (401), refreshed once and retried with the new token.
func reactiveAfterRevocation(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	reactive(t, f, func(t *testing.T) { f.revokeAccess(t, f.login) })
}

// reactiveAfterExpiry: the access token expires on the server's side (its
// clock or its storage) while the client still thinks it valid.
func reactiveAfterExpiry(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	reactive(t, f, f.expireAccess)
}

func reactive(t *testing.T, f *fixture, invalidate func(t *testing.T)) {
	c := f.newClient(t, clientOptions{})
	status, err := c.get(t.Context(), f)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "the login's token works")

	invalidate(t)
	status, err = c.get(t.Context(), f)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "the call succeeds after a refresh")
	assert.Equal(t, int64(1), f.api.rejected.Load(), "one 401, for the invalidated token")
	assert.Equal(t, int64(2), f.api.accepted.Load())
	assert.Equal(t, []bearer.Reason{bearer.ReasonRejected}, c.refreshReasons())
	assert.Equal(t, 1, f.grants.refreshes())
	assert.Zero(t, c.logouts.Load())
}

// rotation64Concurrent: 64 calls at once all meet an invalid token; they
// share one refresh, so a rotating server never sees its refresh token
// twice, and all 64 succeed.
func rotation64Concurrent(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	c := f.newClient(t, clientOptions{})
	f.expireAccess(t)
	for i, r := range together(t, f, 64, c) {
		if assert.NoError(t, r.err, "call %d", i) {
			assert.Equal(t, http.StatusOK, r.status, "call %d", i)
		}
	}
	assert.Equal(t, 1, f.grants.refreshes(), "one refresh for 64 calls")
	assert.Positive(t, f.api.rejected.Load(), "the expired token was refused at least once")
	assert.Zero(t, c.logouts.Load())
	checkRotation(t, f, c)
}

// rotationSharedStore: two Transports share one store (a store.Locker), as
// two processes sharing a token would, and 64 calls through both meet an
// invalid token: still one refresh, and no invalid_grant for the loser.
func rotationSharedStore(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	shared := store.NewMemory(nil)
	a := f.newClient(t, clientOptions{store: shared})
	b := f.newClient(t, clientOptions{store: shared})
	f.expireAccess(t)
	for i, r := range together(t, f, 64, a, b) {
		if assert.NoError(t, r.err, "call %d", i) {
			assert.Equal(t, http.StatusOK, r.status, "call %d", i)
		}
	}
	assert.Equal(t, 1, f.grants.refreshes(), "one refresh for both Transports")
	assert.Zero(t, a.logouts.Load()+b.logouts.Load())
	checkRotation(t, f, a)
}

// checkRotation: with a rotating server the client holds the new refresh
// token and the old one is dead (so a second refresh with it would have
// failed); with a server that does not rotate, the old one is kept.
func checkRotation(t *testing.T, f *fixture, c *client) {
	t.Helper()
	tok, err := c.tr.Token(t.Context())
	require.NoError(t, err)
	if !f.rotates {
		assert.Equal(t, f.login.RefreshToken, tok.RefreshToken, "a server that does not rotate keeps the refresh token")
		return
	}
	assert.NotEqual(t, f.login.RefreshToken, tok.RefreshToken, "the server rotated the refresh token")
	_, err = f.directRefresh(t, f.login.RefreshToken)
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "the old refresh token must be refused, got %v", err)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
}

// revokedRefreshToken: the server revokes the refresh token; 16 calls at
// once need a refresh, the one shared refresh gets invalid_grant, OnLogout
// runs exactly once and every call fails with a permanent error. Later calls
// fail fast without asking the server again.
func revokedRefreshToken(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	c := f.newClient(t, clientOptions{})
	f.revokeRefresh(t, f.login)
	for i, r := range together(t, f, 16, c) {
		require.Error(t, r.err, "call %d", i)
		assert.ErrorIs(t, r.err, bearer.ErrLoggedOut, "call %d", i)
		re := refreshError(t, r.err)
		assert.True(t, re.Permanent, "call %d", i)
		assert.Equal(t, "invalid_grant", re.Code, "call %d", i)
		assertNoTokenIn(t, r.err, f.login)
	}
	assert.Equal(t, int32(1), c.logouts.Load(), "OnLogout runs once")
	assert.Equal(t, "invalid_grant", refreshError(t, c.lastLogoutErr()).Code)
	assert.Equal(t, 1, f.grants.refreshes(), "one refresh for 16 calls")

	_, err := c.get(t.Context(), f)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut, "logged out until SetToken")
	assert.Equal(t, 1, f.grants.refreshes(), "a logged-out Transport does not ask again")
	assert.Equal(t, int32(1), c.logouts.Load())
}

// wrongClientCredentials: a refresh whose client secret is wrong fails at
// once with a permanent, clear error that names the cause and holds no
// token or secret; the refresh token itself stays good.
func wrongClientCredentials(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	bad := *f.cfg
	bad.ClientSecret = "not-the-client-secret"
	c := f.newClient(t, clientOptions{cfg: &bad})
	f.expireAccess(t)

	_, err := c.get(t.Context(), f)
	require.Error(t, err)
	re := refreshError(t, err)
	assert.True(t, re.Permanent, "a rejected client is permanent")
	assert.Equal(t, "invalid_client", re.Code)
	assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
	assert.Contains(t, err.Error(), "invalid_client", "the message names the cause")
	assertNoTokenIn(t, err, f.login)
	assert.NotContains(t, err.Error(), f.cfg.ClientSecret)
	assert.Equal(t, 1, f.grants.refreshes(), "a permanent failure is not retried")
	assert.Equal(t, int32(1), c.logouts.Load())

	_, err = f.directRefresh(t, f.login.RefreshToken)
	assert.NoError(t, err, "the refresh token was not spent by the refused client")
}
