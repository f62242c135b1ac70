package pgstore_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/internal/storetest"
)

// TestBackendsTerminated ends every connection to the server, as a restart
// does for its clients, while a refresh is due. The Transport sees at worst
// a transient failure, never a logout, and goes on.
func TestBackendsTerminated(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	st := newStore(t, pool, table, "svc")
	require.NoError(t, st.Save(t.Context(), srv.Issue()))
	var logouts atomic.Int64
	tr := storetest.NewTransport(t, srv, st, bearer.Config{OnLogout: func(context.Context, error) { logouts.Add(1) }})
	status, err := storetest.Get(t.Context(), tr, srv.APIURL)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	for round := range 3 {
		require.Positive(t, terminateAll(t, newPool(t)), "round %d: no connection was terminated", round)
		srv.RevokeAccessTokens() // a refresh is due, through the store's lock
		status, err := storetest.Get(t.Context(), tr, srv.APIURL)
		if err != nil {
			var re *bearer.RefreshError
			require.ErrorAs(t, err, &re, "round %d", round)
			assert.False(t, re.Permanent, "round %d: a lost connection is transient", round)
			assert.False(t, errors.Is(err, bearer.ErrLoggedOut), "round %d", round)
			status, err = storetest.Get(t.Context(), tr, srv.APIURL)
		}
		require.NoError(t, err, "round %d: the Transport resumes", round)
		assert.Equal(t, http.StatusOK, status, "round %d", round)
	}
	stored, err := st.Load(t.Context())
	require.NoError(t, err)
	own, err := tr.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, own.AccessToken, stored.AccessToken, "the newest token is in the table")
	assert.Zero(t, srv.Stats().ReuseDetections)
	assert.Zero(t, logouts.Load())
}

// TestRestartUnderLoad: two replicas of one identity, on pools of their
// own, send requests for 3 s while every connection is terminated twice a
// second; tokens live 1 s. No logout, no reuse, and both replicas are
// served again after the last termination.
func TestRestartUnderLoad(t *testing.T) {
	const duration = 3 * time.Second
	admin := newPool(t)
	table := testTable(t, admin)
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: time.Second, Rotate: true, ReuseDetection: true})
	defer srv.Close()
	require.NoError(t, newStore(t, admin, table, "svc").Save(t.Context(), srv.Issue()))

	var logouts, failures, permanent atomic.Int64
	trs := make([]*bearer.Transport, 2)
	for i := range trs {
		trs[i] = storetest.NewTransport(t, srv, newStore(t, newPool(t), table, "svc"), bearer.Config{
			Leeway:   200 * time.Millisecond,
			OnLogout: func(context.Context, error) { logouts.Add(1) },
		})
	}
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for _, tr := range trs {
		for range 4 {
			wg.Go(func() {
				pace := time.NewTicker(20 * time.Millisecond)
				defer pace.Stop()
				for time.Now().Before(deadline) {
					if _, err := storetest.Get(context.Background(), tr, srv.APIURL); err != nil {
						failures.Add(1)
						var re *bearer.RefreshError
						if !errors.As(err, &re) || re.Permanent {
							permanent.Add(1)
						}
					}
					<-pace.C
				}
			})
		}
	}
	restarts := time.NewTicker(500 * time.Millisecond) // the fault schedule
	for time.Now().Before(deadline) {
		<-restarts.C
		terminateAll(t, admin)
	}
	restarts.Stop()
	wg.Wait()

	for i, tr := range trs {
		status, err := storetest.Get(t.Context(), tr, srv.APIURL)
		require.NoError(t, err, "replica %d after the restarts", i)
		assert.Equal(t, http.StatusOK, status)
	}
	stats := srv.Stats()
	t.Logf("%d refreshes, %d failed requests (transient), %d API requests", stats.Refreshes, failures.Load(), stats.APIRequests)
	assert.Zero(t, stats.ReuseDetections, "reuse detections")
	assert.Zero(t, logouts.Load(), "logouts")
	assert.Zero(t, permanent.Load(), "failures other than a transient RefreshError")
	assert.GreaterOrEqual(t, stats.Refreshes, int64(3), "the run should span several expiries")
}

// restartEnv names the command that restarts the test server (set by
// .ci/run, which started it): a real restart, not only dropped connections.
const restartEnv = "BEARER_PG_RESTART"

// TestServerRestart: the PostgreSQL server restarts in the middle of a run
// of two replicas: requests with a valid token go on, a refresh that meets
// the restart fails transiently, and afterwards both are served again, with
// no logout and no reuse.
func TestServerRestart(t *testing.T) {
	restart := os.Getenv(restartEnv)
	if restart == "" {
		harness.Missing(t, restartEnv+" is not set (the command that restarts the test server; .ci/run sets it)")
	}
	admin := newPool(t)
	table := testTable(t, admin)
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: time.Second, Rotate: true, ReuseDetection: true})
	defer srv.Close()
	require.NoError(t, newStore(t, admin, table, "svc").Save(t.Context(), srv.Issue()))

	var logouts, permanent atomic.Int64
	trs := make([]*bearer.Transport, 2)
	for i := range trs {
		trs[i] = storetest.NewTransport(t, srv, newStore(t, newPool(t), table, "svc"), bearer.Config{
			Leeway:   200 * time.Millisecond,
			OnLogout: func(context.Context, error) { logouts.Add(1) },
		})
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, tr := range trs {
		for range 2 {
			wg.Go(func() {
				pace := time.NewTicker(20 * time.Millisecond)
				defer pace.Stop()
				for range 200 { // at most 4 s
					select {
					case <-stop:
						return
					case <-pace.C:
					}
					if _, err := storetest.Get(context.Background(), tr, srv.APIURL); err != nil {
						var re *bearer.RefreshError
						if !errors.As(err, &re) || re.Permanent {
							permanent.Add(1)
						}
					}
				}
			})
		}
	}
	<-time.After(time.Second) // the fault schedule: a second of load first
	out, err := exec.Command("sh", "-c", restart).CombinedOutput()
	require.NoError(t, err, "restarting the server: %s", out)
	<-time.After(time.Second) // and a second after
	close(stop)
	wg.Wait()

	for i, tr := range trs {
		status, err := storetest.Get(t.Context(), tr, srv.APIURL)
		require.NoError(t, err, "replica %d after the restart", i)
		assert.Equal(t, http.StatusOK, status)
	}
	assert.Zero(t, srv.Stats().ReuseDetections, "reuse detections")
	assert.Zero(t, logouts.Load(), "logouts")
	assert.Zero(t, permanent.Load(), "failures other than a transient RefreshError")
}
