package conformance

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// validator asks the authorization server whether an access token is valid
// now. An error means the server could not tell.
type validator func(ctx context.Context, token string) (active bool, err error)

// resource is the protected resource: an httptest server on loopback that
// accepts a request only when the authorization server says its bearer
// token is valid, and answers 401 with an RFC 6750 invalid_token challenge
// otherwise. It never logs the token.
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
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		r.rejected.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="conformance"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	active, err := r.validate(req.Context(), token)
	switch {
	case err != nil:
		r.failed.Add(1)
		http.Error(w, "cannot validate the token", http.StatusBadGateway)
	case !active:
		r.rejected.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="conformance", error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	default:
		r.accepted.Add(1)
		io.WriteString(w, "ok")
	}
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
func (g *grantCounter) refreshes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grants["refresh_token"]
}
