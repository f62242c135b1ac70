package bearer_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	"github.com/seamlessauth/bearer/dpop"
	"github.com/seamlessauth/bearer/store"
)

// revokeRig is a Transport logged in to a bearertest server (rotation on)
// whose OAuth2Refresher revokes at the server's revocation endpoint, with
// every request it sends recorded.
type revokeRig struct {
	srv    *bearertest.Server
	cfg    *oauth2.Config
	tr     *bearer.Transport
	store  *store.Memory
	issued *oauth2.Token
	sent   *fakeBase
}

func newRevokeRig(t *testing.T, style oauth2.AuthStyle, tune func(*bearer.Config)) *revokeRig {
	t.Helper()
	srv, cfg := newServer(t, bearertest.Options{Rotate: true})
	cfg.Endpoint.AuthStyle = style
	r := &revokeRig{srv: srv, cfg: cfg, issued: srv.Issue()}
	r.store = store.NewMemory(r.issued)
	r.sent = &fakeBase{next: loopbackBase(t, 4)}
	c := bearer.Config{
		Refresher: &bearer.OAuth2Refresher{Config: cfg, RevocationURL: srv.RevocationURL},
		Store:     r.store,
		Base:      r.sent,
	}
	if tune != nil {
		tune(&c)
	}
	r.tr = newTransport(t, c, nil)
	return r
}

// get sends one API request through the Transport.
func (r *revokeRig) get(t *testing.T) error {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.srv.APIURL+"/things", nil)
	require.NoError(t, err)
	resp, err := r.tr.Client().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// assertLoggedOut checks the local logout: requests fail fast with
// ErrLoggedOut and the store is empty.
func assertLoggedOut(t *testing.T, tr *bearer.Transport, st store.Store) {
	t.Helper()
	_, err := tr.Token(t.Context())
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	_, err = st.Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound, "the store is cleared")
}

// TestLogoutRevokes logs out through OAuth2Refresher for each client
// authentication style, with a pair and with an access token alone, and
// checks the one revocation request and what the server then refuses.
func TestLogoutRevokes(t *testing.T) {
	tests := []struct {
		name      string
		style     oauth2.AuthStyle
		tok       func(issued *oauth2.Token) *oauth2.Token // what SetToken logs in with; nil: the issued pair
		wantHint  string
		wantBasic bool // else client_id and client_secret in the form
	}{
		{name: "header", style: oauth2.AuthStyleInHeader, wantHint: "refresh_token", wantBasic: true},
		{name: "params", style: oauth2.AuthStyleInParams, wantHint: "refresh_token"},
		{name: "autodetect with a secret", style: oauth2.AuthStyleAutoDetect, wantHint: "refresh_token", wantBasic: true},
		{name: "access token only", style: oauth2.AuthStyleInHeader, wantHint: "access_token", wantBasic: true,
			tok: func(issued *oauth2.Token) *oauth2.Token { return &oauth2.Token{AccessToken: issued.AccessToken} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRevokeRig(t, tt.style, nil)
			tok := r.issued
			if tt.tok != nil {
				tok = tt.tok(r.issued)
			}
			require.NoError(t, r.tr.SetToken(t.Context(), tok))
			require.NoError(t, r.get(t))
			before := r.srv.Stats()

			require.NoError(t, r.tr.Logout(t.Context()))

			assertLoggedOut(t, r.tr, r.store)
			st := r.srv.Stats()
			assert.EqualValues(t, 1, st.RevocationRequests-before.RevocationRequests, "one revocation request")
			assert.EqualValues(t, 1, st.Revocations-before.Revocations, "one revocation")
			assert.EqualValues(t, map[bool]int64{true: 1}[tt.wantBasic], st.BasicAuth-before.BasicAuth, "Basic")
			assert.EqualValues(t, map[bool]int64{false: 1}[tt.wantBasic], st.BodyAuth-before.BodyAuth, "in the form")
			assert.False(t, r.srv.Active(r.issued.AccessToken), "the access token is revoked")
			reqs := r.sent.to("/revoke")
			require.Len(t, reqs, 1)
			form, header := reqs[0].form, reqs[0].header
			assert.Equal(t, tt.wantHint, form.Get("token_type_hint"))
			if tt.wantHint == "refresh_token" {
				assert.Equal(t, r.issued.RefreshToken, form.Get("token"))
				assert.False(t, r.srv.Active(r.issued.RefreshToken), "the refresh token is revoked")
				_, err := r.cfg.TokenSource(context.WithValue(t.Context(), oauth2.HTTPClient, r.srv.Client()),
					&oauth2.Token{RefreshToken: r.issued.RefreshToken}).Token()
				var re *oauth2.RetrieveError
				require.ErrorAs(t, err, &re, "the server refuses the revoked refresh token")
				assert.Equal(t, "invalid_grant", re.ErrorCode)
			} else {
				assert.Equal(t, r.issued.AccessToken, form.Get("token"))
				assert.True(t, r.srv.Active(r.issued.RefreshToken), "only the access token was revoked")
			}
			if tt.wantBasic {
				assert.True(t, strings.HasPrefix(header.Get("Authorization"), "Basic "), "the revocation request never carries the access token")
				assert.False(t, form.Has("client_secret"))
			} else {
				assert.Empty(t, header.Get("Authorization"), "the revocation request never carries the access token")
				assert.Equal(t, r.cfg.ClientID, form.Get("client_id"))
				assert.Equal(t, r.cfg.ClientSecret, form.Get("client_secret"))
			}
		})
	}
}

