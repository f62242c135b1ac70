package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/internal/storetest"
)

// redisServer is a redis-server process of the test's own, which it may stop
// and start again on the same port.
type redisServer struct {
	path string
	port int
	args []string // more arguments of redis-server
	cmd  *exec.Cmd
}

// newRedisServer starts redis-server on a free loopback port, without
// persistence unless args say otherwise; it is stopped at the end of the
// test.
func newRedisServer(t *testing.T, args ...string) *redisServer {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		harness.Missing(t, "redis-server is not on PATH")
	}
	_, port, err := net.SplitHostPort(deadAddr(t))
	require.NoError(t, err)
	s := &redisServer{path: path, args: args}
	s.port, err = strconv.Atoi(port)
	require.NoError(t, err)
	t.Cleanup(s.stop)
	s.start(t)
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs the server and waits until it answers.
func (s *redisServer) start(t *testing.T) {
	t.Helper()
	require.NoError(t, s.launch())
}

// launch runs the server and waits, up to 10 seconds, until it answers.
func (s *redisServer) launch() error {
	s.cmd = exec.Command(s.path, append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server did not start on %s", s.addr())
		}
		time.Sleep(10 * time.Millisecond) // a process of its own: nothing to wait on but its port
	}
	return nil
}

// stop kills the server, if it runs, and waits for it to exit.
func (s *redisServer) stop() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// TestRedisOutage stops Redis in the middle of a run. A valid token keeps
// working without it; a refresh fails transiently (no logout); when Redis
// comes back (empty: it keeps nothing on disk) the next refresh works.
func TestRedisOutage(t *testing.T) {
	server := newRedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: server.addr()})
	defer rdb.Close()
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()
	st := newStore(t, rdb, "outage:", "svc")
	require.NoError(t, st.Save(t.Context(), srv.Issue()))
	var logouts atomic.Int64
	tr := storetest.NewTransport(t, srv, st, bearer.Config{OnLogout: func(context.Context, error) { logouts.Add(1) }})

	status, err := storetest.Get(t.Context(), tr, srv.APIURL)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	server.stop()
	for range 20 {
		status, err := storetest.Get(t.Context(), tr, srv.APIURL)
		require.NoError(t, err, "a valid token needs no Redis")
		assert.Equal(t, http.StatusOK, status)
	}

	srv.RevokeAccessTokens() // now a refresh is needed, and the lock is out of reach
	for range 2 {
		_, err = storetest.Get(t.Context(), tr, srv.APIURL)
		var re *bearer.RefreshError
		require.ErrorAs(t, err, &re)
		assert.False(t, re.Permanent, "an unreachable Redis is a transient failure")
		assert.False(t, errors.Is(err, bearer.ErrLoggedOut))
		assert.Contains(t, err.Error(), "redisstore: taking the lock")
	}
	assert.Zero(t, srv.Stats().TokenRequests, "no refresh without the lock")

	server.start(t)
	status, err = storetest.Get(t.Context(), tr, srv.APIURL)
	require.NoError(t, err, "service resumes with Redis")
	assert.Equal(t, http.StatusOK, status)
	stored, err := st.Load(t.Context())
	require.NoError(t, err)
	own, err := tr.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, own.AccessToken, stored.AccessToken, "the new token is in Redis again")

	stats := srv.Stats()
	assert.Equal(t, int64(1), stats.Refreshes)
	assert.Zero(t, stats.ReuseDetections)
	assert.Zero(t, logouts.Load())
}
