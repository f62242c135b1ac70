package compat_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"testing"

	restyv2 "github.com/go-resty/resty/v2"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	restyv3 "resty.dev/v3"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// The README's recipes come from this file: the retry policies that leave
// bearer's errors alone, and an example per library.

// bearerGaveUp reports whether err is the Transport's last word on a
// request: a refresh that failed (a transient failure has already been
// retried by the Transport, a permanent one ended the session) or a
// session that is over. Retrying the request above the Transport cannot
// help.
func bearerGaveUp(err error) bool {
	return errors.As(err, new(*bearer.RefreshError)) || errors.Is(err, bearer.ErrLoggedOut) || errors.Is(err, bearer.ErrNoToken)
}

// checkRetry is retryablehttp's default policy, except for bearer's errors.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if bearerGaveUp(err) {
		return false, err
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// restyV2Condition is resty v2's default (retry on an error) except for
// bearer's errors. A condition given replaces the default.
func restyV2Condition(_ *restyv2.Response, err error) bool {
	return err != nil && !bearerGaveUp(err)
}

// restyV3Condition is the same for resty v3. Its default conditions retry
// any error whose Temporary method says true, which bearer's errors do not
// say, so they leave bearer's errors alone; a condition of your own still
// needs the check.
func restyV3Condition(_ *restyv3.Response, err error) bool {
	return err != nil && !bearerGaveUp(err)
}

// exampleServer is a token server and API for the examples, and the client
// config for it.
func exampleServer() (*bearertest.Server, *oauth2.Config) {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	cfg := srv.Config()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return srv, cfg
}

// bearer under go-retryablehttp: the Transport sends retryablehttp's
// attempts, and checkRetry keeps retryablehttp from retrying bearer's
// errors. During an outage of the token endpoint, one request costs the
// Transport's own three attempts, not five times three.
func Example_retryablehttp() {
	srv, cfg := exampleServer()
	defer srv.Close()
	ctx := context.Background()

	rc := retryablehttp.NewClient()
	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg), Base: rc.HTTPClient.Transport})
	if err != nil {
		log.Fatal(err)
	}
	rc.HTTPClient.Transport = tr
	rc.CheckRetry = checkRetry

	defer tr.CloseIdleConnections()
	rc.Logger = nil
	if err := tr.SetToken(ctx, srv.Issue()); err != nil {
		log.Fatal(err)
	}
	resp, err := rc.Get(srv.APIURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	srv.RevokeAccessTokens()
	srv.FailToken(-1, bearertest.ServerError(http.StatusServiceUnavailable))
	before := srv.Stats().TokenRequests
	_, err = rc.Get(srv.APIURL + "/me")
	var re *bearer.RefreshError
	fmt.Println("refresh error:", errors.As(err, &re), "permanent:", re.Permanent)
	fmt.Println("token requests:", srv.Stats().TokenRequests-before)
	// Output:
	// 200 OK
	// refresh error: true permanent: false
	// token requests: 3
}

// bearer under resty v2 and v3: SetTransport, and a retry condition that
// leaves bearer's errors alone. A dead refresh token fails the request at
// once with ErrLoggedOut.
func Example_resty() {
	srv, cfg := exampleServer()
	defer srv.Close()
	ctx := context.Background()

	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg)})
	if err != nil {
		log.Fatal(err)
	}
	v2 := restyv2.New().SetTransport(tr).SetRetryCount(3).AddRetryCondition(restyV2Condition)
	v3 := restyv3.New().SetTransport(tr).SetRetryCount(3).
		SetRetryDefaultConditions(false).AddRetryConditions(restyV3Condition)
	defer v3.Close()

	defer tr.CloseIdleConnections()
	if err := tr.SetToken(ctx, srv.Issue()); err != nil {
		log.Fatal(err)
	}
	r2, err := v2.R().Get(srv.APIURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	r3, err := v3.R().Get(srv.APIURL + "/me")
	if err != nil {
		log.Fatal(err)
	}
	r3.Body.Close() // resty v3 leaves an unparsed body to its caller
	fmt.Println(r2.StatusCode(), r3.StatusCode())

	srv.RevokeRefreshTokens()
	_, err2 := v2.R().Get(srv.APIURL + "/me")
	_, err3 := v3.R().Get(srv.APIURL + "/me")
	fmt.Println(errors.Is(err2, bearer.ErrLoggedOut), errors.Is(err3, bearer.ErrLoggedOut))
	// Output:
	// 200 200
	// true true
}

// TestREADMERecipes: the README's section on other HTTP clients quotes the
// test for bearer's errors and the resty condition from this file; they
// must not drift apart. (The README keeps one Go block, the quickstart, so
// the recipes are inline.)
func TestREADMERecipes(t *testing.T) {
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)

	_, rest, found := strings.Cut(string(src), "func bearerGaveUp(err error) bool {\n\treturn ")
	require.True(t, found, "bearerGaveUp is not a single return")
	expr, _, _ := strings.Cut(rest, "\n")
	assert.Contains(t, string(readme), "`"+expr+"`", "the README quotes bearerGaveUp")

	const cond = "err != nil && !bearerGaveUp(err)"
	assert.Equal(t, 2, strings.Count(string(src), "return "+cond), "both resty conditions are the README's")
	assert.Contains(t, string(readme), "`"+cond+"`")
}