// TestLogoutRevokesWhatTheStoreHolds: the token revoked is the newest of
// the lineage, the one in the store, when another holder refreshed it, and
// the stored one when the Transport had not read its store yet (a command
// line tool's logout).
func TestLogoutRevokesWhatTheStoreHolds(t *testing.T) {
	t.Run("another holder refreshed", func(t *testing.T) {
		r := newRevokeRig(t, oauth2.AuthStyleInHeader, nil)
		require.NoError(t, r.get(t)) // r.tr holds the issued pair
		other := newTransport(t, bearer.Config{Refresher: bearer.OAuth2(r.cfg), Store: r.store, Base: r.sent}, nil)
		r.srv.RevokeAccessTokens()
		_, err := other.Token(t.Context()) // reads the store: the access token is still current
		require.NoError(t, err)
		resp, err := other.Client().Get(r.srv.APIURL + "/x") // 401, so other refreshes and rotates
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		newer, err := r.store.Load(t.Context())
		require.NoError(t, err)
		require.NotEqual(t, r.issued.RefreshToken, newer.RefreshToken, "rotated")

		require.NoError(t, r.tr.Logout(t.Context()))

		reqs := r.sent.to("/revoke")
		require.Len(t, reqs, 1)
		assert.Equal(t, newer.RefreshToken, reqs[0].form.Get("token"), "the newest refresh token of the lineage")
		assert.False(t, r.srv.Active(newer.RefreshToken))
		assertLoggedOut(t, r.tr, r.store)
	})
	t.Run("store not read yet", func(t *testing.T) {
		r := newRevokeRig(t, oauth2.AuthStyleInHeader, nil)

		require.NoError(t, r.tr.Logout(t.Context()))

		reqs := r.sent.to("/revoke")
		require.Len(t, reqs, 1)
		assert.Equal(t, r.issued.RefreshToken, reqs[0].form.Get("token"))
		assert.False(t, r.srv.Active(r.issued.RefreshToken))
		assertLoggedOut(t, r.tr, r.store)
	})
	t.Run("nothing to revoke", func(t *testing.T) {
		r := newRevokeRig(t, oauth2.AuthStyleInHeader, nil)
		require.NoError(t, r.tr.Logout(t.Context()))
		require.Len(t, r.sent.to("/revoke"), 1)

		require.NoError(t, r.tr.Logout(t.Context()), "a second Logout")
		assert.Len(t, r.sent.to("/revoke"), 1, "has nothing left to revoke")
	})
}

