package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// releaseTimeout bounds the statement that releases a lock; it runs even
// when the holder's context has ended.
const releaseTimeout = 5 * time.Second

// The advisory lock of an identity: its two keys are the hashes of the
// table name and of the identity.
const (
	lockSQL   = `SELECT pg_advisory_lock(hashtext($1), hashtext($2))`
	unlockSQL = `SELECT pg_advisory_unlock(hashtext($1), hashtext($2))`
)

// hold is one tenure of the lock.
type hold struct {
	// mu serializes the use of conn and of version.
	mu   sync.Mutex
	conn *pgxpool.Conn // the session that holds the advisory lock
	// version is the fence: the row's version when the lock was taken (0:
	// no row), then that of each write made under it.
	version int64
}

// Lock takes the identity's refresh lock, a session-level advisory lock on
// a connection of the pool that this Store keeps until unlock, waiting in
// the server until it is free or ctx ends; one caller at a time holds it
// through a given Store. When the holder dies, its connection closes and
// the server releases the lock at once. Lock reads the row's version as it
// takes the lock, to fence the writes made under it (see [Store.Save]).
// The returned function releases the lock and must be called once; it
// returns an error wrapping [ErrLockLost] if the connection was lost
// meanwhile.
func (s *Store) Lock(ctx context.Context) (func() error, error) {
	return s.slot.Lock(ctx, s.acquire, s.release)
}

// acquire takes a connection, the advisory lock on it, and then, in a
// statement of its own (so that its snapshot is taken after the lock was
// granted), the row's version.
func (s *Store) acquire(ctx context.Context) (*hold, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pgstore: taking the lock: %w", err)
	}
	h := &hold{conn: conn}
	if _, err := conn.Exec(ctx, lockSQL, s.table, s.identity); err != nil {
		discard(conn)
		return nil, fmt.Errorf("pgstore: taking the lock: %w", err)
	}
	err = conn.QueryRow(ctx, s.sql.version, s.identity).Scan(&h.version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		s.unlockOrDiscard(conn)
		return nil, fmt.Errorf("pgstore: reading the version under the lock: %w", err)
	}
	return h, nil
}

// release unlocks h's advisory lock and gives its connection back to the
// pool; a connection that cannot be unlocked is closed instead, which
// releases the lock as well.
func (s *Store) release(ctx context.Context, h *hold) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	conn := h.conn
	if conn == nil {
		return fmt.Errorf("pgstore: releasing the lock: %w", ErrLockLost)
	}
	h.conn = nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	var held bool
	if err := conn.QueryRow(ctx, unlockSQL, s.table, s.identity).Scan(&held); err != nil {
		discard(conn)
		if conn.Conn().IsClosed() {
			return fmt.Errorf("pgstore: releasing the lock: %w (%w)", ErrLockLost, err)
		}
		return fmt.Errorf("pgstore: releasing the lock: %w", err)
	}
	conn.Release()
	if !held {
		return fmt.Errorf("pgstore: releasing the lock: %w", ErrLockLost)
	}
	return nil
}

// query runs fn on the lock's connection or, once that connection has
// been lost, on the pool: the version fence keeps a write through the pool
// from overwriting what another holder wrote after the lock went with the
// connection. The caller holds h.mu.
func (h *hold) query(ctx context.Context, pool *pgxpool.Pool, fn func(querier) error) error {
	if h.conn != nil && !h.conn.Conn().IsClosed() {
		err := fn(h.conn)
		if err == nil || !h.conn.Conn().IsClosed() {
			return err
		}
		// The connection died under the statement: the lock is gone,
		// and the statement may or may not have run; the fenced write
		// may be sent again (see Store.write).
	}
	if h.conn != nil {
		h.conn.Release() // closed: the pool destroys it
		h.conn = nil
	}
	return onPool(ctx, pool, fn)
}

// unlockOrDiscard releases the lock held on conn and gives conn back to
// the pool, or closes conn if the lock cannot be released.
func (s *Store) unlockOrDiscard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if _, err := conn.Exec(ctx, unlockSQL, s.table, s.identity); err != nil {
		discard(conn)
		return
	}
	conn.Release()
}

// discard closes conn, ending its session and any lock it holds, and
// hands it back to the pool, which drops it.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Conn().Close(ctx)
	conn.Release()
}
