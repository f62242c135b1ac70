package conformance

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

	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/internal/dpopcheck"
)

// validator asks the authorization server whether an access token is valid
// now. An error means the server could not tell.
type validator func(ctx context.Context, token string) (tokenState, error)

// tokenState is what the authorization server says of an access token.
type tokenState struct {
	active bool
	jkt    string // the key a DPoP-bound token is bound to (RFC 9449 §6), if the server says
}

// resource is the protected resource: an httptest server on loopback that
// accepts a request only when the authorization server says its token is
// valid, and answers 401 with an RFC 6750 invalid_token challenge
// otherwise. A DPoP-bound token (RFC 9449 §7) must come as "DPoP" with a
// proof for the request, signed by the key the token is bound to, and is
// refused as Bearer. It never logs the token.
type resource struct {
	srv      *httptest.Server
	validate validator

	accepted atomic.Int64 // 200: the server said active
	rejected atomic.Int64 // 401: no token, or the server said inactive
	failed   atomic.Int64 // 502: the server could not be asked
}

// newResource listens on loopback but does not serve until start, so that
// its address can go into the client's registration first.
func newResource(t *testing.T) *resource {
	r := &resource{}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// callback is the client's redirect URI. The login stops at it, so it is
// never requested; it is on loopback all the same.
func (r *resource) callback() string {
	return "http://" + r.srv.Listener.Addr().String() + "/callback"
}

// start serves, validating tokens with v.
func (r *resource) start(v validator) {
	r.validate = v
	r.srv.Start()
}

// url is the protected API.
func (r *resource) url() string { return r.srv.URL + "/api/things" }

func (r *resource) serve(w http.ResponseWriter, req *http.Request) {
	scheme, token, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	var proofKey string // the proof's key, for a DPoP request
	switch {
	case !ok || token == "":
		r.refuse(w, "Bearer", `realm="conformance"`)
		return
	case strings.EqualFold(scheme, "DPoP"):
		jkt, err := checkProof(req, token)
		if err != nil {
			r.refuse(w, "DPoP", `error="invalid_dpop_proof"`)
			return
		}
		scheme, proofKey = "DPoP", jkt
	case strings.EqualFold(scheme, "Bearer"):
		scheme = "Bearer"
	default:
		r.refuse(w, "Bearer", `realm="conformance"`)
		return
	}
	st, err := r.validate(req.Context(), token)
	switch {
	case err != nil:
		r.failed.Add(1)
		http.Error(w, "cannot validate the token", http.StatusBadGateway)
	case !st.active || st.jkt != proofKey: // inactive, a bound token as Bearer, or another key's proof
		r.refuse(w, scheme, `realm="conformance", error="invalid_token"`)
	default:
		r.accepted.Add(1)
		io.WriteString(w, "ok")
	}
}

// refuse answers 401 with a challenge of the scheme.
func (r *resource) refuse(w http.ResponseWriter, scheme, params string) {
	r.rejected.Add(1)
	w.Header().Set("WWW-Authenticate", scheme+" "+params)
	w.WriteHeader(http.StatusUnauthorized)
}

// checkProof verifies the DPoP proof of a request that carries token (RFC
// 9449 §4.3: signature, htm, htu, ath, a recent iat) and returns the
// thumbprint of its key. The proof is checked by bearer's internal
// checker, which shares no code with package dpop; the server's own
// userinfo endpoint is the independent check.
func checkProof(req *http.Request, token string) (string, error) {
	proofs := req.Header.Values("DPoP")
	if len(proofs) != 1 {
		return "", errors.New("want one DPoP header")
	}
	p, err := dpopcheck.Verify(proofs[0])
	if err != nil {
		return "", err
	}
	htu := "http://" + req.Host + req.URL.Path
	if p.HTM != req.Method || p.HTU != htu || p.ATH != dpopcheck.Hash(token) ||
		time.Since(time.Unix(p.IAT, 0)).Abs() > time.Minute {
		return "", errors.New("the proof does not match the request")
	}
	return p.JKT, nil
}

// grantCounter counts the grant types that reach a server's token endpoint,
// as HTTP middleware in front of the server, so that every refresh request
// counts, the rejected ones too.
type grantCounter struct {
	mu     sync.Mutex
	grants map[string]int
}

func newGrantCounter() *grantCounter { return &grantCounter{grants: map[string]int{}} }

// wrap returns next behind the counter. The body is read and replaced, so
// the server sees the request unchanged.
func (g *grantCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			if form, perr := url.ParseQuery(string(body)); err == nil && perr == nil && form.Has("grant_type") {
				g.mu.Lock()
				g.grants[form.Get("grant_type")]++
				g.mu.Unlock()
			}
		}
		next.ServeHTTP(w, r)
	})
}

// refreshes is the number of refresh_token grant requests so far.
func (g *grantCounter) refreshes() int { return g.count("refresh_token") }

// count is the number of requests for the grant type so far.
func (g *grantCounter) count(grantType string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grants[grantType]
}

// clientAuth is a client's credentials for the introspection and revocation
// endpoints: HTTP Basic with a secret, or client_id in the form for a
// public client (token_endpoint_auth_method none).
type clientAuth struct{ id, secret string }

// post sends form to endpoint authenticated as the client.
func (a clientAuth) post(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (*http.Response, error) {
	if a.secret == "" {
		form.Set("client_id", a.id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if a.secret != "" {
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	}
	return hc.Do(req)
}

// introspect validates a token by RFC 7662 introspection, as the resource
// server, authenticated as the given client.
func introspect(hc *http.Client, endpoint string, as clientAuth) validator {
	return func(ctx context.Context, token string) (tokenState, error) {
		resp, err := as.post(ctx, hc, endpoint, url.Values{"token": {token}})
		if err != nil {
			return tokenState{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return tokenState{}, errors.New("introspection answered " + resp.Status)
		}
		var out struct {
			Active bool `json:"active"`
			Cnf    struct {
				JKT string `json:"jkt"`
			} `json:"cnf"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return tokenState{}, err
		}
		return tokenState{active: out.Active, jkt: out.Cnf.JKT}, nil
	}
}

// revoke revokes a token through the RFC 7009 endpoint, as the client.
func revoke(t *testing.T, hc *http.Client, endpoint string, as clientAuth, token, hint string) {
	t.Helper()
	resp, err := as.post(t.Context(), hc, endpoint, url.Values{"token": {token}, "token_type_hint": {hint}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "revoking the %s", hint)
}

// statusCounter counts the answers of one path of a server, as HTTP
// middleware in front of it: 200s, and 401s with a challenge that asks
// for a DPoP nonce and with any other.
type statusCounter struct {
	path                     string
	ok, nonce, otherRejected atomic.Int64
}

func (c *statusCounter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != c.path {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		switch {
		case rec.status == http.StatusOK:
			c.ok.Add(1)
		case rec.status == http.StatusUnauthorized && strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`):
			c.nonce.Add(1)
		case rec.status == http.StatusUnauthorized:
			c.otherRejected.Add(1)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