// TestLogoutRevocationFails: whatever goes wrong with the revocation, the
// local logout has happened, and Logout returns a *RevocationError that
// says what went wrong and shows neither token nor the client secret.
func TestLogoutRevocationFails(t *testing.T) {
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhereHits.Add(1) }))
	defer elsewhere.Close()
	jsonHeader := http.Header{"Content-Type": {"application/json"}}

	tests := []struct {
		name        string
		fault       bearertest.Fault
		timeout     time.Duration
		wantStatus  int
		wantCode    string
		wantRetry   time.Duration
		wantTimeout bool
		wantInError string
	}{
		{name: "500", fault: bearertest.ServerError(http.StatusInternalServerError),
			wantStatus: 500, wantCode: "server_error", wantInError: "answered 500 server_error"},
		{name: "503 with Retry-After", fault: bearertest.Fault{Status: 503, Body: `{"error":"temporarily_unavailable"}`,
			Header: http.Header{"Content-Type": {"application/json"}, "Retry-After": {"30"}}},
			wantStatus: 503, wantCode: "temporarily_unavailable", wantRetry: 30 * time.Second, wantInError: "(retry after 30s)"},
		{name: "unsupported_token_type", fault: bearertest.Fault{Status: 400, Body: `{"error":"unsupported_token_type"}`, Header: jsonHeader},
			wantStatus: 400, wantCode: "unsupported_token_type", wantInError: "the server does not revoke refresh tokens"},
		{name: "401 invalid_client", fault: bearertest.Fault{Status: 401, Body: `{"error":"invalid_client"}`, Header: jsonHeader},
			wantStatus: 401, wantCode: "invalid_client", wantInError: "answered 401 invalid_client"},
		{name: "HTML error page", fault: bearertest.Fault{Status: 502, Body: "<html>Bad Gateway</html>", Header: http.Header{"Content-Type": {"text/html"}}},
			wantStatus: 502, wantInError: "answered 502"},
		{name: "connection reset", fault: bearertest.Fault{Reset: true}, wantInError: "/revoke"},
		{name: "redirect to another origin", fault: bearertest.Fault{Status: http.StatusTemporaryRedirect,
			Header: http.Header{"Location": {elsewhere.URL + "/revoke"}}}, wantInError: "redirected to another origin"},
		{name: "timeout", fault: bearertest.Fault{Delay: time.Minute}, timeout: 200 * time.Millisecond,
			wantTimeout: true, wantInError: "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRevokeRig(t, oauth2.AuthStyleInHeader, func(c *bearer.Config) { c.RefreshTimeout = tt.timeout })
			require.NoError(t, r.get(t))
			r.srv.FailRevoke(-1, tt.fault)

			err := r.tr.Logout(t.Context())

			var re *bearer.RevocationError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, tt.wantStatus, re.StatusCode)
			assert.Equal(t, tt.wantCode, re.Code)
			assert.Equal(t, tt.wantRetry, re.RetryAfter)
			assert.Equal(t, tt.wantTimeout, re.Timeout())
			assert.Equal(t, tt.wantTimeout, errors.Is(err, context.DeadlineExceeded))
			assert.True(t, strings.HasPrefix(err.Error(), "bearer: Logout: revoking refresh token: "), err.Error())
			assert.Equal(t, 1, strings.Count(err.Error(), "bearer: "), "one prefix: %s", err)
			assert.Contains(t, err.Error(), tt.wantInError)
			assertNothingLeaks(t, "Logout's error", err, []string{r.issued.AccessToken, r.issued.RefreshToken, r.cfg.ClientSecret})
			assertLoggedOut(t, r.tr, r.store)
			assert.True(t, r.srv.Active(r.issued.RefreshToken), "the server was not told")
			assert.Zero(t, elsewhereHits.Load(), "the revocation request never left its origin")
			assert.Zero(t, r.srv.Stats().Revocations)
		})
	}
}

