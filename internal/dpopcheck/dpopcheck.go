// Package dpopcheck verifies DPoP proofs (RFC 9449 §4.3) as a server does:
// for bearertest's token endpoint and API, and for the dpop package's tests.
// It shares no code with package dpop, so that each checks the other.
package dpopcheck

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

var b64 = base64.RawURLEncoding

// Proof is a proof whose signature verified.
type Proof struct {
	Header map[string]any
	Claims map[string]any
	JKT    string // the RFC 7638 thumbprint of the header's jwk
	JTI    string
	HTM    string
	HTU    string
	IAT    int64
	ATH    string // "" when absent
	Nonce  string // "" when absent
}

// Verify parses proof, checks its form (three parts, typ dpop+jwt, a known
// alg, a public jwk with no private member, the claims jti, htm, htu and
// iat) and its signature with the header's key. It does not check the
// claims' values against a request: the caller does.
func Verify(proof string) (*Proof, error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWS in compact form")
	}
	p := &Proof{}
	for i, into := range []*map[string]any{&p.Header, &p.Claims} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("part %d is not base64url", i)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			return nil, fmt.Errorf("part %d is not a JSON object", i)
		}
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("the signature is not base64url")
	}
	if p.Header["typ"] != "dpop+jwt" {
		return nil, errors.New("typ is not dpop+jwt")
	}
	jwk, ok := p.Header["jwk"].(map[string]any)
	if !ok {
		return nil, errors.New("no jwk in the header")
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := jwk[private]; ok {
			return nil, errors.New("the jwk holds a private member")
		}
	}
	input := []byte(parts[0] + "." + parts[1])
	if p.JKT, err = verify(p.Header["alg"], jwk, input, sig); err != nil {
		return nil, err
	}
	p.JTI, _ = p.Claims["jti"].(string)
	p.HTM, _ = p.Claims["htm"].(string)
	p.HTU, _ = p.Claims["htu"].(string)
	iat, _ := p.Claims["iat"].(float64)
	p.IAT = int64(iat)
	p.ATH, _ = p.Claims["ath"].(string)
	p.Nonce, _ = p.Claims["nonce"].(string)
	if p.JTI == "" || p.HTM == "" || p.HTU == "" || p.IAT == 0 {
		return nil, errors.New("a required claim (jti, htm, htu, iat) is missing")
	}
	return p, nil
}

// verify checks sig over input with jwk for alg and returns jwk's thumbprint.
func verify(alg any, jwk map[string]any, input, sig []byte) (string, error) {
	// members decodes the base64url members named, in order.
	members := func(names ...string) ([][]byte, error) {
		out := make([][]byte, len(names))
		for i, name := range names {
			s, _ := jwk[name].(string)
			b, err := b64.DecodeString(s)
			if s == "" || err != nil {
				return nil, fmt.Errorf("jwk member %q is missing or not base64url", name)
			}
			out[i] = b
		}
		return out, nil
	}
	sum := sha256.Sum256(input)
	var required []string // the members of the RFC 7638 thumbprint, in its order
	switch alg {
	case "ES256":
		m, err := members("x", "y")
		if err != nil {
			return "", err
		}
		x, y := m[0], m[1]
		if jwk["kty"] != "EC" || jwk["crv"] != "P-256" || len(x) != 32 || len(y) != 32 {
			return "", errors.New("ES256 needs an EC P-256 jwk")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return "", errors.New("the jwk is not a P-256 point")
		}
		if len(sig) != 64 || !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return "", errors.New("the ES256 signature does not verify")
		}
		required = []string{"crv", "kty", "x", "y"}
	case "EdDSA":
		m, err := members("x")
		if err != nil {
			return "", err
		}
		if jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" || len(m[0]) != ed25519.PublicKeySize {
			return "", errors.New("EdDSA needs an OKP Ed25519 jwk")
		}
		if !ed25519.Verify(m[0], input, sig) {
			return "", errors.New("the EdDSA signature does not verify")
		}
		required = []string{"crv", "kty", "x"}
	case "PS256":
		m, err := members("n", "e")
		if err != nil {
			return "", err
		}
		n, e := m[0], m[1]
		if jwk["kty"] != "RSA" || len(e) > 4 {
			return "", errors.New("PS256 needs an RSA jwk")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			return "", errors.New("the PS256 signature does not verify")
		}
		required = []string{"e", "kty", "n"}
	default:
		return "", fmt.Errorf("alg %v is not supported", alg)
	}
	// Every member is a checked constant or base64url: none needs escaping.
	parts := make([]string, len(required))
	for i, name := range required {
		parts[i] = `"` + name + `":"` + jwk[name].(string) + `"`
	}
	canonical := "{" + strings.Join(parts, ",") + "}"
	t := sha256.Sum256([]byte(canonical))
	return b64.EncodeToString(t[:]), nil
}

// Hash is the ath of accessToken, computed here independently of package
// dpop.
func Hash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64.EncodeToString(sum[:])
}
