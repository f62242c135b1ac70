package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/dpop"
)

// The dpop- scenarios run on servers with DPoP (RFC 9449), configured to
// require their nonces. Their calls go to the server's own userinfo
// endpoint, which checks the proofs and asks for nonces as a DPoP resource
// server does, or to the rig's resource, which checks proofs and binding
// too (see resource.serve).

// dpopLoginWithPKCE: the login's code exchange carries proofs of a key
// (through dpop.Key.Client), so the server binds the tokens to it. A
// Transport with the key uses the login's token as it is, at userinfo and
// at the rig's resource, and the refresh token is good only with a proof.
func dpopLoginWithPKCE(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	key := newDPoPKey(t)
	tok := f.dpopLogin(t, key)
	assert.Equal(t, "DPoP", tok.TokenType, "the server bound the token")
	c := f.newClient(t, clientOptions{dpop: key, login: tok})
	for _, u := range []string{f.meta.Userinfo, f.api.url()} {
		status, err := c.call(t.Context(), u)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status, u)
	}
	assert.Empty(t, c.refreshReasons(), "the login's token is used as it is")

	_, err := f.directRefresh(t, tok.RefreshToken)
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "a bound refresh token without a proof must be refused, got %v", err)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
	_, err = f.directRefreshVia(t, key.Client(f.hc), tok.RefreshToken)
	assert.NoError(t, err, "and is good with one")
}

// dpopNonces: the server asks for a nonce once at each place that does not
// have one yet. The login's exchange is refused once (400 use_dpop_nonce)
// and sent again with the nonce. A Transport whose Key holds the same
// private key but no nonce yet is refused once at userinfo (401 with a DPoP
// challenge, use_dpop_nonce) and retried with it; later calls carry it. The
// nonce from userinfo then serves the token endpoint: the refresh after the
// server expires the token goes through at the first try.
func dpopNonces(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	loginKey, err := dpop.NewKey(signer)
	require.NoError(t, err)
	before := f.grants.count("authorization_code") // the fixture's own login
	tok := f.dpopLogin(t, loginKey)
	assert.Equal(t, 2, f.grants.count("authorization_code")-before, "the exchange is refused once for want of a nonce, then sent with it")

	key, err := dpop.NewKey(signer) // the same key, with no nonce yet
	require.NoError(t, err)
	c := f.newClient(t, clientOptions{dpop: key, login: tok})
	for range 2 {
		status, err := c.call(t.Context(), f.meta.Userinfo)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	assert.Equal(t, int64(1), f.userinfo.nonce.Load(), "userinfo asked for a nonce once")
	assert.Equal(t, int64(2), f.userinfo.ok.Load())

	f.expireAccess(t)
	status, err := c.call(t.Context(), f.meta.Userinfo)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, int64(1), f.userinfo.otherRejected.Load(), "the expired token, refused with invalid_token")
	assert.Equal(t, []bearer.Reason{bearer.ReasonRejected}, c.refreshReasons())
	assert.Equal(t, 1, f.grants.refreshes(), "the token endpoint took userinfo's nonce: no second try")
	assert.Equal(t, int64(1), f.userinfo.nonce.Load())
}

// dpopThroughExpiries is concurrentThroughExpiries with DPoP-bound tokens,
// against userinfo, which checks each proof and its nonce.
func dpopThroughExpiries(t *testing.T, p provider) {
	f := p.start(t, soakTTL)
	key := newDPoPKey(t)
	c := f.newClient(t, clientOptions{dpop: key, login: f.dpopLogin(t, key)})
	tok := throughExpiries(t, f, c, target{f.meta.Userinfo, f.userinfo.ok.Load}, key.Client(f.hc))
	assert.Equal(t, "DPoP", tok.TokenType, "every refresh stayed bound")
}

// dpopClientCredentials is clientCredentials with DPoP: the client
// credentials requests carry proofs, the first one is refused once for
// want of a nonce, the tokens are bound and sent with proofs, and 64 calls
// after the server expires the token share one new token, whose request
// carries the nonce at once.
func dpopClientCredentials(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	require.NotNil(t, f.service, "no confidential client wired")
	c := f.newClient(t, clientOptions{refresher: f.clientCredentials(), dpop: newDPoPKey(t)})
	status, err := c.get(t.Context(), f)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	tok, err := c.tr.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "DPoP", tok.TokenType, "the server bound the token")
	assert.Equal(t, 2, f.grants.count("client_credentials"), "refused once for want of a nonce, then sent with it")

	f.expireAccess(t)
	allSucceed(t, f, 64, c)
	assert.Equal(t, 3, f.grants.count("client_credentials"), "one new token for 64 calls, with the nonce at once")
	assert.Equal(t, []bearer.Reason{bearer.ReasonNoToken, bearer.ReasonRejected}, c.refreshReasons())
	assert.Zero(t, c.logouts.Load())
}

func newDPoPKey(t *testing.T) *dpop.Key {
	t.Helper()
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	return key
}

// dpopLogoutRevokes: logoutRevokes for a DPoP-bound login; the revocation
// request goes through the Transport's token client, with a proof.
func dpopLogoutRevokes(t *testing.T, p provider) {
	f := p.start(t, longTTL)
	key := newDPoPKey(t)
	tok := f.dpopLogin(t, key)
	require.Equal(t, "DPoP", tok.TokenType)
	loggedOutAtServer(t, f, f.newClient(t, clientOptions{dpop: key, login: tok, revoke: true}), tok, key.Client(f.hc))
}
