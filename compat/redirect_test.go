package compat_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
)

// TestRedirectToPlainHTTP: https://example.com/start redirects to
// http://example.com/landing, the same host over plain http, which is not
// loopback here (a dialer takes example.com to the two test servers), so
// the token must not go there. Under a client whose Transport is the
// Transport, it does not. A retryablehttp client as Base follows redirects
// itself, inside the Base, where the Transport never sees the hop:
// net/http's rule then applies, which keeps an Authorization header for the
// same host whatever the scheme, and the token goes out over plain http.
// Telling that inner client not to follow (http.ErrUseLastResponse), as the
// README does, hands the redirect back up, through the Transport.
func TestRedirectToPlainHTTP(t *testing.T) {
	var landingAuth atomic.Value
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		landingAuth.Store(r.Header.Get("Authorization"))
	}))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.RedirectHandler("http://example.com/landing", http.StatusFound))
	t.Cleanup(secure.Close)
	dialer := &net.Dialer{}
	newBase := func() *http.Transport {
		return &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: secure.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				switch addr {
				case "example.com:443":
					addr = secure.Listener.Addr().String()
				case "example.com:80":
					addr = plain.Listener.Addr().String()
				}
				return dialer.DialContext(ctx, network, addr)
			},
		}
	}

	tests := []struct {
		name      string
		base      func(*testing.T) http.RoundTripper
		wantToken bool
	}{
		{"the Transport over an http.Transport", func(t *testing.T) http.RoundTripper {
			b := newBase()
			t.Cleanup(b.CloseIdleConnections)
			return b
		}, false},
		{"retryablehttp as Base, following redirects", func(t *testing.T) http.RoundTripper {
			rc := retryablehttp.NewClient()
			rc.Logger = nil
			rc.HTTPClient.Transport = newBase()
			t.Cleanup(rc.HTTPClient.CloseIdleConnections)
			return &retryablehttp.RoundTripper{Client: rc}
		}, true},
		{"retryablehttp as Base, ErrUseLastResponse", func(t *testing.T) http.RoundTripper {
			rc := retryablehttp.NewClient()
			rc.Logger = nil
			rc.HTTPClient.Transport = newBase()
			rc.HTTPClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			t.Cleanup(rc.HTTPClient.CloseIdleConnections)
			return &retryablehttp.RoundTripper{Client: rc}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			landingAuth.Store("none yet")
			e := newEnv(t)
			tr := e.transport(bearer.Config{Base: tt.base(t), TokenClient: e.srv.Client()})
			resp, err := tr.Client().Get("https://example.com/start")
			require.NoError(t, err)
			resp.Body.Close()
			got := landingAuth.Load().(string)
			require.NotEqual(t, "none yet", got, "the redirect was followed")
			if tt.wantToken {
				assert.NotEmpty(t, got, "the token went over plain http")
			} else {
				assert.Empty(t, got)
			}
		})
	}
}
