package bearer_test

import (
	"net/http"
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
