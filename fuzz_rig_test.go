package bearer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
)

// This file holds the doubles of FuzzRoundTrip (fuzz_test.go): the answers of
// the base and a refresher, whose every decision is read from the fuzz input.

// fuzzScript hands out the bytes of the fuzz input as decisions; past its
// end every decision is 0, so every input is a complete run.
type fuzzScript struct {
	data []byte
	pos  int
}

func (s *fuzzScript) next() byte {
	if s.pos >= len(s.data) {
		return 0
	}
	s.pos++
	return s.data[s.pos-1]
}

// pick returns a decision in [0, n).
func (s *fuzzScript) pick(n int) int { return int(s.next()) % n }

func (s *fuzzScript) flag() bool { return s.next()&1 == 1 }

// fuzzHosts are the hosts requests go to: the API, its parent and a
// subdomain, look-alikes, and loopback names.
var fuzzHosts = []string{
	"api.example.com", "API.Example.COM", "sub.api.example.com", "example.com",
	"evil.example.net", "api.example.com.evil.net", "badapi.example.com", "127.0.0.1", "localhost", "[::1]",
}

// fuzzURL reads a URL: scheme, host, port.
func fuzzURL(s *fuzzScript) string {
	scheme := []string{"https", "http", "ftp"}[s.pick(3)]
	host := fuzzHosts[s.pick(len(fuzzHosts))]
	if s.flag() {
		host += ":8443"
	}
	return scheme + "://" + host + "/path"
}

// fuzzChallenges are WWW-Authenticate values of 401 answers; the last
// entry is replaced by bytes of the input.
var fuzzChallenges = []string{
	"", `Bearer realm="api"`, `Bearer error="invalid_token"`, `Bearer error="insufficient_scope"`,
	`Basic realm="api"`, `Bearer realm="a", Basic realm="b"`, `bearer error=INVALID_TOKEN`, "raw",
}

// fuzzBody is a response body that counts reads and closes and behaves as
// the input says: short, failing, trickling or large.
type fuzzBody struct {
	kind   int
	left   int
	reads  atomic.Int32
	closes atomic.Int32
}

func newFuzzBody(kind int) *fuzzBody {
	return &fuzzBody{kind: kind, left: []int{6, 0, 200, 200 << 10}[kind]}
}

func (b *fuzzBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	switch {
	case b.kind == 1:
		return 0, errors.New("fuzz: the connection broke while reading the body")
	case b.left == 0:
		return 0, io.EOF
	case b.kind == 2:
		p = p[:min(len(p), 1)]
	}
	n := min(len(p), b.left)
	for i := range n {
		p[i] = 'x'
	}
	b.left -= n
	return n, nil
}

func (b *fuzzBody) Close() error { b.closes.Add(1); return nil }

// fuzzAnswers answers a fakeBase's requests as the input says, and keeps
// the response bodies it handed out.
type fuzzAnswers struct {
	s      *fuzzScript
	bodies []*fuzzBody
}

func (a *fuzzAnswers) respond(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// How much of the body to read before closing it: fakeBase reads it
		// all (the Transport cannot tell), but the decision keeps its byte,
		// so that the seed corpus keeps its meaning.
		a.s.pick(3)
	}
	kind := a.s.pick(8)
	if kind == 7 {
		return nil, errors.New("fuzz: connection refused")
	}
	resp := &http.Response{StatusCode: []int{200, 200, 401, 401, 401, 403, 500}[kind], Header: http.Header{}, Request: req}
	if resp.StatusCode == http.StatusUnauthorized {
		v := fuzzChallenges[a.s.pick(len(fuzzChallenges))]
		if v == "raw" {
			v = string([]byte{a.s.next(), a.s.next(), a.s.next(), a.s.next()})
		}
		if v != "" {
			resp.Header.Set("WWW-Authenticate", v)
		}
	}
	body := newFuzzBody(a.s.pick(4))
	a.bodies = append(a.bodies, body)
	resp.Body = body
	return resp, nil
}

// fuzzRefresher succeeds, fails transiently or fails permanently as the
// input says, and checks that no token generation is refreshed twice.
type fuzzRefresher struct {
	s   *fuzzScript
	now func() time.Time

	n            int
	calls        int
	refreshedOff map[string]bool // access tokens a successful refresh replaced
	rotatedAway  map[string]bool // refresh tokens a rotation retired
	violations   []string
	secrets      []string // every token handed out
}

