package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OAuth2 returns an [OAuth2Refresher] for cfg, which uses the refresh_token
// grant of RFC 6749 §6 through x/oauth2 and revokes nothing. Build the
// struct instead to set its RevocationURL. It panics if cfg is nil.
func OAuth2(cfg *oauth2.Config) Refresher {
	if cfg == nil {
		panic("bearer: OAuth2: cfg is nil")
	}
	return &OAuth2Refresher{Config: cfg}
}

// OAuth2Refresher is a [Refresher] that uses the refresh_token grant of RFC
// 6749 §6 through x/oauth2, with Config's client credentials,
// Endpoint.TokenURL and Endpoint.AuthStyle, and a [Revoker] that revokes
// the token at RevocationURL (RFC 7009) when [Transport.Logout] is called.
// [OAuth2] builds one without a RevocationURL.
//
// When the server answers without a refresh token the old one is kept; a
// rotated one replaces it. The answer's expires_in becomes the token's
// Expiry. With [oauth2.AuthStyleAutoDetect] x/oauth2 tries both ways of
// sending the client credentials whenever a request fails, so a failed
// refresh costs two requests until one style has worked; name the style to
// avoid that.
//
// Token and revocation requests use the *http.Client found in the context
// under the [oauth2.HTTPClient] key. A [Transport] runs a refresh with the
// values of the context of the request that started it (and a revocation
// with those of Logout's), so a client put there is the one used; without
// one the Transport puts a client over its Config.Base. Called on its own,
// with no client in ctx, the refresher uses [http.DefaultClient]. Either
// way the request is never given the access token, and follows a redirect
// only within its origin (scheme, host and port): a 307 or 308 would replay
// the refresh token and the client secret to wherever it points. Answers
// larger than 1 MiB are refused.
//
// Refresh errors are classified as the [Refresher] documentation says: the
// error codes invalid_grant, invalid_client, unauthorized_client,
// unsupported_grant_type and invalid_scope, a 401, and a 400 without a known
// code end the session; invalid_request, network errors, timeouts, 408,
// 429, 5xx and answers that are not a token are transient. No error shows a
// token, the client secret or the raw answer, in any encoding.
type OAuth2Refresher struct {
	// Config holds the client credentials and the token endpoint. Required.
	Config *oauth2.Config

	// RevocationURL is the server's revocation endpoint (RFC 7009; the
	// revocation_endpoint of its RFC 8414 or OpenID metadata). If empty,
	// Revoke does nothing and Logout ends the session locally only.
	RevocationURL string
}

// errNoConfig is the error of an OAuth2Refresher without a Config.
var errNoConfig = errors.New("the OAuth2Refresher has no Config")

// Refresh obtains a new token with current's refresh token.
func (r *OAuth2Refresher) Refresh(ctx context.Context, current *oauth2.Token) (*oauth2.Token, error) {
	if r.Config == nil {
		return nil, errNoConfig
	}
	if current == nil || current.RefreshToken == "" {
		return nil, Permanent(fmt.Errorf("%w: no refresh token to refresh with", ErrNoToken))
	}
	// A token with only the refresh token is never valid, so the source
	// always asks the server.
	old := &oauth2.Token{RefreshToken: current.RefreshToken}
	ctx, sent := tokenContext(ctx)
	tok, err := r.Config.TokenSource(ctx, old).Token()
	if err != nil {
		return nil, redact(err, current, append(sent.list(), r.Config.ClientSecret)...)
	}
	return tok, nil
}

