package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seamlessauth/bearer/internal/invariant"
	"github.com/seamlessauth/bearer/store"
	"github.com/seamlessauth/bearer/store/redisstore"
)

// TestRedisInvariants runs the randomized histories of the root package's
// TestInvariants (see internal/invariant) on Redis: 2–4 Transports, each
// with a Store of its own on one key as separate processes have, and Redis
// itself as one more fault: paused (CLIENT PAUSE), its connections killed
// (CLIENT KILL), or its server restarted. The server is the test's own, with
// an append-only file synced at every write, so that a restart loses
// nothing: a restart that emptied Redis would be a logout. The Transports
// keep the real clock (bearer.SetClock is the root package's test hook), so
// only the token server's clock jumps. BEARER_INVARIANTS=30s or =200 runs
// more.
//
// The histories run on the real clock against a server that syncs every
// write to disk, so the refresh timeout leaves room for a slow disk or a
// busy machine: a refresh that missed it would be a failure of the machine,
// not of the Transport. A lock whose holder lost Redis in a restart stays
// until its TTL, as it does for users; the history waits it out before its
// final requests, which must succeed.
func TestRedisInvariants(t *testing.T) {
	server := newRedisServer(t, "--appendonly", "yes", "--appendfsync", "always", "--dir", t.TempDir())
	opts := &redis.Options{Addr: server.addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	admin := redis.NewClient(&redis.Options{Addr: server.addr(), MaxRetries: -1})
	defer admin.Close()
	if err := rdb.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex // one restart at a time
	restart := func() {
		mu.Lock()
		defer mu.Unlock()
		server.stop()
		if err := server.launch(); err != nil {
			panic(err) // the history cannot go on; the test reports the panic
		}
	}
	adminDo := func(args ...any) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = admin.Do(ctx, args...).Err() // while Redis restarts, the fault is moot
	}
	const lockTTL = 5 * time.Second
	var histories atomic.Int64
	var lock atomic.Value // the lock key of the history that runs
	invariant.Run(t, invariant.Config{
		Stores: []invariant.StoreKind{{Name: "Redis", New: func(t testing.TB) func(int) store.Store {
			prefix := fmt.Sprintf("invariants:%d:", histories.Add(1))
			lock.Store(lockKey(prefix, "svc"))
			return func(int) store.Store {
				return newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(lockTTL))
			}
		}}},
		Faults: []invariant.Fault{
			{Name: "pause", Weight: 4, Gen: func(r *rand.Rand) (string, func()) {
				ms := 20 + r.IntN(180)
				return fmt.Sprintf("redis: CLIENT PAUSE %d ALL", ms), func() { adminDo("CLIENT", "PAUSE", ms, "ALL") }
			}, Heal: func() { adminDo("CLIENT", "UNPAUSE") }},
			{Name: "kill", Weight: 4, Gen: func(*rand.Rand) (string, func()) {
				return "redis: CLIENT KILL TYPE normal (every connection but the admin's)", func() {
					adminDo("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
				}
			}},
			{Name: "restart", Weight: 2, Gen: func(*rand.Rand) (string, func()) {
				return "redis: restart the server", restart
			}, Heal: func() {
				if rdb.Ping(context.Background()).Err() != nil {
					restart()
				}
				awaitUnlocked(rdb, lock.Load().(string), lockTTL)
			}},
		},
		RefreshTimeout: 2 * time.Second,
		Budget:         30 * time.Second,
	})
}

// awaitUnlocked waits until key, a lock, is gone: released by its holder
// or expired. It waits for the TTL that Redis gives, at most ttl and a
// second more in all, in steps of at most 20ms, as a lock's holder may
// release it at any time.
func awaitUnlocked(c *redis.Client, key string, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), ttl+time.Second)
	defer cancel()
	for {
		left, err := c.PTTL(ctx, key).Result()
		if err != nil || left < 0 { // gone (-2), or Redis is: nothing to wait for
			return
		}
		timer := time.NewTimer(min(left, 20*time.Millisecond))
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}
