package dpop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seen is what a test server recorded of one request.
type seen struct {
	Proof decoded
	Body  string
	Auth  string
}

// nonceServer answers each request with the next of its answers (the last
// one over and over) and records the proof each request carried.
type nonceServer struct {
	t       *testing.T
	mu      sync.Mutex
	seen    []seen
	answers []answer
	srv     *httptest.Server
}

type answer struct {
	status int
	nonce  string // DPoP-Nonce of the answer; "" for none
	header string // WWW-Authenticate
	body   string
}

func newNonceServer(t *testing.T, answers ...answer) *nonceServer {
	s := &nonceServer{t: t, answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := seen{Body: string(body), Auth: r.Header.Get("Authorization")}
		if p := r.Header.Values("DPoP"); len(p) == 1 {
			rec.Proof = verifyProof(s.t, p[0])
		}
		s.mu.Lock()
		s.seen = append(s.seen, rec)
		a := s.answers[min(len(s.seen), len(s.answers))-1]
		s.mu.Unlock()
		if a.nonce != "" {
			w.Header().Set("DPoP-Nonce", a.nonce)
		}
		if a.header != "" {
			w.Header().Set("WWW-Authenticate", a.header)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *nonceServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.seen...)
}

var (
	askTokenEndpoint = answer{status: 400, nonce: "n-1", body: `{"error":"use_dpop_nonce","error_description":"nonce required"}`}
	askResource      = answer{status: 401, nonce: "n-1", header: `DPoP error="use_dpop_nonce", algs="ES256"`}
	ok200            = answer{status: 200, body: "ok"}
)

func post(t *testing.T, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Post(u, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestTokenEndpointNonceIsRetriedOnce(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	srv := newNonceServer(t, askTokenEndpoint, answer{status: 200, nonce: "n-2", body: "{}"})
	c := k.Client(srv.srv.Client())

	resp := post(t, c, srv.srv.URL+"/token?x=1")
	assert.Equal(t, 200, resp.StatusCode)
	got := srv.requests()
	require.Len(t, got, 2, "one retry")
	assert.NotContains(t, got[0].Proof.Claims, "nonce", "the first proof has no nonce yet")
	assert.NotContains(t, got[0].Proof.Claims, "ath", "a token request has no access token")
	assert.Equal(t, "n-1", got[1].Proof.Claims["nonce"])
	assert.NotEqual(t, got[0].Proof.Claims["jti"], got[1].Proof.Claims["jti"], "a new proof for the retry")
	assert.Equal(t, "grant_type=refresh_token", got[1].Body, "the body is sent again")
	assert.Equal(t, srv.srv.URL+"/token", got[1].Proof.Claims["htu"])
	assert.Equal(t, "POST", got[1].Proof.Claims["htm"])

	u, _ := url.Parse(srv.srv.URL)
	assert.Equal(t, "n-2", k.Nonce(u), "the 200's nonce is kept")
	post(t, c, srv.srv.URL+"/token")
	got = srv.requests()
	require.Len(t, got, 3)
	assert.Equal(t, "n-2", got[2].Proof.Claims["nonce"], "and used in the next proof")
}

func TestNonceIsNotRetriedTwice(t *testing.T) {
	tests := []struct {
		name    string
		answers []answer
		sends   int
	}{
		{"the server repeats the nonce", []answer{askTokenEndpoint}, 2},
		{"the server sends no nonce", []answer{{status: 400, body: `{"error":"use_dpop_nonce"}`}}, 1},
		{"a nonce that is not one", []answer{{status: 400, nonce: "has space", body: `{"error":"use_dpop_nonce"}`}}, 1},
		{"another error at the token endpoint", []answer{{status: 400, nonce: "n-1", body: `{"error":"invalid_dpop_proof"}`}}, 1},
		{"the resource repeats the nonce", []answer{askResource}, 2},
		{"the resource blames the token", []answer{{status: 401, nonce: "n-1", header: `DPoP error="invalid_token"`}}, 1},
		{"a Bearer challenge asking for a nonce", []answer{{status: 401, nonce: "n-1", header: `Bearer error="use_dpop_nonce"`}}, 1},
		{"a 429 with a nonce", []answer{{status: 429, nonce: "n-1"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := GenerateKey()
			require.NoError(t, err)
			srv := newNonceServer(t, tt.answers...)
			resp := post(t, k.Client(srv.srv.Client()), srv.srv.URL)
			assert.Equal(t, tt.answers[len(tt.answers)-1].status, resp.StatusCode, "the last answer is returned")
			assert.Len(t, srv.requests(), tt.sends)
		})
	}
}

func TestResourceNonceAndAccessTokenHash(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	srv := newNonceServer(t, askResource, answer{status: 200, nonce: "n-2"})
	c := k.Client(srv.srv.Client())
	for _, tok := range []string{"at-1", "at-2"} {
		req, err := http.NewRequest(http.MethodGet, srv.srv.URL+"/api?page=2", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "DPoP "+tok)
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "DPoP "+tok, req.Header.Get("Authorization"), "the caller's request is not changed")
		assert.Empty(t, req.Header.Values("DPoP"), "the caller's request gets no proof")
	}
	got := srv.requests()
	require.Len(t, got, 3, "the 401 asking for a nonce is answered once")
	assert.Equal(t, "n-1", got[1].Proof.Claims["nonce"])
	assert.Equal(t, "n-2", got[2].Proof.Claims["nonce"], "the 200's nonce")
	assert.Equal(t, Hash("at-1"), got[0].Proof.Claims["ath"])
	assert.Equal(t, Hash("at-1"), got[1].Proof.Claims["ath"])
	assert.Equal(t, Hash("at-2"), got[2].Proof.Claims["ath"], "a new token, a new hash")
	assert.Equal(t, srv.srv.URL+"/api", got[2].Proof.Claims["htu"])
}

func TestBodyThatCannotBeReplayedIsNotRetried(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	srv := newNonceServer(t, askTokenEndpoint, ok200)
	req, err := http.NewRequest(http.MethodPost, srv.srv.URL, io.NopCloser(strings.NewReader("x=1")))
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	resp, err := k.Transport(srv.srv.Client().Transport).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode, "the answer asking for a nonce comes back")
	assert.Len(t, srv.requests(), 1)
	u, _ := url.Parse(srv.srv.URL)
	assert.Equal(t, "n-1", k.Nonce(u), "its nonce is kept for the next request")
}

func TestRequestWithAProofIsSentAsItIs(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	srv := newNonceServer(t, ok200)
	proof, err := k.Proof(Claims{Method: "GET", URL: &url.URL{Scheme: "http", Host: "elsewhere", Path: "/"}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, srv.srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("DPoP", proof)
	resp, err := k.Client(srv.srv.Client()).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	got := srv.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "http://elsewhere/", got[0].Proof.Claims["htu"], "the caller's own proof went out")
}

func TestNoncesAreKeptPerOrigin(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	a := newNonceServer(t, answer{status: 200, nonce: "from-a"})
	b := newNonceServer(t, ok200)
	c := k.Client(a.srv.Client())
	post(t, c, a.srv.URL)
	post(t, c, b.srv.URL)
	post(t, c, a.srv.URL)
	assert.NotContains(t, b.requests()[0].Proof.Claims, "nonce", "a's nonce never goes to b")
	assert.Equal(t, "from-a", a.requests()[1].Proof.Claims["nonce"])
}

func TestNonceCacheIsBounded(t *testing.T) {
	var c nonceCache
	for i := range maxOrigins * 3 {
		c.observe(fmt.Sprintf("https://h%d", i), http.Header{"Dpop-Nonce": {"n"}})
	}
	assert.LessOrEqual(t, len(c.m), maxOrigins)
	assert.Empty(t, c.observe("https://h", http.Header{"Dpop-Nonce": {strings.Repeat("n", maxNonce+1)}}), "an overlong nonce is not kept")
	assert.Empty(t, c.observe("https://h", http.Header{"Dpop-Nonce": {"a", "b"}}), "two nonces are none")
}

// A request whose Host overrides its URL's host is, for the server, a
// request to that host (RFC 9110 §7.1): net/http sends it in the Host
// header, and the proof names it.
func TestProofNamesTheHostHeader(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	var got []string
	tr := k.Transport(baseFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, verifyProof(t, r.Header.Get("DPoP")).HTU, serverHTU(t, r))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	}))
	req, err := http.NewRequest(http.MethodGet, "https://10.0.0.1/x?q=1", nil)
	require.NoError(t, err)
	req.Host = "API.example.com:443"
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, got, 2)
	assert.Equal(t, "https://api.example.com/x", got[1], "what the server reconstructs")
	assert.Equal(t, got[1], got[0], "the proof's htu")
}

