package bearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

var (
	// ErrNoToken is returned when there is no token to send and none can be
	// obtained, for example when the store is empty and the refresher needs a
	// refresh token. Call [Transport.SetToken] to log in.
	ErrNoToken = errors.New("bearer: no token")

	// ErrLoggedOut is wrapped by the error of every request made after the
	// refresh token was rejected, until [Transport.SetToken] is called.
	ErrLoggedOut = errors.New("bearer: logged out")
)

// RefreshError is returned when a token refresh fails. Permanent tells
// whether the session is over (the refresh token or the client was
// rejected) or the failure was transient (network, timeout, 5xx), in which
// case a later request refreshes again. Its message never contains a token.
type RefreshError struct {
	// Permanent is true when retrying cannot help: the session is over, and
	// the Transport has logged out if it was logged in.
	Permanent bool
	// StatusCode is the HTTP status of the token endpoint's last answer, or 0.
	StatusCode int
	// Code is the OAuth2 error code of that answer (RFC 6749 §5.2), if any.
	Code string
	// Attempts is the number of times the refresher was called.
	Attempts int
	// Err is the refresher's last error.
	Err error
}

// Error describes the failure: whether it was permanent, how many attempts
// were made, and the token endpoint's status and error code. It never
// includes a token or the raw body of the endpoint's answer.
func (e *RefreshError) Error() string { return "bearer: " + e.message() }

// message is Error without the package's prefix, for the errors that wrap
// e and have their own.
func (e *RefreshError) message() string {
	var b strings.Builder
	if e.Permanent {
		b.WriteString("refresh rejected")
	} else {
		b.WriteString("refresh failed")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	b.WriteString(": ")
	b.WriteString(describe(e.Err))
	return b.String()
}

// Unwrap returns the refresher's error.
func (e *RefreshError) Unwrap() error { return e.Err }

// Timeout reports whether the refresh failed because a deadline passed, so
// that [net.Error] and [os.IsTimeout] see a timeout through an
// [*url.Error], as they do for a plain transport's error.
func (e *RefreshError) Timeout() bool { return isTimeout(e.Err) }

// Temporary reports false: a retry layer above the Transport (resty, for
// one, retries errors whose Temporary says true) should not retry a refresh
// error. The Transport has already retried a transient failure with
// backoff, and a permanent one cannot succeed; Permanent tells them apart.
func (e *RefreshError) Temporary() bool { return false }

// stepError is what a request gets when a step before sending fails:
// reading the token store, or waiting for it or for a refresh until the
// request's context ended. Like a plain transport's errors, it tells
// whether it is a timeout.
type stepError struct {
	step string // "reading token store", "waiting for token refresh", ...
	err  error
}

func (e *stepError) Error() string   { return "bearer: " + e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error   { return e.err }
func (e *stepError) Timeout() bool   { return isTimeout(e.err) }
func (e *stepError) Temporary() bool { return e.Timeout() }

// isTimeout reports whether err is, or wraps, a passed deadline or an error
// that says it is a timeout.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// loggedOutError is what requests get after a permanent refresh failure: it
// matches ErrLoggedOut and the *RefreshError that caused it.
type loggedOutError struct{ cause *RefreshError }

func (e *loggedOutError) Error() string {
	return ErrLoggedOut.Error() + ": " + e.cause.message()
}

func (e *loggedOutError) Unwrap() []error { return []error{ErrLoggedOut, e.cause} }

// Permanent marks err as a permanent refresh failure: a [Refresher] returns
// Permanent(err) when the session cannot be refreshed any more, and the
// Transport then logs out. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanentCodes are the RFC 6749 §5.2 error codes that no retry can fix.
var permanentCodes = map[string]bool{
	"invalid_grant":          true,
	"invalid_client":         true,
	"unauthorized_client":    true,
	"unsupported_grant_type": true,
	"invalid_scope":          true,
}

// transientCodes are the error codes that mean "try again". invalid_request
// is one on purpose: some servers answer it to the loser of two concurrent
// refreshes. The others are the words of a server in trouble (RFC 6749
// §4.1.2.1, RFC 8628 §3.5). The DPoP codes (RFC 9449 §8) blame the proof
// or ask for a nonce, not the refresh token: a wrong clock or a nonce that
// changed again must not end the session.
var transientCodes = map[string]bool{
	"invalid_request":         true,
	"server_error":            true,
	"temporarily_unavailable": true,
	"slow_down":               true,
	"invalid_dpop_proof":      true,
	"use_dpop_nonce":          true,
}

// recognised reports whether code is one that classify knows.
func recognised(code string) bool { return permanentCodes[code] || transientCodes[code] }

// retryableError marks an error that a refresher knows to be transient
// although its status alone would make it permanent (Endpoint's answer to a
// 400 without a known code, when so configured).
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// verdict is what classify makes of a refresher's error.
type verdict struct {
	permanent  bool
	status     int
	code       string
	retryAfter time.Duration // from a Retry-After header, if any
}

// classify decides whether a refresh error ends the session. It is the one
// place where errors are sorted, for every refresher; it reads types, codes
// and statuses, never message text.
//
// Permanent: [Permanent](err), [ErrNoToken], a permanent OAuth2 error code,
// a 401 from the token endpoint, and a 400 whose code is missing or unknown
// (RFC 6749 §5.2 gives every 400 a code; without a known one, nothing says
// that the same request could succeed). Everything else is transient:
// network errors, timeouts, 408, 429, 5xx, bodies that are not a token
// answer, and the codes in transientCodes.
func classify(err error) verdict {
	var v verdict
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		v.code = re.ErrorCode
		if re.Response != nil {
			v.status = re.Response.StatusCode
			v.retryAfter = retryAfter(re.Response.Header)
		}
	}
	var pe *permanentError
	var te *retryableError
	switch {
	case errors.As(err, &pe), errors.Is(err, ErrNoToken):
		v.permanent = true
	case errors.As(err, &te):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	case re == nil:
	case permanentCodes[v.code], v.status == http.StatusUnauthorized:
		v.permanent = true
	case transientCodes[v.code]:
	case v.status == http.StatusBadRequest:
		v.permanent = true
	}
	return v
}

// retryAfter reads a Retry-After header given in seconds or as an HTTP date.
func retryAfter(h http.Header) time.Duration {
	s := h.Get("Retry-After")
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return time.Until(t)
	}
	return 0
}

// describe renders err without anything a token endpoint may have put in its
// body: an oauth2.RetrieveError's message includes the raw response body.
func describe(err error) string {
	if err == nil {
		return "no error"
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return err.Error()
	}
	var b strings.Builder
	b.WriteString("token endpoint answered")
	if re.Response != nil {
		fmt.Fprintf(&b, " %d", re.Response.StatusCode)
	}
	if re.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", re.ErrorCode)
	}
	if re.ErrorDescription != "" {
		fmt.Fprintf(&b, ": %s", re.ErrorDescription)
	}
	return b.String()
}
