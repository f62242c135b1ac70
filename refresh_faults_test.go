package bearer_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// faultOutcome is what every request of a fault matrix row gets.
type faultOutcome int

const (
	gotStatus       faultOutcome = iota // a response with wantStatus
	gotTransient                        // a transient *RefreshError: no logout
	gotLoggedOut                        // an error wrapping ErrLoggedOut and a permanent *RefreshError
	gotCanceled                         // context.Canceled, not a *RefreshError: the waiter left
	gotDeadline                         // context.DeadlineExceeded, not a *RefreshError
	gotTransportErr                     // the base transport's error, passed on
)

// clientFault is how the requests of a row are made.
type clientFault int

const (
	clientPlain       clientFault = iota // POST /api/things, body replayable with GetBody, one after another
	clientStorm                          // all at once; the token endpoint waits until each got its 401
	clientCancel                         // cancelled while waiting for the refresh, then one more request
	clientDeadline                       // deadline ends while waiting for the refresh, then one more request
	clientHugeBody                       // an endless body without GetBody, to an API that rejects the token
	clientCrossHost                      // the API redirects (307) to another host
	clientHTTPSToHTTP                    // https://example.com redirects to http://example.com
	clientPlainHTTP                      // plain http to example.com, not a loopback name
	clientCallerAuth                     // the request carries its own Authorization
	clientSkipAuth                       // the request is made under SkipAuth
)

// queued is a fault queued n times (bearertest FailToken/FailAPI).
type queued struct {
	n int
	f bearertest.Fault
}

// faultRow is one fault and, first, what it must lead to.
type faultRow struct {
	name string

	want          faultOutcome
	wantStatus    int   // with gotStatus
	wantTokenReqs int64 // requests that reached the token endpoint (bearertest Stats)
	wantLogouts   int32 // OnLogout calls
	wantAPI       int   // requests that reached the API: every hop, and the extra request of clientCancel/clientDeadline
	wantToken     []bool
	wantReuse     int64           // refresh tokens presented twice (bearertest Stats)
	wantWaits     []time.Duration // waits between refresh attempts; nil: not checked

	refresher     string        // "" or "OAuth2", "Endpoint" (the JSON endpoint), "wrong-secret" (OAuth2, bad client)
	timeout       time.Duration // RefreshTimeout; 0: 5s
	noRotation    bool          // the server keeps the refresh token
	revoke        bool          // revoke the access token first, so the API answers 401 invalid_token
	revokeRefresh bool          // revoke the refresh token (and with it the access token) first
	tokenFaults   []queued
	apiFaults     []queued
	tokenWrap     func(http.RoundTripper) http.RoundTripper // spoils token answers on the client's side
	client        clientFault
	requests      int  // 0: 1
	unlocked      bool // the store is no store.Locker: only singleflight keeps the requests from refreshing each
}

// tokenFault is a fault of the token endpoint, met by the refresh that a
// request's 401 starts, and what that refresh must come to.
type tokenFault struct {
	name string

	want         faultOutcome    // gotStatus (the refresh works in the end: 200), gotTransient or gotLoggedOut
	wantAttempts int             // refresher attempts, each one token request
	wantWaits    []time.Duration // waits between attempts; nil: not checked
	wantReuse    int64
	wantInError  string        // in the request's error
	wantWithin   time.Duration // the request returns within; 0: not checked
	check        func(t *testing.T, e *faultEnv)

	wrongSecret   bool // OAuth2 (only) with a client secret the server does not know
	faults        []queued
	wrap          func(http.RoundTripper) http.RoundTripper // spoils token answers on the client's side
	timeout       time.Duration
	noRotation    bool
	revokeRefresh bool // instead of revoking the access token
}

// row is f as a fault matrix row for the refresher kind: one request, whose
// access token the API rejects, reaches the API once, and once more when the
// refresh works; OnLogout is called exactly when it ends the session.
func (f tokenFault) row(kind string) faultRow {
	r := faultRow{
		name: f.name, want: f.want, wantTokenReqs: int64(f.wantAttempts), wantWaits: f.wantWaits, wantReuse: f.wantReuse,
		wantAPI: 1, refresher: kind, timeout: f.timeout, noRotation: f.noRotation,
		revoke: !f.revokeRefresh, revokeRefresh: f.revokeRefresh, tokenFaults: f.faults, tokenWrap: f.wrap,
	}
	if f.want == gotStatus {
		r.wantStatus, r.wantAPI = http.StatusOK, 2
	}
	if f.want == gotLoggedOut {
		r.wantLogouts = 1
	}
	if f.wrongSecret {
		r.refresher = "wrong-secret"
	}
	return r
}

