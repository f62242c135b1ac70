package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// schema creates the table; %s is its quoted name.
const schema = `CREATE TABLE IF NOT EXISTS %s (
	identity   text        PRIMARY KEY,
	token      jsonb,
	version    bigint      NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate creates the table of the stores (see the package documentation)
// if it does not exist. It is idempotent, and safe to run from several
// processes at once: it takes a transaction-scoped advisory lock first, as
// two concurrent CREATE TABLE IF NOT EXISTS may otherwise collide.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	if pool == nil {
		return errors.New("pgstore: Migrate: the pool is nil")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	table, err := quotedTable(o.table)
	if err != nil {
		return fmt.Errorf("pgstore: Migrate: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('bearer/pgstore: Migrate'), hashtext($1))`, o.table); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(schema, table)); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrating: %w", err)
	}
	return nil
}
