package bearer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// This file holds what every token request of the package's refreshers goes
// through: a client that keeps the request in its origin, and a cap on the
// size of the answer.

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
var errBodyTooLarge = errors.New("bearer: the token endpoint's answer is larger than 1 MiB")

// withBodyCap returns ctx with the client under [oauth2.HTTPClient] (or
// http.DefaultClient) replaced by a copy that follows redirects only within
// the origin (see withinOrigin) and refuses answers over maxBody, so that
// x/oauth2, which cuts them silently, reports them.
func withBodyCap(ctx context.Context) context.Context {
	c, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	capped := withinOrigin(c)
	capped.Transport = capTransport{base: capped.Transport}
	return context.WithValue(ctx, oauth2.HTTPClient, capped)
}

// capTransport reads each answer whole, up to maxBody, before handing it on.
type capTransport struct{ base http.RoundTripper }

func (c capTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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
		return nil, fmt.Errorf("bearer: reading the token endpoint's answer: %w", err)
	case len(b) > maxBody:
		return nil, errBodyTooLarge
	}
	return b, nil
}
