package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/dpop"
)

// signingFloor is the limit for any DPoP transport: headerOnly plus, per
// request, what no DPoP client can avoid: one SHA-256 and one ES256
// signature over a proof-sized input, and a second header. Its proof is not
// a valid one (its claims never change); it prices the work, not the form.
type signingFloor struct {
	header *headerOnly
	key    *ecdsa.PrivateKey
	input  []byte
}

func newSigningFloor(tb testing.TB, e env) *signingFloor {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	// A header and claims of the size bearer's proofs have.
	input := []byte(strings.Repeat("h", 232) + "." + strings.Repeat("c", 240))
	return &signingFloor{header: newHeaderOnly(e.base, "DPoP "+e.tok.AccessToken), key: key, input: input}
}

func (f *signingFloor) RoundTrip(req *http.Request) (*http.Response, error) {
	sum := sha256.Sum256(f.input)
	sig, err := ecdsa.SignASN1(rand.Reader, f.key, sum[:])
	if err != nil {
		return nil, err
	}
	r := new(http.Request)
	*r = *req
	r.Header = req.Header.Clone()
	r.Header["Authorization"] = f.header.auth[:1:1]
	r.Header["Dpop"] = []string{base64.RawURLEncoding.EncodeToString(sig)}
	return f.header.base.RoundTrip(r)
}

// BenchmarkDPoPHotPath measures one RoundTrip with a valid DPoP-bound
// token over a stub base: bearer with Config.DPoP (a new proof per
// request: jti, htm, htu, iat, ath, signed with ES256) against the signing
// floor. Compare them with benchstat -col /contender.
func BenchmarkDPoPHotPath(b *testing.B) {
	for _, c := range dpopContenders(b, dpopEnv()) {
		b.Run("contender="+c.name, func(b *testing.B) {
			sendInLoop(b, c.new(), hotPathRequest(b))
		})
	}
}

// BenchmarkDPoPHotPathMixed is BenchmarkDPoPHotPath with the two
// contenders taking turns of 16 requests within one loop, in a new random
// order each round; it reports bearer's ratio to the floor of the same
// rounds ("bearer-vs-floor").
func BenchmarkDPoPHotPathMixed(b *testing.B) {
	var lanes []*lane
	for _, c := range dpopContenders(b, dpopEnv()) {
		lanes = append(lanes, &lane{name: c.name, rt: c.new(), req: hotPathRequest(b)})
	}
	roundsAgainst(b, lanes, "floor", func(l *lane) int {
		for range 16 {
			resp, err := l.rt.RoundTrip(l.req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Fatalf("%s: RoundTrip: %v", l.name, err)
			}
		}
		return 16
	})
}

type dpopContender struct {
	name string
	new  func() http.RoundTripper
}

// dpopEnv is the hot path's env with a DPoP-bound token, over a stub base.
func dpopEnv() env {
	e := hotPathEnv()
	e.tok.TokenType = "DPoP"
	return e
}

// dpopContenders are the signing floor and bearer with e's token.
func dpopContenders(tb testing.TB, e env) []dpopContender {
	key, err := dpop.GenerateKey()
	if err != nil {
		tb.Fatal(err)
	}
	return []dpopContender{
		{"floor", func() http.RoundTripper { return newSigningFloor(tb, e) }},
		{"bearer", func() http.RoundTripper {
			rt, err := newBearerWith(e, bearer.Config{DPoP: key})
			if err != nil {
				tb.Fatal(err)
			}
			return rt
		}},
	}
}
