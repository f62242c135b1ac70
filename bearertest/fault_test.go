package bearertest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestStatusFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      bearertest.Fault
		wantStatus int    // 0: not a RetrieveError
		wantCode   string // RFC 6749 error code
	}{
		{name: "invalid_grant", fault: bearertest.InvalidGrant(), wantStatus: http.StatusBadRequest, wantCode: "invalid_grant"},
		{name: "503", fault: bearertest.ServerError(http.StatusServiceUnavailable), wantStatus: http.StatusServiceUnavailable, wantCode: "server_error"},
		{name: "500", fault: bearertest.ServerError(http.StatusInternalServerError), wantStatus: http.StatusInternalServerError, wantCode: "server_error"},
		{name: "malformed JSON", fault: bearertest.Malformed()},
		{name: "custom", fault: bearertest.Fault{Status: http.StatusTooManyRequests, Body: "slow down",
			Header: http.Header{"Retry-After": {"1"}}}, wantStatus: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, bearertest.Options{})
			cfg := headerConfig(srv)
			rt := srv.Issue().RefreshToken
			srv.FailToken(1, tt.fault)

			_, err := refreshWith(t, srv, cfg, rt)

			require.Error(t, err)
			var rerr *oauth2.RetrieveError
			if tt.wantStatus == 0 {
				assert.False(t, errors.As(err, &rerr), "a 200 with a bad body is not a RetrieveError: %v", err)
			} else {
				require.ErrorAs(t, err, &rerr)
				assert.Equal(t, tt.wantStatus, rerr.Response.StatusCode)
				assert.Equal(t, tt.wantCode, rerr.ErrorCode)
			}
			_, err = refreshWith(t, srv, cfg, rt)
			assert.NoError(t, err, "the fault applied once")
			st := srv.Stats()
			assert.Equal(t, int64(2), st.TokenRequests)
			assert.Equal(t, int64(1), st.Refreshes)
			assert.Zero(t, st.RefreshFailures, "injected faults are not the server's own failures")
		})
	}
}

func TestResetFault(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	rt := srv.Issue().RefreshToken
	srv.FailToken(1, bearertest.Fault{Reset: true})

	_, err := refreshWith(t, srv, headerConfig(srv), rt)
	assert.Error(t, err, "token endpoint reset")

	srv.FailAPI(-1, bearertest.Fault{Reset: true}) // every attempt, whatever net/http retries
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.APIURL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
	}
	assert.Error(t, err, "API reset")
	assert.Equal(t, int64(1), srv.Stats().TokenRequests)
}

func TestTruncateFault(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	access := srv.Issue().AccessToken
	srv.FailAPI(1, bearertest.Fault{Truncate: true})

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.APIURL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err, "the header arrives")
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = io.ReadAll(resp.Body)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)

	srv.FailToken(1, bearertest.Fault{Truncate: true})
	_, err = refreshWith(t, srv, headerConfig(srv), srv.Issue().RefreshToken)
	assert.Error(t, err, "x/oauth2 fails on a half-written token answer")
}

func TestDelayFault(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	access := srv.Issue().AccessToken
	const delay = 30 * time.Millisecond
	srv.FailAPI(1, bearertest.Fault{Delay: delay})

	start := time.Now()
	r := callAPI(t, srv, http.MethodGet, "", access, "")

	assert.Equal(t, http.StatusOK, r.status, "a delay alone lets the request through")
	assert.GreaterOrEqual(t, time.Since(start), delay)
}