func (r *fuzzRefresher) Refresh(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
	r.calls++
	if cur != nil && r.refreshedOff[cur.AccessToken] {
		r.violations = append(r.violations, "refreshed a generation a second time")
	}
	if cur != nil && r.rotatedAway[cur.RefreshToken] {
		r.violations = append(r.violations, "presented a rotated-away refresh token")
	}
	switch r.s.pick(6) {
	case 0, 1, 2:
		r.n++
		tok := &oauth2.Token{AccessToken: fmt.Sprintf("fz-a-%d", r.n), TokenType: "Bearer", Expiry: fuzzExpiry(r.s, r.now())}
		if cur != nil {
			r.refreshedOff[cur.AccessToken] = true
		}
		if r.s.flag() || cur == nil {
			tok.RefreshToken = fmt.Sprintf("fz-r-%d", r.n)
			if cur != nil {
				r.rotatedAway[cur.RefreshToken] = true
			}
		}
		r.secrets = append(r.secrets, tok.AccessToken, tok.RefreshToken)
		return tok, nil
	case 3:
		return nil, errors.New("fuzz: the token endpoint is unreachable")
	case 4:
		return nil, bearer.Permanent(errors.New("fuzz: the refresh token was rejected"))
	}
	return nil, nil // no token and no error: the Transport must not use it
}

// fuzzExpiry reads a token lifetime: none, expired, within the leeway,
// or long.
func fuzzExpiry(s *fuzzScript, now time.Time) time.Time {
	switch s.pick(4) {
	case 1:
		return now.Add(-time.Minute)
	case 2:
		return now.Add(10 * time.Second)
	case 3:
		return now.Add(time.Hour)
	}
	return time.Time{}
}

// fuzzRequest is a request built from the input, with what the checks
// need to know about it.
type fuzzRequest struct {
	req        *http.Request
	callerAuth string
	skip       bool
	bodies     bodyLog
}