// A 400 that gives a new nonce has its body read to see whether it asks
// for the nonce; a body that stalls must not hold RoundTrip, whose caller
// gets the response and reads the body as it comes.
func TestStalledBadRequestBodyDoesNotHoldRoundTrip(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("DPoP-Nonce", "n-1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":`)
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, `"use_dpop_nonce"}`)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	k, err := GenerateKey()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, strings.NewReader("grant_type=x"))
	require.NoError(t, err)
	start := time.Now()
	resp, err := k.Transport(srv.Client().Transport).RoundTrip(req)
	elapsed := time.Since(start)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Less(t, elapsed, 2*time.Second, "RoundTrip waited for the body")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	unblock()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, `{"error":"use_dpop_nonce"}`, string(body), "the caller reads the whole body")
}

// countingBody counts its Close calls.
type countingBody struct {
	io.Reader
	closes int
}

func (b *countingBody) Close() error { b.closes++; return nil }

// The body of a 400 that was looked at is given back whole, however long,
// and closing it closes the original once.
func TestBadRequestBodyIsGivenBackWhole(t *testing.T) {
	k, err := GenerateKey()
	require.NoError(t, err)
	long := `{"error":"invalid_grant","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	orig := &countingBody{Reader: strings.NewReader(long)}
	tr := k.Transport(baseFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 400, Body: orig, Header: http.Header{"Dpop-Nonce": {"n-1"}}, Request: r}, nil
	}))
	req, err := http.NewRequest(http.MethodPost, "https://as.example.com/token", strings.NewReader("x"))
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, long, string(body))
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, 1, orig.closes)
}