func faultOnce(f bearertest.Fault) []queued   { return []queued{{1, f}} }
func faultAlways(f bearertest.Fault) []queued { return []queued{{-1, f}} }

// htmlPage is an answer with an HTML body, as a proxy or a captive portal
// gives.
func htmlPage(status int, body string) bearertest.Fault {
	return bearertest.Fault{Status: status, Body: body, Header: http.Header{"Content-Type": {"text/html"}}}
}

// challenge is a 401 with the WWW-Authenticate value v.
func challenge(v string) bearertest.Fault {
	return bearertest.Fault{Status: 401, Header: http.Header{"Www-Authenticate": {v}}}
}

// tokenFaults are the faults of the token endpoint: each is tried with each
// refresher of refresherKinds, behind a request whose access token the API
// has revoked.
var tokenFaults = []tokenFault{
	{name: "token 200 with rotation", want: gotStatus, wantAttempts: 1, check: func(t *testing.T, e *faultEnv) {
		tok, err := e.store.Load(t.Context())
		require.NoError(t, err)
		assert.NotEqual(t, e.issued.RefreshToken, tok.RefreshToken, "the rotated refresh token is kept")
		assert.NotEmpty(t, tok.RefreshToken)
		assert.WithinDuration(t, time.Now().Add(bearertest.DefaultAccessTTL), tok.Expiry, time.Minute, "expires_in becomes Expiry")
	}},
	{name: "token 200 without a refresh token", want: gotStatus, wantAttempts: 1, noRotation: true, check: func(t *testing.T, e *faultEnv) {
		tok, err := e.store.Load(t.Context())
		require.NoError(t, err)
		assert.Equal(t, e.issued.RefreshToken, tok.RefreshToken, "the old refresh token is kept")
		assert.NotEqual(t, e.issued.AccessToken, tok.AccessToken)
	}},
	{name: "token 500", want: gotTransient, wantAttempts: 3, wantWaits: []time.Duration{time.Millisecond, time.Millisecond}, wantInError: "500",
		faults: faultAlways(bearertest.ServerError(500))},
	{name: "token 502", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.ServerError(502))},
	{name: "token 503", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.ServerError(503))},
	{name: "token 503 once, then well", want: gotStatus, wantAttempts: 2, faults: faultOnce(bearertest.ServerError(503))},
	{name: "token 502 HTML page", want: gotTransient, wantAttempts: 3, wantInError: "502",
		faults: faultAlways(htmlPage(502, "<html><body><h1>502 Bad Gateway</h1></body></html>"))},
	{name: "token 200 HTML page", want: gotTransient, wantAttempts: 3, faults: faultAlways(htmlPage(200, "<html>Sign in to the Wi-Fi</html>"))},
	{name: "token 408", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.Fault{Status: 408})},
	{name: "token 429 Retry-After 1s", want: gotStatus, wantAttempts: 2, wantWaits: []time.Duration{time.Second},
		faults: faultOnce(jsonAnswer(429, `{"error":"slow_down"}`, "Retry-After", "1"))},
	{name: "token 429 Retry-After beyond the cap", want: gotTransient, wantAttempts: 1, wantWaits: []time.Duration{}, wantInError: "429",
		faults: faultAlways(jsonAnswer(429, `{}`, "Retry-After", "60"))},
	{name: "token 503 Retry-After beyond the refresh timeout", want: gotTransient, wantAttempts: 1, wantWaits: []time.Duration{},
		timeout: time.Second, faults: faultAlways(jsonAnswer(503, `{}`, "Retry-After", "3"))},
	{name: "token delay beyond the refresh timeout", want: gotTransient, wantAttempts: 1, wantInError: "deadline exceeded", wantWithin: 2 * time.Second,
		timeout: 300 * time.Millisecond, faults: faultAlways(bearertest.Fault{Delay: time.Minute})},
	{name: "token connection reset", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.Fault{Reset: true})},
	{name: "token connection reset once", want: gotStatus, wantAttempts: 2, faults: faultOnce(bearertest.Fault{Reset: true})},
	{name: "token answer half written", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.Fault{Truncate: true})},
	{name: "token answer half written once", want: gotStatus, wantAttempts: 2, faults: faultOnce(bearertest.Fault{Truncate: true})},
	{name: "token answer body stalls beyond the refresh timeout", want: gotTransient, wantAttempts: 1,
		timeout: 300 * time.Millisecond, wrap: stallAnswers},
	{name: "token answer body slow within the refresh timeout", want: gotStatus, wantAttempts: 1, wrap: dripAnswers},
	{name: "token malformed JSON", want: gotTransient, wantAttempts: 3, faults: faultAlways(bearertest.Malformed())},
	{name: "token answer over 1 MiB", want: gotTransient, wantAttempts: 3, wantInError: "larger than 1 MiB",
		faults: faultAlways(jsonAnswer(200, `{"access_token":"`+strings.Repeat("a", 2<<20)+`","accessToken":"x"}`))},
	{name: "token 200 with error invalid_grant", want: gotLoggedOut, wantAttempts: 1, wantInError: "invalid_grant",
		faults: faultOnce(jsonAnswer(200, `{"error":"invalid_grant","error_description":"expired"}`))},
	{name: "token 200 with error temporarily_unavailable", want: gotTransient, wantAttempts: 3,
		faults: faultAlways(jsonAnswer(200, `{"error":"temporarily_unavailable"}`))},
	{name: "token invalid_grant", want: gotLoggedOut, wantAttempts: 1, wantInError: "invalid_grant", faults: faultOnce(bearertest.InvalidGrant())},
	{name: "token invalid_client", want: gotLoggedOut, wantAttempts: 1, wantInError: "invalid_client",
		faults: faultOnce(jsonAnswer(400, `{"error":"invalid_client"}`))},
	{name: "token invalid_client (wrong secret)", want: gotLoggedOut, wantAttempts: 1, wrongSecret: true},
	{name: "token 401 with a Basic challenge", want: gotLoggedOut, wantAttempts: 1, wantInError: "401",
		faults: faultOnce(jsonAnswer(401, `{"error":"invalid_client"}`, "Www-Authenticate", `Basic realm="auth"`))},
	{name: "token invalid_request", want: gotTransient, wantAttempts: 3, faults: faultAlways(jsonAnswer(400, `{"error":"invalid_request"}`))},
	{name: "token invalid_request once, then well", want: gotStatus, wantAttempts: 2,
		faults: faultOnce(jsonAnswer(400, `{"error":"invalid_request","error_description":"please retry"}`))},
	{name: "token 400 without an error code", want: gotLoggedOut, wantAttempts: 1, wantInError: "400",
		faults: faultOnce(htmlPage(400, "<html>Bad Request</html>"))},
	{name: "token refresh token revoked", want: gotLoggedOut, wantAttempts: 1, revokeRefresh: true},
	// The server rotated the refresh token but its answer was lost: the
	// retry presents the spent token, the server revokes the lineage.
	{name: "token answer lost after rotation", want: gotLoggedOut, wantAttempts: 2, wantReuse: 1, wrap: loseFirstAnswer},
}

