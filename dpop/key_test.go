package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keys returns one key of each supported algorithm.
func keys(t testing.TB) map[string]*Key {
	t.Helper()
	es, err := GenerateKey()
	require.NoError(t, err)
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	ed, err := NewKey(edPriv)
	require.NoError(t, err)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ps, err := NewKey(rsaPriv)
	require.NoError(t, err)
	return map[string]*Key{"ES256": es, "EdDSA": ed, "PS256": ps}
}

func TestEveryAlgorithmSignsAVerifiableProof(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1/things")
	for alg, k := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			assert.Equal(t, alg, k.Algorithm())
			proof, err := k.Proof(Claims{Method: "GET", URL: u})
			require.NoError(t, err)
			d := verifyProof(t, proof)
			assert.Equal(t, alg, d.Header["alg"])
			var jwk map[string]any
			require.NoError(t, json.Unmarshal(k.PublicJWK(), &jwk))
			assert.Equal(t, jwk, d.Header["jwk"], "the header's key is the Key's public JWK")
			assert.Equal(t, d.JKT, k.Thumbprint(), "the thumbprint, computed apart, agrees")
		})
	}
}

// The RFC 7638 §3.1 example: the thumbprint of its RSA key.
func TestThumbprintOfRFC7638Example(t *testing.T) {
	n := "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	jwk := []byte(`{"e":"AQAB","kty":"RSA","n":"` + n + `"}`)
	sum := sha256.Sum256(jwk)
	require.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", b64.EncodeToString(sum[:]))

	raw, err := b64.DecodeString(n)
	require.NoError(t, err)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(raw), E: 65537}
	k, err := NewKey(publicOnly{pub})
	require.NoError(t, err)
	assert.Equal(t, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", k.Thumbprint())
}

// publicOnly is a crypto.Signer that cannot sign: the shape of a key that
// lives in an HSM, as far as NewKey sees it.
type publicOnly struct{ pub crypto.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.pub }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, fmt.Errorf("cannot sign here")
}

func TestNewKeyRefusesWhatItCannotUse(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	for name, s := range map[string]crypto.Signer{
		"nil":      nil,
		"P-384":    p384,
		"RSA-1024": small,
	} {
		_, err := NewKey(s)
		assert.Error(t, err, name)
	}
}

func TestMarshalAndParseKeepTheKey(t *testing.T) {
	for alg, k := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			data, err := k.MarshalPrivate()
			require.NoError(t, err)
			back, err := ParseKey(data)
			require.NoError(t, err)
			assert.Equal(t, k.Thumbprint(), back.Thumbprint())
			assert.Equal(t, alg, back.Algorithm())
		})
	}
	_, err := ParseKey([]byte("not a key"))
	assert.Error(t, err)
	opaque, err := NewKey(publicOnly{pub: mustP256(t).Public()})
	require.NoError(t, err)
	_, err = opaque.MarshalPrivate()
	assert.ErrorIs(t, err, ErrNotExportable)
}

func mustP256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func TestKeyPrintsNoPrivateKey(t *testing.T) {
	priv := mustP256(t)
	k, err := NewKey(priv)
	require.NoError(t, err)
	raw, err := priv.Bytes()
	require.NoError(t, err)
	forms := []string{b64.EncodeToString(raw), hex.EncodeToString(raw), new(big.Int).SetBytes(raw).String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, k)
		for _, f := range forms {
			assert.NotContains(t, out, f, verb)
		}
		assert.Contains(t, out, k.Thumbprint(), verb)
	}
}
