// Package pgstore keeps bearer token pairs in a PostgreSQL table, one row per
// identity, with a refresh lock per identity, so that the processes and
// machines of a backend that keeps each user's tokens in its database (or a
// fleet sharing one service token) refresh each token once and use the
// result together.
//
// A [Store] implements [store.Store] and [store.Locker]; give it to a
// bearer.Transport as Config.Store, or build one per identity for a pool:
//
//	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
//	...
//	err = pgstore.Migrate(ctx, pool) // once, at start-up: CREATE TABLE IF NOT EXISTS
//	st, err := pgstore.New(pool, "user-42")
//	...
//	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg), Store: st})
//
// # The table
//
// [Migrate] creates it ([DefaultTable], or the name given by [WithTable]):
//
//	identity   text PRIMARY KEY
//	token      jsonb           -- NULL: cleared (a logout), see store.ErrCleared
//	version    bigint NOT NULL -- 1 on insert, +1 on every write
//	updated_at timestamptz NOT NULL DEFAULT now()
//
// The token is a JSON object with the fields access_token, token_type,
// refresh_token, expiry (RFC 3339) and id_token, as redisstore stores it.
// No row means that no token was ever saved (or that the row was deleted);
// a row whose token is NULL is the tombstone that [Store.Clear] leaves.
// Tokens are stored as they are: protect the table as you would passwords.
//
// # The lock
//
// Lock takes a session-level advisory lock,
// pg_advisory_lock(hashtext(table), hashtext(identity)), on a connection
// that the Store takes from the pool and keeps until unlock, and reads the
// row's version in the next statement. The Loads, Saves and Clears made
// through the Store while it holds the lock go over that connection, so a
// holder needs no second connection from the pool. When the holder dies,
// the server sees its connection close and releases the lock at once;
// there is no TTL to wait for. Waiters wait in the server, and are granted
// the lock in turn. Two identities whose hashes collide share a lock: one
// may wait for the other's refresh, and neither sees the other's token.
//
// If the lock's connection is lost while its holder is still refreshing (a
// server restart, a killed backend, a network fault), another holder may
// take the lock. The late holder's Save then goes through the pool, and is
// fenced: it writes only if the row's version is still the one read under
// the lock (or written since by this holder), and fails with [ErrLockLost]
// otherwise, leaving the newer token in place. A Load does not move the
// fence. A refresh already sent when the connection was lost may still
// race with the next holder's; with refresh-token rotation and reuse
// detection, that one case can end the session.
//
// A Store lets one caller at a time hold its lock, so several Transports in
// one process may share a Store. Errors start with "pgstore: " and never
// contain a token.
package pgstore
