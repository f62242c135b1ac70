package pgstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store/pgstore"
)

// urlEnv names the variable that gives the tests a PostgreSQL server.
const urlEnv = "BEARER_PG_URL"

// harness describes pgstore to the tests it shares with the other store
// modules (internal/storetest). A lock is a session lock, which dies with
// its holder's connection: LockTTL is zero.
var harness = storetest.Config{
	Name:      "pgstore",
	ServerEnv: urlEnv,
	HowToRun: "these tests need a PostgreSQL server on loopback, for example (as the postgres user):\n" +
		"\tinitdb -D /tmp/pg -U postgres --auth=trust && pg_ctl -D /tmp/pg -o \"-p 5439 -k /tmp -c listen_addresses=127.0.0.1\" -w start\n" +
		"\t" + urlEnv + "='postgres://postgres@127.0.0.1:5439/postgres?sslmode=disable' go test -race -count=1 ./...",
	Dial: dial,
}

// TestFleetManyIdentities: the processes of storetest.Fleet have a
// Transport for each of 6 identities on one pool, each used by 4
// goroutines.
func TestFleetManyIdentities(t *testing.T) {
	storetest.Fleet(t, harness, storetest.FleetShape{Identities: 6, Workers: 4, Pace: 20 * time.Millisecond})
}

// TestLockHolderDies: the killed holder's connection closes with it, so
// the server releases its lock at once (there is no TTL to wait for).
func TestLockHolderDies(t *testing.T) { storetest.LockHolderDies(t, harness) }

// TestTwoIdentitiesStore: two identities in one table.
func TestTwoIdentitiesStore(t *testing.T) { storetest.TwoIdentitiesStore(t, harness) }

// TestTwoIdentitiesTransports: two users' Transports on one pool.
func TestTwoIdentitiesTransports(t *testing.T) { storetest.TwoIdentitiesTransports(t, harness) }

// server is a pool as the shared tests use it: a space is a table.
type server struct{ pool *pgxpool.Pool }

func dial(ctx context.Context, url string) (storetest.Server, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	return server{pool}, nil
}

// connect returns a pool on the PostgreSQL server at url, which has
// answered.
func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s does not answer: %w", urlEnv, err)
	}
	return pool, nil
}

func (s server) NewSpace(ctx context.Context) (string, error) {
	name := "bearertest_" + strings.ToLower(rand.Text()[:10])
	return name, pgstore.Migrate(ctx, s.pool, pgstore.WithTable(name))
}

func (s server) DropSpace(ctx context.Context, table string) error {
	_, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize())
	return err
}

// Store ignores lockTTL: the lock lives as long as its connection.
func (s server) Store(table, identity string, _ time.Duration) (storetest.Store, error) {
	return pgstore.New(s.pool, identity, pgstore.WithTable(table))
}

func (s server) Locked(ctx context.Context, table, identity string) (bool, error) {
	pid, err := holderPID(ctx, s.pool, table, identity)
	return pid != 0, err
}

func (s server) Close() { s.pool.Close() }
