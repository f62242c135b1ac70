package conformance

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
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
var providers = []provider{zitadel, mock, oidcProvider}

// scenarios run against every provider, each on a fresh server.
var scenarios = []struct {
	name string
	run  func(t *testing.T, p provider)
}{
	{"login-with-pkce", loginWithPKCE},
	{"proactive-refresh", proactiveRefresh},
	{"reactive-after-revocation", reactiveAfterRevocation},
	{"reactive-after-expiry", reactiveAfterExpiry},
	{"rotation-64-concurrent", rotation64Concurrent},
	{"rotation-two-transports-one-store", rotationSharedStore},
	{"revoked-refresh-token-logs-out-once", revokedRefreshToken},
	{"wrong-client-credentials", wrongClientCredentials},
	{"reused-refresh-token-logs-out-once", reusedRefreshToken},
	{"64-concurrent-through-expiries", concurrentThroughExpiries},
	{"client-credentials", clientCredentials},
	{"logout-revokes", logoutRevokes},
	{"dpop-login-with-pkce", dpopLoginWithPKCE},
	{"dpop-nonces-at-token-endpoint-and-userinfo", dpopNonces},
	{"dpop-64-concurrent-through-expiries", dpopThroughExpiries},
	{"dpop-client-credentials", dpopClientCredentials},
	{"dpop-logout-revokes", dpopLogoutRevokes},
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
					if strings.HasPrefix(sc.name, "dpop-") && p.noDPoP != "" {
						t.Skip("unsupported: " + p.noDPoP)
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
	allSucceed(t, f, 64, c)
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
	allSucceed(t, f, 64, a, b)
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
	loggedOutOnce(t, f, c, 1)
}

// loggedOutOnce: 16 calls at once need a refresh that the server refuses
// with invalid_grant. The one shared refresh (the wantRefreshes-th that the
// server sees) ends the session: OnLogout runs exactly once, every call fails
// with a permanent error, and later calls fail fast without asking again.
func loggedOutOnce(t *testing.T, f *fixture, c *client, wantRefreshes int) {
	t.Helper()
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
	assert.Equal(t, wantRefreshes, f.grants.refreshes(), "one refresh for 16 calls")

	_, err := c.get(t.Context(), f)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut, "logged out until SetToken")
	assert.Equal(t, wantRefreshes, f.grants.refreshes(), "a logged-out Transport does not ask again")
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

// loginWithPKCE: the fixture's login went through the server's
// authorization-code flow with PKCE (S256); its access token works at the
// resource as it is, and its refresh token at the token endpoint.
func loginWithPKCE(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	require.NotEmpty(t, f.login.RefreshToken)
	assert.WithinDuration(t, time.Now().Add(longTTL), f.login.Expiry, time.Minute, "the expiry the server announced")
	c := f.newClient(t, clientOptions{})
	status, err := c.get(t.Context(), f)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Empty(t, c.refreshReasons(), "the login's token is used as it is")
	assert.Zero(t, f.grants.refreshes())
	_, err = f.directRefresh(t, f.login.RefreshToken)
	assert.NoError(t, err, "the login's refresh token is good")
}

// reusedRefreshToken: another holder of the same refresh token, with no
// shared store (a copy on another machine, or a thief), refreshes first. On
// a rotating server the Transport's refresh token is now spent, and its next
// refresh presents it again: the server refuses it (invalid_grant) and the
// session ends in exactly one logout. On a server with reuse detection the
// reuse has also revoked the other holder's new refresh token.
func reusedRefreshToken(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	c := f.newClient(t, clientOptions{})
	other, err := f.directRefresh(t, f.login.RefreshToken)
	require.NoError(t, err, "the other holder's refresh")
	f.expireAccess(t)
	loggedOutOnce(t, f, c, 2)

	_, err = f.directRefresh(t, other.RefreshToken)
	if f.reuseDetection {
		var re *oauth2.RetrieveError
		require.True(t, errors.As(err, &re), "the lineage must be revoked after the reuse, got %v", err)
		assert.Equal(t, "invalid_grant", re.ErrorCode)
	} else {
		assert.NoError(t, err, "a server without reuse detection keeps the other holder's token")
	}
}

// concurrentThroughExpiries: 64 goroutines call through one Transport for
// several lifetimes of a short access token. Every call succeeds, the
// refreshes happen one per generation (a second refresh of a rotated token
// would end the grant on a server with reuse detection), there is no logout,
// and the grant is alive at the end.
func concurrentThroughExpiries(t *testing.T, p provider) {
	f := p.start(t, soakTTL)
	c := f.newClient(t, clientOptions{})
	throughExpiries(t, f, c, f.resourceTarget(), f.hc)
}

// soakTTL is the access token lifetime of the runs through expiries.
const soakTTL = 3 * time.Second

// target is where a scenario's calls go, and how many it accepted.
type target struct {
	url      string
	accepted func() int64
}

func (f *fixture) resourceTarget() target { return target{f.api.url(), f.api.accepted.Load} }

// throughExpiries runs 64 workers through c against tg for three and a half
// lifetimes of the fixture's soakTTL tokens and checks what
// concurrentThroughExpiries says. The final check that the grant is alive
// refreshes through tokenClient, which spends the Transport's refresh
// token: it returns the token the Transport held, and c is not to be used
// after.
func throughExpiries(t *testing.T, f *fixture, c *client, tg target, tokenClient *http.Client) *oauth2.Token {
	t.Helper()
	const (
		runFor  = 3*soakTTL + soakTTL/2
		workers = 64
		pace    = 50 * time.Millisecond // per worker: bounded load on a shared machine
	)
	ctx, cancel := context.WithTimeout(t.Context(), runFor+30*time.Second)
	defer cancel()
	stop := time.Now().Add(runFor)
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for time.Now().Before(stop) {
				calls.Add(1)
				if status, err := c.call(ctx, tg.url); err != nil || status != http.StatusOK {
					failures.Add(1)
				}
				<-tick.C
			}
		})
	}
	wg.Wait()

	t.Logf("%d calls, %d refreshes", calls.Load(), f.grants.refreshes())
	assert.Zero(t, failures.Load(), "every call succeeds")
	assert.Equal(t, calls.Load(), tg.accepted(), "each call accepted once, retried or not")
	assert.GreaterOrEqual(t, f.grants.refreshes(), int(runFor/soakTTL), "a refresh for each lifetime at least")
	assert.Len(t, c.refreshReasons(), f.grants.refreshes(), "each shared refresh asked the server once")
	assert.Zero(t, c.logouts.Load(), "logged out: %v", c.lastLogoutErr())
	tok, err := c.tr.Token(t.Context())
	require.NoError(t, err)
	_, err = f.directRefreshVia(t, tokenClient, tok.RefreshToken)
	assert.NoError(t, err, "the grant is alive: the refresh token the Transport holds is good")
	return tok
}