// apiFaults are the answers of the API.
var apiFaults = []faultRow{
	{name: "api 401 invalid_token", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 2, revoke: true},
	{name: "api 401 without a challenge", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 2,
		apiFaults: faultOnce(bearertest.Fault{Status: 401})},
	{name: "api 401 persists after the refresh", want: gotStatus, wantStatus: 401, wantTokenReqs: 1, wantAPI: 2,
		apiFaults: faultAlways(bearertest.Fault{Status: 401})},
	{name: "api 401 with a Basic challenge", want: gotStatus, wantStatus: 401, wantAPI: 1, apiFaults: faultOnce(challenge(`Basic realm="api"`))},
	{name: "api 401 insufficient_scope", want: gotStatus, wantStatus: 401, wantAPI: 1,
		apiFaults: faultOnce(challenge(`Bearer error="insufficient_scope", scope="admin"`))},
	{name: "api 403", want: gotStatus, wantStatus: 403, wantAPI: 1, apiFaults: faultOnce(bearertest.Fault{Status: 403})},
	{name: "api 500 is not retried", want: gotStatus, wantStatus: 500, wantAPI: 1, apiFaults: faultOnce(bearertest.ServerError(500))},
	{name: "api connection reset", want: gotTransportErr, wantAPI: 1, apiFaults: faultOnce(bearertest.Fault{Reset: true})},
	{name: "api 401 storm of 200", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 400, revoke: true,
		client: clientStorm, requests: 200},
	{name: "api 401 storm of 200, store without a lock", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 400, revoke: true,
		client: clientStorm, requests: 200, unlocked: true},
	{name: "api 401 storm of 50, invalid_grant", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 50, revoke: true,
		client: clientStorm, requests: 50, tokenFaults: faultOnce(bearertest.InvalidGrant())},
	{name: "after a logout requests fail fast", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
		requests: 3, tokenFaults: faultOnce(bearertest.InvalidGrant())},
}

