package bearer_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
)

// redirectingBase answers the first request with a redirect to location and
// every other with a 200. With setRequest false it leaves Response.Request
// unset, as a cache, a test double or a middleware that builds its own
// responses may.
func redirectingBase(location string, setRequest bool) *fakeBase {
	var n int
	return &fakeBase{respond: func(req *http.Request) (*http.Response, error) {
		n++ // fakeBase serialises nothing; these tests send one request at a time
		resp := answer(http.StatusOK)
		if n == 1 {
			resp = answer(http.StatusFound)
			resp.Header.Set("Location", location)
		}
		if setRequest {
			resp.Request = req
		}
		return resp, nil
	}}
}

// TestRedirectRuleNeedsTheChain: a redirect hop whose chain cannot be walked
// back to the first request (the base set no Response.Request) proves
// nothing about where the chain started, and gets no token.
func TestRedirectRuleNeedsTheChain(t *testing.T) {
	tests := []struct {
		name       string
		location   string
		setRequest bool
		wantToken  bool
	}{
		{name: "to another host, no Response.Request", location: "https://evil.example.net/steal"},
		{name: "to the same host, no Response.Request", location: "https://api.example.com/next"},
		{name: "to the same host, chain known", location: "https://api.example.com/next", setRequest: true, wantToken: true},
		{name: "to another host, chain known", location: "https://evil.example.net/steal", setRequest: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := redirectingBase(tt.location, tt.setRequest)
			tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)
			resp, err := tr.Client().Get("https://api.example.com/start")
			require.NoError(t, err)
			resp.Body.Close()
			seen := base.requests()
			require.Len(t, seen, 2)
			assert.Equal(t, "Bearer access-0", seen[0].auth, "the first request")
			if tt.wantToken {
				assert.Equal(t, "Bearer access-0", seen[1].auth, "the hop to %s", tt.location)
			} else {
				assert.Empty(t, seen[1].auth, "the hop to %s", tt.location)
			}
		})
	}
}

// TestRedirectRuleIsNetHTTPs: a redirect hop gets the token only where
// net/http would keep an Authorization header that the caller set (its
// isDomainOrSubdomain, guards included), and only while every hop of the
// chain so far did.
func TestRedirectRuleIsNetHTTPs(t *testing.T) {
	tests := []struct {
		name      string
		chain     []string // the first request, then each hop
		wantToken bool
	}{
		{name: "subdomain", chain: []string{"https://example.com/", "https://api.example.com/"}, wantToken: true},
		{name: "other port, same host", chain: []string{"https://api.example.com/", "https://api.example.com:8443/"}, wantToken: true},
		{name: "IPv6 zone that ends in the host", chain: []string{"https://api.example.com/", "https://[::1%25.api.example.com]/"}},
		{name: "IPv6 zone, plain http", chain: []string{"http://api.example.com/", "http://[fe80::1%25.api.example.com]:80/"}},
		{name: "parent of the host", chain: []string{"https://api.example.com/", "https://example.com/"}},
		{name: "trailing dot", chain: []string{"https://api.example.com/", "https://api.example.com./"}},
		{name: "case changed", chain: []string{"https://api.example.com/", "https://API.example.com/"}},
		{name: "under an IP address", chain: []string{"https://10.0.0.1/", "https://x.10.0.0.1/"}},
		{name: "back home through another host", chain: []string{"https://api.example.com/", "https://evil.example.net/", "https://api.example.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req *http.Request
			for _, u := range tt.chain {
				next, err := http.NewRequest(http.MethodGet, u, nil)
				require.NoError(t, err)
				if req != nil {
					next.Response = &http.Response{StatusCode: http.StatusFound, Request: req}
				}
				req = next
			}
			base := &fakeBase{respond: status(http.StatusOK)}
			tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base, AllowHTTP: true}, tok1)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			seen := base.requests()
			require.Len(t, seen, 1)
			if tt.wantToken {
				assert.Equal(t, "Bearer access-0", seen[0].auth)
			} else {
				assert.Empty(t, seen[0].auth)
			}
		})
	}
}

