package bearer

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
)

// OAuth2 returns a [Refresher] that uses the refresh_token grant of RFC 6749
// §6 through x/oauth2, with cfg's client credentials, token URL and
// AuthStyle. When the server answers without a refresh token the old one is
// kept; a rotated one replaces it. Token requests use the *http.Client found
// in the context under [oauth2.HTTPClient], or http.DefaultClient.
func OAuth2(cfg *oauth2.Config) Refresher {
	return oauth2Refresher{cfg: cfg}
}

type oauth2Refresher struct{ cfg *oauth2.Config }

func (r oauth2Refresher) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	if current == nil || current.RefreshToken == "" {
		return nil, Permanent(fmt.Errorf("%w: no refresh token to refresh with", ErrNoToken))
	}
	// A token with only the refresh token is never valid, so the source
	// always asks the server.
	return r.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: current.RefreshToken}).Token()
}
