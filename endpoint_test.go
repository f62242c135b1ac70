package bearer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
)

// endpointHits keeps what a test handler received, for the test goroutine.
type endpointHits struct {
	mu   sync.Mutex
	reqs []endpointHit
}

type endpointHit struct {
	method string
	header http.Header
	body   string
}

func (r *endpointHits) record(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, endpointHit{method: req.Method, header: req.Header.Clone(), body: string(b)})
	r.mu.Unlock()
}

func (r *endpointHits) all() []endpointHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]endpointHit(nil), r.reqs...)
}

// cannedEndpoint answers every request with status, Content-Type and body,
// recording it.
func cannedEndpoint(t *testing.T, status int, ctype, body string) (*httptest.Server, *endpointHits) {
	rec := &endpointHits{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

var endpointCurrent = &oauth2.Token{AccessToken: "old-access", RefreshToken: "old-refresh", TokenType: "Bearer"}

func TestEndpointAgainstAuthtest(t *testing.T) {
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: 2 * time.Minute, Rotate: true})
	defer srv.Close()
	issued := srv.Issue()

	ref := &bearer.Endpoint{URL: srv.RefreshURL, HTTPClient: srv.Client()}
	tok, err := ref.Refresh(t.Context(), issued)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(tok.AccessToken, bearertest.AccessPrefix))
	assert.True(t, strings.HasPrefix(tok.RefreshToken, bearertest.RefreshPrefix))
	assert.NotEqual(t, issued.RefreshToken, tok.RefreshToken, "rotated")
	assert.Equal(t, "Bearer", tok.Type())
	assert.WithinDuration(t, time.Now().Add(2*time.Minute), tok.Expiry, 5*time.Second)
	assert.EqualValues(t, 120, tok.ExpiresIn)
	assert.NotNil(t, tok.Extra("expiresIn"), "the answer is kept as extras")

	// The retired refresh token is refused: a 401 invalid_grant.
	_, err = ref.Refresh(t.Context(), issued)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	assert.Equal(t, "invalid_grant", re.ErrorCode)
	assert.Nil(t, re.Body, "the body is not kept")
	assert.NotContains(t, err.Error(), issued.RefreshToken)
}

