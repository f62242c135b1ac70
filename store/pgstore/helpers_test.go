package pgstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store/pgstore"
)

// newPool returns a pool on the test server, closed at the end of the test.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := connect(t.Context(), harness.Addr(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// testTable creates a table of the test's own with Migrate, and drops it at
// the end of the test.
func testTable(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	return storetest.NewSpace(t, server{pool})
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
	pid, err := holderPID(t.Context(), pool, table, identity)
	require.NoError(t, err)
	return pid
}

// holderPID is lockHolder for a caller without a test.
func holderPID(ctx context.Context, pool *pgxpool.Pool, table, identity string) (int, error) {
	var pid int
	err := pool.QueryRow(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND classid = hashtext($1)::oid AND objid = hashtext($2)::oid`, table, identity).Scan(&pid)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return pid, err
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

// tok is storetest.Tok, the token pair named for whom it belongs to.
var tok = storetest.Tok
