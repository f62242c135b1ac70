package bearer

import (
	"context"
	"errors"

	"golang.org/x/oauth2"
)

// FromTokenSource returns a [Refresher] for grants that have no refresh
// token, such as the client credentials grant: each refresh calls fn for a
// new [oauth2.TokenSource] and takes its token, so a 401 or an expiring
// token makes it fetch a brand-new one. It panics if fn is nil.
//
// fn must return a source that fetches a token when asked, not one that
// hands back a cached token: [clientcredentials.Config.TokenSource] and
// [jwt.Config.TokenSource] fit, and so does any source built anew on each
// call. A source that returns the very token being replaced gets a
// transient error, so a cache shared across calls shows up at once.
//
// fn receives the refresh context: it carries the refresh deadline, the
// values of the request that started the refresh and the client for
// token requests under [oauth2.HTTPClient], as for [OAuth2]. The
// credentials that the source's requests carry through that client (the
// client secret, in the Authorization header or the form, an assertion)
// never appear in an error, in any encoding, nor does the raw answer.
//
// [clientcredentials.Config.TokenSource]: https://pkg.go.dev/golang.org/x/oauth2/clientcredentials#Config.TokenSource
// [jwt.Config.TokenSource]: https://pkg.go.dev/golang.org/x/oauth2/jwt#Config.TokenSource
func FromTokenSource(fn func(ctx context.Context) oauth2.TokenSource) Refresher {
	if fn == nil {
		panic("bearer: FromTokenSource: fn is nil")
	}
	return sourceRefresher{fn: fn}
}

type sourceRefresher struct {
	fn func(ctx context.Context) oauth2.TokenSource
}

// errCachedSource is returned when a source hands back the rejected token.
var errCachedSource = errors.New("the token source returned the token it was asked to replace; " +
	"FromTokenSource needs a source that fetches a new token on each call")

func (r sourceRefresher) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	ctx, sent := tokenContext(ctx)
	src := r.fn(ctx)
	if src == nil {
		return nil, errors.New("FromTokenSource: fn returned a nil oauth2.TokenSource")
	}
	tok, err := src.Token()
	if err != nil {
		// The client secret is the source's: it is known from the requests.
		return nil, redact(err, current, sent.list()...)
	}
	if tok != nil && current != nil && tok.AccessToken != "" && tok.AccessToken == current.AccessToken {
		return nil, errCachedSource
	}
	return tok, nil
}
