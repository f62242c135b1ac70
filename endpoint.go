package bearer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/oauth2"
)

// Endpoint is a [Refresher] for the plain JSON refresh endpoint that many
// web backends expose, the one an axios interceptor calls:
//
//	POST URL  {"token": "<refresh token>"}
//	200       {"accessToken": "...", "refreshToken": "...", "expiresIn": 3600}
//
// refreshToken and expiresIn (seconds) are optional: without a refresh
// token the old one is kept, without expiresIn the token has no expiry. An
// optional tokenType ("DPoP" for a token bound to Config.DPoP's key) gives
// the token's type; without it the type is left empty, which is Bearer
// ([oauth2.Token.Type]) except for the refresh of a DPoP-bound token, which
// a [Transport] keeps DPoP.
// The whole answer is kept as the token's extra fields ([oauth2.Token.Extra]).
// Answers larger than 1 MiB are refused with a transient error.
//
// Only URL is required; every other field is optional, its zero value the
// default: &bearer.Endpoint{URL: u} is a complete Refresher. The fields
// rename the JSON fields (Fields), add headers (Header), choose the client
// (HTTPClient), replace the request or the decoding of the answer for APIs
// that differ (BuildRequest, DecodeResponse), and make a 400 without a known
// code transient (TransientBadRequest).
//
// Errors are classified as for [OAuth2]: an answer whose "error" field is
// invalid_grant or another permanent OAuth2 code (whatever its status, 200
// included), a 401, or a 400 without a known error code ends the session;
// network errors, timeouts, 408, 429, 5xx, invalid_request, and answers
// that are not JSON or have no access token are transient, and Retry-After
// is honoured. Non-success answers are reported as an
// [*oauth2.RetrieveError] whose Body is not kept. No error shows a token,
// a value of Header or a credential of the request, in any encoding.
//
// An Endpoint is safe for concurrent use; its fields must not be changed
// once it is in use.
type Endpoint struct {
	// URL is the address of the refresh endpoint, to which the default
	// request is sent and which BuildRequest is given. It is required: if
	// empty, Refresh fails with a transient error and sends nothing (a
	// configuration mistake is not the server's verdict on the refresh
	// token, so it does not end the session), as it does when URL cannot
	// be parsed.
	URL string

	// Fields names the JSON fields of the request and the answer, as in
	// Fields: EndpointFields{Token: "refresh_token", AccessToken: "jwt"}.
	// If zero, or for each name left empty, the defaults of
	// [EndpointFields] are used.
	Fields EndpointFields

	// Header is set on every refresh request, one built by BuildRequest
	// included, replacing the request's values for each key (a key is
	// canonicalised as by [http.Header.Set]). Its values are treated as
	// secrets: no error shows them. If nil, no header is added.
	Header http.Header

	// HTTPClient sends the refresh requests. If nil, the client under
	// [oauth2.HTTPClient] in the refresh context is used, as for [OAuth2]:
	// the one on the context of the request that started the refresh, else
	// one over the Transport's Config.Base, else (outside a Transport)
	// [http.DefaultClient]. [Transport.CloseIdleConnections] closes this
	// client's idle connections too. The client may even be one built on
	// the Transport itself: refresh requests never get the access token.
	// Whatever the client, a refresh request follows a redirect only within
	// its origin (scheme, host and port).
	HTTPClient *http.Client

	// BuildRequest replaces the JSON request: it returns the request to
	// send to url (the Endpoint's URL) for the token current (nil before the
	// first token). The request must be made with ctx, as by
	// [http.NewRequestWithContext]; one made with another context is given
	// ctx. If nil, the JSON request above is built, and Refresh fails with
	// [ErrNoToken] when current has no refresh token.
	BuildRequest func(ctx context.Context, url string, current *oauth2.Token) (*http.Request, error)

	// DecodeResponse replaces the decoding of a successful (2xx) answer: it
	// gets the response, whose body has been read and closed, and the body,
	// at most 1 MiB. Its errors are classified like any refresher's: wrap
	// one in [Permanent] to end the session. Answers of other statuses are
	// still classified by their status and their JSON "error" field. If
	// nil, the JSON answer above is decoded.
	DecodeResponse func(resp *http.Response, body []byte) (*oauth2.Token, error)

	// TransientBadRequest makes a 400 answer without a known OAuth2 error
	// code a transient failure, retried and never a logout. If false, such
	// an answer is permanent, as for [OAuth2]: a server that rejects the
	// request itself will reject it again. Set it for a backend that
	// answers 400 to a refresh it could not do for now.
	TransientBadRequest bool
}

