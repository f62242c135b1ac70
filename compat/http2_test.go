package compat_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
)

// h2front is an HTTP/2 TLS server in front of the bearertest API: it proxies
// /api to it, counts the requests that arrived over HTTP/1, and offers two
// redirects: /away to https://example.com/landing (another host, which the
// front's client dials to the front itself) and /home to /api/me.
type h2front struct {
	*httptest.Server
	http1       atomic.Int32
	landingAuth atomic.Value
}

func newH2Front(t *testing.T, e *env) *h2front {
	target, err := url.Parse(e.srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = e.srv.Client().Transport
	f := &h2front{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			f.http1.Add(1)
		}
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, "https://example.com/landing", http.StatusFound)
		case "/home":
			http.Redirect(w, r, "/api/me", http.StatusFound)
		case "/landing":
			f.landingAuth.Store(r.Header.Get("Authorization"))
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	f.EnableHTTP2 = true
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

// TestHTTP2 runs the checks over HTTP/2 and TLS, with the Transport over the
// front's *http.Transport (HTTP/2 by ALPN) and http.Client.Timeout set.
func TestHTTP2(t *testing.T) {
	e := newEnv(t)
	front := newH2Front(t, e)
	tr := e.transport(bearer.Config{Base: front.Client().Transport})
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	t.Run("token attached", func(t *testing.T) {
		resp, err := c.Get(front.URL + "/api/me")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, 2, resp.ProtoMajor)
	})

	t.Run("burst after revocation", func(t *testing.T) {
		e.srv.RevokeAccessTokens()
		before := e.stats()
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range 50 {
			wg.Go(func() {
				if resp, err := c.Get(front.URL + "/api/things"); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						ok.Add(1)
					}
				}
			})
		}
		wg.Wait()
		got := e.since(before)
		t.Logf("50 requests: %d ok, %d refreshes, %d reuse", ok.Load(), got.Refreshes, got.ReuseDetections)
		assert.EqualValues(t, 50, ok.Load())
		assert.EqualValues(t, 1, got.Refreshes)
		assert.Zero(t, got.ReuseDetections)
	})

	t.Run("POST body replayed", func(t *testing.T) {
		e.srv.RevokeAccessTokens()
		resp, err := c.Post(front.URL+"/api/echo", "application/json", strings.NewReader(`{"n":42}`))
		require.NoError(t, err)
		status, body, err := readResponse(resp, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
		assert.JSONEq(t, `{"n":42}`, string(body))
	})

	t.Run("redirects", func(t *testing.T) {
		resp, err := c.Get(front.URL + "/away")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, "", front.landingAuth.Load(), "no token for example.com")

		resp, err = c.Get(front.URL + "/home")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the token for the same host")
	})

	t.Run("Client.Timeout while waiting for a refresh", func(t *testing.T) {
		const n = 20
		release := e.holdTokens()
		e.srv.RevokeAccessTokens()
		short := &http.Client{Transport: tr, Timeout: 200 * time.Millisecond}
		var wg sync.WaitGroup
		var timeouts atomic.Int32
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				resp, err := short.Get(front.URL + "/api/me")
				if err == nil {
					resp.Body.Close()
					return
				}
				if os.IsTimeout(err) {
					timeouts.Add(1)
					return
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("not a timeout: %v", err)
		}
		assert.EqualValues(t, n, timeouts.Load())

		release()
		resp, err := c.Get(front.URL + "/api/me")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})

	t.Run("all over HTTP/2", func(t *testing.T) {
		assert.Zero(t, front.http1.Load())
	})
}
