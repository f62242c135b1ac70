package redisstore_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/store/redisstore"
)

// lockResult is what a Lock call in a goroutine reports.
type lockResult struct {
	unlock   func() error
	err      error
	released bool // whether the other holder had released before this one got the lock
}

// lockAsync calls s.Lock in a goroutine; released tells, when it returns,
// whether the other holder had let go.
func lockAsync(ctx context.Context, s *redisstore.Store, released *atomic.Bool) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		unlock, err := s.Lock(ctx)
		ch <- lockResult{unlock: unlock, err: err, released: released.Load()}
	}()
	return ch
}

func TestLockExcludes(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	tests := []struct {
		name   string
		second func(first *redisstore.Store) *redisstore.Store
	}{
		// Two Stores stand for two processes; one Store shared by two
		// Transports of one process must exclude as well.
		{name: "two stores", second: func(*redisstore.Store) *redisstore.Store {
			return newStore(t, rdb, prefix, "two stores")
		}},
		{name: "one store", second: func(first *redisstore.Store) *redisstore.Store { return first }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newStore(t, rdb, prefix, tt.name)
			b := tt.second(a)
			unlockA, err := a.Lock(t.Context())
			require.NoError(t, err)

			short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = b.Lock(short)
			require.ErrorIs(t, err, context.DeadlineExceeded, "the lock is held")
			assert.Contains(t, err.Error(), "redisstore: waiting for the lock")

			var released atomic.Bool
			ch := lockAsync(t.Context(), b, &released)
			released.Store(true)
			require.NoError(t, unlockA())
			r := <-ch
			require.NoError(t, r.err)
			assert.True(t, r.released, "the second holder got the lock before the first released it")
			assert.NoError(t, r.unlock())
		})
	}
}

func TestLockKey(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	const ttl = 10 * time.Second
	s := newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(ttl))
	unlock, err := s.Lock(t.Context())
	require.NoError(t, err)

	owner, err := rdb.Get(t.Context(), lockKey(prefix, "svc")).Result()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, len(owner), 26, "the owner value should be random, 128 bits at least")
	pttl, err := rdb.PTTL(t.Context(), lockKey(prefix, "svc")).Result()
	require.NoError(t, err)
	assert.Greater(t, pttl, ttl-time.Second)
	assert.LessOrEqual(t, pttl, ttl)

	require.NoError(t, unlock())
	assert.Zero(t, rdb.Exists(t.Context(), lockKey(prefix, "svc")).Val(), "unlock removes the key")
	assert.EqualError(t, unlock(), "redisstore: unlock of a lock already released")

	unlock, err = s.Lock(t.Context())
	require.NoError(t, err)
	again, err := rdb.Get(t.Context(), lockKey(prefix, "svc")).Result()
	require.NoError(t, err)
	assert.NotEqual(t, owner, again, "each tenure has its own owner value")
	assert.NoError(t, unlock())
}

// TestLockExpires: a holder that outlives its lock's TTL loses it to the
// next one, and its unlock must not release the next one's lock.
func TestLockExpires(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	a := newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(50*time.Millisecond))
	b := newStore(t, rdb, prefix, "svc", redisstore.WithLockTTL(10*time.Second))
	unlockA, err := a.Lock(t.Context())
	require.NoError(t, err)

	// b waits, and gets the lock when the TTL frees it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	unlockB, err := b.Lock(ctx)
	require.NoError(t, err)

	err = unlockA()
	require.ErrorIs(t, err, redisstore.ErrLockLost)
	assert.Equal(t, int64(1), rdb.Exists(t.Context(), lockKey(prefix, "svc")).Val(), "a's unlock released b's lock")
	assert.NoError(t, unlockB())
}

// TestLockRedisDown: without Redis, Lock fails at once instead of waiting
// for its context, and leaves the Store usable.
func TestLockRedisDown(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: deadAddr(t)})
	defer c.Close()
	s, err := redisstore.New(c, "svc")
	require.NoError(t, err)
	for range 2 { // the second call must not be stuck behind the first
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		unlock, err := s.Lock(ctx)
		cancel()
		require.Error(t, err)
		assert.Nil(t, unlock)
		assert.Contains(t, err.Error(), "redisstore: taking the lock")
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
	}
}

// TestLockEndedContext: a caller whose context has ended gets no lock, and
// nothing is sent to Redis for it.
func TestLockEndedContext(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: deadAddr(t)})
	defer c.Close()
	var sent commandCounter
	c.AddHook(&sent)
	s, err := redisstore.New(c, "svc")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	unlock, err := s.Lock(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, unlock)
	assert.Zero(t, sent.n.Load(), "commands sent to Redis")
}

// commandCounter is a go-redis hook that counts the commands sent.
type commandCounter struct{ n atomic.Int64 }

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// TestLockAfterLostReply: the reply to the command that took the lock is
// lost, so go-redis sends that command again on a new connection. Lock must
// know the lock it then finds for its own, rather than wait for it until
// its context ends and leave it to block the identity for the lock TTL.
func TestLockAfterLostReply(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	proxy := newLossyProxy(t, rdb.Options().Addr, lockKey(prefix, "svc"))
	c := redis.NewClient(&redis.Options{Addr: proxy.addr()})
	defer c.Close()
	s := newStore(t, c, prefix, "svc")

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	unlock, err := s.Lock(ctx)
	require.True(t, proxy.dropped(), "no reply was lost, so this tested nothing")
	require.NoError(t, err, "Lock after its command was sent twice")
	owner, err := rdb.Get(t.Context(), lockKey(prefix, "svc")).Result()
	require.NoError(t, err, "the lock key")
	assert.NotEmpty(t, owner)

	require.NoError(t, unlock())
	assert.Zero(t, rdb.Exists(t.Context(), lockKey(prefix, "svc")).Val(), "unlock removes the key")
	short, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	unlock, err = newStore(t, rdb, prefix, "svc").Lock(short)
	require.NoError(t, err, "the next holder")
	assert.NoError(t, unlock())
}
