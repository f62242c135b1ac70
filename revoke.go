package bearer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// This file holds what Logout does after the local logout: revoking the
// token at the server through a Refresher that is a Revoker.

// RevocationError is the error of [Transport.Logout] and [Pool.Logout] when
// the local logout succeeded, the Transport logged out and its store
// cleared, but revoking the token at the server failed: the server may
// still accept it until it expires. Any other error of Logout means the
// local logout failed, and nothing was revoked. Its message never contains
// a token or the client secret.
type RevocationError struct {
	// StatusCode is the HTTP status of the revocation endpoint's answer, or
	// 0 when there was none (a network error, a timeout, a redirect out of
	// the endpoint's origin, a panic).
	StatusCode int
	// Code is the error code of that answer (RFC 7009 §2.2.1, RFC 6749
	// §5.2), if any: unsupported_token_type when the server does not revoke
	// that kind of token.
	Code string
	// RetryAfter is the wait that the answer asked for with Retry-After (a
	// 503, RFC 7009 §2.2.1), or 0.
	RetryAfter time.Duration
	// Err is the Revoker's error, redacted of the token.
	Err error

	hint string // the kind of token: "refresh_token" or "access_token"
}

// Error says which token could not be revoked, and why.
func (e *RevocationError) Error() string {
	return "bearer: Logout: revoking " + strings.ReplaceAll(e.hint, "_", " ") + ": " + e.Err.Error()
}

// Unwrap returns the Revoker's error.
func (e *RevocationError) Unwrap() error { return e.Err }

// Timeout reports whether the revocation failed because a deadline passed.
func (e *RevocationError) Timeout() bool { return isTimeout(e.Err) }

// revoke revokes ended, the token that Logout logged out, when the
// Refresher is a Revoker, under a context built as a refresh's is (see
// refreshContext) and Config.RefreshTimeout.
func (t *Transport) revoke(ctx context.Context, ended *oauth2.Token) error {
	rv := t.revoker()
	hint, _ := tokenTypeHint(ended)
	if rv == nil || hint == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(t.refreshContext(ctx), t.cfg.RefreshTimeout)
	defer cancel()
	c := *ended
	err := t.protect(ctx, "Revoker", func() error { return rv.Revoke(ctx, &c) }, ended)
	if err == nil {
		return nil
	}
	re := &RevocationError{Err: redact(err, ended), hint: hint} // a Revoker of the user's may echo the token
	var answer *oauth2.RetrieveError
	if errors.As(re.Err, &answer) {
		re.Code = answer.ErrorCode
		if answer.Response != nil {
			re.StatusCode = answer.Response.StatusCode
			re.RetryAfter = retryAfter(answer.Response.Header)
		}
	}
	return re
}

// loggedOutToken is the token that Logout revokes, read while the store
// lock is held, before the store is cleared: the pair in the store, when it
// is newer than held (another holder refreshed it) or the Transport holds
// none (it has not read the store yet, or an earlier Logout failed to clear
// it); else held. It is nil when there is no revoker, and Logout then reads
// nothing.
func (t *Transport) loggedOutToken(ctx context.Context, held *oauth2.Token) *oauth2.Token {
	if t.revoker() == nil {
		return nil
	}
	stored, err := t.loadStore(ctx)
	switch {
	case err != nil && !isNotFound(err):
		t.log(ctx, slog.LevelWarn, "bearer: reading the token store to revoke its token failed; revoking the one held", "error", err)
	case err != nil || stored == nil || (stored.AccessToken == "" && stored.RefreshToken == ""):
	case held == nil, !sameToken(stored, held) && !t.older(stored):
		return stored
	}
	return held
}

// revoker is the Refresher as a Revoker, or nil when it is none or revokes
// nothing: an OAuth2Refresher without a RevocationURL.
func (t *Transport) revoker() Revoker {
	rv, ok := t.cfg.Refresher.(Revoker)
	if o, isOAuth2 := rv.(*OAuth2Refresher); !ok || (isOAuth2 && o.RevocationURL == "") {
		return nil
	}
	return rv
}
