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

// Revoker is implemented by a [Refresher] that can end a session at the
// server. [Transport.Logout] (and [Pool.Logout]) call Revoke with the token
// being logged out, after the local logout, and return its error as a
// [*RevocationError]. Revoke revokes tok's refresh token, or its access
// token when it has no refresh token, naming which with the matching
// token_type_hint (RFC 7009 §2.1): revoking the refresh token also ends the
// access tokens of its grant at servers that follow RFC 7009 §2.1.
//
// ctx is built as a refresh's is: it keeps the values of Logout's context,
// not its cancellation, with a deadline of Config.RefreshTimeout; requests
// made with it are never given a token by the Transport, and a client is
// found under [oauth2.HTTPClient]. A panic in Revoke is an error. Its errors
// are redacted of tok's tokens before anything shows them. A logout after
// the server rejected the refresh token (Config.OnLogout) revokes nothing:
// that token is dead already.
type Revoker interface {
	Revoke(ctx context.Context, tok *oauth2.Token) error
}
