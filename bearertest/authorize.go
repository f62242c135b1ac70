package bearertest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// CodeTTL is the lifetime of an authorization code.
const CodeTTL = time.Minute

type codeEntry struct {
	clientID    string
	redirectURI string // as sent to /authorize; empty if none was
	challenge   string
	method      string // "S256" or "plain" when challenge is set
	expiry      time.Time
}

// codeStore holds the authorization codes not yet redeemed.
type codeStore struct {
	mu sync.Mutex
	m  map[string]codeEntry
}

func (c *codeStore) put(code string, e codeEntry) {
	c.mu.Lock()
	c.m[code] = e
	c.mu.Unlock()
}

// take removes and returns a code: codes are single-use.
func (c *codeStore) take(code string) (codeEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[code]
	delete(c.m, code)
	return e, ok
}

// serveAuthorize is the RFC 6749 §4.1.1 authorization endpoint. It approves
// every valid request at once and redirects with a code and the state.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "bearertest: the authorization endpoint accepts only GET", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	// Errors about the client or the redirect URI must not redirect (§4.1.2.1).
	if q.Get("client_id") != s.opts.ClientID {
		http.Error(w, "bearertest: unknown client_id", http.StatusBadRequest)
		return
	}
	redirectURI := q.Get("redirect_uri")
	target := redirectURI
	if target == "" {
		target = s.URL + "/callback"
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		http.Error(w, "bearertest: invalid redirect_uri", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	if q.Get("response_type") != "code" {
		redirect(w, u, url.Values{"error": {"unsupported_response_type"}}, state)
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if desc := checkChallenge(challenge, method); desc != "" {
		redirect(w, u, url.Values{"error": {"invalid_request"}, "error_description": {desc}}, state)
		return
	}
	if challenge != "" && method == "" {
		method = "plain" // RFC 7636 §4.3
	}
	code := newSecret(CodePrefix)
	s.codes.put(code, codeEntry{
		clientID:    s.opts.ClientID,
		redirectURI: redirectURI,
		challenge:   challenge,
		method:      method,
		expiry:      s.now().Add(CodeTTL),
	})
	redirect(w, u, url.Values{"code": {code}}, state)
}

// checkChallenge validates the PKCE parameters of an authorization request.
func checkChallenge(challenge, method string) string {
	switch {
	case challenge == "" && method != "":
		return "code_challenge_method without code_challenge"
	case challenge == "":
		return ""
	case method != "" && method != "S256" && method != "plain":
		return "unsupported code_challenge_method"
	case len(challenge) < 43 || len(challenge) > 128:
		return "code_challenge must be 43 to 128 characters"
	}
	return ""
}

// redirect answers 302 to u with params and state added to its query. It
// writes no body, so the code appears only in the Location header.
func redirect(w http.ResponseWriter, u *url.URL, params url.Values, state string) {
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if state != "" {
		q.Set("state", state)
	}
	dst := *u
	dst.RawQuery = q.Encode()
	w.Header().Set("Location", dst.String())
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (s *Server) codeGrant(form url.Values, clientID, jkt string) (grant, *oauthError) {
	code := form.Get("code")
	if code == "" {
		return grant{}, invalidRequest("missing code")
	}
	c, ok := s.codes.take(code)
	switch {
	case !ok:
		return grant{}, invalidGrant("unknown or already used authorization code")
	case !s.now().Before(c.expiry):
		return grant{}, invalidGrant("authorization code expired")
	case c.clientID != clientID:
		return grant{}, invalidGrant("authorization code issued to another client")
	case c.redirectURI != "" && form.Get("redirect_uri") != c.redirectURI:
		return grant{}, invalidGrant("redirect_uri does not match the authorization request")
	}
	if desc := verifyPKCE(c, form.Get("code_verifier")); desc != "" {
		return grant{}, invalidGrant(desc)
	}
	return s.mint(s.newLineage(jkt), true), nil
}

// verifyPKCE checks a code_verifier against the code's challenge. A verifier
// for a code issued without a challenge is refused too (RFC 9700 §2.1.1).
func verifyPKCE(c codeEntry, verifier string) string {
	switch {
	case c.challenge == "" && verifier != "":
		return "code_verifier sent but the authorization request had no code_challenge"
	case c.challenge == "":
		return ""
	case verifier == "":
		return "missing code_verifier"
	}
	want := verifier
	if c.method == "S256" {
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.challenge)) != 1 {
		return "code_verifier does not match code_challenge"
	}
	return ""
}

// Authorize plays the user agent of the authorization code flow: it requests
// authCodeURL (as built by [oauth2.Config.AuthCodeURL]) without following the
// redirect, and returns the code and state the server redirected with. Errors
// never contain the code.
func (s *Server) Authorize(ctx context.Context, authCodeURL string) (code, state string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authCodeURL, nil)
	if err != nil {
		return "", "", fmt.Errorf("bearertest: authorize request: %w", err)
	}
	c := *s.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("bearertest: authorize: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return "", "", fmt.Errorf("bearertest: authorize answered %s", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		return "", "", fmt.Errorf("bearertest: authorize redirect: %w", err)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return "", "", fmt.Errorf("bearertest: authorize error %q: %s", e, q.Get("error_description"))
	}
	if q.Get("code") == "" {
		return "", "", errors.New("bearertest: authorize redirect without a code")
	}
	return q.Get("code"), q.Get("state"), nil
}
