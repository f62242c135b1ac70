package dpop

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProofClaims(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	u, _ := url.Parse("https://API.example.com:443/a%20b/c?q=secret#frag")
	iat := time.Unix(1_700_000_000, 0)
	proof, err := k.Proof(Claims{Method: "POST", URL: u, AccessTokenHash: Hash("at-1"), Nonce: "n-1", IssuedAt: iat})
	require.NoError(t, err)
	d := verifyProof(t, proof)
	assert.Equal(t, "POST", d.Claims["htm"])
	assert.Equal(t, "https://api.example.com/a%20b/c", d.Claims["htu"], "no query, fragment or default port")
	assert.Equal(t, float64(1_700_000_000), d.Claims["iat"])
	assert.Equal(t, "n-1", d.Claims["nonce"])
	// ath is base64url(SHA-256("at-1")), computed independently.
	assert.Equal(t, "R8PYaIQdcYEdkSc9TeGyiUqSAedmCQuOQImPRh1E3HI", d.Claims["ath"])
	jti, _ := d.Claims["jti"].(string)
	raw, err := b64.DecodeString(jti)
	require.NoError(t, err)
	assert.Len(t, raw, 16, "128 random bits")

	bare, err := k.Proof(Claims{Method: "GET", URL: u})
	require.NoError(t, err)
	d = verifyProof(t, bare)
	assert.NotContains(t, d.Claims, "ath", "no access token, no ath")
	assert.NotContains(t, d.Claims, "nonce", "no nonce, no nonce claim")
	assert.InDelta(t, float64(time.Now().Unix()), d.Claims["iat"], 5, "iat defaults to now")
}

func TestJTINeverRepeats(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	u, _ := url.Parse("https://api.example.com/")
	seen := map[string]bool{}
	for range 2000 {
		proof, err := k.Proof(Claims{Method: "GET", URL: u})
		require.NoError(t, err)
		jti := verifyProof(t, proof).Claims["jti"].(string)
		require.False(t, seen[jti], "jti %s repeated", jti)
		seen[jti] = true
	}
}

func TestHTU(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.example.com/v1", "https://api.example.com/v1"},
		{"HTTPS://API.Example.COM/V1", "https://api.example.com/V1"},
		{"https://api.example.com", "https://api.example.com/"},
		{"https://api.example.com:443/x", "https://api.example.com/x"},
		{"http://api.example.com:80/x", "http://api.example.com/x"},
		{"https://api.example.com:8443/x", "https://api.example.com:8443/x"},
		{"http://127.0.0.1:8080/x?y=1", "http://127.0.0.1:8080/x"},
		{"https://user:pw@api.example.com/x", "https://api.example.com/x"},
		{"https://[::1]:8443/x#f", "https://[::1]:8443/x"},
		{"https://[::1]:443/x", "https://[::1]/x"},
		{"https://api.example.com/a%2Fb", "https://api.example.com/a%2Fb"},
		{"https://api.example.com/caf%C3%A9", "https://api.example.com/caf%C3%A9"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, HTU(u), tt.in)
	}
}

func TestHTUOfAPathWithoutItsSlash(t *testing.T) {
	// As URL.String writes such a hand-built URL.
	u := &url.URL{Scheme: "https", Host: "api.example.com", Path: "v1/things"}
	assert.Equal(t, "https://api.example.com/v1/things", HTU(u))
	assert.Equal(t, u.String(), HTU(u))
}

func TestProofRefusesBadInput(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	u, _ := url.Parse("https://api.example.com/")
	for _, c := range []Claims{
		{Method: "GET"},
		{Method: "", URL: u},
		{Method: "GET X", URL: u},
		{Method: `G"T`, URL: u},
	} {
		_, err := k.Proof(c)
		assert.Error(t, err, "%+v", c)
	}
	opaque, err := NewKey(publicOnly{pub: mustP256(t).Public()})
	require.NoError(t, err)
	_, err = opaque.Proof(Claims{Method: "GET", URL: u})
	assert.Error(t, err, "a signer's failure is an error")
}

func TestJSONStringsAreEscaped(t *testing.T) {
	got := string(appendString(nil, "a\"b\\c\x01\xff\u00e9"))
	assert.Equal(t, `"a\"b\\c\u0001\ufffd`+"\u00e9"+`"`, got)
}