// EndpointFields names the JSON fields of a refresh endpoint. An empty name
// keeps the default.
type EndpointFields struct {
	// Token is the request field that carries the refresh token; "token" by
	// default.
	Token string
	// AccessToken is the answer's access token field; "accessToken" by
	// default.
	AccessToken string
	// RefreshToken is the answer's optional refresh token field;
	// "refreshToken" by default.
	RefreshToken string
	// ExpiresIn is the answer's optional lifetime field, in seconds (a
	// number or a string of one); "expiresIn" by default.
	ExpiresIn string
	// TokenType is the answer's optional token type field, "Bearer" or
	// "DPoP"; "tokenType" by default.
	TokenType string
}

func (f EndpointFields) withDefaults() EndpointFields {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&f.Token, "token")
	def(&f.AccessToken, "accessToken")
	def(&f.RefreshToken, "refreshToken")
	def(&f.ExpiresIn, "expiresIn")
	def(&f.TokenType, "tokenType")
	return f
}

// errNoURL is the error of an Endpoint without a URL.
var errNoURL = errors.New("Endpoint: URL is empty")

// Refresh sends the refresh request for current and returns the token of
// the answer, as the [Endpoint] documentation describes.
func (e *Endpoint) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	if e.URL == "" {
		return nil, errNoURL
	}
	req, err := e.request(ctx, current)
	if err != nil {
		return nil, redact(err, current)
	}
	tok, err := e.send(ctx, req)
	if err != nil {
		// The values of Header are API keys as often as not.
		secrets := requestSecrets(req)
		for _, v := range e.Header {
			secrets = append(secrets, v...)
		}
		return nil, redact(err, current, secrets...)
	}
	return tok, nil
}

// send sends the refresh request and decodes the answer.
func (e *Endpoint) send(ctx context.Context, req *http.Request) (*oauth2.Token, error) {
	resp, err := e.httpClient(ctx).Do(req)
	if err != nil {
		return nil, fmt.Errorf("refresh endpoint: %w", err)
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, e.failure(resp, body)
	}
	if e.DecodeResponse != nil {
		return e.DecodeResponse(resp, body)
	}
	return e.decodeJSON(resp, body)
}

