package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
	"github.com/seamlessauth/bearer/store/pgstore"
)

// takeOver has another holder lock, load, save tok and unlock, as a second
// process would after the first one's lock went with its connection.
func takeOver(t *testing.T, s *pgstore.Store, tok *oauth2.Token) {
	t.Helper()
	unlock, err := s.Lock(t.Context())
	require.NoError(t, err)
	_, _ = s.Load(t.Context())
	require.NoError(t, s.Save(t.Context(), tok))
	require.NoError(t, unlock())
}

// TestFencedWrites: while a Store holds the lock, its Save and Clear write
// only if the row is still the one it read under the lock or last wrote.
func TestFencedWrites(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	tests := []struct {
		name     string
		initial  *oauth2.Token // nil: no row
		killLock bool          // whether the late holder's lock connection is terminated
		meddle   func(t *testing.T, other *pgstore.Store)
		clear    bool // the late holder clears instead of saving
		wantErr  bool
		want     *oauth2.Token // in the store afterwards; nil: cleared
	}{
		{name: "lock lost, another holder saved: save refused", initial: tok("1"), killLock: true,
			meddle: func(t *testing.T, o *pgstore.Store) { takeOver(t, o, tok("2")) }, wantErr: true, want: tok("2")},
		{name: "lock lost, another holder saved: clear refused", initial: tok("1"), killLock: true,
			meddle: func(t *testing.T, o *pgstore.Store) { takeOver(t, o, tok("2")) }, clear: true, wantErr: true, want: tok("2")},
		{name: "lock lost, no row, another holder saved: save refused", killLock: true,
			meddle: func(t *testing.T, o *pgstore.Store) { takeOver(t, o, tok("2")) }, wantErr: true, want: tok("2")},
		{name: "lock lost, nobody wrote: the save goes through the pool", initial: tok("1"), killLock: true,
			want: tok("late")},
		{name: "lock lost, another holder only loaded: save goes through", initial: tok("1"), killLock: true,
			meddle: func(t *testing.T, o *pgstore.Store) {
				unlock, err := o.Lock(t.Context())
				require.NoError(t, err)
				_, err = o.Load(t.Context())
				require.NoError(t, err)
				require.NoError(t, unlock())
			}, want: tok("late")},
		{name: "lock held, a write without the lock: save refused", initial: tok("1"),
			meddle: func(t *testing.T, o *pgstore.Store) { require.NoError(t, o.Save(t.Context(), tok("2"))) }, wantErr: true, want: tok("2")},
		{name: "lock held, nobody else wrote: clear", initial: tok("1"), clear: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.name
			late, other := newStore(t, pool, table, id), newStore(t, pool, table, id)
			if tt.initial != nil {
				require.NoError(t, other.Save(t.Context(), tt.initial))
			}
			unlock, err := late.Lock(t.Context())
			require.NoError(t, err)
			_, _ = late.Load(t.Context())
			if tt.killLock {
				pid := lockHolder(t, pool, table, id)
				require.NotZero(t, pid, "the lock's backend")
				terminate(t, pool, pid)
			}
			if tt.meddle != nil {
				tt.meddle(t, other)
			}
			if tt.clear {
				err = late.Clear(t.Context())
			} else {
				err = late.Save(t.Context(), tok("late"))
			}
			if tt.wantErr {
				require.ErrorIs(t, err, pgstore.ErrLockLost)
				assert.NotContains(t, err.Error(), "late")
			} else {
				require.NoError(t, err)
			}
			err = unlock()
			if tt.killLock {
				assert.ErrorIs(t, err, pgstore.ErrLockLost, "unlock after the connection was lost")
			} else {
				assert.NoError(t, err)
			}

			got, err := other.Load(t.Context())
			if tt.want == nil {
				assert.ErrorIs(t, err, store.ErrCleared)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want.AccessToken, got.AccessToken)
		})
	}
}

// TestFenceMoves: a holder's own writes move its fence, so it may save
// several times under one lock, and a Load by another user does not.
func TestFenceMoves(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	s, other := newStore(t, pool, table, "moves"), newStore(t, pool, table, "moves")
	unlock, err := s.Lock(t.Context())
	require.NoError(t, err)
	for _, name := range []string{"1", "2", "3"} {
		require.NoError(t, s.Save(t.Context(), tok(name)))
		_, err := other.Load(t.Context())
		require.NoError(t, err)
	}
	require.NoError(t, s.Clear(t.Context()))
	require.NoError(t, s.Save(t.Context(), tok("4")))
	require.NoError(t, unlock())
	got, err := other.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-4", got.AccessToken)
}

// TestLockWaitsAndHandsOver: a second holder waits for the lock until the
// first unlocks, then sees what the first saved; a waiter whose context
// ends gives up and leaves no lock behind.
func TestLockWaitsAndHandsOver(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	a, b := newStore(t, pool, table, "svc"), newStore(t, pool, table, "svc")
	unlockA, err := a.Lock(t.Context())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the lock is held")

	got := make(chan error, 1)
	go func() {
		unlockB, err := b.Lock(t.Context())
		if err == nil {
			var tk *oauth2.Token
			tk, err = b.Load(t.Context())
			if err == nil && tk.AccessToken != "at-a" {
				err = fmt.Errorf("b loaded %q under the lock", tk.AccessToken)
			}
			if uerr := unlockB(); err == nil {
				err = uerr
			}
		}
		got <- err
	}()
	require.NoError(t, a.Save(t.Context(), tok("a")))
	require.NoError(t, unlockA())
	require.NoError(t, <-got)
	assert.Error(t, unlockA(), "a second unlock")
}
