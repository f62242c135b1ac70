package bearer_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/internal/invariant"
	"github.com/seamlessauth/bearer/store"
)

// TestInvariants runs randomized histories of 2–4 Transports sharing a
// Memory or File store against the bearertest server, with faults of every
// kind several at once, and checks after each what the refresh engine
// promises whatever fails (see internal/invariant). Each Transport has a
// clock of its own, which the histories jump and skew, and fast retries.
// BEARER_INVARIANTS=30s or =500 runs more; a failure prints the seed that
// replays it.
func TestInvariants(t *testing.T) {
	dir := t.TempDir()
	var files atomic.Int64
	invariant.Run(t, invariant.Config{
		Stores: []invariant.StoreKind{
			{Name: "Memory", New: func(testing.TB) func(int) store.Store {
				m := store.NewMemory(nil)
				return func(int) store.Store { return m }
			}},
			{Name: "File", New: func(t testing.TB) func(int) store.Store {
				// One File per Transport on one path, as separate processes have.
				path := filepath.Join(dir, fmt.Sprintf("token-%d.json", files.Add(1)))
				return func(int) store.Store {
					f, err := store.NewFile(path, store.WithLockRetry(time.Millisecond))
					if err != nil {
						t.Fatal(err)
					}
					return f
				}
			}},
		},
		Prepare: func(tr *bearer.Transport, now func() time.Time) {
			bearer.SetClock(tr, now)
			bearer.SetRetry(tr, 3, func(int) time.Duration { return time.Millisecond })
			bearer.SetSleep(tr, func(ctx context.Context, _ time.Duration) error { return ctx.Err() })
		},
		Settle:         bearer.Settle,
		RefreshTimeout: 500 * time.Millisecond,
		Budget:         60 * time.Second,
	})
}
