package bearer_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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

	refresher     string        // "" (OAuth2), "endpoint" (the JSON endpoint), "wrong-secret" (OAuth2, bad client)
	timeout       time.Duration // RefreshTimeout; 0: 5s
	revoke        bool          // revoke the access token first, so the API answers 401 invalid_token
	revokeRefresh bool          // revoke the refresh token (and with it the access token) first
	tokenFaults   []queued
	apiFaults     []queued
	tokenWrap     func(http.RoundTripper) http.RoundTripper // spoils token answers on the client's side
	client        clientFault
	requests      int  // 0: 1
	unlocked      bool // the store is no store.Locker: only singleflight keeps the requests from refreshing each
}

// TestFaultMatrix drives a Transport logged in to an bearertest server
// (rotation and reuse detection on, 3 refresh attempts 1ms apart, the waits
// between them recorded, not taken) into one
// fault per row, and checks the row's expected outcome, the requests that
// reached the token endpoint and the API, the logouts, that every request
// body was closed exactly once, and that no token went where it may not.
func TestFaultMatrix(t *testing.T) {
	down := func(status int) []queued { return []queued{{-1, bearertest.ServerError(status)}} }
	html502 := bearertest.Fault{Status: 502, Body: "<html>Bad Gateway</html>", Header: http.Header{"Content-Type": {"text/html"}}}
	challenge := func(v string) []queued {
		return []queued{{1, bearertest.Fault{Status: 401, Header: http.Header{"Www-Authenticate": {v}}}}}
	}
	tests := []faultRow{
		// The token endpoint fails. The API has revoked the access token.
		{name: "token 500", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true, tokenFaults: down(500)},
		{name: "token 502", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true, tokenFaults: down(502)},
		{name: "token 503", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true, tokenFaults: down(503)},
		{name: "token 500 once, then well", want: gotStatus, wantStatus: 200, wantTokenReqs: 2, wantAPI: 2, revoke: true,
			tokenFaults: []queued{{1, bearertest.ServerError(500)}}},
		{name: "token 429 Retry-After 1s", want: gotStatus, wantStatus: 200, wantTokenReqs: 2, wantAPI: 2, wantWaits: []time.Duration{time.Second}, revoke: true,
			tokenFaults: []queued{{1, jsonAnswer(429, `{"error":"slow_down"}`, "Retry-After", "1")}}},
		{name: "token 429 Retry-After beyond the cap", want: gotTransient, wantTokenReqs: 1, wantAPI: 1, wantWaits: []time.Duration{}, revoke: true,
			tokenFaults: []queued{{-1, jsonAnswer(429, `{}`, "Retry-After", "60")}}},
		{name: "token 503 Retry-After beyond the refresh timeout", want: gotTransient, wantTokenReqs: 1, wantAPI: 1, wantWaits: []time.Duration{}, revoke: true,
			timeout: time.Second, tokenFaults: []queued{{-1, jsonAnswer(503, `{}`, "Retry-After", "3")}}},
		{name: "token delay beyond the refresh timeout", want: gotTransient, wantTokenReqs: 1, wantAPI: 1, revoke: true,
			timeout: 300 * time.Millisecond, tokenFaults: []queued{{-1, bearertest.Fault{Delay: time.Minute}}}},
		{name: "token connection reset", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, bearertest.Fault{Reset: true}}}},
		{name: "token connection reset once", want: gotStatus, wantStatus: 200, wantTokenReqs: 2, wantAPI: 2, revoke: true,
			tokenFaults: []queued{{1, bearertest.Fault{Reset: true}}}},
		{name: "token answer half written", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, bearertest.Fault{Truncate: true}}}},
		{name: "token answer body stalls beyond the refresh timeout", want: gotTransient, wantTokenReqs: 1, wantAPI: 1, revoke: true,
			timeout: 300 * time.Millisecond, tokenWrap: stallAnswers},
		{name: "token answer body slow within the refresh timeout", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 2, revoke: true,
			tokenWrap: dripAnswers},
		{name: "token malformed JSON", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, bearertest.Malformed()}}},
		{name: "token 200 with error invalid_grant", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{1, jsonAnswer(200, `{"error":"invalid_grant"}`)}}},
		{name: "token 200 with error temporarily_unavailable", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, jsonAnswer(200, `{"error":"temporarily_unavailable"}`)}}},
		{name: "token invalid_grant", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{1, bearertest.InvalidGrant()}}},
		{name: "token invalid_client (wrong secret)", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			refresher: "wrong-secret"},
		{name: "token invalid_request", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, jsonAnswer(400, `{"error":"invalid_request"}`)}}},
		{name: "token 400 without an error code", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{1, bearertest.Fault{Status: 400, Body: "<html>Bad Request</html>"}}}},
		{name: "token 408", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, bearertest.Fault{Status: 408}}}},
		{name: "token answer over 1 MiB", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			tokenFaults: []queued{{-1, jsonAnswer(200, `{"access_token":"`+strings.Repeat("a", 2<<20)+`"}`)}}},
		// The server rotated the refresh token but its answer was lost: the
		// retry presents the spent token, the server revokes the lineage.
		{name: "token answer lost after rotation", want: gotLoggedOut, wantTokenReqs: 2, wantLogouts: 1, wantAPI: 1, wantReuse: 1, revoke: true,
			tokenWrap: loseFirstAnswer},
		{name: "endpoint 200 with an error field", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			refresher: "endpoint", tokenFaults: []queued{{1, jsonAnswer(200, `{"error":"invalid_grant"}`)}}},
		{name: "endpoint 502 HTML", want: gotTransient, wantTokenReqs: 3, wantAPI: 1, revoke: true,
			refresher: "endpoint", tokenFaults: []queued{{-1, html502}}},
		{name: "endpoint refresh token revoked", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1,
			refresher: "endpoint", revokeRefresh: true},

		// The API answers.
		{name: "api 401 invalid_token", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 2, revoke: true},
		{name: "api 401 without a challenge", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 2,
			apiFaults: []queued{{1, bearertest.Fault{Status: 401}}}},
		{name: "api 401 persists after the refresh", want: gotStatus, wantStatus: 401, wantTokenReqs: 1, wantAPI: 2,
			apiFaults: []queued{{-1, bearertest.Fault{Status: 401}}}},
		{name: "api 401 with a Basic challenge", want: gotStatus, wantStatus: 401, wantAPI: 1, apiFaults: challenge(`Basic realm="api"`)},
		{name: "api 401 insufficient_scope", want: gotStatus, wantStatus: 401, wantAPI: 1,
			apiFaults: challenge(`Bearer error="insufficient_scope", scope="admin"`)},
		{name: "api 403", want: gotStatus, wantStatus: 403, wantAPI: 1, apiFaults: []queued{{1, bearertest.Fault{Status: 403}}}},
		{name: "api 500 is not retried", want: gotStatus, wantStatus: 500, wantAPI: 1, apiFaults: []queued{{1, bearertest.ServerError(500)}}},
		{name: "api connection reset", want: gotTransportErr, wantAPI: 1, apiFaults: []queued{{1, bearertest.Fault{Reset: true}}}},
		{name: "api 401 storm of 200", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 400, revoke: true,
			client: clientStorm, requests: 200},
		{name: "api 401 storm of 200, store without a lock", want: gotStatus, wantStatus: 200, wantTokenReqs: 1, wantAPI: 400, revoke: true,
			client: clientStorm, requests: 200, unlocked: true},
		{name: "api 401 storm of 50, invalid_grant", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 50, revoke: true,
			client: clientStorm, requests: 50, tokenFaults: []queued{{1, bearertest.InvalidGrant()}}},
		{name: "after a logout requests fail fast", want: gotLoggedOut, wantTokenReqs: 1, wantLogouts: 1, wantAPI: 1, revoke: true,
			requests: 3, tokenFaults: []queued{{1, bearertest.InvalidGrant()}}},

		// The client's side.
		{name: "context cancelled while waiting", want: gotCanceled, wantTokenReqs: 1, wantAPI: 2, revoke: true, client: clientCancel},
		{name: "deadline shorter than the refresh", want: gotDeadline, wantTokenReqs: 1, wantAPI: 2, revoke: true, client: clientDeadline},
		{name: "huge streaming body without GetBody", want: gotStatus, wantStatus: 401, wantTokenReqs: 1, wantAPI: 1, client: clientHugeBody},
		{name: "redirect to another host", want: gotStatus, wantStatus: 200, wantAPI: 2, wantToken: []bool{true, false}, client: clientCrossHost},
		{name: "redirect from https to http", want: gotStatus, wantStatus: 200, wantAPI: 2, wantToken: []bool{true, false}, client: clientHTTPSToHTTP},
		{name: "plain http to a remote host", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientPlainHTTP},
		{name: "caller's Authorization", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientCallerAuth},
		{name: "SkipAuth", want: gotStatus, wantStatus: 401, wantAPI: 1, wantToken: []bool{false}, client: clientSkipAuth},
	}
	for _, row := range tests {
		t.Run(row.name, func(t *testing.T) { runFaultRow(t, row) })
	}
}

func runFaultRow(t *testing.T, row faultRow) {
	e := newFaultEnv(t, row)
	results := e.run(t, row)

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
			assert.Equal(t, want, strings.HasPrefix(sent[i].auth, "Bearer "), "request %d (%s) carried the token", i, sent[i].url)
		}
	}
	e.rec.assertTokenOnlyWhereAllowed(t)
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