// clientCredentials: a Transport on bearer.FromTokenSource over the client
// credentials grant starts with no token and fetches one; when the server
// expires it, 64 calls at once share one new client credentials grant.
func clientCredentials(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	require.NotNil(t, f.service, "no confidential client wired")
	c := f.newClient(t, clientOptions{refresher: f.clientCredentials()})
	status, err := c.get(t.Context(), f)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, f.grants.count("client_credentials"))
	assert.Equal(t, []bearer.Reason{bearer.ReasonNoToken}, c.refreshReasons())

	f.expireAccess(t)
	allSucceed(t, f, 64, c)
	assert.Equal(t, 2, f.grants.count("client_credentials"), "one new token for 64 calls")
	assert.Equal(t, []bearer.Reason{bearer.ReasonNoToken, bearer.ReasonRejected}, c.refreshReasons())
	assert.Zero(t, f.grants.refreshes(), "no refresh_token grant")
	assert.Zero(t, c.logouts.Load())
}

// logoutRevokes: Logout through an OAuth2Refresher with the server's
// revocation endpoint ends the session at the server too (RFC 7009): the
// server's introspection then says the refresh token is inactive, and the
// token endpoint refuses it.
func logoutRevokes(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	loggedOutAtServer(t, f, f.newClient(t, clientOptions{revoke: true}), f.login, f.hc)
}

// loggedOutAtServer: c, logged in with tok, works; after its Logout, tok's
// refresh token is inactive at the server (where its introspection knows
// refresh tokens) and refused, through hc, by its token endpoint, and c is
// logged out without having called OnLogout.
func loggedOutAtServer(t *testing.T, f *fixture, c *client, tok *oauth2.Token, hc *http.Client) {
	t.Helper()
	require.NotNil(t, f.introspect, "a server that runs this scenario introspects (else list it as unsupported)")
	require.NotEmpty(t, f.meta.Revocation, "a server that runs this scenario revokes (else list it as unsupported)")
	active := func(token string) bool {
		st, err := f.introspect(t.Context(), token)
		require.NoError(t, err)
		return st.active
	}
	status, err := c.get(t.Context(), f)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	// zitadel's example storage introspects access tokens only: there the
	// token endpoint's refusal below is the proof.
	require.Equal(t, f.introspectsRefresh, active(tok.RefreshToken), "introspection of the live refresh token")

	require.NoError(t, c.tr.Logout(t.Context()), "the local logout and the revocation both succeed")

	if f.introspectsRefresh {
		assert.False(t, active(tok.RefreshToken), "introspection: the refresh token is revoked")
	} else {
		t.Log("the server's introspection does not know refresh tokens; the token endpoint's refusal is the proof")
	}
	_, err = f.directRefreshVia(t, hc, tok.RefreshToken)
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "the token endpoint must refuse a revoked refresh token, got %v", err)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
	_, err = c.get(t.Context(), f)
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	assert.Zero(t, c.logouts.Load(), "Logout does not call OnLogout")
}
