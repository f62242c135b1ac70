package bearer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// OAuth2 returns a [Refresher] that uses the refresh_token grant of RFC 6749
// §6 through x/oauth2, with cfg's client credentials, Endpoint.TokenURL and
// Endpoint.AuthStyle. It panics if cfg is nil.
//
// When the server answers without a refresh token the old one is kept; a
// rotated one replaces it. The answer's expires_in becomes the token's
// Expiry. With [oauth2.AuthStyleAutoDetect] x/oauth2 tries both ways of
// sending the client credentials whenever a request fails, so a failed
// refresh costs two requests until one style has worked; name the style to
// avoid that.
//
// Token requests use the *http.Client found in the refresh context under
// the [oauth2.HTTPClient] key. A [Transport] runs a refresh with the values
// of the context of the request that started it, so a client put there,
// on the request's context, is the one used; without one the Transport
// puts a client over its Config.Base. Called on its own, with no client in
// ctx, the refresher uses [http.DefaultClient]. Either way the token
// request is never given the access token. Answers larger than 1 MiB are
// refused.
//
// Errors are classified as the [Refresher] documentation says: the error
// codes invalid_grant, invalid_client, unauthorized_client,
// unsupported_grant_type and invalid_scope, a 401, and a 400 without a known
// code end the session; invalid_request, network errors, timeouts, 408, 429,
// 5xx and answers that are not a token are transient.
func OAuth2(cfg *oauth2.Config) Refresher {
	if cfg == nil {
		panic("bearer: OAuth2: cfg is nil")
	}
	return oauth2Refresher{cfg: cfg}
}

type oauth2Refresher struct{ cfg *oauth2.Config }

func (r oauth2Refresher) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	if current == nil || current.RefreshToken == "" {
		return nil, Permanent(fmt.Errorf("%w: no refresh token to refresh with", ErrNoToken))
	}
	// A token with only the refresh token is never valid, so the source
	// always asks the server.
	old := &oauth2.Token{RefreshToken: current.RefreshToken}
	tok, err := r.cfg.TokenSource(withBodyCap(ctx), old).Token()
	if err != nil {
		return nil, redact(err, current, r.cfg.ClientSecret)
	}
	return tok, nil
}

// maxBody caps the size of a token endpoint's answer.
const maxBody = 1 << 20

// errBodyTooLarge is the (transient) error for an answer over maxBody.
var errBodyTooLarge = errors.New("bearer: the token endpoint's answer is larger than 1 MiB")

// withBodyCap returns ctx with the client under [oauth2.HTTPClient] (or
// http.DefaultClient) replaced by a copy that refuses answers over maxBody,
// so that x/oauth2, which cuts them silently, reports them.
func withBodyCap(ctx context.Context) context.Context {
	c, _ := ctx.Value(oauth2.HTTPClient).(*http.Client)
	if c == nil {
		c = http.DefaultClient
	}
	capped := *c
	capped.Transport = capTransport{base: c.Transport}
	return context.WithValue(ctx, oauth2.HTTPClient, &capped)
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
