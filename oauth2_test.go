package bearer_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// refreshRig is a Transport logged in to an bearertest server, with counters.
type refreshRig struct {
	srv     *bearertest.Server
	tr      *bearer.Transport
	store   store.Store
	issued  *oauth2.Token
	logouts atomic.Int32

	mu     sync.Mutex
	events []bearer.RefreshEvent
	waits  []time.Duration // between refresh attempts, recorded, not taken
}

// refresherKind builds the refresher under test for srv, whose cfg
// (newServer's) names Basic client authentication, so that a failed
// request is not sent again the other way (autodetect).
type refresherKind struct {
	name string
	make func(srv *bearertest.Server, cfg *oauth2.Config) bearer.Refresher
}

var refresherKinds = []refresherKind{
	{"OAuth2", func(_ *bearertest.Server, cfg *oauth2.Config) bearer.Refresher { return bearer.OAuth2(cfg) }},
	{"Endpoint", func(srv *bearertest.Server, _ *oauth2.Config) bearer.Refresher {
		return &bearer.Endpoint{URL: srv.RefreshURL}
	}},
}

// newRefreshRig starts a server, logs in, and builds a Transport with a fast retry
// policy (3 attempts, 1ms apart) over it.
func newRefreshRig(t *testing.T, opts bearertest.Options, ref func(*bearertest.Server, *oauth2.Config) bearer.Refresher, timeout time.Duration) *refreshRig {
	t.Helper()
	srv, cfg := newServer(t, opts)
	r := &refreshRig{srv: srv}
	r.issued = r.srv.Issue()
	r.store = store.NewMemory(r.issued)
	tr, err := bearer.New(bearer.Config{
		Refresher:      ref(srv, cfg),
		Store:          r.store,
		Base:           r.srv.Client().Transport,
		RefreshTimeout: timeout,
		OnLogout:       func(context.Context, error) { r.logouts.Add(1) },
		OnRefresh: func(_ context.Context, ev bearer.RefreshEvent) {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		},
	})
	require.NoError(t, err)
	bearer.SetRetry(tr, 3, func(int) time.Duration { return time.Millisecond })
	bearer.SetSleep(tr, func(_ context.Context, d time.Duration) error {
		r.mu.Lock()
		r.waits = append(r.waits, d)
		r.mu.Unlock()
		return nil
	})
	r.tr = tr
	return r
}

// ctx is a request context whose token requests go through the server's
// own client, as the refreshers' documentation describes.
func (r *refreshRig) ctx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, r.srv.Client())
}

// get sends one API request through the Transport.
func (r *refreshRig) get(t *testing.T) (int, error) {
	req, err := http.NewRequestWithContext(r.ctx(t), http.MethodGet, r.srv.APIURL+"/things", nil)
	require.NoError(t, err)
	resp, err := r.tr.Client().Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (r *refreshRig) refreshEvents() []bearer.RefreshEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bearer.RefreshEvent(nil), r.events...)
}

func tokenFault(status int, body string) bearertest.Fault {
	return bearertest.Fault{Status: status, Body: body, Header: http.Header{"Content-Type": {"application/json"}}}
}

type outcome int

const (
	outcomeOK outcome = iota
	outcomeTransient
	outcomePermanent
)

