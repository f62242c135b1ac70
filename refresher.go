package bearer

import (
	"context"

	"golang.org/x/oauth2"
)

// Refresher obtains a new token. current is a copy of the newest token known
// (nil if there is none yet); Refresh may read it but the Transport owns it.
//
// A Refresher returns [Permanent](err) when the session cannot go on, for
// example when the server rejected the refresh token; the Transport then
// logs out. Errors from x/oauth2 (*oauth2.RetrieveError) are classified by
// their OAuth2 error code and HTTP status; every other error is transient.
// ctx carries the shared refresh's deadline; HTTP requests made with it are
// never given a token by a Transport, so a Refresher may safely use a client
// built on the Transport it serves. Refresh may run on a goroutine of its
// own, for a background refresh; a panic in it fails that refresh with an
// error and is logged. A Refresher (or a hook) that calls the Transport's
// Token from inside a refresh must pass the ctx it was given: it then gets
// the current token at once, where a call with another context would wait
// for the refresh it runs in. Its errors are redacted of the tokens it was
// given before anything shows them.
type Refresher interface {
	Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error)
}

// RefresherFunc adapts a function to the [Refresher] interface.
type RefresherFunc func(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error)

// Refresh calls f(ctx, current).
func (f RefresherFunc) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	return f(ctx, current)
}