// clientFaults are what the caller does.
var clientFaults = []faultRow{
	{name: "context cancelled while waiting", want: gotCanceled, wantTokenReqs: 1, wantAPI: 2, revoke: true, client: clientCancel},
	{name: "deadline shorter than the refresh", want: gotDeadline, wantTokenReqs: 1, wantAPI: 2, revoke: true, client: clientDeadline},
	{name: "huge streaming body without GetBody", want: gotStatus, wantStatus: 401, wantTokenReqs: 1, wantAPI: 1, client: clientHugeBody},
	{name: "redirect to another host", want: gotStatus, wantStatus: 200, wantAPI: 2, wantToken: []bool{true, false}, client: clientCrossHost},
	{name: "redirect from https to http", want: gotStatus, wantStatus: 200, wantAPI: 2, wantToken: []bool{true, false}, client: clientHTTPSToHTTP},
	{name: "plain http to a remote host", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientPlainHTTP},
	{name: "caller's Authorization", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientCallerAuth},
	{name: "SkipAuth", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientSkipAuth},
}

// TestFaultMatrix drives a Transport logged in to a bearertest server
// (rotation and reuse detection on, 3 refresh attempts 1ms apart, the waits
// between them recorded, not taken) into one fault per row: of the token
// endpoint (with each refresher), of the API, or of the caller. It checks
// the row's expected outcome, the requests that reached the token endpoint
// and the API, the logouts, that every request body was closed exactly once,
// that no token went where it may not and that no error shows one; for a
// token endpoint fault also the refresh reported, the error, and what the
// next request gets once the endpoint behaves.
func TestFaultMatrix(t *testing.T) {
	for _, f := range tokenFaults {
		t.Run(f.name, func(t *testing.T) {
			for _, kind := range refresherKinds {
				if !f.wrongSecret || kind == "OAuth2" {
					t.Run(kind, func(t *testing.T) { runTokenFault(t, f, kind) })
				}
			}
		})
	}
	for _, rows := range [][]faultRow{apiFaults, clientFaults} {
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				e := newFaultEnv(t, row)
				checkFaultRow(t, row, e, e.run(t, row))
			})
		}
	}
}