// TestEndpointCustomNames runs a Transport against a backend with its own
// field names and an API key header, set through the fields.
func TestEndpointCustomNames(t *testing.T) {
	rec := &endpointHits{}
	var validAccess atomic.Value
	validAccess.Store("a1")
	mux := http.NewServeMux()
	mux.HandleFunc("/auth/renew", func(w http.ResponseWriter, r *http.Request) {
		rec.record(r)
		w.Header().Set("Content-Type", "application/json")
		validAccess.Store("a2")
		io.WriteString(w, `{"jwt":"a2","renew":"r2","ttl":"60","user":"ann"}`)
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+validAccess.Load().(string) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ref := &bearer.Endpoint{
		URL:        srv.URL + "/auth/renew",
		Fields:     bearer.EndpointFields{Token: "refresh_token", AccessToken: "jwt", RefreshToken: "renew", ExpiresIn: "ttl"},
		Header:     http.Header{"X-Api-Key": {"key-1"}},
		HTTPClient: srv.Client(),
	}
	tr := newTransport(t, bearer.Config{Refresher: ref, Base: srv.Client().Transport},
		&oauth2.Token{AccessToken: "a0", RefreshToken: "r1"})

	resp, err := tr.Client().Get(srv.URL + "/api")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	reqs := rec.all()
	require.Len(t, reqs, 1)
	assert.Equal(t, http.MethodPost, reqs[0].method)
	assert.JSONEq(t, `{"refresh_token":"r1"}`, reqs[0].body)
	assert.Equal(t, "key-1", reqs[0].header.Get("X-Api-Key"))
	assert.Equal(t, "application/json", reqs[0].header.Get("Content-Type"))
	assert.Empty(t, reqs[0].header.Get("Authorization"), "the refresh request carries no access token")

	tok, err := tr.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "a2", tok.AccessToken)
	assert.Equal(t, "r2", tok.RefreshToken)
	assert.Equal(t, "ann", tok.Extra("user"))
	assert.WithinDuration(t, time.Now().Add(time.Minute), tok.Expiry, 5*time.Second)
}

// TestEndpointRequestBuilderAndDecoder serves an API that takes the refresh
// token in a header of a form POST and wraps its answer in "data".
func TestEndpointRequestBuilderAndDecoder(t *testing.T) {
	srv, rec := cannedEndpoint(t, http.StatusOK, "application/json", `{"data":{"token":"a2","lifetime_ms":30000}}`)
	build := func(ctx context.Context, u string, cur *oauth2.Token) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"device": {"d1"}}.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Refresh", cur.RefreshToken)
		return req, nil
	}
	decode := func(resp *http.Response, body []byte) (*oauth2.Token, error) {
		var a struct {
			Data struct {
				Token      string `json:"token"`
				LifetimeMS int64  `json:"lifetime_ms"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, err
		}
		return &oauth2.Token{AccessToken: a.Data.Token, Expiry: time.Now().Add(time.Duration(a.Data.LifetimeMS) * time.Millisecond)}, nil
	}
	ref := &bearer.Endpoint{URL: srv.URL, BuildRequest: build, DecodeResponse: decode, Header: http.Header{"X-App": {"demo"}}}

	tok, err := ref.Refresh(t.Context(), endpointCurrent)
	require.NoError(t, err)
	assert.Equal(t, "a2", tok.AccessToken)
	assert.WithinDuration(t, time.Now().Add(30*time.Second), tok.Expiry, 5*time.Second)

	reqs := rec.all()
	require.Len(t, reqs, 1)
	assert.Equal(t, "device=d1", reqs[0].body)
	assert.Equal(t, "old-refresh", reqs[0].header.Get("X-Refresh"))
	assert.Equal(t, "demo", reqs[0].header.Get("X-App"), "Header applies to a built request")

	// An error from the decoder is the refresher's error.
	dead := errors.New("account closed")
	ref = &bearer.Endpoint{URL: srv.URL, DecodeResponse: func(*http.Response, []byte) (*oauth2.Token, error) {
		return nil, bearer.Permanent(dead)
	}}
	_, err = ref.Refresh(t.Context(), endpointCurrent)
	assert.ErrorIs(t, err, dead)
}

// TestEndpointBuilderGetsTheRefreshContext checks that a request built
// with another context is sent with the refresh context, so that its
// deadline and cancellation apply.
func TestEndpointBuilderGetsTheRefreshContext(t *testing.T) {
	srv, rec := cannedEndpoint(t, http.StatusOK, "application/json", `{"accessToken":"a2"}`)
	ref := &bearer.Endpoint{URL: srv.URL, BuildRequest: func(_ context.Context, u string, _ *oauth2.Token) (*http.Request, error) {
		return http.NewRequestWithContext(context.Background(), http.MethodPost, u, nil)
	}}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ref.Refresh(ctx, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, rec.all())
}

func TestEndpointAnswers(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		ctype       string
		body        string
		wantAccess  string
		wantRefresh string
		wantExpires time.Duration // 0: no expiry
		wantStatus  int           // of the *oauth2.RetrieveError, 0: none
		wantCode    string
		wantInError string
	}{
		{name: "all fields", status: 200, body: `{"accessToken":"a2","refreshToken":"r2","expiresIn":3600}`, wantAccess: "a2", wantRefresh: "r2", wantExpires: time.Hour},
		{name: "access token only", status: 200, body: `{"accessToken":"a2"}`, wantAccess: "a2"},
		{name: "null refresh token", status: 200, body: `{"accessToken":"a2","refreshToken":null}`, wantAccess: "a2"},
		{name: "expiresIn as a string", status: 201, body: `{"accessToken":"a2","expiresIn":"60"}`, wantAccess: "a2", wantExpires: time.Minute},
		{name: "fractional expiresIn", status: 200, body: `{"accessToken":"a2","expiresIn":59.9}`, wantAccess: "a2", wantExpires: 59 * time.Second},
		{name: "no access token", status: 200, body: `{"token":"a2"}`, wantInError: `no "accessToken" string field`},
		{name: "refresh token not a string", status: 200, body: `{"accessToken":"a2","refreshToken":7}`, wantInError: `"refreshToken" field is not a string`},
		{name: "expiresIn not a number", status: 200, body: `{"accessToken":"a2","expiresIn":"soon"}`, wantInError: `"expiresIn" field is not a number`},
		{name: "negative expiresIn", status: 200, body: `{"accessToken":"a2","expiresIn":-5}`, wantInError: `"expiresIn" field is not a number`},
		{name: "a JSON array", status: 200, body: `["a2"]`, wantInError: "not a JSON object"},
		{name: "plain text", status: 200, ctype: "text/plain", body: `a2`, wantInError: `not a JSON object (Content-Type "text/plain")`},
		{name: "error field in a 200", status: 200, body: `{"error":"invalid_grant","error_description":"expired"}`, wantStatus: 200, wantCode: "invalid_grant"},
		{name: "401 with a code", status: 401, body: `{"error":"invalid_grant"}`, wantStatus: 401, wantCode: "invalid_grant"},
		{name: "400 with a message only", status: 400, body: `{"message":"bad token"}`, wantStatus: 400},
		{name: "500 HTML", status: 500, ctype: "text/html", body: `<h1>oops</h1>`, wantStatus: 500},
		{name: "302 not followed", status: 302, body: ``, wantStatus: 302},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctype := tt.ctype
			if ctype == "" {
				ctype = "application/json"
			}
			srv, _ := cannedEndpoint(t, tt.status, ctype, tt.body)
			tok, err := (&bearer.Endpoint{URL: srv.URL}).Refresh(t.Context(), endpointCurrent)
			if tt.wantAccess != "" {
				require.NoError(t, err)
				assert.Equal(t, tt.wantAccess, tok.AccessToken)
				assert.Equal(t, tt.wantRefresh, tok.RefreshToken)
				if tt.wantExpires == 0 {
					assert.True(t, tok.Expiry.IsZero())
				} else {
					assert.WithinDuration(t, time.Now().Add(tt.wantExpires), tok.Expiry, 5*time.Second)
				}
				return
			}
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "bearer:", "the RefreshError around it names the package, once")
			var re *oauth2.RetrieveError
			if tt.wantStatus != 0 {
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.wantStatus, re.Response.StatusCode)
				assert.Equal(t, tt.wantCode, re.ErrorCode)
			} else {
				assert.False(t, errors.As(err, &re))
				assert.Contains(t, err.Error(), tt.wantInError)
			}
		})
	}
}

func TestEndpointWithoutRefreshToken(t *testing.T) {
	srv, rec := cannedEndpoint(t, http.StatusOK, "application/json", `{"accessToken":"a2"}`)
	for _, cur := range []*oauth2.Token{nil, {AccessToken: "access-only"}} {
		_, err := (&bearer.Endpoint{URL: srv.URL}).Refresh(t.Context(), cur)
		assert.ErrorIs(t, err, bearer.ErrNoToken)
	}
	assert.Empty(t, rec.all(), "nothing to send")
}

// TestEndpointBadRequest checks how a Transport treats a 400 without a known
// code, by default and with TransientBadRequest.
func TestEndpointBadRequest(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		transient     bool // Endpoint.TransientBadRequest
		wantPermanent bool
		wantAttempts  int
		wantLogouts   int32
	}{
		{name: "default: permanent", body: `{"message":"bad token"}`, wantPermanent: true, wantAttempts: 1, wantLogouts: 1},
		{name: "transient option", body: `{"message":"bad token"}`, transient: true, wantAttempts: 3},
		{name: "transient option, unknown code", body: `{"error":"try_later"}`, transient: true, wantAttempts: 3},
		{name: "transient option, invalid_grant", body: `{"error":"invalid_grant"}`, transient: true, wantPermanent: true, wantAttempts: 1, wantLogouts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, rec := cannedEndpoint(t, http.StatusBadRequest, "application/json", tt.body)
			var logouts atomic.Int32
			ref := &bearer.Endpoint{URL: srv.URL, HTTPClient: srv.Client(), TransientBadRequest: tt.transient}
			tr := newTransport(t, bearer.Config{
				Refresher: ref,
				Base:      &fakeBase{respond: status(401)},
				OnLogout:  func(context.Context, error) { logouts.Add(1) },
			}, tok1)

			re, _ := refreshFailure(t, tr)
			assert.Equal(t, tt.wantPermanent, re.Permanent)
			assert.Equal(t, tt.wantAttempts, re.Attempts)
			assert.Equal(t, http.StatusBadRequest, re.StatusCode)
			assert.Len(t, rec.all(), tt.wantAttempts)
			assert.Equal(t, tt.wantLogouts, logouts.Load())
		})
	}
}

func TestEndpointOversizedAnswer(t *testing.T) {
	srv, _ := cannedEndpoint(t, http.StatusOK, "application/json", `{"accessToken":"a2","pad":"`+strings.Repeat("x", 1<<20)+`"}`)
	_, err := (&bearer.Endpoint{URL: srv.URL}).Refresh(t.Context(), endpointCurrent)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "larger than 1 MiB")

	srv, _ = cannedEndpoint(t, http.StatusOK, "application/json", `{"accessToken":"a2","pad":"`+strings.Repeat("x", 1<<19)+`"}`)
	tok, err := (&bearer.Endpoint{URL: srv.URL}).Refresh(t.Context(), endpointCurrent)
	require.NoError(t, err, "half a MiB is fine")
	assert.Equal(t, "a2", tok.AccessToken)
}

func TestEndpointCloseIdleConnections(t *testing.T) {
	client := &fakeBase{respond: status(200)}
	tr := newTransport(t, bearer.Config{
		Refresher: &bearer.Endpoint{URL: "https://auth.example.com/refresh", HTTPClient: &http.Client{Transport: client}},
		Base:      &fakeBase{respond: status(200)},
	}, tok1)
	tr.CloseIdleConnections()
	assert.Equal(t, 1, client.closes())

	(&bearer.Endpoint{}).CloseIdleConnections() // no client of its own: nothing to close
}

// TestEndpointWithoutURL: an Endpoint without a URL sends nothing and fails
// transiently, so that a configuration mistake never logs the user out (a
// logout clears the store, and the refresh token in it).
func TestEndpointWithoutURL(t *testing.T) {
	called := false
	ref := &bearer.Endpoint{BuildRequest: func(context.Context, string, *oauth2.Token) (*http.Request, error) {
		called = true
		return nil, errors.New("not reached")
	}}
	_, err := ref.Refresh(t.Context(), endpointCurrent)
	require.Error(t, err)
	assert.Equal(t, "Endpoint: URL is empty", err.Error())
	assert.False(t, called, "the builder is not asked")

	var logouts atomic.Int32
	tr := newTransport(t, bearer.Config{
		Refresher: &bearer.Endpoint{},
		Base:      &fakeBase{respond: status(401)},
		OnLogout:  func(context.Context, error) { logouts.Add(1) },
	}, tok1)
	re, _ := refreshFailure(t, tr)
	assert.False(t, re.Permanent)
	assert.Zero(t, logouts.Load())
}

// TestEndpointHeaderKeys: Header replaces the values of a built request for
// each key, whatever the case the key is written in, as Header.Set would.
func TestEndpointHeaderKeys(t *testing.T) {
	srv, rec := cannedEndpoint(t, http.StatusOK, "application/json", `{"accessToken":"a2"}`)
	ref := &bearer.Endpoint{
		URL:    srv.URL,
		Header: http.Header{"x-api-key": {"from-header"}},
		BuildRequest: func(ctx context.Context, u string, _ *oauth2.Token) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
			if err == nil {
				req.Header.Set("X-Api-Key", "from-builder")
			}
			return req, err
		},
	}
	_, err := ref.Refresh(t.Context(), endpointCurrent)
	require.NoError(t, err)
	reqs := rec.all()
	require.Len(t, reqs, 1)
	assert.Equal(t, []string{"from-header"}, reqs[0].header.Values("X-Api-Key"))
}

// FuzzEndpointAnswer feeds the JSON endpoint arbitrary answers: it never
// panics, a success always has an access token, and no error shows the
// refresh token that was sent, whatever the server put in its answer.
func FuzzEndpointAnswer(f *testing.F) {
	f.Add(200, []byte(`{"accessToken":"a2","refreshToken":"r2","expiresIn":3600}`))
	f.Add(200, []byte(`{"accessToken":"a2","expiresIn":"1e3"}`))
	f.Add(200, []byte(`{"error":"old-refresh","error_description":"old-refresh is unknown"}`))
	f.Add(400, []byte(`{"error":"invalid_grant","error_uri":"https://x/?t=old-refresh"}`))
	f.Add(503, []byte(`<html>old-refresh</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			t.Skip()
		}
		base := &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(bytes.NewReader(body)), Request: req}, nil
		}}
		ref := &bearer.Endpoint{URL: "https://auth.example.com/refresh", HTTPClient: &http.Client{Transport: base}}
		tok, err := ref.Refresh(t.Context(), endpointCurrent)
		if err != nil {
			assert.NotContains(t, err.Error(), endpointCurrent.RefreshToken)
			assert.NotContains(t, (&bearer.RefreshError{Err: err}).Error(), endpointCurrent.RefreshToken)
			return
		}
		assert.NotEmpty(t, tok.AccessToken)
		assert.True(t, status >= 200 && status <= 299, "success only for 2xx")
	})
}