// request builds the refresh request, the builder's or the JSON one, and
// adds the headers of e.Header.
func (e *Endpoint) request(ctx context.Context, current *oauth2.Token) (*http.Request, error) {
	build := e.BuildRequest
	if build == nil {
		build = e.jsonRequest
	}
	req, err := build(ctx, e.URL, current)
	switch {
	case err != nil:
		return nil, err
	case req == nil:
		return nil, errors.New("Endpoint: the request builder returned no request")
	}
	if !skipped(req.Context()) {
		req = req.WithContext(ctx) // never a request that a Transport would authorise
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	for k, v := range e.Header {
		req.Header[http.CanonicalHeaderKey(k)] = slices.Clone(v)
	}
	return req, nil
}

// jsonRequest is the default request: POST {"token": refresh}.
func (e *Endpoint) jsonRequest(ctx context.Context, url string, current *oauth2.Token) (*http.Request, error) {
	if current == nil || current.RefreshToken == "" {
		return nil, Permanent(fmt.Errorf("%w: no refresh token to refresh with", ErrNoToken))
	}
	body, err := json.Marshal(map[string]string{e.Fields.withDefaults().Token: current.RefreshToken})
	if err != nil {
		return nil, fmt.Errorf("Endpoint: encoding the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("Endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// httpClient is the client for refresh requests (see HTTPClient), as a
// copy that follows redirects only within the origin.
func (e *Endpoint) httpClient(ctx context.Context) *http.Client {
	c := e.HTTPClient
	if c == nil {
		c, _ = ctx.Value(oauth2.HTTPClient).(*http.Client)
	}
	return withinOrigin(c)
}

// failure reports an error answer so that classify can read its status,
// code and Retry-After.
func (e *Endpoint) failure(resp *http.Response, body []byte) error {
	var raw map[string]any
	if json.Unmarshal(body, &raw) != nil {
		raw = nil
	}
	err := oauthError(resp, raw)
	if e.TransientBadRequest && resp.StatusCode == http.StatusBadRequest && !recognised(err.ErrorCode) {
		return &retryableError{err}
	}
	return err
}

// oauthError reads the OAuth2 error shape (RFC 6749 §5.2) that most JSON
// endpoints follow, {"error": code, "error_description": text, "error_uri":
// uri}, from an answer; a field of another type is ignored.
func oauthError(resp *http.Response, raw map[string]any) *oauth2.RetrieveError {
	code, _ := raw["error"].(string)
	desc, _ := raw["error_description"].(string)
	uri, _ := raw["error_uri"].(string)
	return &oauth2.RetrieveError{Response: resp, ErrorCode: code, ErrorDescription: desc, ErrorURI: uri}
}

// decodeJSON reads the default answer: a JSON object with the fields named
// by e.Fields.
func (e *Endpoint) decodeJSON(resp *http.Response, body []byte) (*oauth2.Token, error) {
	var raw map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&raw); err != nil || raw == nil {
		return nil, fmt.Errorf("the refresh endpoint answered %d with a body that is not a JSON object (Content-Type %q)",
			resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if code, _ := raw["error"].(string); code != "" {
		return nil, oauthError(resp, raw)
	}
	f := e.Fields.withDefaults()
	access, _ := raw[f.AccessToken].(string)
	if access == "" {
		return nil, fmt.Errorf("the refresh endpoint's answer has no %q string field", f.AccessToken)
	}
	tok := &oauth2.Token{AccessToken: access}
	switch v := raw[f.RefreshToken].(type) {
	case nil:
	case string:
		tok.RefreshToken = v
	default:
		return nil, fmt.Errorf("the refresh endpoint's %q field is not a string", f.RefreshToken)
	}
	switch v := raw[f.TokenType].(type) {
	case nil: // Bearer, or DPoP for a bound lineage: the Transport keeps its type
	case string:
		tok.TokenType = v
	default:
		return nil, fmt.Errorf("the refresh endpoint's %q field is not a string", f.TokenType)
	}
	secs, ok := seconds(raw[f.ExpiresIn])
	if !ok {
		return nil, fmt.Errorf("the refresh endpoint's %q field is not a number of seconds", f.ExpiresIn)
	}
	if secs > 0 {
		tok.ExpiresIn = secs
		tok.Expiry = time.Now().Add(time.Duration(secs) * time.Second)
	}
	return tok.WithExtra(raw), nil
}

// seconds reads a lifetime given as a JSON number or a string of one;
// absent or null is 0.
func seconds(v any) (int64, bool) {
	var s string
	switch v := v.(type) {
	case nil:
		return 0, true
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	// Beyond this a time.Duration overflows into the past; x/oauth2 caps
	// expires_in the same way.
	return int64(min(f, math.MaxInt32)), true
}

// CloseIdleConnections closes the idle connections of e.HTTPClient, if it
// is set. A [Transport] calls it from its own CloseIdleConnections.
func (e *Endpoint) CloseIdleConnections() {
	if e.HTTPClient != nil {
		e.HTTPClient.CloseIdleConnections()
	}
}