func TestDelayHonoursContext(t *testing.T) {
	tests := []struct {
		name  string
		opts  bearertest.Options
		fault *bearertest.Fault
	}{
		{name: "fault delay", fault: &bearertest.Fault{Delay: time.Hour, Status: http.StatusTeapot}},
		{name: "latency", opts: bearertest.Options{Latency: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			if tt.fault != nil {
				srv.FailToken(1, *tt.fault)
			}
			arrived := make(chan struct{}, 1)
			srv.OnToken(func(*http.Request) { arrived <- struct{}{} })
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			before := goleak.IgnoreCurrent()
			errc := make(chan error, 1)
			go func() {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.RefreshURL, strings.NewReader(`{"token":"rt_x"}`))
				if err == nil {
					var resp *http.Response
					if resp, err = srv.Client().Do(req); err == nil {
						resp.Body.Close()
					}
				}
				errc <- err
			}()

			<-arrived
			cancel()

			select {
			case err := <-errc:
				assert.ErrorIs(t, err, context.Canceled)
			case <-time.After(5 * time.Second):
				t.Fatal("the request did not end with its context")
			}
			// The client gives up on its own; what shows that the server
			// stopped waiting is that the handler's goroutine has ended.
			assert.NoError(t, goleak.Find(before), "the handler still waits after the request was cancelled")
			assert.Zero(t, srv.Stats().RefreshFailures, "the request was never handled")
		})
	}
}

func TestCloseEndsPendingDelay(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{})
	srv.FailToken(1, bearertest.Fault{Delay: time.Hour})
	arrived := make(chan struct{}, 1)
	srv.OnToken(func(*http.Request) { arrived <- struct{}{} })
	answered := make(chan struct{})
	go func() {
		resp, err := srv.Client().Post(srv.RefreshURL, "application/json", strings.NewReader(`{"token":"rt_x"}`))
		if err == nil {
			resp.Body.Close()
		}
		close(answered)
	}()
	<-arrived

	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()

	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the delay")
	}
	<-answered
	srv.Close() // idempotent
	assert.Zero(t, srv.Stats().RefreshFailures, "the delayed request was abandoned, not handled")
}

func TestLatencyDelaysTokenRequests(t *testing.T) {
	const latency = 30 * time.Millisecond
	srv := newServer(t, bearertest.Options{Latency: latency})
	rt := srv.Issue().RefreshToken

	start := time.Now()
	r := refreshJSON(t, srv, rt)

	assert.Equal(t, http.StatusOK, r.status)
	assert.GreaterOrEqual(t, time.Since(start), latency)
	assert.Equal(t, int64(1), srv.Stats().Refreshes)
}

func TestFaultCounts(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	access := srv.Issue().AccessToken
	status := func() int { return callAPI(t, srv, http.MethodGet, "", access, "").status }

	srv.FailAPI(2, bearertest.ServerError(http.StatusBadGateway))
	srv.FailAPI(1, bearertest.Fault{Status: http.StatusUnauthorized,
		Header: http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}})
	srv.FailAPI(0, bearertest.ServerError(http.StatusInternalServerError)) // does nothing

	assert.Equal(t, []int{502, 502, 401, 200}, []int{status(), status(), status(), status()}, "faults queue in order")
	assert.Equal(t, int64(1), srv.Stats().APIUnauthorized, "an injected 401 counts")

	srv.FailAPI(-1, bearertest.ServerError(http.StatusServiceUnavailable))
	assert.Equal(t, []int{503, 503, 503}, []int{status(), status(), status()}, "n < 0 sticks")
	srv.ClearFaults()
	assert.Equal(t, http.StatusOK, status())
	assert.Equal(t, int64(8), srv.Stats().APIRequests)
}

func TestTokenAndAPIFaultsAreSeparate(t *testing.T) {
	srv := newServer(t, bearertest.Options{})
	tok := srv.Issue()
	srv.FailToken(-1, bearertest.InvalidGrant())

	assert.Equal(t, http.StatusOK, callAPI(t, srv, http.MethodGet, "", tok.AccessToken, "").status)
	assert.Equal(t, http.StatusBadRequest, refreshJSON(t, srv, tok.RefreshToken).status)
	srv.ClearFaults()
	assert.Equal(t, http.StatusOK, refreshJSON(t, srv, tok.RefreshToken).status)
}
