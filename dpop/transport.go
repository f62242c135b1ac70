package dpop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seamlessauth/bearer/internal/challenge"
	"github.com/seamlessauth/bearer/internal/resend"
)

// Transport returns an [http.RoundTripper] that sends every request through
// base (nil: [http.DefaultTransport]) with a new proof of k in its DPoP
// header: for a request that carries "Authorization: DPoP <access token>",
// with the token's hash (ath); for any other, such as a token request,
// without. It keeps the DPoP-Nonce of every response, per origin, and puts
// the origin's nonce in the next proofs. A response that asks for a nonce,
// a 400 with error use_dpop_nonce from a token endpoint or a 401 with a
// DPoP challenge whose error is use_dpop_nonce from a resource, is
// answered by sending the request once more, with a new proof that carries
// the new nonce, if the response gave a nonce other than the one sent and
// the request's body can be sent again (no body, or GetBody). A request
// that already has a DPoP header is sent as it is.
func (k *Key) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{key: k, base: base}
}

// Client returns a copy of base (nil: [http.DefaultClient]) whose transport
// is k.Transport over base's: put it under [golang.org/x/oauth2.HTTPClient]
// in the context of oauth2.Config.Exchange to log in with tokens bound to k,
// or send requests with it that carry such a token.
func (k *Key) Client(base *http.Client) *http.Client {
	if base == nil {
		base = http.DefaultClient
	}
	c := *base
	c.Transport = k.Transport(base.Transport)
	return &c
}

type transport struct {
	key  *Key
	base http.RoundTripper
	last atomic.Pointer[hashed] // the last access token's hash
}

// hashed is an Authorization value and the ath of its token.
type hashed struct{ auth, ath string }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(req.Header.Values("Dpop")) > 0 {
		return t.base.RoundTrip(req)
	}
	htu, origin := htuOrigin(req.URL)
	if req.Host != "" && req.Host != req.URL.Host && !strings.HasPrefix(req.URL.Opaque, "//") {
		// net/http sends req.Host as the Host header: the server takes
		// the target URI's host from it. The nonce stays the one of the
		// server the request goes to. (http.NewRequest sets Host to the
		// URL's: that HTU is the one just built.)
		u := *req.URL
		u.Host = req.Host
		htu = HTU(&u)
	}
	ath := t.hash(req.Header.Get("Authorization"))
	sent := t.key.nonces.get(origin)
	resp, err := t.send(req, htu, ath, sent)
	if err != nil {
		return nil, err
	}
	fresh := t.key.nonces.observe(origin, resp.Header)
	if fresh == "" || fresh == sent || !resend.Replayable(req) || !asksForNonce(resp) {
		return resp, nil
	}
	resend.Discard(resp)
	again := new(http.Request)
	*again = *req
	if again.Body, err = resend.Body(req); err != nil {
		return nil, fmt.Errorf("dpop: replaying request body: %w", err)
	}
	if resp, err = t.send(again, htu, ath, fresh); err != nil {
		return nil, err
	}
	t.key.nonces.observe(origin, resp.Header)
	return resp, nil
}

// send sends a copy of req with a new proof.
func (t *transport) send(req *http.Request, htu, ath, nonce string) (*http.Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	proof, err := t.key.proof(method, htu, ath, nonce, time.Time{})
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	r := new(http.Request)
	*r = *req
	r.Header = make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		r.Header[k] = v // values are not changed: sharing them is safe
	}
	r.Header["Dpop"] = []string{proof}
	return t.base.RoundTrip(r)
}

// hash returns the ath of the DPoP access token in auth, or "".
func (t *transport) hash(auth string) string {
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "DPoP") || tok == "" {
		return ""
	}
	if h := t.last.Load(); h != nil && h.auth == auth {
		return h.ath
	}
	h := &hashed{auth: auth, ath: Hash(tok)}
	t.last.Store(h)
	return h.ath
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// asksForNonce reports whether resp asks for a proof with a nonce: a 401
// whose DPoP challenge has error use_dpop_nonce (RFC 9449 §9), or a 400
// whose JSON error is use_dpop_nonce (§8). The body of a 400 is read, up to
// 64 KiB and for at most peekTimeout, and put back.
func asksForNonce(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		code, _ := ChallengeError(resp.Header)
		return code == "use_dpop_nonce"
	case http.StatusBadRequest:
		body, ok := peek(resp, 64<<10, peekTimeout)
		if !ok {
			return false
		}
		var e struct {
			Error string `json:"error"`
		}
		return json.Unmarshal(body, &e) == nil && e.Error == "use_dpop_nonce"
	}
	return false
}

// peekTimeout bounds how long asksForNonce waits for a 400's body: one
// that has not come by then is left to the caller, and no retry is made.
const peekTimeout = 250 * time.Millisecond

// peek reads up to limit bytes of resp's body, waiting at most wait for
// them, and replaces the body with one that reads the whole of it and
// closes the original. ok is false when the read failed or did not end in
// time; the read then goes on for the caller of the new body, whose Close
// ends it.
func peek(resp *http.Response, limit int64, wait time.Duration) (head []byte, ok bool) {
	p := &peeked{orig: resp.Body, done: make(chan struct{})}
	resp.Body = p
	go func() {
		defer close(p.done)
		p.head, p.err = io.ReadAll(io.LimitReader(p.orig, limit))
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.head, p.err == nil
	case <-timer.C:
		return nil, false
	}
}

// peeked is a body whose first bytes a goroutine reads; Read waits for it.
type peeked struct {
	orig io.ReadCloser
	done chan struct{} // closed when head and err are set
	head []byte
	err  error
	r    io.Reader // head, then the rest of orig; nil until the first Read
}

func (p *peeked) Read(b []byte) (int, error) {
	if p.r == nil {
		<-p.done
		p.r = bytes.NewReader(p.head)
		if p.err != nil {
			p.r = io.MultiReader(p.r, errReader{p.err})
		} else {
			p.r = io.MultiReader(p.r, p.orig)
		}
	}
	return p.r.Read(b)
}

// Close closes the original body, which also ends a read under way.
func (p *peeked) Close() error { return p.orig.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// ChallengeError returns the error parameter of the first DPoP challenge in
// h's WWW-Authenticate fields ("invalid_token", "invalid_dpop_proof",
// "use_dpop_nonce", or "" when it names none) and whether there is one.
func ChallengeError(h http.Header) (code string, ok bool) {
	c, ok := challenge.First(h, "DPoP")
	return strings.ToLower(c.Param("error")), ok
}
