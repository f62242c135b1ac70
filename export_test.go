package bearer

import (
	"context"
	"time"
)

// SetClock replaces t's clock. Call it before t is used.
func SetClock(t *Transport, now func() time.Time) { t.now = now }

// SetRetry replaces how often and how long t retries a transient refresh
// failure. Call it before t is used.
func SetRetry(t *Transport, attempts int, backoff func(attempt int) time.Duration) {
	t.attempts, t.backoff = attempts, backoff
}

// SetSleep replaces how t waits between refresh attempts, so that a test
// can see the waits instead of taking them. Call it before t is used.
func SetSleep(t *Transport, sleep func(ctx context.Context, d time.Duration) error) {
	t.sleep = sleep
}

// Settle waits until the background refreshes that t has started are over.
func Settle(t *Transport) { t.bg.Wait() }

// SetPoolClock replaces p's clock, and that of the Transports it builds
// from then on. Call it before p is used.
func SetPoolClock(p *Pool, now func() time.Time) {
	start := now()
	p.proto.now, p.since = now, func() time.Duration { return now().Sub(start) }
}

// PoolHeld returns how many identities p holds in memory.
func PoolHeld(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.members)
}
