package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/bearertest"
)

// FleetShape is the load of a Fleet test.
type FleetShape struct {
	Identities int           // identities, each with a Transport in every process
	Workers    int           // goroutines per identity and process
	Pace       time.Duration // the least time between two requests of a goroutine
}

// Fleet runs 4 processes, each with one Transport per identity on one
// connection to the server, against a server that rotates refresh tokens
// and revokes the whole lineage when one is used twice. One double refresh
// of any identity anywhere in the fleet would log that identity out.
func Fleet(t *testing.T, cfg Config, shape FleetShape) {
	const (
		processes = 4
		accessTTL = time.Second
		leeway    = 200 * time.Millisecond
		duration  = 3 * time.Second
	)
	sp := newSpace(t, cfg)
	srv := bearertest.NewServer(bearertest.Options{AccessTTL: accessTTL, Rotate: true, ReuseDetection: true, Latency: 20 * time.Millisecond})
	defer srv.Close()

	start := time.Now()
	ids := make([]string, shape.Identities)
	for i := range ids {
		ids[i] = fmt.Sprintf("user-%d", i)
		require.NoError(t, sp.store(t, ids[i], 0).Save(t.Context(), srv.Issue()))
	}
	spec := childSpec{
		Role: "fleet", Addr: sp.addr, Space: sp.name, Identities: ids,
		TokenURL: srv.TokenURL, APIURL: srv.APIURL + "/things",
		ClientID: bearertest.DefaultClientID, ClientSecret: bearertest.DefaultClientSecret,
		Workers: shape.Workers, Pace: shape.Pace, Duration: duration, Leeway: leeway,
	}
	children := make([]*child, processes)
	for i := range children {
		children[i] = startChild(t, cfg, spec)
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
	identities := int64(shape.Identities)
	bound := identities * (expiries + 1)
	t.Logf("%v: %d requests, %d token requests for %d identities (bound %d), %d adopted",
		elapsed.Round(time.Millisecond), total.Requests, stats.TokenRequests, identities, bound, total.Adopted)
	assert.Zero(t, stats.ReuseDetections, "reuse detections")
	assert.Zero(t, total.Logouts, "logouts")
	assert.Zero(t, total.Failures, "failed requests")
	assert.Zero(t, total.RefreshErrors, "failed refreshes")
	assert.Zero(t, stats.RefreshFailures, "refreshes the server refused")
	assert.LessOrEqual(t, stats.TokenRequests, bound, "token requests")
	assert.GreaterOrEqual(t, stats.Refreshes, 2*identities, "the run should span several expiries of each identity")
	assert.Equal(t, stats.Refreshes, total.Refreshes, "refreshes seen by the server and by the processes")
	assert.Positive(t, total.Adopted, "no process adopted a token another one saved")
	assert.Equal(t, total.Requests, stats.APIRequests-stats.APIUnauthorized, "every request got through, some after a retry")
}
