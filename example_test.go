package bearer_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// The examples run against bearertest, a real OAuth2 server and API
// on 127.0.0.1 that stands in for yours. None of them prints a token.

// A Transport keeps the client logged in: here the server revokes the
// access token, and the next request still succeeds, after one refresh that
// the caller never sees. The part between the quickstart markers is the
// README's quickstart; a test keeps the two identical.
func ExampleNew() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	ctx, cfg, tok, apiURL := context.Background(), srv.Config(), srv.Issue(), srv.APIURL

	// quickstart:begin
	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg), // cfg: your *oauth2.Config
		OnLogout: func(ctx context.Context, err error) {
			log.Printf("the session is over, log in again: %v", err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(ctx, tok); err != nil { // tok: the *oauth2.Token of your login
		log.Fatal(err)
	}
	client := tr.Client() // or any *http.Client with Transport: tr

	resp, err := client.Get(apiURL + "/me")
	if err != nil {
		log.Fatal(err) // errors.Is(err, bearer.ErrLoggedOut): log in again
	}
	defer resp.Body.Close()
	// quickstart:end
	fmt.Println("first call:", resp.Status)

	srv.RevokeAccessTokens()
	resp2, err := client.Get(apiURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp2.Body.Close()
	fmt.Println("after the server revoked the access token:", resp2.Status)
	fmt.Println("refreshes:", srv.Stats().Refreshes)
	// Output:
	// first call: 200 OK
	// after the server revoked the access token: 200 OK
	// refreshes: 1
}

// OAuth2 refreshes through golang.org/x/oauth2 with the refresh token of a
// login, here an authorization code flow with PKCE.
func ExampleOAuth2() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	ctx := context.Background()
	cfg := srv.Config()

	// Log in: the user approves at the authorization URL (Authorize plays
	// the browser), and the code is exchanged for a token pair.
	verifier, state := oauth2.GenerateVerifier(), rand.Text()
	code, _, err := srv.Authorize(ctx, cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		log.Fatal(err)
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err)
	}

	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg)})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(ctx, tok); err != nil {
		log.Fatal(err)
	}

	srv.RevokeAccessTokens()
	resp, err := tr.Client().Get(srv.APIURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	st := srv.Stats()
	fmt.Println(resp.Status, "after", st.Refreshes, "refresh")
	// Output:
	// 200 OK after 1 refresh
}

// Endpoint refreshes with the plain JSON endpoint that many web backends
// expose for their axios interceptors: POST {"token": refresh}.
func ExampleEndpoint() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()

	tr, err := bearer.New(bearer.Config{Refresher: &bearer.Endpoint{URL: srv.RefreshURL}})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(context.Background(), srv.Issue()); err != nil {
		log.Fatal(err)
	}

	srv.RevokeAccessTokens()
	resp, err := tr.Client().Get(srv.APIURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	st := srv.Stats()
	fmt.Println(resp.Status, "after", st.Refreshes, "refresh,", st.ReuseDetections, "reuse")
	// Output:
	// 200 OK after 1 refresh, 0 reuse
}

// A request made under SkipAuth goes out as it is: no token, and no refresh
// when the server answers 401.
func ExampleSkipAuth() {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(srv.Config())})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(context.Background(), srv.Issue()); err != nil {
		log.Fatal(err)
	}

	req, err := http.NewRequestWithContext(bearer.SkipAuth(context.Background()), http.MethodGet, srv.APIURL+"/me", nil)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := tr.Client().Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, "with", srv.Stats().TokenRequests, "token requests")
	// Output:
	// 401 Unauthorized with 0 token requests
}

