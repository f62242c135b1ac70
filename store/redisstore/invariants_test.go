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
	var histories atomic.Int64
	invariant.Run(t, invariant.Config{
		Stores: []invariant.StoreKind{{Name: "Redis", New: func(t testing.TB) func(int) store.Store {
			prefix := fmt.Sprintf("invariants:%d:", histories.Add(1))
			return func(int) store.Store {
				return newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(3*time.Second))
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
			}},
		},
		RefreshTimeout: 500 * time.Millisecond,
		Budget:         30 * time.Second,
	})
}
