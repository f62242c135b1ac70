// Package redisstore keeps a bearer token pair and its refresh lock in Redis,
// so that every process and machine that shares one identity (the replicas
// of a service using one service-account token, or a backend keeping each
// user's tokens) refreshes it once and uses the result together.
//
// A [Store] implements [store.Store], [store.Locker] and [store.KeyStore]; give it to a
// bearer.Transport as Config.Store:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	st, err := redisstore.New(rdb, "billing-service")
//	...
//	tr, err := bearer.New(bearer.Config{Refresher: bearer.OAuth2(cfg), Store: st})
//
// # Keys
//
// One identity uses two keys, with the default prefix "bearer:", and a
// third for a DPoP key:
//
//	bearer:{<identity>}:token     the token pair as JSON (see below)
//	bearer:{<identity>}:lock      the refresh lock: a random owner value, with a TTL
//	bearer:{<identity>}:dpop-key  the DPoP key of the identity's tokens, if it has
//	                              one (PEM, see store.KeyStore and dpop.LoadOrGenerate)
//
// The braces are a Redis Cluster hash tag: both keys of an identity live in
// the same slot, as the Lua scripts that touch both of them require. For that
// reason neither the identity nor the prefix may contain a brace.
//
// The token is stored as a JSON object with the fields access_token,
// token_type, refresh_token, expiry (RFC 3339) and id_token (the OpenID
// Connect ID token, when the server sent one). The key has no TTL unless one
// is known: see [WithTokenTTL].
//
// # The lock
//
// Lock sets the lock key, with the lock TTL, to a random owner value from
// crypto/rand if the key is free, as SET NX PX does, retrying with jittered
// backoff until it succeeds or the caller's context ends. It does so in a
// Lua script that also succeeds when the key already holds this owner
// value: go-redis sends a command again when its reply was lost, and the
// lock that the first one took is then the caller's own, not one to wait
// for. Unlock deletes the key only if it still holds that value
// (compare-and-delete in a Lua script), so it never releases a lock that
// expired and was taken by someone else. The lock's TTL ([WithLockTTL],
// default [DefaultLockTTL]) must be longer than the Transport's
// RefreshTimeout: it is what frees the lock when its holder dies.
//
// If a holder is still refreshing when its lock expires, another one may
// take the lock, refresh and save. The late holder's Save then does not
// overwrite that newer token: while a Store holds the lock, Save and Clear
// write only if the lock key still holds this holder's owner value, or if
// the stored token is still the one that Lock found as it took the lock (it
// reads it in the same script) or that this holder last saved. Otherwise they
// fail with [ErrLockLost] and leave Redis alone; the Transport logs the
// failure and goes on with the token it obtained. A Load, by the holder or
// by any other user of the Store, does not change what a Save is checked
// against.
//
// A Store lets one caller at a time hold its lock, so several Transports in
// one process may share a Store. Errors start with "redisstore: " and never
// contain a token.
package redisstore