// Revoke revokes tok at RevocationURL (RFC 7009 §2.1): its refresh token
// with token_type_hint=refresh_token or, when it has none, its access token
// with token_type_hint=access_token. It does nothing when RevocationURL is
// empty or tok has neither token.
//
// The client authenticates as x/oauth2 does at the token endpoint for
// Config.Endpoint.AuthStyle: [oauth2.AuthStyleInHeader] sends HTTP Basic
// with the URL-encoded client ID and secret, [oauth2.AuthStyleInParams]
// sends client_id and client_secret in the form. [oauth2.AuthStyleAutoDetect]
// sends Basic when there is a client secret and client_id in the form when
// there is none (a public client); like x/oauth2, it tries the form once
// more after Basic fails, but only when the server refused the client's
// authentication (401 or invalid_client), so that a 503 costs one request.
//
// A 2xx answer is success: RFC 7009 §2.2 answers 200 for a token the server
// does not know, too. Any other answer is an error whose chain holds an
// [*oauth2.RetrieveError] with the status, the error code and Retry-After;
// a network error, a timeout and a redirect out of the endpoint's origin
// are errors too. The code unsupported_token_type (RFC 7009 §2.2.1) says
// that the server does not revoke that kind of token. No error shows a
// token, the client secret or the raw answer.
func (r *OAuth2Refresher) Revoke(ctx context.Context, tok *oauth2.Token) error {
	if r.RevocationURL == "" || tok == nil {
		return nil
	}
	if r.Config == nil {
		return errNoConfig
	}
	hint, value := tokenTypeHint(tok)
	if hint == "" {
		return nil
	}
	form := url.Values{"token": {value}, "token_type_hint": {hint}}
	ctx, sent := tokenContext(ctx)
	client := ctx.Value(oauth2.HTTPClient).(*http.Client) // tokenContext put it there
	style := r.Config.Endpoint.AuthStyle
	autodetect := style == oauth2.AuthStyleAutoDetect
	if autodetect {
		style = oauth2.AuthStyleInParams
		if r.Config.ClientSecret != "" {
			style = oauth2.AuthStyleInHeader
		}
	}
	err := r.revoke(ctx, client, form, style)
	var re *oauth2.RetrieveError
	if autodetect && style == oauth2.AuthStyleInHeader && errors.As(err, &re) && clientRefused(re) {
		err = r.revoke(ctx, client, form, oauth2.AuthStyleInParams)
	}
	return redact(err, tok, append(sent.list(), r.Config.ClientSecret)...)
}

// revoke sends one revocation request, with the client credentials as
// style says.
func (r *OAuth2Refresher) revoke(ctx context.Context, client *http.Client, form url.Values, style oauth2.AuthStyle) error {
	cfg := r.Config
	if style == oauth2.AuthStyleInParams {
		form = maps.Clone(form) // Set replaces a key's slice: the caller's form is left as it was
		if cfg.ClientID != "" {
			form.Set("client_id", cfg.ClientID)
		}
		if cfg.ClientSecret != "" {
			form.Set("client_secret", cfg.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.RevocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if style == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // tokenContext's client has read it whole, within its cap
	if err != nil {
		return err
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw) // not JSON: an answer with its status only
	return &revocationAnswer{re: oauthError(resp, raw), hint: form.Get("token_type_hint")}
}

// tokenTypeHint is the token that revoking tok sends, and its
// token_type_hint: the refresh token if tok has one, else the access token.
// The hint is "" when tok has neither.
func tokenTypeHint(tok *oauth2.Token) (hint, value string) {
	switch {
	case tok.RefreshToken != "":
		return "refresh_token", tok.RefreshToken
	case tok.AccessToken != "":
		return "access_token", tok.AccessToken
	}
	return "", ""
}

// clientRefused reports whether the server refused the client's
// authentication.
func clientRefused(re *oauth2.RetrieveError) bool {
	return re.ErrorCode == "invalid_client" || (re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized)
}

// revocationAnswer is the error of a revocation endpoint's answer other
// than 2xx. It wraps the answer as x/oauth2 reports a token endpoint's,
// whose own message speaks of fetching a token.
type revocationAnswer struct {
	re   *oauth2.RetrieveError
	hint string // the token_type_hint sent
}

func (e *revocationAnswer) Error() string {
	var b strings.Builder
	b.WriteString("the revocation endpoint answered")
	if e.re.Response != nil {
		fmt.Fprintf(&b, " %d", e.re.Response.StatusCode)
	}
	if e.re.ErrorCode != "" {
		fmt.Fprintf(&b, " %s", e.re.ErrorCode)
	}
	switch {
	case e.re.ErrorCode == "unsupported_token_type":
		fmt.Fprintf(&b, ": the server does not revoke %ss", strings.ReplaceAll(e.hint, "_", " "))
	case e.re.ErrorDescription != "":
		fmt.Fprintf(&b, ": %s", e.re.ErrorDescription)
	}
	if e.re.Response != nil {
		if d := retryAfter(e.re.Response.Header); d > 0 {
			fmt.Fprintf(&b, " (retry after %v)", d.Round(time.Second))
		}
	}
	return b.String()
}

func (e *revocationAnswer) Unwrap() error { return e.re }
