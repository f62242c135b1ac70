package compat_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// env is one test's token server and API (bearertest on loopback,
// with refresh-token rotation and reuse detection) and what the Transports
// built on it saw.
type env struct {
	t       testing.TB
	srv     *bearertest.Server
	logouts atomic.Int32
}

func newEnv(t testing.TB) *env {
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv}
}

// oauth2Config is the server's client, with the AuthStyle named: x/oauth2's
// auto-detection would send a second token request after each failure and
// blur the counts.
func (e *env) oauth2Config() *oauth2.Config {
	cfg := e.srv.Config()
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	return cfg
}

// transport returns a Transport logged in to e.srv. Unset fields of cfg get
// the server's refresher, the server's client transport as Base, and an
// OnLogout that counts.
func (e *env) transport(cfg bearer.Config) *bearer.Transport {
	e.t.Helper()
	if cfg.Refresher == nil {
		cfg.Refresher = bearer.OAuth2(e.oauth2Config())
	}
	if cfg.Base == nil {
		cfg.Base = e.srv.Client().Transport
	}
	cfg.OnLogout = func(context.Context, error) { e.logouts.Add(1) }
	tr, err := bearer.New(cfg)
	require.NoError(e.t, err)
	require.NoError(e.t, tr.SetToken(context.Background(), e.srv.Issue()))
	e.t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// stats is a snapshot of the server's counters.
func (e *env) stats() bearertest.Stats { return e.srv.Stats() }

// since is what the server counted after before was taken.
func (e *env) since(before bearertest.Stats) bearertest.Stats {
	now := e.srv.Stats()
	return bearertest.Stats{
		TokenRequests:   now.TokenRequests - before.TokenRequests,
		Refreshes:       now.Refreshes - before.Refreshes,
		RefreshFailures: now.RefreshFailures - before.RefreshFailures,
		ReuseDetections: now.ReuseDetections - before.ReuseDetections,
		APIRequests:     now.APIRequests - before.APIRequests,
		APIUnauthorized: now.APIUnauthorized - before.APIUnauthorized,
	}
}

// holdTokens makes every token request wait until the returned release is
// called (or the request's context ends). release is also registered as a
// cleanup, so a refresh left waiting ends with the test.
func (e *env) holdTokens() (release func()) {
	gate := make(chan struct{})
	var once atomic.Bool
	e.srv.OnToken(func(r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
		}
	})
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(gate)
		}
	}
	e.t.Cleanup(release)
	return release
}

// counting counts the requests that reach the RoundTripper it wraps: under a
// retry layer, the layer's attempts.
type counting struct {
	rt http.RoundTripper
	n  atomic.Int32
}

func (c *counting) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(req)
}

// CloseIdleConnections forwards, as http.Client.CloseIdleConnections needs.
func (c *counting) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}
