package bearer

import (
	"context"
	"fmt"

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
// request is never given the access token, and follows a redirect only
// within its origin (scheme, host and port): a 307 or 308 would replay the
// refresh token and the client secret to wherever it points. Answers larger
// than 1 MiB are refused.
//
// Errors are classified as the [Refresher] documentation says: the error
// codes invalid_grant, invalid_client, unauthorized_client,
// unsupported_grant_type and invalid_scope, a 401, and a 400 without a known
// code end the session; invalid_request, network errors, timeouts, 408, 429,
// 5xx and answers that are not a token are transient. No error shows a
// token, the client secret or the raw answer, in any encoding.
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
	ctx, sent := tokenContext(ctx)
	tok, err := r.cfg.TokenSource(ctx, old).Token()
	if err != nil {
		return nil, redact(err, current, append(sent.list(), r.cfg.ClientSecret)...)
	}
	return tok, nil
}
