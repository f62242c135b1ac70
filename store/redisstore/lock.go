package redisstore

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// Bounds of the wait between two tries to take a lock that is held.
const (
	minLockWait = 5 * time.Millisecond
	maxLockWait = 200 * time.Millisecond
)

// releaseTimeout bounds the calls to Redis that release a lock; they run
// even when the holder's context has ended.
const releaseTimeout = 5 * time.Second

// Lock takes the identity's refresh lock, waiting with jittered backoff
// until it is free or ctx ends; one caller at a time holds it through a
// given Store. It reads the stored token as it takes the lock, to fence the
// writes made under it (see [Store.Save]). The returned function releases
// it, and must be called once; it returns an error wrapping [ErrLockLost]
// if the lock had expired. An error from Redis ends the wait at once, so
// that a refresh fails fast, and transiently, while Redis is unavailable.
func (s *Store) Lock(ctx context.Context) (func() error, error) {
	return s.slot.Lock(ctx, s.acquire, func(ctx context.Context, h *hold) error { return s.release(ctx, h.owner) })
}

// acquire sets the lock key to a new owner, 128 random bits, with the lock
// TTL (see takeLock), retrying while another owner holds it, and returns
// the hold, fenced by the token key's value at that moment.
func (s *Store) acquire(ctx context.Context) (*hold, error) {
	owner := crand.Text()
	wait := minLockWait
	ttl := strconv.FormatInt(s.opts.lockTTL.Milliseconds(), 10)
	for {
		res, err := takeLock.Run(ctx, s.client, []string{s.lockKey, s.key}, owner, ttl).Result()
		if err != nil {
			if !isDialError(err) {
				// The script may have run before the connection failed:
				// do not leave an orphan lock behind for a full TTL.
				_ = s.release(ctx, owner)
			}
			if ctx.Err() != nil {
				// The caller's time ran out while it waited, here in a
				// round trip rather than between two tries.
				return nil, fmt.Errorf("redisstore: waiting for the lock: %w", ctx.Err())
			}
			return nil, fmt.Errorf("redisstore: taking the lock: %w", err)
		}
		busy, f, ok := takeReply(res)
		if !ok {
			_ = s.release(ctx, owner)
			return nil, errors.New("redisstore: taking the lock: unexpected reply from Redis")
		}
		if !busy {
			return &hold{owner: owner, fence: f}, nil
		}
		timer := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("redisstore: waiting for the lock: %w", ctx.Err())
		}
		wait = min(2*wait, maxLockWait)
	}
}

// takeReply reads the reply of takeLock: whether another owner holds the
// lock, and if not, the new hold's fence. ok is false for a reply that
// takeLock does not give.
func takeReply(res any) (busy bool, f fence, ok bool) {
	switch res := res.(type) {
	case int64:
		return res == 0, fence{}, res == 0
	case []any:
		switch len(res) {
		case 1:
			return false, fence{state: "absent"}, true
		case 2:
			b, ok := res[1].(string)
			return false, fence{state: "value", value: b}, ok
		}
	}
	return false, fence{}, false
}

// isDialError reports whether err means that no connection to Redis could
// be made, so that no command reached it.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// release deletes the lock key if it still holds owner.
func (s *Store) release(ctx context.Context, owner string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	n, err := releaseLock.Run(ctx, s.client, []string{s.lockKey}, owner).Int()
	if err != nil {
		return fmt.Errorf("redisstore: releasing the lock: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore: releasing the lock: %w", ErrLockLost)
	}
	return nil
}
