package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// Key is a DPoP key: the private key that signs the proofs, with its public
// JWK, its thumbprint and the proofs' fixed header, computed once. A Key
// also remembers, per origin, the last nonce a server gave it (see
// [Key.Nonce]). It is safe for concurrent use. Its String and GoString show
// the algorithm and thumbprint, never the private key.
type Key struct {
	signer crypto.Signer
	alg    string // JWS "alg": ES256, EdDSA or PS256
	opts   crypto.SignerOpts
	ecSize int    // bytes of each of r and s for ES256; 0 otherwise
	sigLen int    // bytes of a signature
	jwk    []byte // the public JWK, members in RFC 7638 order
	jkt    string // its RFC 7638 thumbprint
	header []byte // base64url of the protected header, and "."
	nonces nonceCache
}

var b64 = base64.RawURLEncoding

// GenerateKey returns a new ES256 key (ECDSA on P-256), the algorithm that
// every DPoP server supports.
func GenerateKey() (*Key, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpop: generating key: %w", err)
	}
	return NewKey(priv)
}

// NewKey returns a Key that signs with s, a key the caller already holds:
// *ecdsa.PrivateKey on P-256 (ES256), ed25519.PrivateKey (EdDSA) or
// *rsa.PrivateKey of at least 2048 bits (PS256), or any crypto.Signer whose
// Public key is one of those, such as a key in a KMS or an HSM, which then
// never leaves it.
func NewKey(s crypto.Signer) (*Key, error) {
	if s == nil {
		return nil, errors.New("dpop: NewKey: the signer is nil")
	}
	k := &Key{signer: s}
	switch pub := s.Public().(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("dpop: NewKey: ECDSA curve %s is not supported, only P-256", pub.Curve.Params().Name)
		}
		k.alg, k.opts, k.ecSize, k.sigLen = "ES256", crypto.SHA256, 32, 64
		x, y, err := ecPoint(pub)
		if err != nil {
			return nil, err
		}
		k.jwk = fmt.Appendf(nil, `{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64.EncodeToString(x), b64.EncodeToString(y))
	case ed25519.PublicKey:
		k.alg, k.opts, k.sigLen = "EdDSA", crypto.Hash(0), ed25519.SignatureSize
		k.jwk = fmt.Appendf(nil, `{"crv":"Ed25519","kty":"OKP","x":"%s"}`, b64.EncodeToString(pub))
	case *rsa.PublicKey:
		if pub.N.BitLen() < 2048 {
			return nil, fmt.Errorf("dpop: NewKey: an RSA key of %d bits is too short, at least 2048 are needed", pub.N.BitLen())
		}
		k.alg, k.sigLen = "PS256", pub.Size()
		k.opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
		e := big.NewInt(int64(pub.E)).Bytes()
		k.jwk = fmt.Appendf(nil, `{"e":"%s","kty":"RSA","n":"%s"}`, b64.EncodeToString(e), b64.EncodeToString(pub.N.Bytes()))
	default:
		return nil, fmt.Errorf("dpop: NewKey: a %T key is not supported (ECDSA P-256, Ed25519 or RSA)", pub)
	}
	sum := sha256.Sum256(k.jwk)
	k.jkt = b64.EncodeToString(sum[:])
	h := fmt.Appendf(nil, `{"typ":"dpop+jwt","alg":"%s","jwk":%s}`, k.alg, k.jwk)
	k.header = append(b64.AppendEncode(nil, h), '.')
	return k, nil
}

// ecPoint returns the fixed-size coordinates of an uncompressed P-256 point.
func ecPoint(pub *ecdsa.PublicKey) (x, y []byte, err error) {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil || len(raw) != 65 {
		return nil, nil, errors.New("dpop: NewKey: the ECDSA public key is not a valid P-256 point")
	}
	return raw[1:33], raw[33:], nil
}

// Algorithm returns the JWS algorithm of the proofs: "ES256", "EdDSA" or
// "PS256".
func (k *Key) Algorithm() string { return k.alg }

// Thumbprint returns the key's JWK SHA-256 thumbprint (RFC 7638), base64url
// encoded: the value of the dpop_jkt authorization request parameter and of
// a bound token's cnf.jkt.
func (k *Key) Thumbprint() string { return k.jkt }

// PublicJWK returns the public key as a JWK (JSON), as the proofs carry it.
func (k *Key) PublicJWK() []byte { return append([]byte(nil), k.jwk...) }

// String describes k by its algorithm and thumbprint.
func (k *Key) String() string { return "dpop.Key(" + k.alg + ", jkt=" + k.jkt + ")" }

// GoString is String, so that %#v shows no private key.
func (k *Key) GoString() string { return k.String() }

// ErrNotExportable is the error of [Key.MarshalPrivate] for a key whose
// private half the process does not hold (a KMS or HSM signer).
var ErrNotExportable = errors.New("dpop: the private key cannot be exported from its signer")

// MarshalPrivate returns the private key as a PEM "PRIVATE KEY" block
// (PKCS #8), for [ParseKey]. The result is a secret: whoever holds it can
// use the tokens bound to the key. It fails with [ErrNotExportable] for a
// signer that is not one of the standard library's private keys.
func (k *Key) MarshalPrivate() ([]byte, error) {
	switch k.signer.(type) {
	case *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PrivateKey:
	default:
		return nil, ErrNotExportable
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, errors.New("dpop: the private key cannot be encoded")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey parses what [Key.MarshalPrivate] wrote: a PEM "PRIVATE KEY" block
// (PKCS #8). Its errors never quote the input.
func ParseKey(data []byte) (*Key, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`dpop: ParseKey: no PEM "PRIVATE KEY" block`)
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("dpop: ParseKey: the block is not a PKCS #8 private key")
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dpop: ParseKey: a %T key cannot sign", priv)
	}
	return NewKey(s)
}
