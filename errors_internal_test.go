package bearer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"golang.org/x/oauth2"
)

func retrieveErr(status int, code string, header http.Header) *oauth2.RetrieveError {
	if header == nil {
		header = http.Header{}
	}
	return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status, Header: header}, ErrorCode: code}
}

func TestClassify(t *testing.T) {
	netErr := &url.Error{Op: "Post", URL: "https://auth.example.com/token", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
		wantStatus    int
		wantCode      string
		wantAfter     time.Duration
	}{
		{name: "invalid_grant", err: retrieveErr(400, "invalid_grant", nil), wantPermanent: true, wantStatus: 400, wantCode: "invalid_grant"},
		{name: "invalid_client 401", err: retrieveErr(401, "invalid_client", nil), wantPermanent: true, wantStatus: 401, wantCode: "invalid_client"},
		{name: "unauthorized_client", err: retrieveErr(400, "unauthorized_client", nil), wantPermanent: true, wantStatus: 400, wantCode: "unauthorized_client"},
		{name: "unsupported_grant_type", err: retrieveErr(400, "unsupported_grant_type", nil), wantPermanent: true, wantStatus: 400, wantCode: "unsupported_grant_type"},
		{name: "invalid_scope", err: retrieveErr(400, "invalid_scope", nil), wantPermanent: true, wantStatus: 400, wantCode: "invalid_scope"},
		{name: "invalid_grant in a 200", err: retrieveErr(200, "invalid_grant", nil), wantPermanent: true, wantStatus: 200, wantCode: "invalid_grant"},
		{name: "401 without a code", err: retrieveErr(401, "", nil), wantPermanent: true, wantStatus: 401},
		{name: "401 with invalid_request", err: retrieveErr(401, "invalid_request", nil), wantPermanent: true, wantStatus: 401, wantCode: "invalid_request"},
		{name: "400 without a code", err: retrieveErr(400, "", nil), wantPermanent: true, wantStatus: 400},
		{name: "400 with an unknown code", err: retrieveErr(400, "token_expired", nil), wantPermanent: true, wantStatus: 400, wantCode: "token_expired"},
		{name: "400 invalid_request", err: retrieveErr(400, "invalid_request", nil), wantStatus: 400, wantCode: "invalid_request"},
		{name: "400 temporarily_unavailable", err: retrieveErr(400, "temporarily_unavailable", nil), wantStatus: 400, wantCode: "temporarily_unavailable"},
		{name: "400 marked retryable", err: &retryableError{retrieveErr(400, "", nil)}, wantStatus: 400},
		{name: "403", err: retrieveErr(403, "", nil), wantStatus: 403},
		{name: "408", err: retrieveErr(408, "", nil), wantStatus: 408},
		{name: "429 with Retry-After", err: retrieveErr(429, "", http.Header{"Retry-After": {"3"}}), wantStatus: 429, wantAfter: 3 * time.Second},
		{name: "500 server_error", err: retrieveErr(500, "server_error", nil), wantStatus: 500, wantCode: "server_error"},
		{name: "503 with Retry-After", err: retrieveErr(503, "", http.Header{"Retry-After": {"1"}}), wantStatus: 503, wantAfter: time.Second},
		{name: "200 with an unknown code", err: retrieveErr(200, "server_error", nil), wantStatus: 200, wantCode: "server_error"},
		{name: "RetrieveError without a response", err: &oauth2.RetrieveError{}},
		{name: "network error", err: netErr},
		{name: "deadline", err: fmt.Errorf("bearer: refresh endpoint: %w", context.DeadlineExceeded)},
		{name: "canceled", err: context.Canceled},
		{name: "not JSON", err: errors.New("oauth2: cannot parse json: invalid character '<'")},
		{name: "body too large", err: &url.Error{Op: "Post", URL: "u", Err: errBodyTooLarge}},
		{name: "Permanent", err: Permanent(errors.New("session over")), wantPermanent: true},
		{name: "Permanent around a 503", err: Permanent(retrieveErr(503, "", nil)), wantPermanent: true, wantStatus: 503},
		{name: "ErrNoToken", err: fmt.Errorf("%w: nothing", ErrNoToken), wantPermanent: true},
		{name: "redacted invalid_grant", err: redact(fmt.Errorf("x secret-token %w", retrieveErr(400, "invalid_grant", nil)), nil, "secret-token"), wantPermanent: true, wantStatus: 400, wantCode: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := classify(tt.err)
			assert.Equal(t, tt.wantPermanent, v.permanent, "permanent")
			assert.Equal(t, tt.wantStatus, v.status, "status")
			assert.Equal(t, tt.wantCode, v.code, "code")
			assert.Equal(t, tt.wantAfter, v.retryAfter, "retry after")
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	h := http.Header{"Retry-After": {time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)}}
	d := retryAfter(h)
	assert.Greater(t, d, 8*time.Second)
	assert.LessOrEqual(t, d, 10*time.Second)
	assert.Zero(t, retryAfter(http.Header{"Retry-After": {"soon"}}))
	assert.Zero(t, retryAfter(http.Header{"Retry-After": {"-3"}}))
}

// TestRedact: redact rebuilds the chain of a dirty error: secrets are cut
// from every message, a RetrieveError keeps its code and status but not its
// body, an inner error that needs no cleaning is kept as it is, and a clean
// error is returned as it is.
func TestRedact(t *testing.T) {
	const secret = "rt_SECRETVALUE"
	eof := errors.New("EOF")
	newRE := func() *oauth2.RetrieveError {
		return &oauth2.RetrieveError{
			Response: &http.Response{StatusCode: 400, Status: "400 " + secret,
				Header: http.Header{"Set-Cookie": {"s=" + secret}, "Retry-After": {"2"}}, Request: &http.Request{}},
			Body:             []byte(`{"error":"invalid_grant","error_description":"unknown token rt_SECRETVALUE"}`),
			ErrorCode:        "invalid_grant",
			ErrorDescription: "unknown token rt_SECRETVALUE",
		}
	}
	ue := &url.Error{Op: "Get", URL: "https://auth.example.com/refresh?token=rt_SECRETVALUE", Err: eof}
	plain := fmt.Errorf("custom refresher failed for %s", secret)

	for _, err := range []error{newRE(), ue, plain, fmt.Errorf("wrapped: %w", newRE()), errors.Join(plain, newRE())} {
		got := redact(err, nil, secret, "")
		assert.NotContains(t, got.Error(), secret)
		assert.NotContains(t, fmt.Sprintf("%+v", got), secret)
		assert.NotContains(t, (&RefreshError{Err: got}).Error(), secret)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			var gotRE *oauth2.RetrieveError
			if assert.ErrorAs(t, got, &gotRE) {
				assert.NotSame(t, re, gotRE, "a new RetrieveError")
				assert.Equal(t, "invalid_grant", gotRE.ErrorCode)
				assert.Equal(t, "unknown token [redacted]", gotRE.ErrorDescription)
				assert.Nil(t, gotRE.Body)
				assert.Equal(t, 400, gotRE.Response.StatusCode)
				assert.Equal(t, "400 Bad Request", gotRE.Response.Status)
				assert.Equal(t, http.Header{"Retry-After": {"2"}}, gotRE.Response.Header)
				assert.Nil(t, gotRE.Response.Request)
				assert.Equal(t, classify(err), classify(got))
			}
		}
	}
	assert.ErrorIs(t, redact(ue, nil, secret), eof, "an inner error that needs no cleaning is kept")
	assert.Nil(t, redact(nil, nil, secret))
	for _, sent := range []*oauth2.Token{{AccessToken: secret}, {RefreshToken: secret}} {
		assert.NotContains(t, redact(plain, sent).Error(), secret, "the sent token's secrets")
	}
	short := errors.New("a b c")
	assert.Same(t, short, redact(short, &oauth2.Token{AccessToken: "b"}, "c"), "secrets under 4 bytes are not looked for")
	assert.Same(t, ue, redact(ue, nil, "not-in-it"), "a clean error is kept")
}

// TestSecretForms: each secret is cut in every form a server may echo it.
func TestSecretForms(t *testing.T) {
	const secret = `a+b/c=d"e\f<g>&h é`
	forms := []string{
		secret,
		"a%2Bb%2Fc%3Dd%22e%5Cf%3Cg%3E%26h+%C3%A9", // query
		"a%2bb%2fc%3dd%22e%5cf%3cg%3e%26h+%c3%a9", // query, lower-case hex
		"a+b%2Fc=d%22e%5Cf%3Cg%3E&h%20%C3%A9",     // path
		`a+b/c=d\"e\\f\u003cg\u003e\u0026h é`,     // Go JSON
		`a+b/c=d\"e\\f<g>&h é`,                    // JSON without HTML escapes
		`a+b\/c=d\"e\\f<g>&h \u00e9`,              // PHP
	}
	for _, f := range forms {
		assert.Equal(t, "x [redacted] y", newCleaner([]string{secret}).clean("x "+f+" y"), f)
	}
}
