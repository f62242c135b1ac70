// Package invariant checks the invariants of bearer's refresh engine over
// randomized histories, as Jepsen checks a database: 2–4 Transports share
// one store and an [bearertest.Server] with rotation and reuse detection, and
// go through a random sequence of requests, faults and user calls, several
// at once. After each history a checker reads what the server, the store,
// the hooks and the callers saw, and reports what must not happen whatever
// failed (see check.go for the list).
//
// The root package's TestInvariants runs it on store.Memory and store.File
// with an injected clock per Transport; a store module runs it on its own
// store with faults of its own (Redis paused, its connections killed, its
// server restarted).
//
// A history is drawn from its seed alone. A failing one is printed with its
// seed, its steps and a shorter list of steps that still fails; the
// environment replays it:
//
//	BEARER_INVARIANTS=30s | 500       run for this long, or this many histories
//	BEARER_INVARIANTS_SEED=0x1f2e...  replay the history of this seed
//	BEARER_INVARIANTS_STEPS=0,3,4     with the seed: only these steps
//
// The operations run concurrently, so a replay repeats the operations, not
// necessarily their interleaving: a replayed seed runs several times.
//
// [bearertest.Server]: github.com/seamlessauth/bearer/bearertest.Server
package invariant