// runTokenFault runs f's row for the refresher kind and checks the refresh
// it reported and the error; then, unless the fault is on the client's side
// (which stays), what the next request gets once the endpoint behaves.
func runTokenFault(t *testing.T, f tokenFault, kind string) {
	row := f.row(kind)
	e := newFaultEnv(t, row)
	start := time.Now()
	results := e.run(t, row)
	elapsed := time.Since(start)
	checkFaultRow(t, row, e, results)

	events := e.refreshEvents()
	if assert.Len(t, events, 1, "refreshes reported") {
		assert.Equal(t, f.wantAttempts, events[0].Attempts, "refresher calls")
		assert.Equal(t, bearer.ReasonRejected, events[0].Reason)
	}
	if err := results[0].err; f.want != gotStatus && assert.Error(t, err) {
		if re, ok := isRefreshError(err); assert.True(t, ok, "want a *RefreshError, got %v", err) {
			assert.Equal(t, f.wantAttempts, re.Attempts)
		}
		assert.Contains(t, err.Error(), f.wantInError)
	}
	if f.wantWithin > 0 {
		assert.Less(t, elapsed, f.wantWithin)
	}
	if f.check != nil {
		f.check(t, e)
	}
	if f.wrap != nil {
		return
	}

	e.srv.ClearFaults()
	before := e.srv.Stats().TokenRequests
	next := e.once(t, clientPlain)
	tokenReqs := e.srv.Stats().TokenRequests - before
	switch f.want {
	case gotLoggedOut:
		assert.ErrorIs(t, next.err, bearer.ErrLoggedOut, "logged out: fail fast")
		assert.Zero(t, tokenReqs, "no refresh after a logout")
		assert.EqualValues(t, 1, e.logouts.Load(), "OnLogout once")
	case gotTransient:
		if assert.NoError(t, next.err, "a transient failure leaves the session usable") {
			assert.Equal(t, http.StatusOK, next.status)
		}
		assert.EqualValues(t, 1, tokenReqs)
		assert.Zero(t, e.logouts.Load())
	case gotStatus:
		if assert.NoError(t, next.err) {
			assert.Equal(t, http.StatusOK, next.status)
		}
		assert.Zero(t, tokenReqs, "the new token is used")
	}
	e.bodies.assertClosedOnce(t)
}

// checkFaultRow checks what a row's requests got and what they left behind.
func checkFaultRow(t *testing.T, row faultRow, e *faultEnv, results []faultResult) {
	t.Helper()
	for i, r := range results {
		checkFaultOutcome(t, row, r)
		if r.err != nil {
			for _, secret := range []string{e.issued.AccessToken, e.issued.RefreshToken} {
				assert.NotContains(t, r.err.Error(), secret, "request %d: the error shows a token", i)
			}
		}
	}
	if row.wantWaits != nil {
		assert.Equal(t, row.wantWaits, e.sleeps(), "waits between refresh attempts")
	}
	st := e.srv.Stats()
	assert.Equal(t, row.wantTokenReqs, st.TokenRequests, "requests that reached the token endpoint")
	assert.Equal(t, row.wantLogouts, e.logouts.Load(), "logouts")
	assert.Equal(t, row.wantReuse, st.ReuseDetections, "reuse detections")
	sent := e.rec.requests()
	assert.Len(t, sent, row.wantAPI, "requests that reached the API")
	if row.client != clientHugeBody && row.client != clientCrossHost && row.client != clientHTTPSToHTTP {
		assert.EqualValues(t, row.wantAPI, st.APIRequests, "requests the bearertest API counted")
	}
	for i, want := range row.wantToken {
		if assert.Greater(t, len(sent), i) {
			assert.Equal(t, want, strings.HasPrefix(sent[i].auth, "Bearer "), "request %d (%s) carried the token", i, sent[i].req.URL)
		}
	}
	assertTokenOnlyWhereAllowed(t, e.cfg, sent)
	e.bodies.assertClosedOnce(t)
}

func checkFaultOutcome(t *testing.T, row faultRow, r faultResult) {
	t.Helper()
	re, isRefresh := isRefreshError(r.err)
	switch row.want {
	case gotStatus:
		if assert.NoError(t, r.err) {
			assert.Equal(t, row.wantStatus, r.status)
		}
	case gotTransient:
		if assert.True(t, isRefresh, "want a *RefreshError, got %v", r.err) {
			assert.False(t, re.Permanent, "permanent: %v", r.err)
		}
		assert.NotErrorIs(t, r.err, bearer.ErrLoggedOut)
	case gotLoggedOut:
		assert.ErrorIs(t, r.err, bearer.ErrLoggedOut)
		if assert.True(t, isRefresh, "want a *RefreshError, got %v", r.err) {
			assert.True(t, re.Permanent)
		}
	case gotCanceled, gotDeadline:
		want := context.Canceled
		if row.want == gotDeadline {
			want = context.DeadlineExceeded
		}
		assert.ErrorIs(t, r.err, want)
		assert.False(t, isRefresh, "the waiter must leave, not fail the refresh: %v", r.err)
	case gotTransportErr:
		assert.Error(t, r.err)
		assert.False(t, isRefresh, "%v", r.err)
		assert.NotErrorIs(t, r.err, bearer.ErrLoggedOut)
	}
}
