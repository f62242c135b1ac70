package bearer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// This file keeps secrets and token endpoints' raw answers out of the
// errors of the package's refreshers.

// redact returns err as a chain that shows no secret and no raw answer of a
// token endpoint, at any depth. The access and refresh tokens of sent
// (which may be nil) and the more secrets (a client secret, an API key,
// what the token request carried) are cut from every message, in every
// form in which a server may echo them (see secretForms). Every
// *oauth2.RetrieveError becomes a copy with its code, description and URI
// cleaned, no Body, and an answer reduced to its status and Retry-After: no
// body, no cookies, no token request. The refreshers own the errors they
// pass here; the errors are not changed, a new chain is built: a part of
// the chain that needs no cleaning is kept as it is, a *url.Error or an
// error of this package is rebuilt as itself, and a wrapper of another type
// becomes one with the cleaned message. Classification is unchanged (a
// code that was a secret is unknown either way). Secrets under 4 bytes are
// not looked for.
func redact(err error, sent *oauth2.Token, more ...string) error {
	if err == nil {
		return nil
	}
	secrets := slices.Clip(more) // appending never writes to the caller's array
	if sent != nil {
		secrets = append(secrets, sent.AccessToken, sent.RefreshToken)
	}
	return newCleaner(secrets).scrub(err)
}

// redacted stands for a secret cut from a message.
const redacted = "[redacted]"

// cleaner cuts a set of secrets from messages and rebuilds error chains.
type cleaner struct {
	r      *strings.Replacer
	bodies []string // raw answers of the RetrieveErrors met, cut from wrappers' messages
}

func newCleaner(secrets []string) *cleaner {
	var forms []string
	for _, s := range secrets {
		if len(s) >= 4 {
			forms = append(forms, secretForms(s)...)
		}
	}
	// Longest first, so that no form is cut short by a shorter one.
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	forms = slices.Compact(forms)
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, redacted)
	}
	return &cleaner{r: strings.NewReplacer(pairs...)}
}

// secretForms are the ways a server may send s back: raw; URL-encoded as a
// query or as a path, with upper- or lower-case hex; JSON-escaped as Go does
// (with and without HTML escapes), with escaped slashes (PHP) or with every
// non-ASCII rune escaped (Python); Go-quoted, as %q prints it; and with its
// invalid UTF-8 replaced, as a JSON decoder does.
func secretForms(s string) []string {
	q, p := url.QueryEscape(s), url.PathEscape(s)
	forms := []string{s, q, p, lowerHex(q), lowerHex(p), unquote(strconv.Quote(s)), strings.ToValidUTF8(s, "\uFFFD")}
	html, _ := json.Marshal(s)
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	for _, j := range []string{unquote(string(html)), unquote(strings.TrimSuffix(plain.String(), "\n")), asciiJSON(s)} {
		forms = append(forms, j, strings.ReplaceAll(j, "/", `\/`))
	}
	return forms
}

// unquote strips the quotes around a quoted string.
func unquote(q string) string { return q[1 : len(q)-1] }

// lowerHex writes the %XX escapes of a URL-encoded string in lower case.
func lowerHex(e string) string {
	b := []byte(e)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// asciiJSON is s JSON-escaped with every rune outside ASCII as \uXXXX.
func asciiJSON(s string) string {
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	var b strings.Builder
	for _, r := range unquote(strings.TrimSuffix(plain.String(), "\n")) {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			fmt.Fprintf(&b, `\u%04x`, u)
		}
	}
	return b.String()
}

// clean cuts the secrets from s.
func (c *cleaner) clean(s string) string { return c.r.Replace(s) }

// scrub returns err rebuilt so that nothing in its chain shows a secret or
// a raw answer.
func (c *cleaner) scrub(err error) error {
	if err == nil || c.isClean(err) {
		return err
	}
	switch e := err.(type) {
	case *oauth2.RetrieveError:
		return c.retrieveError(e)
	case *url.Error:
		return &url.Error{Op: e.Op, URL: c.clean(e.URL), Err: c.scrub(e.Err)}
	case *permanentError:
		return &permanentError{c.scrub(e.err)}
	case *retryableError:
		return &retryableError{c.scrub(e.err)}
	case interface{ Unwrap() error }:
		inner := e.Unwrap()
		s := c.scrub(inner)
		return &redactedError{msg: c.message(err, []error{inner}, []error{s}), err: s}
	case interface{ Unwrap() []error }:
		inner := e.Unwrap()
		s := make([]error, len(inner))
		for i, in := range inner {
			s[i] = c.scrub(in)
		}
		return &redactedErrors{msg: c.message(err, inner, s), errs: s}
	}
	return &redactedError{msg: c.message(err, nil, nil)}
}

// isClean reports whether err's chain can be kept as it is: it holds no
// *oauth2.RetrieveError, and no error in it shows a secret, by its message
// or by its own formatting.
func (c *cleaner) isClean(err error) bool {
	if _, ok := err.(*oauth2.RetrieveError); ok {
		return false
	}
	if msg := err.Error(); c.clean(msg) != msg {
		return false
	}
	if _, ok := err.(fmt.Formatter); ok {
		if s := fmt.Sprintf("%+v", err); c.clean(s) != s {
			return false
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if in := u.Unwrap(); in != nil {
			return c.isClean(in)
		}
	case interface{ Unwrap() []error }:
		for _, in := range u.Unwrap() {
			if in != nil && !c.isClean(in) {
				return false
			}
		}
	}
	return true
}

// message is the message of a wrapper rebuilt around scrubbed errors: its
// own, with the messages of the errors it wraps replaced by theirs, and
// cleaned of secrets and raw answers.
func (c *cleaner) message(err error, inner, scrubbed []error) string {
	msg := err.Error()
	for i, in := range inner {
		if in == nil || scrubbed[i] == nil {
			continue
		}
		if old, now := in.Error(), scrubbed[i].Error(); old != "" && old != now {
			msg = strings.ReplaceAll(msg, old, now)
		}
	}
	for _, b := range c.bodies {
		if b != "" {
			msg = strings.ReplaceAll(msg, b, "[answer omitted]")
		}
	}
	return c.clean(msg)
}

// retrieveError is e without its raw answer, cleaned.
func (c *cleaner) retrieveError(e *oauth2.RetrieveError) *oauth2.RetrieveError {
	c.bodies = append(c.bodies, string(e.Body))
	return &oauth2.RetrieveError{
		Response:         c.answer(e.Response),
		ErrorCode:        c.clean(e.ErrorCode),
		ErrorDescription: c.clean(e.ErrorDescription),
		ErrorURI:         c.clean(e.ErrorURI),
	}
}

// answer is what classify and describe need of a token endpoint's answer:
// its status and a valid Retry-After. It has no body, no cookies, no other
// header and no request: the token request holds the refresh token and
// the client credentials, its GetBody included.
func (c *cleaner) answer(resp *http.Response) *http.Response {
	if resp == nil {
		return nil
	}
	a := &http.Response{Header: http.Header{}, Body: http.NoBody}
	a.StatusCode = resp.StatusCode
	a.Status = strings.TrimSpace(strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode))
	if v := resp.Header.Get("Retry-After"); v != "" && retryAfter(resp.Header) > 0 && c.clean(v) == v {
		a.Header.Set("Retry-After", v)
	}
	return a
}

// redactedError is a wrapper rebuilt with a cleaned message.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactedErrors is a wrapper of several errors rebuilt with a cleaned
// message.
type redactedErrors struct {
	msg  string
	errs []error
}

func (e *redactedErrors) Error() string   { return e.msg }
func (e *redactedErrors) Unwrap() []error { return e.errs }