// TestRevocationNeverEchoesSecrets has the revocation endpoint echo all
// it was sent, in every shape of answer of TestSecretsNeverEchoed: no form
// of a secret and nothing of the raw answer reaches Revoke's error,
// Logout's error or a log record. A 2xx answer is a success whatever its body.
func TestRevocationNeverEchoesSecrets(t *testing.T) {
	s := echoSecrets{access: "at_Acc+ess/tok=en<&>", refresh: `rt_Ref+resh/tok=en"\é`, client: "cs_Cli+ent:sec/ret=%&"}
	all := []string{s.access, s.refresh, s.client, base64.StdEncoding.EncodeToString([]byte("client-id:" + url.QueryEscape(s.client)))}
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader} {
		for _, shape := range echoShapes {
			t.Run(map[oauth2.AuthStyle]string{oauth2.AuthStyleInParams: "params", oauth2.AuthStyleInHeader: "header"}[style]+"/"+shape, func(t *testing.T) {
				var logs bytes.Buffer
				var mu sync.Mutex
				ref := &bearer.OAuth2Refresher{RevocationURL: echoRevokeURL, Config: &oauth2.Config{ClientID: "client-id", ClientSecret: s.client,
					Endpoint: oauth2.Endpoint{TokenURL: echoURL, AuthStyle: style}}}
				tok := &oauth2.Token{AccessToken: s.access, RefreshToken: s.refresh}
				ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: newEchoBase(shape, s.access)})
				if err := ref.Revoke(ctx, tok); !strings.HasPrefix(shape, "2") {
					assertNothingLeaks(t, "Revoke's error", err, all)
				}
				tr := newTransport(t, bearer.Config{Refresher: ref, Base: newEchoBase(shape, s.access),
					Logger: slog.New(slog.NewTextHandler(lockedWriter{&logs, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))}, tok)

				err := tr.Logout(t.Context())

				if strings.HasPrefix(shape, "2") {
					assert.NoError(t, err)
				} else {
					assertNothingLeaks(t, "Logout's error", err, all)
					var re *bearer.RevocationError
					assert.ErrorAs(t, err, &re)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, sec := range all {
					for _, f := range echoForms(sec) {
						assert.NotContains(t, logs.String(), f, "a log record shows a secret")
					}
				}
			})
		}
	}
}

const echoRevokeURL = "https://auth.example.com/revoke"

// revokingRefresher is a Refresher and Revoker of the user's: revoke is
// its Revoke.
type revokingRefresher struct {
	countingRefresher
	revoke func(ctx context.Context, tok *oauth2.Token) error
}

func (r *revokingRefresher) Revoke(ctx context.Context, tok *oauth2.Token) error {
	return r.revoke(ctx, tok)
}

// countingStore counts the Loads of a Memory store.
type countingStore struct {
	*store.Memory
	loads atomic.Int32
}

func (s *countingStore) Load(ctx context.Context) (*oauth2.Token, error) {
	s.loads.Add(1)
	return s.Memory.Load(ctx)
}

// TestLogoutWithoutRevoker: a Refresher that is not a Revoker, and an
// OAuth2Refresher without a RevocationURL, log out as before: nothing is
// sent, and the store is not read.
func TestLogoutWithoutRevoker(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  bearer.Refresher
	}{
		{"a Refresher that is no Revoker", &countingRefresher{}},
		{"OAuth2 without a RevocationURL", bearer.OAuth2(&oauth2.Config{Endpoint: oauth2.Endpoint{TokenURL: "https://auth.example.com/token"}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0"}
			base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(http.StatusOK), nil }}
			st := &countingStore{Memory: store.NewMemory(tok)}
			tr := newTransport(t, bearer.Config{Refresher: tc.ref, Store: st, Base: base}, nil)
			_, err := tr.Token(t.Context())
			require.NoError(t, err)
			loads := st.loads.Load()

			require.NoError(t, tr.Logout(t.Context()))

			assertLoggedOut(t, tr, st.Memory)
			assert.Empty(t, base.requests(), "nothing is sent")
			assert.Equal(t, loads, st.loads.Load(), "the store is not read")
		})
	}
}

