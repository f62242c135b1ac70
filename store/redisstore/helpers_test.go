package redisstore_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/internal/authtest"
	"github.com/seamlessauth/bearer/store/redisstore"
)

// addrEnv names the variable that gives the tests a Redis server.
const addrEnv = "BEARER_REDIS_ADDR"

const howToRun = "these tests need a Redis server on loopback, for example:\n" +
	"\tredis-server --bind 127.0.0.1 --port 6390 --save '' --appendonly no --daemonize yes\n" +
	"\t" + addrEnv + "=127.0.0.1:6390 go test -race -count=1 ./..."

// missing skips the test, or fails it under CI, where nothing may be
// skipped silently.
func missing(t testing.TB, what string) {
	t.Helper()
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("redisstore: %s (CI is set, so this is a failure); %s", what, howToRun)
	}
	t.Skipf("redisstore: %s; %s", what, howToRun)
}

// redisAddr returns the address of the test Redis server.
func redisAddr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(addrEnv)
	if addr == "" {
		missing(t, addrEnv+" is not set")
	}
	return addr
}

// newClient returns a client of the test Redis server, closed at the end of
// the test.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr(t)})
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Ping(t.Context()).Err(), "Redis at %s does not answer", c.Options().Addr)
	return c
}

// testPrefix returns a key prefix of its own for one test, and deletes the
// test's keys at its end.
func testPrefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	prefix := "bearertest:" + strings.ToLower(rand.Text()[:10]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

// newStore returns a Store for identity under the test's prefix.
func newStore(t testing.TB, c redis.UniversalClient, prefix, identity string, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, identity, append([]redisstore.Option{redisstore.WithPrefix(prefix)}, opts...)...)
	require.NoError(t, err)
	return s
}

// tokenKey and lockKey spell the documented key scheme.
func tokenKey(prefix, identity string) string { return prefix + "{" + identity + "}:token" }
func lockKey(prefix, identity string) string  { return prefix + "{" + identity + "}:lock" }

// apiTransport is a Transport on st against srv, refreshing with bearer's
// OAuth2 refresher, with connections of its own closed at the end of the
// test.
func apiTransport(t testing.TB, srv *authtest.Server, st *redisstore.Store, cfg bearer.Config) *bearer.Transport {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg.Store = st
	cfg.Base = base
	if cfg.Refresher == nil {
		cfg.Refresher = bearer.OAuth2(srv.Config())
	}
	tr, err := bearer.New(cfg)
	require.NoError(t, err)
	return tr
}

// get sends one API request through tr and reports its status.
func get(ctx context.Context, tr *bearer.Transport, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
