package bearer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"golang.org/x/oauth2"
)

// This file holds what every token request of the package's refreshers goes
// through: a client that keeps the request in its origin, a record of the
// credentials it carries (for redact), and a cap on the size of the answer.

// newTokenClient returns the client that sends token requests over base when
// the refresh context names none: it follows a redirect only within the
// origin of the token request.
func newTokenClient(base http.RoundTripper) *http.Client {
	return &http.Client{Transport: base, CheckRedirect: sameOrigin(nil)}
}

// withinOrigin returns a copy of c (nil: http.DefaultClient) that follows a
// redirect only within the origin of the token request, then as c would.
// A 307 or 308 replays the form, refresh token and client secret included,
// so a redirect to another host, another port or plain http is an error.
func withinOrigin(c *http.Client) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = sameOrigin(c.CheckRedirect)
	return &cc
}

// errLeftOrigin is the error for a token request redirected out of its
// origin.
var errLeftOrigin = errors.New("redirected to another origin (scheme, host or port), which a token request never follows")

// sameOrigin returns a CheckRedirect that refuses a redirect out of the
// first request's origin and then applies next (nil: net/http's default,
// at most 10 redirects).
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if origin(req.URL) != origin(via[0].URL) {
			return errLeftOrigin
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// origin is u's scheme, host and port, the port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// maxBody caps the size of a token endpoint's answer.
const maxBody = 1 << 20

// errBodyTooLarge is the (transient) error for an answer over maxBody.
var errBodyTooLarge = errors.New("the server's answer is larger than 1 MiB") // of a token or revocation endpoint

// tokenContext returns ctx with the client under [oauth2.HTTPClient] (or
// http.DefaultClient) replaced by a copy that follows redirects only within
// the origin (see withinOrigin), refuses answers over maxBody, so that
// x/oauth2, which cuts them silently, reports them, and records the
// credentials its requests carry, which errors must not show.
func tokenContext(ctx context.Context) (context.Context, *sentSecrets) {
	c, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	capped := withinOrigin(c)
	sent := new(sentSecrets)
	capped.Transport = capTransport{base: capped.Transport, sent: sent}
	return context.WithValue(ctx, oauth2.HTTPClient, capped), sent
}

// capTransport records the credentials of each token request and reads
// each answer whole, up to maxBody, before handing it on.
type capTransport struct {
	base http.RoundTripper
	sent *sentSecrets
}

func (c capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.sent.add(requestSecrets(req)...)
	base := c.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// CloseIdleConnections forwards to the wrapped transport.
func (c capTransport) CloseIdleConnections() {
	if cl, ok := c.base.(interface{ CloseIdleConnections() }); ok {
		cl.CloseIdleConnections()
	}
}

// readCapped reads and closes body; more than maxBody bytes is an error.
func readCapped(body io.ReadCloser) ([]byte, error) {
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the token endpoint's answer: %w", err)
	case len(b) > maxBody:
		return nil, errBodyTooLarge
	}
	return b, nil
}

// sentSecrets collects the credentials that the token requests of one
// refresh carried.
type sentSecrets struct {
	mu     sync.Mutex
	values []string
}

func (s *sentSecrets) add(v ...string) {
	s.mu.Lock()
	s.values = append(s.values, v...)
	s.mu.Unlock()
}

func (s *sentSecrets) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.values)
}

// secretFields are the form fields of token requests (RFC 6749, 7523, 7636,
// 8628, 8693) that carry a credential.
var secretFields = []string{"client_secret", "refresh_token", "client_assertion", "assertion", "password",
	"code", "code_verifier", "device_code", "subject_token", "actor_token"}

// requestSecrets are the credentials a token request carries, which a
// server may echo: the credentials of its Authorization header (for Basic,
// the password too, as sent and URL-decoded, as RFC 6749 §2.3.1 encodes it),
// its cookies, and the values of the form fields that carry secrets, read
// through GetBody when the body is a form.
func requestSecrets(req *http.Request) []string {
	var out []string
	for _, v := range req.Header.Values("Authorization") {
		out = append(out, v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			out = append(out, strings.TrimSpace(cred))
		}
	}
	if _, pw, ok := req.BasicAuth(); ok {
		out = append(out, pw)
		if dec, err := url.QueryUnescape(pw); err == nil {
			out = append(out, dec)
		}
	}
	for _, c := range req.Cookies() {
		out = append(out, c.Value)
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" || req.GetBody == nil {
		return out
	}
	body, err := req.GetBody()
	if err != nil {
		return out
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxBody))
	if err != nil {
		return out
	}
	form, _ := url.ParseQuery(string(b))
	for _, f := range secretFields {
		out = append(out, form[f]...)
	}
	return out
}
