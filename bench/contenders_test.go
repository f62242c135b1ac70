package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/internal/axios"
)

// env is what every contender is built from, so that they all send through
// the same base and refresh against the same server.
type env struct {
	base        http.RoundTripper // sends the API requests
	tok         *oauth2.Token     // the token pair of the logged-in user
	cfg         *oauth2.Config    // the RFC 6749 token endpoint (oauth2, bearer)
	refreshURL  string            // the axios-style JSON refresh endpoint (axios)
	tokenClient *http.Client      // sends token requests, never authenticated
	// leeway is how long before expiry the contenders that refresh ahead of
	// time (oauth2, bearer) do so. Zero: each one's default (10s for
	// oauth2.ReuseTokenSource, bearer.DefaultLeeway).
	leeway time.Duration
}

// contender is one RoundTripper under test.
type contender struct {
	name string
	new  func(e env) (http.RoundTripper, error)
	// preset, if set, is what the caller does once to each request before
	// the load: the no-auth floor gets its header there.
	preset func(e env, req *http.Request)
}

var (
	noAuth = contender{
		name: "none",
		new:  func(e env) (http.RoundTripper, error) { return e.base, nil },
		preset: func(e env, req *http.Request) {
			req.Header.Set("Authorization", e.tok.Type()+" "+e.tok.AccessToken)
		},
	}
	header = contender{name: "header", new: func(e env) (http.RoundTripper, error) {
		return newHeaderOnly(e.base, e.tok.Type()+" "+e.tok.AccessToken), nil
	}}
	oauth2Transport = contender{name: "oauth2", new: newOAuth2Transport}
	axiosPort       = contender{name: "axios", new: func(e env) (http.RoundTripper, error) {
		c := &axios.Interceptor{Base: e.base, RefreshClient: e.tokenClient, RefreshURL: e.refreshURL}
		c.Login(e.tok)
		return c, nil
	}}
	bearerTransport = contender{name: "bearer", new: newBearer}
	// bearerWaiting is bearer with the opt-out from background refreshes:
	// every request whose token is due waits for the refresh.
	bearerWaiting = contender{name: "bearer-wait", new: func(e env) (http.RoundTripper, error) {
		return newBearerWith(e, bearer.Config{WaitForRefresh: true})
	}}
)

// request returns req as the caller of c sends it.
func (c contender) request(e env, req *http.Request) *http.Request {
	if c.preset != nil {
		c.preset(e, req)
	}
	return req
}

// everyone runs where the token never needs refreshing.
var everyone = []contender{noAuth, header, oauth2Transport, axiosPort, bearerTransport}

// refreshers are the contenders that can renew a token.
var refreshers = []contender{oauth2Transport, axiosPort, bearerTransport}

// headerOnly is the limit for any auth transport: it does what the RoundTripper
// contract requires (a new request with its own header map) and sets a value
// built once. It never refreshes.
type headerOnly struct {
	base http.RoundTripper
	auth []string
}

func newHeaderOnly(base http.RoundTripper, auth string) *headerOnly {
	return &headerOnly{base: base, auth: []string{auth}}
}

func (h *headerOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	r := new(http.Request)
	*r = *req
	r.Header = req.Header.Clone()
	if r.Header == nil {
		r.Header = make(http.Header, 1)
	}
	r.Header["Authorization"] = h.auth[:1:1]
	return h.base.RoundTrip(r)
}

// newOAuth2Transport builds what oauth2.Config.Client(ctx, tok) builds, over
// e.base: an oauth2.Transport whose source is a ReuseTokenSource that
// refreshes through the token endpoint when the token is about to expire.
// With e.leeway set, the source is oauth2.ReuseTokenSourceWithExpiry with
// that early expiry instead, the same ReuseTokenSource with another margin.
func newOAuth2Transport(e env) (http.RoundTripper, error) {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.tokenClient)
	refresh := e.cfg.TokenSource(ctx, e.tok)
	src := oauth2.ReuseTokenSource(nil, refresh)
	if e.leeway != 0 {
		src = oauth2.ReuseTokenSourceWithExpiry(e.tok, refresh, e.leeway)
	}
	return &oauth2.Transport{Base: e.base, Source: src}, nil
}

// newBearer builds a bearer.Transport logged in with e.tok, refreshing
// through the token endpoint with e.tokenClient.
func newBearer(e env) (http.RoundTripper, error) { return newBearerWith(e, bearer.Config{}) }

// newBearerWith is newBearer with the other fields of cfg; Base, Refresher
// and Leeway come from e.
func newBearerWith(e env, cfg bearer.Config) (http.RoundTripper, error) {
	ref := bearer.OAuth2(e.cfg)
	cfg.Base = e.base
	cfg.Leeway = e.leeway
	cfg.Refresher = bearer.RefresherFunc(func(ctx context.Context, cur *oauth2.Token) (*oauth2.Token, error) {
		return ref.Refresh(context.WithValue(ctx, oauth2.HTTPClient, e.tokenClient), cur)
	})
	t, err := bearer.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := t.SetToken(context.Background(), e.tok); err != nil {
		return nil, fmt.Errorf("bench: logging in: %w", err)
	}
	return t, nil
}
