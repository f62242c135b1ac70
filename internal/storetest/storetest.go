package storetest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/internal/ci"
	"github.com/seamlessauth/bearer/store"
)

// Config describes a store module to the shared tests.
type Config struct {
	// Name is the store's package, which starts the messages of the tests
	// and names the variable that gives a child process its role
	// (BEARER_<NAME>_CHILD). Required.
	Name string

	// ServerEnv is the environment variable that gives the tests a server:
	// its address, as Dial takes it. Required.
	ServerEnv string

	// HowToRun tells, in the message of a test that skips for want of a
	// server, how to start one and run the tests.
	HowToRun string

	// Dial connects to the server at addr and checks that it answers. It
	// runs in the tests and in their child processes. Required.
	Dial func(ctx context.Context, addr string) (Server, error)

	// LockTTL is, for a store whose lock outlives a holder that dies until
	// it expires (a Redis key with a TTL), the TTL that LockHolderDies
	// gives the lock: the test checks that the dead holder's lock is still
	// there after the kill, and the others wait it out. Zero for a store
	// whose lock dies with its holder's connection (a PostgreSQL session
	// lock): the test checks that it is free at once.
	LockTTL time.Duration
}

// Server is a connection to the test server: a Redis client, a PostgreSQL
// pool. It must be safe for concurrent use.
type Server interface {
	// NewSpace makes a space on the server for one test (a key prefix, a
	// table) and returns its name.
	NewSpace(ctx context.Context) (string, error)
	// DropSpace removes the space and what it holds.
	DropSpace(ctx context.Context, space string) error
	// Store returns the store of identity in space. lockTTL, for a store
	// whose locks expire, is how long they live; zero means the store's
	// default. A store whose locks die with their holder ignores it.
	Store(space, identity string, lockTTL time.Duration) (Store, error)
	// Locked reports whether someone holds the lock of identity in space.
	Locked(ctx context.Context, space, identity string) (bool, error)
	// Close closes the connection.
	Close()
}

// Store is a store that several processes share: it has a lock.
type Store interface {
	store.Store
	store.Locker
}

// Main runs the tests of a store module from its TestMain, or, when the
// test binary was started as one of the processes of a multi-process test,
// that process's role. It checks for leaked goroutines after the tests.
func Main(m *testing.M, cfg Config) {
	if spec := os.Getenv(cfg.childEnv()); spec != "" {
		os.Exit(runChild(cfg, spec))
	}
	if os.Getenv(cfg.ServerEnv) == "" {
		// Skips are silent without -v: say it once, loud.
		fmt.Fprintf(os.Stderr, "%s: %s is not set, so the tests that need a server fail under CI and are skipped otherwise; %s\n", cfg.Name, cfg.ServerEnv, cfg.HowToRun)
	}
	goleak.VerifyTestMain(m)
}

// childEnv holds, in a child process, the JSON childSpec of its role.
func (cfg Config) childEnv() string {
	return "BEARER_" + strings.ToUpper(cfg.Name) + "_CHILD"
}

// Missing skips the test, or fails it under CI, where nothing may be
// skipped silently, for want of what.
func (cfg Config) Missing(t testing.TB, what string) {
	t.Helper()
	if ci.Running() {
		t.Fatalf("%s: %s (CI is set, so this is a failure); %s", cfg.Name, what, cfg.HowToRun)
	}
	t.Skipf("%s: %s; %s", cfg.Name, what, cfg.HowToRun)
}

// Addr returns the address of the test server, from ServerEnv; without it
// the test is Missing its server.
func (cfg Config) Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(cfg.ServerEnv)
	if addr == "" {
		cfg.Missing(t, cfg.ServerEnv+" is not set")
	}
	return addr
}

// NewSpace makes a space of the test's own on srv, and drops it at the end
// of the test.
func NewSpace(t testing.TB, srv Server) string {
	t.Helper()
	name, err := srv.NewSpace(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.DropSpace(ctx, name); err != nil {
			t.Logf("dropping the test's space %s: %v", name, err)
		}
	})
	return name
}

// space is a test's own space on the server, with the connection to it.
type space struct {
	addr string // of the server, for the child processes
	srv  Server
	name string
}

// newSpace connects to the test server, closing the connection at the end
// of the test, and makes a space there for the test.
func newSpace(t testing.TB, cfg Config) *space {
	t.Helper()
	addr := cfg.Addr(t)
	srv, err := cfg.Dial(t.Context(), addr)
	// Not the address: a URL may hold a password.
	require.NoError(t, err, "%s: the server that %s names does not answer", cfg.Name, cfg.ServerEnv)
	t.Cleanup(srv.Close)
	return &space{addr: addr, srv: srv, name: NewSpace(t, srv)}
}

// store returns the store of identity in the space.
func (s *space) store(t testing.TB, identity string, lockTTL time.Duration) Store {
	t.Helper()
	st, err := s.srv.Store(s.name, identity, lockTTL)
	require.NoError(t, err)
	return st
}

// locked reports whether someone holds identity's lock in the space.
func (s *space) locked(t testing.TB, identity string) bool {
	t.Helper()
	held, err := s.srv.Locked(t.Context(), s.name, identity)
	require.NoError(t, err)
	return held
}

// NewTransport is a Transport on st against srv, refreshing with bearer's
// OAuth2 refresher unless cfg says otherwise, with connections of its own
// closed at the end of the test.
func NewTransport(t testing.TB, srv *bearertest.Server, st store.Store, cfg bearer.Config) *bearer.Transport {
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

// Get sends one API request through tr and reports its status.
func Get(ctx context.Context, tr *bearer.Transport, url string) (int, error) {
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
