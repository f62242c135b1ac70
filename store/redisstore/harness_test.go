package redisstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store/redisstore"
)

// addrEnv names the variable that gives the tests a Redis server.
const addrEnv = "BEARER_REDIS_ADDR"

// harness describes redisstore to the tests it shares with the other store
// modules (internal/storetest). A lock outlives a holder that died until its
// TTL expires: the killed holder's lives 1.5s.
var harness = storetest.Config{
	Name:      "redisstore",
	ServerEnv: addrEnv,
	HowToRun: "these tests need a Redis server on loopback, for example:\n" +
		"\tredis-server --bind 127.0.0.1 --port 6390 --save '' --appendonly no --daemonize yes\n" +
		"\t" + addrEnv + "=127.0.0.1:6390 go test -race -count=1 ./...",
	Dial:    dial,
	LockTTL: 1500 * time.Millisecond,
}

// TestFleetSharesOneToken: the processes of storetest.Fleet send from 32
// goroutines each through one Transport on one key.
func TestFleetSharesOneToken(t *testing.T) {
	storetest.Fleet(t, harness, storetest.FleetShape{Identities: 1, Workers: 32, Pace: 10 * time.Millisecond})
}

// TestLockHolderDies: the killed holder's lock stays until its TTL expires.
func TestLockHolderDies(t *testing.T) { storetest.LockHolderDies(t, harness) }

// TestTwoIdentitiesStore: two identities on one Redis and one prefix.
func TestTwoIdentitiesStore(t *testing.T) { storetest.TwoIdentitiesStore(t, harness) }

// TestTwoIdentitiesTransports: two users' Transports on one Redis client.
func TestTwoIdentitiesTransports(t *testing.T) { storetest.TwoIdentitiesTransports(t, harness) }

// server is a Redis client as the shared tests use it: a space is a key
// prefix.
type server struct{ c redis.UniversalClient }

func dial(ctx context.Context, addr string) (storetest.Server, error) {
	c, err := connect(ctx, addr)
	if err != nil {
		return nil, err
	}
	return server{c}, nil
}

// connect returns a client of the Redis server at addr, which has answered.
func connect(ctx context.Context, addr string) (*redis.Client, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("Redis at %s does not answer: %w", addr, err)
	}
	return c, nil
}

func (s server) NewSpace(context.Context) (string, error) {
	return "bearertest:" + strings.ToLower(rand.Text()[:10]) + ":", nil
}

func (s server) DropSpace(ctx context.Context, prefix string) error {
	keys, err := s.c.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		return err
	}
	return s.c.Del(ctx, keys...).Err()
}

func (s server) Store(prefix, identity string, lockTTL time.Duration) (storetest.Store, error) {
	opts := []redisstore.Option{redisstore.WithPrefix(prefix)}
	if lockTTL > 0 {
		opts = append(opts, redisstore.WithLockTTL(lockTTL))
	}
	return redisstore.New(s.c, identity, opts...)
}

func (s server) Locked(ctx context.Context, prefix, identity string) (bool, error) {
	pttl, err := s.c.PTTL(ctx, lockKey(prefix, identity)).Result()
	return pttl > 0, err
}

func (s server) Close() { s.c.Close() }
