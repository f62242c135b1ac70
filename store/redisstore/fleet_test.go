package redisstore_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

// TestFleetSharesOneToken runs 4 processes of 32 goroutines on one key,
// against a server that rotates refresh tokens and revokes the whole
// lineage when one is used twice. One double refresh anywhere in the fleet
// would log everyone out.
func TestFleetSharesOneToken(t *testing.T) {
	const (
		processes = 4
		workers   = 32
		accessTTL = time.Second
		leeway    = 200 * time.Millisecond
		duration  = 3 * time.Second
	)
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: accessTTL, Rotate: true, ReuseDetection: true, Latency: 20 * time.Millisecond})
	defer srv.Close()

	start := time.Now()
	require.NoError(t, newStore(t, rdb, prefix, "fleet").Save(t.Context(), srv.Issue()))
	spec := childSpec{
		Role: "fleet", Redis: rdb.Options().Addr, Prefix: prefix, Identity: "fleet",
		TokenURL: srv.TokenURL, APIURL: srv.APIURL + "/things",
		ClientID: bearertest.DefaultClientID, ClientSecret: bearertest.DefaultClientSecret,
		Workers: workers, Requests: 1000, Duration: duration, Leeway: leeway,
		LockTTL: 5 * time.Second,
	}
	children := make([]*child, processes)
	for i := range children {
		children[i] = startChild(t, spec)
	}
	for _, c := range children {
		require.JSONEq(t, `{"ready":true}`, c.line(t, 20*time.Second))
	}
	for _, c := range children {
		_, err := c.stdin.Write([]byte("go\n"))
		require.NoError(t, err)
	}
	var total childReport
	for i, c := range children {
		var rep childReport
		require.NoError(t, json.Unmarshal([]byte(c.line(t, duration+20*time.Second)), &rep))
		require.NoError(t, c.cmd.Wait())
		t.Logf("process %d: %+v", i, rep)
		assert.Positive(t, rep.Requests, "process %d sent no request", i)
		assert.Empty(t, rep.Errors, "process %d", i)
		total.Requests += rep.Requests
		total.Failures += rep.Failures
		total.Logouts += rep.Logouts
		total.Refreshes += rep.Refreshes
		total.Adopted += rep.Adopted
		total.RefreshErrors += rep.RefreshErrors
	}
	elapsed := time.Since(start)
	stats := srv.Stats()

	// Each token comes due (accessTTL - leeway) after it was issued; a
	// token issued at the start comes due at most this many times.
	expiries := int64(elapsed / (accessTTL - leeway))
	t.Logf("%v: %d requests, %d token requests (bound %d), %d adopted", elapsed.Round(time.Millisecond), total.Requests, stats.TokenRequests, expiries+1, total.Adopted)
	assert.Zero(t, stats.ReuseDetections, "reuse detections")
	assert.Zero(t, total.Logouts, "logouts")
	assert.Zero(t, total.Failures, "failed requests")
	assert.Zero(t, total.RefreshErrors, "failed refreshes")
	assert.Zero(t, stats.RefreshFailures, "refreshes the server refused")
	assert.LessOrEqual(t, stats.TokenRequests, expiries+1, "token requests")
	assert.GreaterOrEqual(t, stats.Refreshes, int64(2), "the run should span several expiries")
	assert.Equal(t, stats.Refreshes, total.Refreshes, "refreshes seen by the server and by the processes")
	assert.Positive(t, total.Adopted, "no process adopted a token another one saved")
	assert.Equal(t, total.Requests, stats.APIRequests-stats.APIUnauthorized, "every request got through, some after a retry")
}