// TestTokenEndpointAnswers drives a Transport whose access token was
// revoked into a refresh, for each kind of token endpoint answer, and checks
// the verdict, the number of refresh attempts and logouts, and what the next
// request gets.
func TestTokenEndpointAnswers(t *testing.T) {
	html := bearertest.Fault{Status: http.StatusBadGateway, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
		Header: http.Header{"Content-Type": {"text/html"}}}
	huge := tokenFault(http.StatusOK, `{"access_token":"`+strings.Repeat("a", 2<<20)+`","accessToken":"x"}`)
	tests := []struct {
		name         string
		rotate       bool
		faults       []bearertest.Fault // -1 uses: every request until cleared
		n            int                // uses of each fault; 0 means 1
		timeout      time.Duration
		want         outcome
		wantAttempts int
		wantWaits    []time.Duration // waits between attempts; nil: not checked
		maxElapsed   time.Duration
		wantInError  string
		check        func(t *testing.T, r *refreshRig)
	}{
		{name: "200 with rotation", rotate: true, want: outcomeOK, wantAttempts: 1, check: func(t *testing.T, r *refreshRig) {
			tok, err := r.store.Load(t.Context())
			require.NoError(t, err)
			assert.NotEqual(t, r.issued.RefreshToken, tok.RefreshToken, "the rotated refresh token is kept")
			assert.NotEmpty(t, tok.RefreshToken)
			assert.WithinDuration(t, time.Now().Add(bearertest.DefaultAccessTTL), tok.Expiry, time.Minute, "expires_in becomes Expiry")
		}},
		{name: "200 without refresh_token", want: outcomeOK, wantAttempts: 1, check: func(t *testing.T, r *refreshRig) {
			tok, err := r.store.Load(t.Context())
			require.NoError(t, err)
			assert.Equal(t, r.issued.RefreshToken, tok.RefreshToken, "the old refresh token is kept")
			assert.NotEqual(t, r.issued.AccessToken, tok.AccessToken)
		}},
		{name: "200 with an error field", faults: []bearertest.Fault{tokenFault(200, `{"error":"invalid_grant","error_description":"expired"}`)},
			want: outcomePermanent, wantAttempts: 1, wantInError: "invalid_grant"},
		{name: "400 invalid_grant", faults: []bearertest.Fault{bearertest.InvalidGrant()}, want: outcomePermanent, wantAttempts: 1, wantInError: "invalid_grant"},
		{name: "400 invalid_client", faults: []bearertest.Fault{tokenFault(400, `{"error":"invalid_client"}`)}, want: outcomePermanent, wantAttempts: 1, wantInError: "invalid_client"},
		{name: "400 without a code", faults: []bearertest.Fault{{Status: 400, Body: "<html>Bad Request</html>", Header: http.Header{"Content-Type": {"text/html"}}}},
			want: outcomePermanent, wantAttempts: 1, wantInError: "400"},
		{name: "400 invalid_request then 200", faults: []bearertest.Fault{tokenFault(400, `{"error":"invalid_request","error_description":"please retry"}`)},
			want: outcomeOK, wantAttempts: 2},
		{name: "401", faults: []bearertest.Fault{{Status: 401, Body: `{"error":"invalid_client"}`,
			Header: http.Header{"Content-Type": {"application/json"}, "Www-Authenticate": {`Basic realm="auth"`}}}},
			want: outcomePermanent, wantAttempts: 1, wantInError: "401"},
		{name: "429 with Retry-After then 200", faults: []bearertest.Fault{{Status: 429, Header: http.Header{"Retry-After": {"1"}}}},
			want: outcomeOK, wantAttempts: 2, wantWaits: []time.Duration{time.Second}},
		{name: "429 with a Retry-After over the cap", faults: []bearertest.Fault{{Status: 429, Header: http.Header{"Retry-After": {"120"}}}},
			want: outcomeTransient, wantAttempts: 1, wantWaits: []time.Duration{}, wantInError: "429"},
		{name: "500 every time", faults: []bearertest.Fault{bearertest.ServerError(500)}, n: -1, want: outcomeTransient, wantAttempts: 3,
			wantWaits: []time.Duration{time.Millisecond, time.Millisecond}, wantInError: "500"},
		{name: "503 then 200", faults: []bearertest.Fault{bearertest.ServerError(503)}, want: outcomeOK, wantAttempts: 2},
		{name: "malformed JSON", faults: []bearertest.Fault{bearertest.Malformed()}, n: -1, want: outcomeTransient, wantAttempts: 3},
		{name: "HTML error page", faults: []bearertest.Fault{html}, n: -1, want: outcomeTransient, wantAttempts: 3, wantInError: "502"},
		{name: "HTML page with 200", faults: []bearertest.Fault{{Status: 200, Body: "<html>Sign in to the Wi-Fi</html>", Header: http.Header{"Content-Type": {"text/html"}}}},
			n: -1, want: outcomeTransient, wantAttempts: 3},
		{name: "oversized body", faults: []bearertest.Fault{huge}, n: -1, want: outcomeTransient, wantAttempts: 3, wantInError: "larger than 1 MiB"},
		{name: "truncated body then 200", faults: []bearertest.Fault{{Truncate: true}}, want: outcomeOK, wantAttempts: 2},
		{name: "connection reset then 200", faults: []bearertest.Fault{{Reset: true}}, want: outcomeOK, wantAttempts: 2},
		{name: "connection reset every time", faults: []bearertest.Fault{{Reset: true}}, n: -1, want: outcomeTransient, wantAttempts: 3},
		{name: "timeout", faults: []bearertest.Fault{{Delay: time.Minute}}, n: -1, timeout: 300 * time.Millisecond,
			want: outcomeTransient, wantAttempts: 1, maxElapsed: 2 * time.Second, wantInError: "deadline exceeded"},
	}
	for _, kind := range refresherKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel() // the two kinds overlap their timeout rows
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r := newRefreshRig(t, bearertest.Options{Rotate: tt.rotate}, kind.make, tt.timeout)
					status, err := r.get(t) // reads the store; the token is still good
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, status)

					r.srv.RevokeAccessTokens()
					n := tt.n
					if n == 0 {
						n = 1
					}
					for _, f := range tt.faults {
						r.srv.FailToken(n, f)
					}
					before := r.srv.Stats().TokenRequests
					start := time.Now()
					status, err = r.get(t)
					elapsed := time.Since(start)

					assert.EqualValues(t, tt.wantAttempts, r.srv.Stats().TokenRequests-before, "token requests")
					events := r.refreshEvents()
					if assert.Len(t, events, 1) {
						assert.Equal(t, tt.wantAttempts, events[0].Attempts, "refresher calls")
						assert.Equal(t, bearer.ReasonRejected, events[0].Reason)
					}
					if tt.wantWaits != nil {
						r.mu.Lock()
						assert.Equal(t, tt.wantWaits, append([]time.Duration{}, r.waits...), "waits between attempts")
						r.mu.Unlock()
					}
					if tt.maxElapsed > 0 {
						assert.Less(t, elapsed, tt.maxElapsed)
					}
					switch tt.want {
					case outcomeOK:
						require.NoError(t, err)
						assert.Equal(t, http.StatusOK, status)
						assert.Zero(t, r.logouts.Load())
					case outcomeTransient, outcomePermanent:
						require.Error(t, err)
						re, isRE := isRefreshError(err)
						require.True(t, isRE, "want a *RefreshError, got %v", err)
						assert.Equal(t, tt.want == outcomePermanent, re.Permanent)
						assert.Equal(t, tt.wantAttempts, re.Attempts)
						assert.Equal(t, tt.want == outcomePermanent, errors.Is(err, bearer.ErrLoggedOut))
						assert.EqualValues(t, map[bool]int32{true: 1, false: 0}[tt.want == outcomePermanent], r.logouts.Load(), "logouts")
						assert.Contains(t, err.Error(), tt.wantInError)
						assert.NotContains(t, err.Error(), r.issued.RefreshToken)
						assert.NotContains(t, err.Error(), r.issued.AccessToken)
					}
					if tt.check != nil {
						tt.check(t, r)
					}

					// What the next request gets, once the endpoint behaves.
					r.srv.ClearFaults()
					before = r.srv.Stats().TokenRequests
					status, err = r.get(t)
					switch tt.want {
					case outcomePermanent:
						assert.ErrorIs(t, err, bearer.ErrLoggedOut, "logged out: fail fast")
						assert.EqualValues(t, 0, r.srv.Stats().TokenRequests-before, "no refresh after a logout")
						assert.EqualValues(t, 1, r.logouts.Load(), "OnLogout once")
					case outcomeTransient:
						require.NoError(t, err, "a transient failure leaves the session usable")
						assert.Equal(t, http.StatusOK, status)
						assert.EqualValues(t, 1, r.srv.Stats().TokenRequests-before)
					case outcomeOK:
						require.NoError(t, err)
						assert.Equal(t, http.StatusOK, status)
						assert.EqualValues(t, 0, r.srv.Stats().TokenRequests-before, "the new token is used")
					}
				})
			}
		})
	}
}