// When the server rejects the refresh token, OnLogout is called once and
// every request fails with an error wrapping ErrLoggedOut, without reaching
// the network, until SetToken logs in again.
func ExampleConfig_onLogout() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	cfg := srv.Config()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	ctx := context.Background()

	tr, err := bearer.New(bearer.Config{
		Refresher: bearer.OAuth2(cfg),
		OnLogout: func(_ context.Context, err error) {
			var re *bearer.RefreshError
			if errors.As(err, &re) {
				fmt.Println("OnLogout:", re.Code)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(ctx, srv.Issue()); err != nil {
		log.Fatal(err)
	}
	client := tr.Client()
	get := func() error {
		resp, err := client.Get(srv.APIURL + "/me")
		if err != nil {
			return err
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
		return nil
	}

	srv.RevokeRefreshTokens() // the user's session ended on the server
	for range 2 {
		if err := get(); errors.Is(err, bearer.ErrLoggedOut) {
			fmt.Println("logged out")
		}
	}
	fmt.Println("token requests:", srv.Stats().TokenRequests)

	if err := tr.SetToken(ctx, srv.Issue()); err != nil { // log in again
		log.Fatal(err)
	}
	if err := get(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// OnLogout: invalid_grant
	// logged out
	// logged out
	// token requests: 1
	// 200 OK
}

// By default only a 401 that blames the token triggers a refresh: one with
// no challenge, or with a Bearer challenge whose error is absent or
// invalid_token. A 401 for a missing scope, or with only another scheme's
// challenge, is the caller's to handle, and is returned as it is.
func ExampleConfig_shouldRefresh() {
	srv := bearertest.NewServer(bearertest.Options{})
	defer srv.Close()
	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(srv.Config())})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if err := tr.SetToken(context.Background(), srv.Issue()); err != nil {
		log.Fatal(err)
	}

	for _, challenge := range []string{
		`Bearer error="insufficient_scope", scope="admin"`,
		`Basic realm="admin area"`,
		`Bearer error="invalid_token"`,
	} {
		srv.FailAPI(1, bearertest.Fault{Status: http.StatusUnauthorized, Header: http.Header{"Www-Authenticate": {challenge}}})
		resp, err := tr.Client().Get(srv.APIURL + "/me")
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%s → %s, refreshes so far: %d\n", challenge, resp.Status, srv.Stats().Refreshes)
	}
	// Output:
	// Bearer error="insufficient_scope", scope="admin" → 401 Unauthorized, refreshes so far: 0
	// Basic realm="admin area" → 401 Unauthorized, refreshes so far: 0
	// Bearer error="invalid_token" → 200 OK, refreshes so far: 1
}

// TestREADMEQuickstart keeps the README's only Go code block identical to
// the body of ExampleNew between its quickstart markers, so that the README
// shows code that compiles and runs.
func TestREADMEQuickstart(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)

	_, rest, found := strings.Cut(string(src), "\t// quickstart:begin\n")
	require.True(t, found, "ExampleNew has no quickstart:begin marker")
	body, _, found := strings.Cut(rest, "\t// quickstart:end\n")
	require.True(t, found, "ExampleNew has no quickstart:end marker")
	var want strings.Builder
	want.WriteString("```go\n")
	for _, line := range strings.SplitAfter(body, "\n") {
		want.WriteString(strings.TrimPrefix(line, "\t"))
	}
	want.WriteString("```\n")

	assert.Equal(t, 1, strings.Count(string(readme), "```go"),
		"the README has more than one Go block: keep each in sync with an example, as this test does for the quickstart")
	assert.Contains(t, string(readme), want.String(), "README.md's quickstart differs from ExampleNew")
}

// A Pool sends each request with the token of the user its context names:
// here the server revokes every access token, each user's next request
// costs one refresh of their own token, and a request that names nobody
// fails before it reaches the server.
func ExampleNewPool() {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	ctx := context.Background()
	pool, err := bearer.NewPool(bearer.PoolConfig{
		Transport: bearer.Config{Refresher: bearer.OAuth2(srv.Config())},
		OnLogout: func(_ context.Context, id string, err error) {
			log.Printf("%s must log in again: %v", id, err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.CloseIdleConnections()
	for _, user := range []string{"alice", "bob"} {
		if err := pool.SetToken(ctx, user, srv.Issue()); err != nil { // at each user's login
			log.Fatal(err)
		}
	}
	srv.RevokeAccessTokens()

	get := func(ctx context.Context) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.APIURL+"/me", nil)
		if err != nil {
			log.Fatal(err)
		}
		resp, err := pool.Client().Do(req)
		if err != nil {
			fmt.Println(errors.Is(err, bearer.ErrNoIdentity))
			return
		}
		resp.Body.Close()
		user, _ := bearer.IdentityFrom(ctx)
		fmt.Println(user, resp.Status)
	}
	get(bearer.WithIdentity(ctx, "alice"))
	get(bearer.WithIdentity(ctx, "bob"))
	get(ctx)
	fmt.Println(srv.Stats().Refreshes, "refreshes")
	// Output:
	// alice 200 OK
	// bob 200 OK
	// true
	// 2 refreshes
}
