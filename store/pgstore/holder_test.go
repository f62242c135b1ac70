package pgstore_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
)

// TestLockHolderDies kills a process while it holds the lock, in the middle
// of a refresh. Its connection closes with it, so the server releases the
// lock at once (there is no TTL to wait for); then exactly one of the
// others refreshes and the rest adopt its token.
func TestLockHolderDies(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	require.NoError(t, newStore(t, pool, table, "svc").Save(t.Context(), srv.Issue()))
	srv.RevokeAccessTokens() // every user of the stored token has to refresh

	holder := startChild(t, childSpec{Role: "holder", URL: pgURL(t), Table: table, Identities: []string{"svc"}, APIURL: srv.APIURL})
	require.JSONEq(t, `{"refreshing":true}`, holder.line(t, 20*time.Second))
	require.NotZero(t, lockHolder(t, pool, table, "svc"), "the holder's lock")
	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	err := holder.cmd.Wait()
	require.ErrorContains(t, err, "killed")

	killed := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	unlock, err := newStore(t, pool, table, "svc").Lock(ctx)
	require.NoError(t, err, "the dead holder's lock should be free promptly")
	t.Logf("lock free %v after the kill", time.Since(killed).Round(time.Millisecond))
	require.NoError(t, unlock())

	// Three more replicas, eight requests each, all at once.
	const replicas, requests = 3, 8
	var logouts atomic.Int64
	statuses := make(chan int, replicas*requests)
	errs := make(chan error, replicas*requests)
	var wg sync.WaitGroup
	for range replicas {
		tr := apiTransport(t, srv, newStore(t, pool, table, "svc"), bearer.Config{
			OnLogout: func(context.Context, error) { logouts.Add(1) },
		})
		for range requests {
			wg.Go(func() {
				status, err := get(t.Context(), tr, srv.APIURL)
				statuses <- status
				if err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(statuses)
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	for status := range statuses {
		assert.Equal(t, http.StatusOK, status)
	}
	stats := srv.Stats()
	assert.Equal(t, int64(1), stats.TokenRequests, "one refresh, by one replica")
	assert.Zero(t, stats.ReuseDetections)
	assert.Zero(t, logouts.Load())
}
