package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/holdslot"
	"github.com/seamlessauth/bearer/store"
)

// ErrLockLost is wrapped by the error of a Save or Clear made while this
// Store held the lock, when the connection that held it was lost and
// another writer changed the row meanwhile: the newer token is left in
// place. It is also wrapped by the error of an unlock that found the
// lock's connection gone.
var ErrLockLost = errors.New("pgstore: the lock's connection was lost before its holder was done")

// Store keeps one identity's token pair in a row of a PostgreSQL table and
// implements [store.Store] and [store.Locker]. Create it with [New]. A Store
// is safe for concurrent use.
type Store struct {
	pool     *pgxpool.Pool
	identity string
	table    string // as given, for the lock key and String
	sql      queries

	slot *holdslot.Slot[hold] // one holder of the lock per Store at a time, and its hold
}

// queries are the statements of a Store, with its table name in them.
type queries struct {
	load, version, write string
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Locker = (*Store)(nil)
)

// New returns a Store for the identity's row in the table (see
// [WithTable]) through pool. New does not contact the server; the table
// must exist (see [Migrate]). The pool must reach the server directly or
// through a pooler in session mode, since the lock is a session-level
// advisory lock.
func New(pool *pgxpool.Pool, identity string, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New: the pool is nil")
	}
	if identity == "" {
		return nil, errors.New("pgstore: New: the identity is empty")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	table, err := quotedTable(o.table)
	if err != nil {
		return nil, fmt.Errorf("pgstore: New: %w", err)
	}
	return &Store{
		pool:     pool,
		identity: identity,
		table:    o.table,
		sql: queries{
			load:    `SELECT token FROM ` + table + ` WHERE identity = $1`,
			version: `SELECT version FROM ` + table + ` WHERE identity = $1`,
			// $3 is the fence: -1 writes whatever the row holds, 0 only
			// if there is no row, n only if the row's version is n. A row
			// that already holds the value is written again, so that a
			// write whose reply was lost can be sent again.
			write: `INSERT INTO ` + table + ` AS t (identity, token, version) VALUES ($1, $2::jsonb, 1)
ON CONFLICT (identity) DO UPDATE SET token = EXCLUDED.token, version = t.version + 1, updated_at = now()
WHERE $3::bigint < 0 OR t.version = $3::bigint OR t.token IS NOT DISTINCT FROM EXCLUDED.token
RETURNING version`,
		},
		slot: holdslot.New[hold]("pgstore"),
	}, nil
}

// Load returns the stored token, or an error wrapping [store.ErrNotFound]
// when there is none, and [store.ErrCleared] as well after [Store.Clear].
func (s *Store) Load(ctx context.Context) (*oauth2.Token, error) {
	var b []byte
	err := s.do(ctx, func(q querier) error { return q.QueryRow(ctx, s.sql.load, s.identity).Scan(&b) })
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("pgstore: loading the token: %w", store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("pgstore: loading the token: %w", err)
	case b == nil:
		return nil, fmt.Errorf("pgstore: loading the token: %w (%w)", store.ErrCleared, store.ErrNotFound)
	}
	return decode(b)
}

// Save stores tok. While this Store holds the lock, Save fails with an
// error wrapping [ErrLockLost], and writes nothing, if the row has changed
// since the lock was taken or this holder last saved or cleared it; that
// can only happen when the lock's connection was lost, or when someone
// wrote without the lock.
func (s *Store) Save(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil {
		return errors.New("pgstore: Save of a nil token")
	}
	v, err := encode(tok)
	if err != nil {
		return err
	}
	if err := s.write(ctx, &v); err != nil {
		return fmt.Errorf("pgstore: saving the token: %w", err)
	}
	return nil
}

// Clear removes the stored token and leaves a tombstone: the row stays,
// with no token, so that the other holders end their sessions (see
// [store.ErrCleared]) rather than save theirs back. While this Store holds
// the lock, Clear refuses, like [Store.Save], to remove a token that was
// written after this holder read the row.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.write(ctx, nil); err != nil {
		return fmt.Errorf("pgstore: clearing the token: %w", err)
	}
	return nil
}

// String describes the store by its table and identity, without any token.
func (s *Store) String() string { return "pgstore.Store(" + s.table + ", " + s.identity + ")" }

// write sets the token column to value (nil: the tombstone): directly when
// this Store does not hold the lock, fenced by the version otherwise.
func (s *Store) write(ctx context.Context, value *string) error {
	h := s.slot.Current()
	if h == nil {
		return onPool(ctx, s.pool, func(q querier) error {
			var n int64
			return q.QueryRow(ctx, s.sql.write, s.identity, value, -1).Scan(&n)
		})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	err := h.query(ctx, s.pool, func(q querier) error {
		return q.QueryRow(ctx, s.sql.write, s.identity, value, h.version).Scan(&n)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrLockLost
	}
	if err != nil {
		return err
	}
	h.version = n
	return nil
}

// do runs fn on the lock's connection while this Store holds the lock (so
// that a holder needs no second connection from the pool), on the pool
// otherwise.
func (s *Store) do(ctx context.Context, fn func(querier) error) error {
	h := s.slot.Current()
	if h == nil {
		return onPool(ctx, s.pool, fn)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.query(ctx, s.pool, fn)
}

// querier is what a Store needs of a pool or a connection.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
