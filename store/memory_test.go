package store_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// Compile-time checks: Memory is a Store and a Locker.
var (
	_ store.Store  = (*store.Memory)(nil)
	_ store.Locker = (*store.Memory)(nil)
)

// TestMemoryKeepsCopies: what the caller does with the tokens it gave or
// got does not change what the store holds.
func TestMemoryKeepsCopies(t *testing.T) {
	ctx := context.Background()
	given := &oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1"}
	m := store.NewMemory(given)
	given.AccessToken = "changed"

	got, err := m.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at-1", got.AccessToken, "NewMemory kept the caller's token")
	got.RefreshToken = "changed"

	saved := &oauth2.Token{AccessToken: "at-2"}
	require.NoError(t, m.Save(ctx, saved))
	saved.AccessToken = "changed"
	got, err = m.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at-2", got.AccessToken, "Save kept the caller's token")
	assert.Empty(t, got.RefreshToken)
}

func TestMemoryEmpty(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(nil)
	_, err := m.Load(ctx)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorContains(t, m.Save(ctx, nil), "store: ")

	assert.NotErrorIs(t, err, store.ErrCleared, "never cleared")

	require.NoError(t, m.Save(ctx, &oauth2.Token{AccessToken: "at"}))
	require.NoError(t, m.Clear(ctx))
	_, err = m.Load(ctx)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, err, store.ErrCleared, "remembers the Clear")
	assert.NoError(t, m.Clear(ctx), "clearing an empty store")
	require.NoError(t, m.Save(ctx, &oauth2.Token{AccessToken: "again"}))
	got, err := m.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "again", got.AccessToken)
}

func TestMemoryLock(t *testing.T) {
	m := store.NewMemory(nil)
	unlock, err := m.Lock(context.Background())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Lock(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "the lock was taken twice")
	assert.ErrorContains(t, err, "store: ")

	got := make(chan func() error, 1)
	go func() {
		u, err := m.Lock(context.Background())
		assert.NoError(t, err)
		got <- u
	}()
	require.NoError(t, unlock())
	var unlock2 func() error
	select {
	case unlock2 = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter did not get the lock after unlock")
	}
	require.NotNil(t, unlock2)

	// A second unlock of the first tenure releases nothing: the waiter
	// still holds the lock.
	assert.EqualError(t, unlock(), "store: unlock of a lock already released")
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = m.Lock(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a second unlock released the next holder's lock")
	assert.NoError(t, unlock2())
}

// TestLockEndedContext: a free lock is not given to a caller whose context
// has already ended.
func TestLockEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lockers := map[string]store.Locker{
		"Memory": store.NewMemory(nil),
		"File":   newFile(t, filepath.Join(t.TempDir(), "token.json")),
	}
	for name, l := range lockers {
		t.Run(name, func(t *testing.T) {
			for range 10 { // a select between a free lock and ctx would pick either
				unlock, err := l.Lock(ctx)
				require.ErrorIs(t, err, context.Canceled)
				assert.Nil(t, unlock)
			}
		})
	}
}

// TestUnlockRacingItself: two unlocks at once release the lock once.
func TestUnlockRacingItself(t *testing.T) {
	lockers := map[string]store.Locker{
		"Memory": store.NewMemory(nil),
		"File":   newFile(t, filepath.Join(t.TempDir(), "token.json")),
	}
	for name, l := range lockers {
		t.Run(name, func(t *testing.T) {
			unlock, err := l.Lock(context.Background())
			require.NoError(t, err)
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() { errs <- unlock() })
			}
			wg.Wait()
			close(errs)
			var released int
			for err := range errs {
				if err == nil {
					released++
				}
			}
			assert.Equal(t, 1, released)

			unlock, err = l.Lock(context.Background())
			require.NoError(t, err, "the lock is free again")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err = l.Lock(ctx)
			assert.ErrorIs(t, err, context.DeadlineExceeded, "two unlocks released the lock twice")
			assert.NoError(t, unlock())
		})
	}
}
