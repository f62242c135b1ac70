package storetest

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

// LockHolderDies kills a process while it holds the lock, in the middle of
// a refresh. Then the lock is still there until its TTL (Config.LockTTL), or
// it is free at once, having died with the holder's connection; and exactly
// one of the others refreshes and the rest adopt its token.
func LockHolderDies(t *testing.T, cfg Config) {
	sp := newSpace(t, cfg)
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	require.NoError(t, sp.store(t, "svc", 0).Save(t.Context(), srv.Issue()))
	srv.RevokeAccessTokens() // every user of the stored token has to refresh

	holder := startChild(t, cfg, childSpec{
		Role: "holder", Addr: sp.addr, Space: sp.name, Identities: []string{"svc"},
		APIURL: srv.APIURL, LockTTL: cfg.LockTTL,
		// A lock that expires must outlive the refresh, as the store requires.
		RefreshTimeout: cfg.LockTTL * 2 / 3,
	})
	require.JSONEq(t, `{"refreshing":true}`, holder.line(t, 20*time.Second))
	require.True(t, sp.locked(t, "svc"), "the holder's lock")
	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	err := holder.cmd.Wait()
	require.ErrorContains(t, err, "killed")
	if cfg.LockTTL > 0 {
		require.True(t, sp.locked(t, "svc"), "the dead holder's lock should still be there")
	} else {
		killed := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		unlock := lock(t, ctx, sp.store(t, "svc", 0), "the dead holder's lock should be free promptly")
		t.Logf("lock free %v after the kill", time.Since(killed).Round(time.Millisecond))
		require.NoError(t, unlock())
	}

	// Three more replicas, eight requests each, all at once.
	const replicas, requests = 3, 8
	var logouts atomic.Int64
	statuses := make(chan int, replicas*requests)
	errs := make(chan error, replicas*requests)
	var wg sync.WaitGroup
	for range replicas {
		tr := NewTransport(t, srv, sp.store(t, "svc", cfg.LockTTL), bearer.Config{
			OnLogout: func(context.Context, error) { logouts.Add(1) },
		})
		for range requests {
			wg.Go(func() {
				status, err := Get(t.Context(), tr, srv.APIURL)
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
	assert.Equal(t, int64(1), stats.TokenRequests, "one refresh, by one replica, once the lock was free")
	assert.Zero(t, stats.ReuseDetections)
	assert.Zero(t, logouts.Load())
}
