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
