package otelbearer_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/otelbearer"
)

// TestPool: instrumenting a Pool's template counts every identity's
// refreshes and logouts, and the pool's own OnLogout still runs; no
// attribute names an identity.
func TestPool(t *testing.T) {
	const users = 20
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	t.Cleanup(srv.Close)
	tel := newTelemetry(t)
	conns := &http.Transport{}
	t.Cleanup(conns.CloseIdleConnections)
	oc := srv.Config()
	oc.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	var poolLogouts atomic.Int32
	cfg := bearer.PoolConfig{
		Transport: bearer.Config{Refresher: bearer.OAuth2(oc), Base: conns},
		OnLogout:  func(context.Context, string, error) { poolLogouts.Add(1) },
	}
	require.NoError(t, otelbearer.Instrument(&cfg.Transport, tel.options()...))
	pool, err := bearer.NewPool(cfg)
	require.NoError(t, err)
	t.Cleanup(pool.CloseIdleConnections)
	id := func(i int) string { return "user-" + strconv.Itoa(i) }
	for i := range users {
		require.NoError(t, pool.SetToken(t.Context(), id(i), srv.Issue()))
	}
	get := func(i int) (int, error) {
		req, err := http.NewRequestWithContext(bearer.WithIdentity(t.Context(), id(i)), http.MethodGet, srv.APIURL, nil)
		if err != nil {
			return 0, err
		}
		resp, err := pool.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	srv.RevokeAccessTokens()
	var wg sync.WaitGroup
	for i := range users {
		for range 3 {
			wg.Go(func() {
				code, err := get(i)
				assert.NoError(t, err)
				assert.Equal(t, http.StatusOK, code)
			})
		}
	}
	wg.Wait()
	srv.RevokeAccessTokens()
	srv.FailToken(1, bearertest.InvalidGrant())
	_, err = get(0)
	require.ErrorIs(t, err, bearer.ErrLoggedOut)

	rm := tel.collect(t)
	assert.Equal(t, map[string]int64{rejectedOK: users, rejectedPermanent: 1}, counts(t, rm, "bearer.refreshes"))
	assert.Equal(t, map[string]int64{"error.type=invalid_grant": 1}, counts(t, rm, "bearer.logouts"))
	assert.Equal(t, int32(1), poolLogouts.Load(), "the pool's OnLogout runs too")
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range pointAttributes(m.Data) {
				for _, kv := range set {
					assert.NotContains(t, kv.Value.String(), "user-", "an identity in %s", m.Name)
				}
			}
		}
	}
	for _, s := range tel.spans.Ended() {
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.String(), "user-", "an identity in span %s", s.Name())
		}
	}
}