// TestCallerAuthorizationInAnySpelling: a caller's Authorization under a
// key that is not canonical ("authorization", set on the map directly) is
// the caller's credential too: the request is passed through untouched,
// never with a second, bearer, Authorization.
func TestCallerAuthorizationInAnySpelling(t *testing.T) {
	tests := []struct {
		name      string
		header    http.Header
		wantToken bool
	}{
		{name: "lower case", header: http.Header{"authorization": {"Basic dXNlcjpwYXNz"}}},
		{name: "upper case", header: http.Header{"AUTHORIZATION": {"Basic dXNlcjpwYXNz"}}},
		{name: "lower case beside an empty canonical one", header: http.Header{"Authorization": {""}, "authorization": {"Basic dXNlcjpwYXNz"}}},
		{name: "lower case, no value", header: http.Header{"authorization": nil}, wantToken: true},
		{name: "canonical, empty", header: http.Header{"Authorization": {""}}, wantToken: true},
		{name: "another header", header: http.Header{"X-Authorization": {"abc"}}, wantToken: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := &countingRefresher{}
			base := &fakeBase{respond: status(http.StatusUnauthorized)}
			tr := newTransport(t, bearer.Config{Refresher: ref, Base: base}, tok1)
			req, err := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
			require.NoError(t, err)
			req.Header = tt.header
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			seen := base.requests()
			require.NotEmpty(t, seen)
			if tt.wantToken {
				assert.Equal(t, []string{"Bearer access-0"}, seen[0].req.Header["Authorization"])
				return
			}
			assert.Same(t, req, seen[0].req, "passed through untouched")
			assert.Len(t, seen, 1, "no retry")
			assert.Zero(t, ref.calls.Load(), "never refreshed for")
		})
	}
}

// TestLoopbackIsByAddress: plain http carries the token to "localhost" and
// to loopback IP addresses, the names that net/http's proxy rule treats as
// local, but not to a name under .localhost, which reaches loopback only if
// the resolver says so.
func TestLoopbackIsByAddress(t *testing.T) {
	tests := []struct {
		url       string
		wantToken bool
	}{
		{url: "http://localhost:8080/", wantToken: true},
		{url: "http://LocalHost:8080/", wantToken: true},
		{url: "http://127.0.0.1:8080/", wantToken: true},
		{url: "http://127.1.2.3/", wantToken: true},
		{url: "http://[::1]:8080/", wantToken: true},
		{url: "http://api.localhost:8080/"},
		{url: "http://evil.example.net.localhost/"},
		{url: "http://localhost.:8080/"},
		{url: "http://[::1%25lo]:8080/"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			base := &fakeBase{respond: status(http.StatusOK)}
			tr := newTransport(t, bearer.Config{Refresher: &countingRefresher{}, Base: base}, tok1)
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			seen := base.requests()
			require.Len(t, seen, 1)
			if tt.wantToken {
				assert.Equal(t, "Bearer access-0", seen[0].auth)
			} else {
				assert.Empty(t, seen[0].auth)
			}
		})
	}
}

// TestNewRefusesHostsThatCannotMatch: a Config.Hosts entry that no request
// could ever match is a mistake that would silently keep the token from
// every request; New refuses it and says why.
func TestNewRefusesHostsThatCannotMatch(t *testing.T) {
	bad := []struct{ host, want string }{
		{"", "not a host"},
		{"https://api.example.com", "not a host"},
		{"api.example.com/v1", "not a host"},
		{"user@api.example.com", "not a host"},
		{"api example.com", "not a host"},
		{"api..example.com", "not a host"},
		{"[api.example.com]", "not a host"},
		{"*.example.com", "wildcard"},
		{".example.com", "starts with a dot"},
		{"api.example.com.", "ends with a dot"},
		{"bücher.example", "punycode"},
		{"api.example.com:", "empty port"},
		{"api.example.com:https", "port"},
		{"api.example.com:0", "port"},
		{"api.example.com:65536", "port"},
		{"api.example.com:0443", "port"},
		{":8443", "not a host"},
	}
	for _, tt := range bad {
		t.Run(tt.host, func(t *testing.T) {
			_, err := bearer.New(bearer.Config{Refresher: &countingRefresher{}, Hosts: []string{"api.example.com", tt.host}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "Config.Hosts")
			assert.Equal(t, 1, strings.Count(err.Error(), "bearer: "), err.Error())
		})
	}
	good := []string{"api.example.com", "API.Example.com", "api.example.com:8443", "localhost", "127.0.0.1",
		"127.0.0.1:8080", "::1", "[::1]", "[::1]:8443", "xn--bcher-kva.example", "my_host.internal", "a-b.example"}
	for _, h := range good {
		_, err := bearer.New(bearer.Config{Refresher: &countingRefresher{}, Hosts: []string{h}})
		assert.NoError(t, err, h)
	}
}