func newFuzzRequest(s *fuzzScript) *fuzzRequest {
	fr := &fuzzRequest{}
	ctx := context.Background()
	if s.pick(8) == 0 {
		fr.skip = true
		ctx = bearer.SkipAuth(ctx)
	}
	var body io.Reader
	bodyKind := s.pick(5)
	if bodyKind >= 2 {
		body = fr.bodies.add(newBody("payload"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fuzzURL(s), body)
	if err != nil {
		panic(err)
	}
	switch bodyKind {
	case 1:
		req.Body = http.NoBody
	case 2:
		req.GetBody = func() (io.ReadCloser, error) { return fr.bodies.add(newBody("payload")), nil }
	case 4:
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("fuzz: the body cannot be read again") }
	}
	if s.pick(8) == 0 {
		fr.callerAuth = []string{"Basic dXNlcjpwYXNz", "Bearer caller-own"}[s.pick(2)]
		req.Header.Set("Authorization", fr.callerAuth)
	}
	// A redirect hop or two: req.Response.Request leads back, hop by hop,
	// to the request that started the chain.
	var prev *http.Request
	for range s.pick(3) {
		r, err := http.NewRequest(http.MethodGet, fuzzURL(s), nil)
		if err != nil {
			panic(err)
		}
		if prev != nil {
			r.Response = &http.Response{StatusCode: http.StatusFound, Request: prev}
		}
		prev = r
	}
	if prev != nil {
		req.Response = &http.Response{StatusCode: http.StatusFound, Request: prev}
	}
	fr.req = req
	return fr
}

// mayCarry is where the Transport may send its token: tokenAllowed, on a
// redirect hop only where net/http would keep a caller's Authorization
// (unless Config.Hosts decides), and neither SkipAuth nor the caller's own
// Authorization.
func (fr *fuzzRequest) mayCarry(cfg bearer.Config) bool {
	return !fr.skip && fr.callerAuth == "" && tokenAllowed(cfg, fr.req) &&
		(len(cfg.Hosts) > 0 || netHTTPKeepsAuth(fr.req))
}

// netHTTPKeepsAuth transcribes net/http's redirect rule for a caller's
// Authorization header (Client.do, shouldCopyHeaderOnRedirect,
// isDomainOrSubdomain): from the first hop to another host that is not the
// first host or a subdomain of it, the header is dropped for the rest of
// the chain. It adds the two refusals that scope.go documents: an IP
// address has no subdomains, and a name that is not ASCII matches only
// itself. The chain here is always complete.
func netHTTPKeepsAuth(req *http.Request) bool {
	var chain []*http.Request // last hop first
	for r := req; r != nil; r = r.Response.Request {
		chain = append(chain, r)
		if r.Response == nil {
			break
		}
	}
	first := chain[len(chain)-1]
	parent := first.URL.Hostname()
	for _, hop := range chain {
		if hop.URL.Host == first.URL.Host {
			continue
		}
		sub := hop.URL.Hostname()
		switch {
		case sub == parent:
			continue
		case strings.ContainsAny(sub, ":%"), net.ParseIP(parent) != nil, strings.ContainsAny(parent, ":%"):
			return false
		case strings.ContainsFunc(sub+parent, func(r rune) bool { return r >= utf8.RuneSelf }):
			return false
		case !strings.HasSuffix(sub, "."+parent) || parent == "":
			return false
		}
	}
	return true
}

// ourToken reports whether an Authorization value is one of the
// Transport's tokens.
func ourToken(auth string) bool { return strings.HasPrefix(auth, "Bearer fz-") }

// The doubles of FuzzRedirectScope (fuzz_test.go).

// callerAuth is the Authorization header the oracle's caller sets.
const callerAuth = "Bearer caller-own"

// redirectScript answers the i-th request with a redirect (code picks the
// status) to the i-th line of hops, and the request after the last line
// with a 200. With setRequest it records each response's request, as
// http.Transport does; without, it leaves Response.Request unset.
func redirectScript(hops string, code uint8, setRequest bool) func(*http.Request) (*http.Response, error) {
	locations := strings.Split(hops, "\n")
	if hops == "" {
		locations = nil
	}
	locations = locations[:min(len(locations), 5)]
	codes := []int{http.StatusFound, http.StatusMovedPermanently, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	var n int
	return func(req *http.Request) (*http.Response, error) {
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}
		if n < len(locations) {
			resp.StatusCode = codes[int(code)%len(codes)]
			resp.Header.Set("Location", locations[n])
		}
		n++ // each client sends its requests one after another
		if setRequest {
			resp.Request = req
		}
		return resp, nil
	}
}

// isLoopbackHost is what DESIGN.md calls loopback: "localhost" and
// loopback IP addresses.
func isLoopbackHost(host string) bool {
	ip := net.ParseIP(host)
	return strings.EqualFold(host, "localhost") || (ip != nil && ip.IsLoopback())
}

// redirectSeeds are the seed chains of FuzzRedirectScope.
var redirectSeeds = []struct {
	first, hops           string
	code                  uint8
	setRequest, allowHTTP bool
}{
	{"https://api.example.com/a", "https://api.example.com/b", 0, true, false},
	{"https://example.com/a", "https://api.example.com/b\nhttps://deep.api.example.com/c", 1, true, false},
	{"https://api.example.com/a", "https://evil.example.net/steal", 3, true, false},
	{"https://api.example.com/a", "https://evil.example.net/steal", 3, false, false},
	{"https://api.example.com/a", "/relative\n//api.example.com/scheme-relative", 0, false, false},
	{"https://api.example.com/a", "https://[::1%25.api.example.com]/zone", 0, true, true},
	{"http://api.example.com/a", "http://[fe80::1%25.api.example.com]:80/zone", 4, true, true},
	{"https://api.example.com/a", "https://api.example.com./dot", 0, true, false},
	{"https://api.example.com./a", "https://api.example.com/nodot", 0, true, false},
	{"https://api.example.com/a", "https://API.Example.COM/case", 2, true, false},
	{"https://API.example.com/a", "https://api.example.com/case", 2, true, false},
	{"https://api.example.com/a", "https://user:pw@api.example.com/userinfo\nhttps://evil.example.net@api.example.com/", 0, true, false},
	{"https://user@api.example.com/a", "https://api.example.com:8443/port\nhttps://api.example.com:443/", 0, true, false},
	{"https://api.example.com/a", "http://api.example.com/downgrade", 0, true, false},
	{"https://localhost/a", "http://localhost:8080/\nhttp://127.0.0.1/\nhttp://[::1]:80/\nhttp://api.localhost/", 0, true, false},
	{"https://10.0.0.1/a", "https://x.10.0.0.1/\nhttps://10.0.0.1:8443/", 0, true, false},
	{"https://127.0.0.1/a", "http://127.0.0.1/\nhttp://[::ffff:127.0.0.1]/\nhttp://[::1%25lo]/", 0, true, false},
	{"https://bücher.example/a", "https://sub.bücher.example/\nhttps://xn--bcher-kva.example/", 0, true, false},
	{"https://api.example.com/a", "https://evil.example.net/\nhttps://api.example.com/back", 0, true, false},
	{"https://example.com/a", "https://badexample.com/\nhttps://example.com.evil.net/", 0, true, false},
	{"https://api.example.com/a", "ftp://api.example.com/\nhttps://api.example.com/", 0, true, true},
}
