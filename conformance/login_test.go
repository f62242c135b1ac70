package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// metadata is the part of an OpenID Provider's discovery document (OpenID
// Connect Discovery 1.0, RFC 8414) that the tests use.
type metadata struct {
	Issuer        string `json:"issuer"`
	Authorization string `json:"authorization_endpoint"`
	Token         string `json:"token_endpoint"`
	Userinfo      string `json:"userinfo_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	Revocation    string `json:"revocation_endpoint"`
	// TokenAuthMethods are the client authentication methods that the token
	// endpoint claims to accept.
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

// discover reads the discovery document at u.
func discover(t *testing.T, hc *http.Client, u string) metadata {
	t.Helper()
	resp, err := hc.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "discovery document")
	var md metadata
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&md))
	require.NotEmpty(t, md.Authorization)
	require.NotEmpty(t, md.Token)
	return md
}

// user is who logs in on a provider's login page; empty for a provider that
// approves without one.
type user struct{ name, password string }

// login runs the authorization-code flow with PKCE (RFC 7636, S256) the way
// a browser would, headlessly: it follows the provider's redirects, fills in
// and submits its login form if it shows one, stops at the redirect URI and
// exchanges the code for a token pair. opts go into the authorization
// request.
func login(t *testing.T, hc *http.Client, cfg *oauth2.Config, who user, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	return loginExchanging(t, hc, hc, cfg, who, opts...)
}

// loginExchanging is login with the code exchanged through the client
// exchange, such as a dpop.Key's client, whose proofs bind the tokens to
// the key.
func loginExchanging(t *testing.T, hc, exchange *http.Client, cfg *oauth2.Config, who user, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	browser := &http.Client{
		Transport: hc.Transport,
		Jar:       jar,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), cfg.RedirectURL) {
				return http.ErrUseLastResponse // the callback: the code is in its URL
			}
			if len(via) >= 10 {
				return errors.New("conformance: too many redirects")
			}
			return nil
		},
	}
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier() // any unguessable string
	resp, err := browser.Get(cfg.AuthCodeURL(state, append(opts, oauth2.S256ChallengeOption(verifier))...))
	require.NoError(t, err)
	for pages := 0; resp.Header.Get("Location") == "" || !strings.HasPrefix(resp.Header.Get("Location"), cfg.RedirectURL); pages++ {
		require.Less(t, pages, 3, "the login did not reach the redirect URI")
		require.Equal(t, http.StatusOK, resp.StatusCode, "expected a login page")
		f, err := readForm(resp.Body, resp.Request.URL)
		resp.Body.Close()
		require.NoError(t, err)
		f.fill(who)
		resp, err = browser.PostForm(f.action, f.values)
		require.NoError(t, err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, state, back.Query().Get("state"), "the state must come back unchanged")
	code := back.Query().Get("code")
	require.NotEmpty(t, code, "no code in the redirect (error=%q)", back.Query().Get("error"))

	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, exchange)
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	require.NoError(t, err, "exchanging the code")
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken, "the login must give a refresh token")
	return tok
}

// form is an HTML login form: where it posts and what it sends.
type form struct {
	action string
	values url.Values
	fields []input
}

type input struct{ name, typ string }

// fill puts the user's name and password into the form's text and password
// fields.
func (f *form) fill(who user) {
	for _, in := range f.fields {
		switch {
		case in.typ == "password":
			f.values.Set(in.name, who.password)
		case in.typ == "" || in.typ == "text" || in.typ == "email":
			f.values.Set(in.name, who.name)
		}
	}
}

// readForm parses the first form of an HTML page served at base.
func readForm(r io.Reader, base *url.URL) (*form, error) {
	z := html.NewTokenizer(io.LimitReader(r, 1<<20))
	var f *form
	for {
		switch z.Next() {
		case html.ErrorToken:
			if f == nil {
				return nil, fmt.Errorf("conformance: no form on the login page: %w", z.Err())
			}
			return f, nil
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch {
			case tok.Data == "form" && f == nil:
				action, err := base.Parse(attr(tok, "action"))
				if err != nil {
					return nil, fmt.Errorf("conformance: login form action: %w", err)
				}
				f = &form{action: action.String(), values: url.Values{}}
			case tok.Data == "input" && f != nil && attr(tok, "name") != "":
				name, typ := attr(tok, "name"), strings.ToLower(attr(tok, "type"))
				f.values.Set(name, attr(tok, "value"))
				f.fields = append(f.fields, input{name: name, typ: typ})
			}
		case html.EndTagToken:
			if f != nil && z.Token().Data == "form" {
				return f, nil
			}
		}
	}
}

func attr(tok html.Token, key string) string {
	for _, a := range tok.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
