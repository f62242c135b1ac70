package dpop

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/seamlessauth/bearer/internal/challenge"
)

// Hash returns the value of a proof's "ath" claim for accessToken: the
// base64url encoding of its SHA-256 (RFC 9449 §4.2).
func Hash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return b64.EncodeToString(sum[:])
}

// Claims are the variable parts of one proof.
type Claims struct {
	// Method is the request's method (the "htm" claim).
	Method string
	// URL is the request's URL; the "htu" claim is its scheme, host and
	// path, without query or fragment (see [HTU]).
	URL *url.URL
	// AccessTokenHash is the "ath" claim, [Hash] of the access token the
	// request carries; empty for a request without one (a token request).
	AccessTokenHash string
	// Nonce is the "nonce" claim, the last nonce the server gave; empty for
	// none.
	Nonce string
	// IssuedAt is the "iat" claim; zero means now.
	IssuedAt time.Time
}

// Proof returns a new DPoP proof (a JWT of type dpop+jwt) for c, with a
// random jti of 128 bits. Each call signs once; nothing else is computed
// that the Key has not computed already.
func (k *Key) Proof(c Claims) (string, error) {
	if c.URL == nil {
		return "", errors.New("dpop: Proof: no URL")
	}
	if !challenge.IsToken(c.Method) {
		return "", errors.New("dpop: Proof: the method is not an HTTP token")
	}
	return k.proof(c.Method, HTU(c.URL), c.AccessTokenHash, c.Nonce, c.IssuedAt)
}

// proof is Proof with the htu claim already built.
func (k *Key) proof(method, htu, ath, nonce string, iat time.Time) (string, error) {
	if iat.IsZero() {
		iat = time.Now()
	}
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	claims := appendClaims((*buf)[:0], method, htu, ath, nonce, iat)
	*buf = claims
	out := make([]byte, 0, len(k.header)+b64.EncodedLen(len(claims))+1+b64.EncodedLen(k.sigLen))
	out = append(out, k.header...)
	out = b64.AppendEncode(out, claims)
	sig, err := k.sign(out)
	if err != nil {
		return "", err
	}
	out = append(out, '.')
	out = b64.AppendEncode(out, sig)
	return string(out), nil
}

// buffers holds the scratch space of the claims' JSON.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendClaims appends the proof's claims as JSON.
func appendClaims(b []byte, method, htu, ath, nonce string, iat time.Time) []byte {
	var jti [16]byte
	rand.Read(jti[:]) // never fails (crypto/rand)
	b = append(b, `{"jti":"`...)
	b = b64.AppendEncode(b, jti[:])
	b = append(b, `","htm":`...)
	b = appendString(b, method)
	b = append(b, `,"htu":`...)
	b = appendString(b, htu)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, iat.Unix(), 10)
	if ath != "" {
		b = append(b, `,"ath":`...)
		b = appendString(b, ath)
	}
	if nonce != "" {
		b = append(b, `,"nonce":`...)
		b = appendString(b, nonce)
	}
	return append(b, '}')
}

// sign signs the JWS signing input with the key's algorithm and returns the
// JWS signature: R || S for ES256.
func (k *Key) sign(input []byte) ([]byte, error) {
	digest := input
	if k.opts.HashFunc() == crypto.SHA256 {
		sum := sha256.Sum256(input)
		digest = sum[:]
	}
	sig, err := k.signer.Sign(rand.Reader, digest, k.opts)
	if err != nil {
		return nil, fmt.Errorf("dpop: signing the proof: %w", err)
	}
	if k.ecSize == 0 {
		return sig, nil
	}
	raw, ok := derToRaw(sig, k.ecSize)
	if !ok {
		return nil, errors.New("dpop: signing the proof: the signer returned a malformed ECDSA signature")
	}
	return raw, nil
}

// derToRaw converts an ASN.1 DER ECDSA signature, SEQUENCE { INTEGER r,
// INTEGER s }, to r || s, each left-padded to size bytes.
func derToRaw(der []byte, size int) ([]byte, bool) {
	if len(der) < 2 || der[0] != 0x30 || int(der[1]) != len(der)-2 || der[1] >= 0x80 {
		return nil, false
	}
	rest := der[2:]
	out := make([]byte, 2*size)
	for i := range 2 {
		if len(rest) < 2 || rest[0] != 0x02 || rest[1] >= 0x80 || int(rest[1]) > len(rest)-2 {
			return nil, false
		}
		n := int(rest[1])
		v := rest[2 : 2+n]
		rest = rest[2+n:]
		for len(v) > 0 && v[0] == 0 {
			v = v[1:]
		}
		if len(v) > size {
			return nil, false
		}
		copy(out[(i+1)*size-len(v):(i+1)*size], v)
	}
	return out, len(rest) == 0
}

// HTU returns the "htu" claim for u (RFC 9449 §4.2): its scheme and host in
// lower case, the port only if it is not the scheme's default, and its
// path as escaped in u ("/" if empty); no user info, query or fragment.
// It names the target URI as net/http sends it: without an IPv6 zone, which
// stays out of the Host header, with a host that is not ASCII in Punycode,
// as the Host header has it, and with the path of an opaque URL, which is
// the request target.
func HTU(u *url.URL) string {
	htu, _ := htuOrigin(u)
	return htu
}

// htuOrigin returns HTU(u) and Origin(u), a prefix of it.
func htuOrigin(u *url.URL) (htu, origin string) {
	path := u.EscapedPath()
	if u.Opaque != "" {
		if a, ok := absoluteOpaque(u); ok {
			u = a
			path = a.EscapedPath()
		} else {
			path, _, _ = strings.Cut(u.Opaque, "?")
		}
	}
	origin = Origin(u)
	if !strings.HasPrefix(path, "/") { // "" or a path built by hand without its slash
		path = "/" + path
	}
	htu = origin + path
	return htu, htu[:len(origin)]
}

// absoluteOpaque returns the URL that u's Opaque names when it is the
// absolute form "//host/path", which net/http sends as the request target.
func absoluteOpaque(u *url.URL) (*url.URL, bool) {
	if !strings.HasPrefix(u.Opaque, "//") {
		return nil, false
	}
	a, err := url.Parse(u.Scheme + ":" + u.Opaque)
	if err != nil || a.Opaque != "" {
		return nil, false
	}
	return a, true
}

// Origin returns u's scheme and host as in [HTU]: "https://api.example.com"
// or "http://127.0.0.1:8080". Nonces are kept per origin.
func Origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(asciiHost(u.Hostname()))
	if strings.Contains(host, ":") {
		if i := strings.IndexByte(host, '%'); i >= 0 { // an IPv6 zone
			host = host[:i]
		}
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && port != defaultPort(scheme) {
		host += ":" + port
	}
	return scheme + "://" + host
}

func defaultPort(scheme string) string {
	switch scheme {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD, as encoding/json
// writes it (without its HTML escaping, which a JWT has no need of).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