func TestOAuth2AuthStyle(t *testing.T) {
	tests := []struct {
		name      string
		style     oauth2.AuthStyle
		wantBasic int64
		wantBody  int64
	}{
		{"in header", oauth2.AuthStyleInHeader, 1, 0},
		{"in params", oauth2.AuthStyleInParams, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg := newServer(t, bearertest.Options{})
			issued := srv.Issue()
			cfg.Endpoint.AuthStyle = tt.style
			before := srv.Stats()

			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
			tok, err := bearer.OAuth2(cfg).Refresh(ctx, issued)
			require.NoError(t, err)

			st := srv.Stats()
			assert.Equal(t, tt.wantBasic, st.BasicAuth-before.BasicAuth, "Basic")
			assert.Equal(t, tt.wantBody, st.BodyAuth-before.BodyAuth, "in the body")
			assert.EqualValues(t, 1, st.Refreshes-before.Refreshes)
			assert.NotEqual(t, issued.AccessToken, tok.AccessToken)
		})
	}
}

func TestOAuth2Token(t *testing.T) {
	tests := []struct {
		name        string
		rotate      bool
		wantRotated bool
	}{
		{"server rotates", true, true},
		{"server keeps the refresh token", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, cfg := newServer(t, bearertest.Options{AccessTTL: 90 * time.Second, Rotate: tt.rotate})
			issued := srv.Issue()
			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
			tok, err := bearer.OAuth2(cfg).Refresh(ctx, issued)
			require.NoError(t, err)
			assert.NotEmpty(t, tok.RefreshToken)
			assert.Equal(t, tt.wantRotated, tok.RefreshToken != issued.RefreshToken)
			assert.Equal(t, "Bearer", tok.Type())
			assert.WithinDuration(t, time.Now().Add(90*time.Second), tok.Expiry, 5*time.Second, "expires_in becomes Expiry")
		})
	}
}

