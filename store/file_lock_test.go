package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/store"
)

// Compile-time checks: File is a Store and a Locker.
var (
	_ store.Store  = (*store.File)(nil)
	_ store.Locker = (*store.File)(nil)
)

// Two File values for one path stand for two processes: the OS lock belongs
// to an open file, so they exclude each other as processes would.
func TestFileLockExcludesAnotherHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir", "token.json")
	a, b := newFile(t, path), newFile(t, path, store.WithLockRetry(time.Millisecond))

	unlock, err := a.Lock(context.Background())
	require.NoError(t, err)
	assert.FileExists(t, path+".lock")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the lock was taken twice")
	assert.ErrorContains(t, err, "store: ")
	assert.ErrorContains(t, err, path+".lock")

	require.NoError(t, unlock())
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlockB, err := b.Lock(ctx)
	require.NoError(t, err, "the lock was not free after unlock")
	assert.NoError(t, unlockB())
	assert.FileExists(t, path+".lock", "the lock file is kept: removing it would let two holders in")
}

func TestFileLockWaitsInProcess(t *testing.T) {
	f := newFile(t, filepath.Join(t.TempDir(), "token.json"))
	unlock, err := f.Lock(context.Background())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.Lock(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "one File gave its lock twice")

	got := make(chan error, 1)
	go func() {
		u, err := f.Lock(context.Background())
		if err == nil {
			err = u()
		}
		got <- err
	}()
	require.NoError(t, unlock())
	select {
	case err := <-got:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter did not get the lock after unlock")
	}
}

func TestFileUnlockTwice(t *testing.T) {
	f := newFile(t, filepath.Join(t.TempDir(), "token.json"))
	unlock, err := f.Lock(context.Background())
	require.NoError(t, err)
	require.NoError(t, unlock())
	assert.ErrorContains(t, unlock(), "store: unlock of a lock already released")

	// The second unlock released nothing: the lock still works.
	u1, err := f.Lock(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = f.Lock(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NoError(t, u1())
}

// TestFileLockMutualExclusion: goroutines on three File values for one path
// take turns; no two ever hold the lock at once.
func TestFileLockMutualExclusion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	files := []*store.File{
		newFile(t, path, store.WithLockRetry(time.Millisecond)),
		newFile(t, path, store.WithLockRetry(time.Millisecond)),
		newFile(t, path, store.WithLockRetry(time.Millisecond)),
	}
	const goroutines, rounds = 6, 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var holders, overlaps, turns atomic.Int32
	errs := make(chan error, goroutines*rounds)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			f := files[g%len(files)]
			for range rounds {
				unlock, err := f.Lock(ctx)
				if err != nil {
					errs <- err
					return
				}
				if holders.Add(1) > 1 {
					overlaps.Add(1)
				}
				turns.Add(1)
				holders.Add(-1)
				if err := unlock(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int32(goroutines*rounds), turns.Load())
	assert.Zero(t, overlaps.Load(), "two holders at once")
}