// TestLogoutRevokerContext: a Revoker of the user's gets the token logged
// out, and a context with Logout's values, a deadline of RefreshTimeout, a
// client under oauth2.HTTPClient, and under which the Transport gives no
// token, however long the Logout's own context lives.
func TestLogoutRevokerContext(t *testing.T) {
	type key struct{}
	tok := &oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0"}
	base := &fakeBase{respond: func(*http.Request) (*http.Response, error) { return answer(http.StatusOK), nil }}
	var tr *bearer.Transport
	var got struct {
		tok      *oauth2.Token
		value    any
		deadline time.Duration
		client   bool
		err      error
	}
	ref := &revokingRefresher{revoke: func(ctx context.Context, tok *oauth2.Token) error {
		got.tok, got.value = tok, ctx.Value(key{})
		if d, ok := ctx.Deadline(); ok {
			got.deadline = time.Until(d)
		}
		_, got.client = ctx.Value(oauth2.HTTPClient).(*http.Client)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/x", nil)
		require.NoError(t, err)
		resp, err := tr.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		got.err = err
		return nil
	}}
	tr = newTransport(t, bearer.Config{Refresher: ref, Base: base, RefreshTimeout: time.Hour}, tok)
	require.NoError(t, tr.SetToken(t.Context(), tok))

	require.NoError(t, tr.Logout(context.WithValue(context.Background(), key{}, "v")))

	assert.Equal(t, tok, got.tok)
	assert.Equal(t, "v", got.value, "Logout's values")
	assert.InDelta(t, time.Hour, got.deadline, float64(time.Minute), "RefreshTimeout")
	assert.True(t, got.client, "a client under oauth2.HTTPClient")
	require.NoError(t, got.err)
	reqs := base.requests()
	require.Len(t, reqs, 1)
	assert.Empty(t, reqs[0].auth, "a request under the revocation's context gets no token")
	assert.Zero(t, ref.calls.Load(), "nor does it refresh")
}

// TestLogoutRevokerFails: a Revoker of the user's that fails, echoing the
// token, or panics, with the token in its value: the local logout stands,
// and the error is a *RevocationError that shows no token.
func TestLogoutRevokerFails(t *testing.T) {
	tok := &oauth2.Token{AccessToken: "access-secret-0", RefreshToken: "refresh-secret-0"}
	tests := []struct {
		name        string
		revoke      func(ctx context.Context, tok *oauth2.Token) error
		wantInError string
	}{
		{name: "error", revoke: func(_ context.Context, tok *oauth2.Token) error {
			return errors.New("cannot revoke " + tok.RefreshToken + " or " + tok.AccessToken)
		}, wantInError: "cannot revoke [redacted]"},
		{name: "panic", revoke: func(_ context.Context, tok *oauth2.Token) error {
			panic("cannot revoke " + tok.RefreshToken)
		}, wantInError: "Revoker panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			var mu sync.Mutex
			st := store.NewMemory(tok)
			tr := newTransport(t, bearer.Config{Refresher: &revokingRefresher{revoke: tt.revoke}, Store: st,
				Logger: slog.New(slog.NewTextHandler(lockedWriter{&logs, &mu}, nil))}, nil)

			err := tr.Logout(t.Context())

			var re *bearer.RevocationError
			require.ErrorAs(t, err, &re)
			assert.Contains(t, err.Error(), tt.wantInError)
			assertNothingLeaks(t, "Logout's error", err, []string{tok.AccessToken, tok.RefreshToken})
			assertLoggedOut(t, tr, st)
			mu.Lock()
			defer mu.Unlock()
			assert.NotContains(t, logs.String(), tok.RefreshToken)
		})
	}
}