func TestOAuth2WithoutRefreshToken(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{})
	for _, cur := range []*oauth2.Token{nil, {AccessToken: "access-only"}} {
		_, err := bearer.OAuth2(cfg).Refresh(t.Context(), cur)
		assert.ErrorIs(t, err, bearer.ErrNoToken)
	}
	assert.Zero(t, srv.Stats().TokenRequests, "nothing to send")
	assert.Panics(t, func() { bearer.OAuth2(nil) })
}

// clientCounter counts the requests it forwards.
type clientCounter struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *clientCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(req)
}

// TestRefreshUsesTheRequestContextClient puts a client under
// oauth2.HTTPClient on the request's context and checks that the refresh
// the request causes goes through it, for each refresher.
func TestRefreshUsesTheRequestContextClient(t *testing.T) {
	for _, kind := range refresherKinds {
		t.Run(kind.name, func(t *testing.T) {
			r := newRefreshRig(t, bearertest.Options{}, kind.make, 0)
			counter := &clientCounter{base: r.srv.Client().Transport}
			r.srv.RevokeAccessTokens()

			ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: counter})
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.APIURL, nil)
			require.NoError(t, err)
			resp, err := r.tr.Client().Do(req)
			require.NoError(t, err)
			resp.Body.Close()

			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.EqualValues(t, 1, counter.n.Load(), "the token request went through the context's client")
			assert.EqualValues(t, 1, r.srv.Stats().Refreshes)
		})
	}
}

// TestRefreshErrorsNeverShowTokens has the token endpoint echo the refresh
// token in its error answer and checks that no error text shows it.
func TestRefreshErrorsNeverShowTokens(t *testing.T) {
	for _, kind := range refresherKinds {
		t.Run(kind.name, func(t *testing.T) {
			r := newRefreshRig(t, bearertest.Options{}, kind.make, 0)
			rt := r.issued.RefreshToken
			r.srv.RevokeAccessTokens()
			r.srv.FailToken(1, tokenFault(400, `{"error":"invalid_grant","error_description":"unknown token `+rt+`","error_uri":"https://auth.example.com/?t=`+rt+`"}`))

			_, err := r.get(t)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid_grant")
			assert.NotContains(t, err.Error(), rt)
			var oe *oauth2.RetrieveError
			require.ErrorAs(t, err, &oe)
			assert.NotContains(t, oe.Error(), rt)
			assert.NotContains(t, string(oe.Body), rt)
			assert.NotContains(t, oe.ErrorURI, rt)
		})
	}
}
