package conformance

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/dpop"
)

// proofKey makes single DPoP proofs (RFC 9449 §4.2) with a dpop.Key, for
// the tests that check on the wire what a server does with a proof, a
// nonce or its absence, one request at a time; the scenarios leave the
// proofs to the Transport.
type proofKey struct{ key *dpop.Key }

func newProofKey(t *testing.T) *proofKey { return &proofKey{newDPoPKey(t)} }

// proof is a proof for one request: htm and htu, the nonce when not
// empty, and ath when an access token is given.
func (k *proofKey) proof(t *testing.T, htm, htu, nonce, accessToken string) string {
	t.Helper()
	u, err := url.Parse(htu)
	require.NoError(t, err)
	c := dpop.Claims{Method: htm, URL: u, Nonce: nonce}
	if accessToken != "" {
		c.AccessTokenHash = dpop.Hash(accessToken)
	}
	p, err := k.key.Proof(c)
	require.NoError(t, err)
	return p
}
