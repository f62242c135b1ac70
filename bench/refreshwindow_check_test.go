package bench

import (
	"bytes"
	"encoding/csv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// These tests check that BenchmarkRefreshWindow counts what it says it
// counts.

func msd(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }

// rwReq is a request from start to end (ms) first sent at sent (0: never).
func rwReq(start, sent, end float64) *rwRequest {
	r := &rwRequest{start: msd(start), end: msd(end), ok: true}
	r.sent.Store(int64(msd(sent)))
	return r
}

// syntheticRun has a login token valid until 4000 ms and, with 4 s tokens,
// two refresh windows of one expiry each: [2000, 2400], a refresh ahead of
// time whose token is valid until 6400, and [6500, 7000], after that
// token has expired, made of two overlapping token requests, one failed.
func syntheticRun(reqs ...*rwRequest) *rwRun {
	return &rwRun{
		sc:          refreshWindow,
		tokenExpiry: msd(4000),
		refreshes: []span{
			{start: msd(6500), end: msd(7000), ok: true},
			{start: msd(2000), end: msd(2400), ok: true},
			{start: msd(6600), end: msd(6700), ok: false},
		},
		requests: reqs,
	}
}

func TestRefreshWindowClass(t *testing.T) {
	tests := []struct {
		name string
		req  *rwRequest
		want rwClass
	}{
		{"steady", rwReq(1000, 1000.1, 1001), rwClass{held: msd(0.1), valid: true}},
		{"in flight when the window opens", rwReq(1999.5, 1999.6, 2000.5), rwClass{held: msd(0.1), window: true, valid: true}},
		{"sent at once in a window", rwReq(2100, 2100.1, 2101), rwClass{held: msd(0.1), window: true, valid: true}},
		{"held for the refresh, token valid", rwReq(2100, 2400.1, 2401), rwClass{held: msd(300.1), window: true, valid: true, waited: true}},
		{"held just under the threshold", rwReq(2381, 2400.1, 2401), rwClass{held: msd(19.1), window: true, valid: true}},
		{"never sent, held to its end", rwReq(2100, 0, 2300), rwClass{held: msd(200), window: true, valid: true, waited: true}},
		{"held outside any window", rwReq(3000, 3100, 3101), rwClass{held: msd(100), valid: true}},
		{"the refreshed token outlives the login's", rwReq(5000, 5000.1, 5001), rwClass{held: msd(0.1), valid: true}},
		{"expired, no window yet", rwReq(6420, 6420.1, 6421), rwClass{held: msd(0.1)}},
		{"401, then a refresh", rwReq(6450, 6450.1, 7050), rwClass{held: msd(0.1), window: true}},
		{"held with an expired token", rwReq(6550, 7000.1, 7001), rwClass{held: msd(450.1), window: true}},
		{"the token of the second window", rwReq(7100, 7100.1, 7101), rwClass{held: msd(0.1), valid: true}},
	}
	c := syntheticRun().classifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, c.class(tt.req))
		})
	}
}

func TestRefreshWindowSummary(t *testing.T) {
	failed := rwReq(1000, 1000.1, 1001)
	failed.ok = false
	r := syntheticRun(
		rwReq(1000, 1000.1, 1003),
		failed,
		rwReq(2100, 2400.1, 2401), // waited
		rwReq(2200, 2400.1, 2401), // waited
		rwReq(6550, 7000.1, 7001), // held, but its token had expired
		rwReq(5000, 5000.1, 5002),
	)
	s := r.summary()
	assert.Equal(t, 1, s.runs)
	assert.Equal(t, 6, s.requests)
	assert.Equal(t, 1, s.failures)
	assert.Equal(t, 2, s.waitedOK)
	assert.Equal(t, 3, s.refreshes)
	assert.Equal(t, 2, s.expiries)
	assert.Len(t, s.windowLatency, 3)
	assert.Len(t, s.steadyLatency, 3)

	var total rwSummary
	total.add(s)
	total.add(s)
	assert.Equal(t, 2, total.runs)
	assert.Equal(t, 4, total.waitedOK)
	assert.Len(t, total.windowLatency, 6)
}

func TestRefreshWindowWindowsAndExpiries(t *testing.T) {
	ws := windows([]span{
		{start: msd(300), end: msd(400)},
		{start: msd(100), end: msd(200)},
		{start: msd(150), end: msd(250)}, // overlaps the first
		{start: msd(250), end: msd(260)}, // touches it
		{start: msd(2000), end: msd(2100)},
	})
	assert.Equal(t, []span{{start: msd(100), end: msd(260)}, {start: msd(300), end: msd(400)}, {start: msd(2000), end: msd(2100)}}, ws)
	assert.Equal(t, 2, expiries(ws, time.Second), "the first two windows are 40ms apart")
	assert.Equal(t, 3, expiries(ws, msd(40)))
	assert.Zero(t, expiries(nil, time.Second))
}

func TestRefreshWindowCSVRows(t *testing.T) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	require.NoError(t, w.Write(rwCSVHeader))
	writeRWRows(w, "bearer", 2, syntheticRun(rwReq(2100, 2400.1, 2401)))
	w.Flush()
	require.NoError(t, w.Error())

	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+3+1)
	for _, row := range rows {
		assert.Len(t, row, len(rwCSVHeader))
	}
	assert.Equal(t, []string{"bearer", "2", "refresh", "6500.000", "500.000", "", "", "", "", "1"}, rows[1])
	assert.Equal(t, []string{"bearer", "2", "request", "2100.000", "301.000", "300.100", "1", "1", "1", "1"}, rows[4])
}

// A miniature of the scenario, on loopback: 1 s tokens refreshed 500 ms
// before expiry through a 100 ms token endpoint, for 1.4 s. Waiting for
// every refresh shows up in waited-valid, one refresh per expiry; the
// axios port, which refreshes only after a 401, never holds a request
// whose token is valid, and refreshes once per rejected request.
func TestRefreshWindowMeasuresWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3 s run on loopback")
	}
	sc := rwScenario{
		workers:  4,
		think:    5 * time.Millisecond,
		ttl:      time.Second,
		leeway:   500 * time.Millisecond,
		latency:  100 * time.Millisecond,
		duration: 1400 * time.Millisecond,
		held:     20 * time.Millisecond,
	}

	t.Run(bearerWaiting.name, func(t *testing.T) {
		s := sc.run(t, bearerWaiting).summary()
		assert.Zero(t, s.failures)
		assert.Equal(t, 2, s.expiries, "refreshes at 500 and about 1100 ms")
		assert.Equal(t, s.expiries, s.refreshes)
		assert.Positive(t, s.waitedOK)
		assert.LessOrEqual(t, s.waitedOK, sc.workers*s.expiries, "each worker waits once per refresh")
	})
	t.Run(axiosPort.name, func(t *testing.T) {
		s := sc.run(t, axiosPort).summary()
		assert.Zero(t, s.failures)
		assert.Zero(t, s.waitedOK)
		assert.Equal(t, 1, s.expiries, "the login token expires at 1000 ms")
		assert.Equal(t, sc.workers, s.refreshes, "each worker's request gets the 401")
	})
}