// TestLogoutFailsLocally: when the store cannot be cleared, Logout says so
// with an error that is no *RevocationError, and revokes nothing; a second
// Logout, once the store works, clears and revokes what the store holds.
func TestLogoutFailsLocally(t *testing.T) {
	r := newRevokeRig(t, oauth2.AuthStyleInHeader, nil)
	failing := &failingClear{Memory: r.store}
	failing.fail.Store(true)
	tr := newTransport(t, bearer.Config{Refresher: &bearer.OAuth2Refresher{Config: r.cfg, RevocationURL: r.srv.RevocationURL},
		Store: failing, Base: r.sent}, nil)
	require.NoError(t, func() error { _, err := tr.Token(t.Context()); return err }())

	err := tr.Logout(t.Context())
	require.Error(t, err)
	var re *bearer.RevocationError
	assert.False(t, errors.As(err, &re), "the local logout failed: %v", err)
	assert.Empty(t, r.sent.to("/revoke"), "nothing revoked")
	assert.True(t, r.srv.Active(r.issued.RefreshToken))

	failing.fail.Store(false)
	require.NoError(t, tr.Logout(t.Context()))
	assert.Len(t, r.sent.to("/revoke"), 1)
	assert.False(t, r.srv.Active(r.issued.RefreshToken), "the token the store held is revoked")
	assertLoggedOut(t, tr, r.store)
}

// failingClear is a Memory store whose Clear fails while fail is set.
type failingClear struct {
	*store.Memory
	fail atomic.Bool
}

func (s *failingClear) Clear(ctx context.Context) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.Memory.Clear(ctx)
}

// TestOnLogoutDoesNotRevoke: a logout after the server rejected the refresh
// token sends no revocation: that token is dead already.
func TestOnLogoutDoesNotRevoke(t *testing.T) {
	var logouts atomic.Int32
	r := newRevokeRig(t, oauth2.AuthStyleInHeader, func(c *bearer.Config) {
		c.OnLogout = func(context.Context, error) { logouts.Add(1) }
	})
	require.NoError(t, r.get(t))
	r.srv.RevokeLineage(r.issued.RefreshToken)

	assert.ErrorIs(t, r.get(t), bearer.ErrLoggedOut)

	assert.EqualValues(t, 1, logouts.Load())
	assert.Zero(t, r.srv.Stats().RevocationRequests)
}

// TestPoolLogoutRevokes: an identity's Logout revokes that identity's
// token and no other.
func TestPoolLogoutRevokes(t *testing.T) {
	srv, cfg := newServer(t, bearertest.Options{Rotate: true})
	sent := &fakeBase{next: loopbackBase(t, 4)}
	p := newPool(t, bearer.PoolConfig{Transport: bearer.Config{
		Refresher: &bearer.OAuth2Refresher{Config: cfg, RevocationURL: srv.RevocationURL}, Base: sent}})
	alice, bob := srv.Issue(), srv.Issue()
	require.NoError(t, p.SetToken(t.Context(), "alice", alice))
	require.NoError(t, p.SetToken(t.Context(), "bob", bob))

	require.NoError(t, p.Logout(t.Context(), "alice"))

	reqs := sent.to("/revoke")
	require.Len(t, reqs, 1)
	assert.Equal(t, alice.RefreshToken, reqs[0].form.Get("token"))
	assert.EqualValues(t, 1, srv.Stats().Revocations)
	assert.False(t, srv.Active(alice.RefreshToken))
	assert.True(t, srv.Active(bob.RefreshToken), "bob's session is untouched")
	assert.True(t, srv.Active(bob.AccessToken))
	_, err := p.Token(t.Context(), "alice")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut)
	got, err := p.Token(t.Context(), "bob")
	require.NoError(t, err)
	assert.Equal(t, bob.AccessToken, got.AccessToken)

	srv.FailRevoke(1, bearertest.ServerError(http.StatusServiceUnavailable))
	err = p.Logout(t.Context(), "bob")
	var re *bearer.RevocationError
	require.ErrorAs(t, err, &re, "a Pool's failed revocation is told apart too")
	assert.Equal(t, http.StatusServiceUnavailable, re.StatusCode)
	_, err = p.Token(t.Context(), "bob")
	assert.ErrorIs(t, err, bearer.ErrLoggedOut, "bob is logged out locally")
}

