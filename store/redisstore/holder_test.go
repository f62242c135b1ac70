package redisstore_test

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
	"github.com/seamlessauth/bearer/store/redisstore"
)

// TestLockHolderDies kills a process while it holds the lock, in the middle
// of a refresh. The others wait for the lock to expire, then exactly one of
// them refreshes and the rest adopt its token.
func TestLockHolderDies(t *testing.T) {
	const lockTTL = 1500 * time.Millisecond
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	require.NoError(t, newStore(t, rdb, prefix, "svc").Save(t.Context(), srv.Issue()))
	srv.RevokeAccessTokens() // every user of the stored token has to refresh

	holder := startChild(t, childSpec{
		Role: "holder", Redis: rdb.Options().Addr, Prefix: prefix, Identity: "svc",
		APIURL: srv.APIURL, LockTTL: lockTTL, RefreshTimeout: time.Second,
	})
	require.JSONEq(t, `{"refreshing":true}`, holder.line(t, 20*time.Second))
	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	err := holder.cmd.Wait()
	require.ErrorContains(t, err, "killed")
	pttl, err := rdb.PTTL(t.Context(), lockKey(prefix, "svc")).Result()
	require.NoError(t, err)
	require.Positive(t, pttl, "the dead holder's lock should still be there")

	// Three more replicas, eight requests each, all at once.
	const replicas, requests = 3, 8
	var logouts atomic.Int64
	statuses := make(chan int, replicas*requests)
	errs := make(chan error, replicas*requests)
	var wg sync.WaitGroup
	for range replicas {
		st := newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(lockTTL))
		tr := apiTransport(t, srv, st, bearer.Config{
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
	assert.Equal(t, int64(1), stats.TokenRequests, "one refresh, by one replica, after the lock expired")
	assert.Zero(t, stats.ReuseDetections)
	assert.Zero(t, logouts.Load())
}