func TestDERToRaw(t *testing.T) {
	// r = 1, s = 0x80 (needs a leading zero in DER): padded to 32 bytes each.
	der := []byte{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80}
	raw, ok := derToRaw(der, 32)
	require.True(t, ok)
	assert.Equal(t, byte(1), raw[31])
	assert.Equal(t, byte(0x80), raw[63])
	for _, bad := range [][]byte{
		nil,
		{0x30, 0x00},
		{0x31, 0x03, 0x02, 0x01, 0x01},
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00},            // s cut short
		append([]byte{0x30, 0x25, 0x02, 0x21}, make([]byte, 35)...), // r longer than 32 bytes
	} {
		_, ok := derToRaw(bad, 32)
		assert.False(t, ok, "%x", bad)
	}
}

// The htu claim names the target URI as the server receives it (RFC 9449
// §4.2, RFC 9110 §7.1): net/http drops an IPv6 zone from the Host header,
// writes a host that is not ASCII in Punycode, and sends an opaque URL's
// Opaque as the request target.
func TestHTUOfOddURLs(t *testing.T) {
	tests := []struct {
		name string
		u    *url.URL
		want string
	}{
		{"IPv6 with a zone", mustURL(t, "http://[fe80::1%25en0]:8080/x"), "http://[fe80::1]:8080/x"},
		{"IPv6 with a zone, default port", mustURL(t, "https://[FE80::1%25Eth0]:443/x"), "https://[fe80::1]/x"},
		{"opaque, absolute", &url.URL{Scheme: "https", Host: "api.example.com", Opaque: "//api.example.com/a%2Fb"}, "https://api.example.com/a%2Fb"},
		{"opaque, absolute, default port", &url.URL{Scheme: "https", Host: "api.example.com", Opaque: "//API.example.com:443/a%2Fb", RawQuery: "q=1"}, "https://api.example.com/a%2Fb"},
		{"opaque, a path", &url.URL{Scheme: "https", Host: "api.example.com", Opaque: "/a%2Fb"}, "https://api.example.com/a%2Fb"},
		{"a RawPath", &url.URL{Scheme: "https", Host: "api.example.com", Path: "/a/b", RawPath: "/a%2fb"}, "https://api.example.com/a%2fb"},
		{"a host that is not ASCII", mustURL(t, "https://bücher.example/x"), "https://xn--bcher-kva.example/x"},
		{"a host that is not ASCII, upper case", mustURL(t, "https://BÜCHER.example:8443/x"), "https://xn--bcher-2pa.example:8443/x"},
		{"a host of several labels", mustURL(t, "http://例子.测试/"), "http://xn--fsqu00a.xn--0zwm56d/"},
		{"a label mixed", mustURL(t, "https://api.münchen-ost.de/"), "https://api.xn--mnchen-ost-9db.de/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, HTU(tt.u))
			assert.Equal(t, tt.want, serverHTU(t, &http.Request{Method: "GET", URL: tt.u, Header: http.Header{}}),
				"what a server reconstructs from the request net/http writes")
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

// serverHTU writes req as net/http's client does and returns the htu that
// a server reading it reconstructs: the scheme, the Host it received
// (normalised: lower case, no default port) and the path of the request
// target.
func serverHTU(t *testing.T, req *http.Request) string {
	t.Helper()
	var wire bytes.Buffer
	require.NoError(t, req.Write(&wire))
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	require.NoError(t, err)
	host := strings.ToLower(got.Host)
	host = strings.TrimSuffix(host, map[string]string{"http": ":80", "https": ":443"}[req.URL.Scheme])
	path := got.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	return req.URL.Scheme + "://" + host + path
}

// The Punycode of hosts that are not ASCII agrees with what net/http
// writes in the Host header, for many labels of many scripts.
func TestHTUPunycodeAgreesWithNetHTTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ranges := [][2]rune{{'a', 'z'}, {0xc0, 0x17f}, {0x391, 0x3c9}, {0x410, 0x44f}, {0x4e00, 0x9fff}, {0x1f600, 0x1f64f}}
	for range 500 {
		var labels []string
		for range 1 + rng.IntN(3) {
			var b strings.Builder
			for range 1 + rng.IntN(12) {
				r := ranges[rng.IntN(len(ranges))]
				b.WriteRune(r[0] + rune(rng.IntN(int(r[1]-r[0]+1))))
			}
			labels = append(labels, b.String())
		}
		u := &url.URL{Scheme: "https", Host: strings.Join(labels, "."), Path: "/"}
		req := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		require.Equal(t, serverHTU(t, req), HTU(u), "%q", u.Host)
	}
}