// TestLogoutRevokesDPoPBoundToken: with Config.DPoP, the revocation request
// goes through the token client, which proves the key as every token
// request does, and the bound refresh token is revoked.
func TestLogoutRevokesDPoPBoundToken(t *testing.T) {
	srv, cfg := dpopServer(t)
	key, err := dpop.GenerateKey()
	require.NoError(t, err)
	tok := dpopLogin(t, srv, cfg, key)
	require.Equal(t, "DPoP", tok.TokenType)
	sent := &fakeBase{next: loopbackBase(t, 4)}
	tr := newTransport(t, bearer.Config{Refresher: &bearer.OAuth2Refresher{Config: cfg, RevocationURL: srv.RevocationURL},
		DPoP: key, Base: sent}, nil)
	require.NoError(t, tr.SetToken(t.Context(), tok))

	require.NoError(t, tr.Logout(t.Context()))

	reqs := sent.to("/revoke")
	require.Len(t, reqs, 1)
	assert.NotEmpty(t, reqs[0].header.Get("DPoP"), "a proof of the key")
	assert.True(t, strings.HasPrefix(reqs[0].header.Get("Authorization"), "Basic "), "the client's credentials, not the token")
	assert.False(t, srv.Active(tok.RefreshToken))
	assert.False(t, srv.Active(tok.AccessToken))
}

// unlockedStore is a Memory store that is no Locker, so that Logout does
// not wait for a refresh under way.
type unlockedStore struct{ m *store.Memory }

func (s unlockedStore) Load(ctx context.Context) (*oauth2.Token, error) { return s.m.Load(ctx) }
func (s unlockedStore) Save(ctx context.Context, tok *oauth2.Token) error {
	return s.m.Save(ctx, tok)
}
func (s unlockedStore) Clear(ctx context.Context) error { return s.m.Clear(ctx) }

// TestLogoutDuringRefreshRevokesItsResult: a refresh under way when Logout
// is called gets a new pair that nobody will use; it is revoked too, not
// left alive at the server.
func TestLogoutDuringRefreshRevokesItsResult(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	var revoked sync.Map
	r := &revokingRefresher{revoke: func(_ context.Context, tok *oauth2.Token) error {
		revoked.Store(tok.RefreshToken, true)
		return nil
	}}
	r.fail = func(call int32) error {
		close(arrived)
		<-release
		return nil
	}
	st := unlockedStore{store.NewMemory(&oauth2.Token{AccessToken: "access-0", RefreshToken: "refresh-0", TokenType: "Bearer"})}
	tr := newTransport(t, bearer.Config{Refresher: r, Store: st}, nil)
	require.NoError(t, tr.SetToken(t.Context(), &oauth2.Token{RefreshToken: "refresh-0"})) // must be refreshed before use

	done := make(chan error, 1)
	go func() {
		_, err := tr.Token(context.Background())
		done <- err
	}()
	<-arrived
	require.NoError(t, tr.Logout(t.Context()))
	_, held := revoked.Load("refresh-0")
	assert.True(t, held, "Logout revoked the pair it held")
	close(release)
	assert.ErrorIs(t, <-done, bearer.ErrLoggedOut, "the refresh's caller is logged out too")

	_, fresh := revoked.Load("refresh-1")
	assert.True(t, fresh, "the pair the refresh got after the Logout is revoked")
	_, err := st.Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound, "and not left in the store")
}
