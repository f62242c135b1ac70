package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seamlessauth/bearer/bearertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTimeline(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl := 3 * time.Second
	tests := []struct {
		name       string
		replacedAt []time.Duration // each replacement, after t0; the new token is asked for then
		end        time.Duration
		want       int
	}{
		{name: "none", end: 2 * time.Second, want: 0},
		{name: "the first token runs out", end: 3 * time.Second, want: 1},
		{name: "replaced at expiry", replacedAt: []time.Duration{3 * time.Second}, end: 5 * time.Second, want: 1},
		{name: "replaced early: a revocation", replacedAt: []time.Duration{time.Second}, end: 3 * time.Second, want: 0},
		{name: "twice for one expiry", replacedAt: []time.Duration{3 * time.Second, 3*time.Second + 10*time.Millisecond}, end: 5 * time.Second, want: 1},
		{name: "three lifetimes", replacedAt: []time.Duration{3 * time.Second, 6 * time.Second}, end: 9 * time.Second, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTimeline(ttl)
			tl.start(t0, t0.Add(ttl))
			for _, d := range tt.replacedAt {
				at := t0.Add(d)
				tl.replaced(at, at.Add(ttl), at)
			}
			assert.Equal(t, tt.want, tl.count(t0.Add(tt.end)))
		})
	}
}

func TestRevokeAt(t *testing.T) {
	tests := []struct {
		duration, ttl, want time.Duration
	}{
		{duration: 15 * time.Second, ttl: 3 * time.Second, want: 7500 * time.Millisecond},
		{duration: 4 * time.Second, ttl: 3 * time.Second, want: 3500 * time.Millisecond},
		{duration: 2 * time.Second, ttl: 3 * time.Second, want: time.Second},
		{duration: time.Minute, ttl: 3 * time.Second, want: 31500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.duration.String()+"/"+tt.ttl.String(), func(t *testing.T) {
			got := revokeAt(tt.duration, tt.ttl)
			assert.Equal(t, tt.want, got)
			assert.Less(t, got, tt.duration, "within the run")
		})
	}
}

// TestBearerRun: a short bearer run loses nothing, passes its own checks,
// and prints no token.
func TestBearerRun(t *testing.T) {
	var out bytes.Buffer
	res := runBearer(options{workers: 20, duration: 2 * time.Second, ttl: time.Second}, newDisplay(&out, false))
	assert.Empty(t, res.problems())
	assert.Positive(t, res.ok)
	assert.Positive(t, res.expiries, "the run outlived a token")
	require.NotNil(t, res.logout)
	assert.EqualValues(t, 1, res.logout.logouts)
	assert.NotContains(t, out.String(), bearertest.AccessPrefix)
	assert.NotContains(t, out.String(), bearertest.RefreshPrefix)
}
