package main

import (
	"sync"
	"time"
)

// timeline counts the access tokens that expired while they were in use,
// from when each token was asked for and when it was replaced. The count
// does not come from the client's refresh counter, so "refreshes ≤ expiries
// + revocations" is a real check: a client that refreshed twice for one
// expiry would replace a token that had not expired yet.
type timeline struct {
	ttl time.Duration

	mu       sync.Mutex
	born     time.Time // when the token in use was asked for: the server minted it after that
	expiry   time.Time // the token in use's expiry as the client knows it
	expiries int       // tokens replaced after they expired
}

func newTimeline(ttl time.Duration) *timeline {
	return &timeline{ttl: ttl}
}

// start records the first token: asked for at born, expiring at expiry.
func (t *timeline) start(born, expiry time.Time) {
	t.mu.Lock()
	t.born, t.expiry = born, expiry
	t.mu.Unlock()
}

// replaced records that a token asked for at born and expiring at expiry
// replaced the one in use, at time at. The one in use had expired on the
// server if at least ttl had passed since it was asked for (the server may
// have minted it a moment later, so the client's expiry can be a moment
// later than the server's: a 401 "expired" comes first). It reports
// whether the replaced token had expired.
func (t *timeline) replaced(born, expiry, at time.Time) (expired bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	expired = !at.Before(t.born.Add(t.ttl))
	if expired {
		t.expiries++
	}
	t.born, t.expiry = born, expiry
	return expired
}

// count returns the number of tokens that expired in use up to end, the
// one in use included if its expiry, as the client knows it, is past.
func (t *timeline) count(end time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.expiries
	if !end.Before(t.expiry) {
		n++
	}
	return n
}
