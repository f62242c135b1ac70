package pgstore_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store/pgstore"
)

// urlEnv names the variable that gives the tests a PostgreSQL server.
const urlEnv = "BEARER_PG_URL"

const howToRun = "these tests need a PostgreSQL server on loopback, for example (as the postgres user):\n" +
	"\tinitdb -D /tmp/pg -U postgres --auth=trust && pg_ctl -D /tmp/pg -o \"-p 5439 -k /tmp -c listen_addresses=127.0.0.1\" -w start\n" +
	"\t" + urlEnv + "='postgres://postgres@127.0.0.1:5439/postgres?sslmode=disable' go test -race -count=1 ./..."

// missing skips the test, or fails it under CI, where nothing may be
// skipped silently.
func missing(t testing.TB, what string) {
	t.Helper()
	if ci := os.Getenv("CI"); ci != "" && ci != "false" && ci != "0" {
		t.Fatalf("pgstore: %s (CI is set, so this is a failure); %s", what, howToRun)
	}
	t.Skipf("pgstore: %s; %s", what, howToRun)
}

// pgURL returns the URL of the test server.
func pgURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		missing(t, urlEnv+" is not set")
	}
	return u
}

// newPool returns a pool on the test server, closed at the end of the test.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), pgURL(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, pool.Ping(t.Context()), "PostgreSQL at %s does not answer", urlEnv)
	return pool
}

// testTable creates a table of the test's own with Migrate, and drops it at
// the end of the test.
func testTable(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	name := "bearertest_" + strings.ToLower(rand.Text()[:10])
	require.NoError(t, pgstore.Migrate(t.Context(), pool, pgstore.WithTable(name)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	})
	return name
}

// newStore returns a Store for identity in table.
func newStore(t testing.TB, pool *pgxpool.Pool, table, identity string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.New(pool, identity, pgstore.WithTable(table))
	require.NoError(t, err)
	return s
}

// lockHolder returns the process id of the backend that holds identity's
// advisory lock for table, or 0.
func lockHolder(t testing.TB, pool *pgxpool.Pool, table, identity string) int {
	t.Helper()
	var pid int
	err := pool.QueryRow(t.Context(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid`, table, identity).Scan(&pid)
	if err == pgx.ErrNoRows {
		return 0
	}
	require.NoError(t, err)
	return pid
}

// terminate ends the backend pid, as a network fault or an operator would,
// and waits until it is gone.
func terminate(t testing.TB, pool *pgxpool.Pool, pid int) {
	t.Helper()
	var ok bool
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT pg_terminate_backend($1, 5000)`, pid).Scan(&ok))
	require.True(t, ok, "backend %d was not terminated", pid)
}

// terminateAll ends every other backend of the test database, as a server
// restart would for the clients, and reports how many.
func terminateAll(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid, 5000))
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n))
	return n
}

// apiTransport is a Transport on st against srv, refreshing with bearer's
// OAuth2 refresher, with connections of its own closed at the end of the
// test.
func apiTransport(t testing.TB, srv *bearertest.Server, st *pgstore.Store, cfg bearer.Config) *bearer.Transport {
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

func tok(name string) *oauth2.Token {
	return &oauth2.Token{AccessToken: "at-" + name, RefreshToken: "rt-" + name, TokenType: "Bearer"}
}
