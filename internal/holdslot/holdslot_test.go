package holdslot_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/seamlessauth/bearer/internal/holdslot"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type hold struct{ n int }

func acquireAs(n int) func(context.Context) (*hold, error) {
	return func(context.Context) (*hold, error) { return &hold{n}, nil }
}

func releaseNothing(context.Context, *hold) error { return nil }

// free reports whether s can be taken within wait, and gives it back.
func free(t *testing.T, s *holdslot.Slot[hold], wait time.Duration) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	unlock, err := s.Lock(ctx, acquireAs(0), releaseNothing)
	if err != nil {
		require.ErrorIs(t, err, context.DeadlineExceeded)
		return false
	}
	require.NoError(t, unlock())
	return true
}

// TestLockRecordsTheHoldUntilUnlock: Current is the hold while the slot is
// held and nil after; release is called once, with Lock's ctx; a second
// unlock reports an error and releases nothing.
func TestLockRecordsTheHoldUntilUnlock(t *testing.T) {
	s := holdslot.New[hold]("teststore")
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "lock's")
	var released []*hold
	unlock, err := s.Lock(ctx, acquireAs(1), func(ctx context.Context, h *hold) error {
		assert.Equal(t, "lock's", ctx.Value(key{}), "release is given Lock's ctx")
		released = append(released, h)
		return errors.New("teststore: released badly")
	})
	require.NoError(t, err)
	assert.Equal(t, &hold{1}, s.Current())
	assert.False(t, free(t, s, 20*time.Millisecond), "the slot was taken twice")

	assert.EqualError(t, unlock(), "teststore: released badly", "release's error is unlock's")
	assert.Nil(t, s.Current())
	assert.Equal(t, []*hold{{1}}, released)

	next, err := s.Lock(t.Context(), acquireAs(2), releaseNothing)
	require.NoError(t, err)
	assert.EqualError(t, unlock(), "teststore: unlock of a lock already released")
	assert.Len(t, released, 1)
	assert.Equal(t, &hold{2}, s.Current(), "a second unlock released the next holder")
	require.NoError(t, next())
}

// TestLockWithEndedContextSendsNothing: once ctx has ended, Lock fails
// without calling acquire, even though the slot is free.
func TestLockWithEndedContextSendsNothing(t *testing.T) {
	s := holdslot.New[hold]("teststore")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Lock(ctx, func(context.Context) (*hold, error) {
		t.Error("acquire called with an ended context")
		return &hold{}, nil
	}, releaseNothing)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorContains(t, err, "teststore: waiting for the lock")
	assert.True(t, free(t, s, 5*time.Second))
}

// TestLockFreesTheSlotWhenAcquireFails: an acquire that fails or panics
// leaves no holder behind, so that the next Lock is not kept waiting.
func TestLockFreesTheSlotWhenAcquireFails(t *testing.T) {
	s := holdslot.New[hold]("teststore")
	boom := errors.New("teststore: the server said no")
	_, err := s.Lock(t.Context(), func(context.Context) (*hold, error) { return nil, boom }, releaseNothing)
	assert.ErrorIs(t, err, boom)
	assert.Nil(t, s.Current())
	assert.True(t, free(t, s, 5*time.Second), "a failed acquire kept the slot")

	assert.Panics(t, func() {
		_, _ = s.Lock(t.Context(), func(context.Context) (*hold, error) { panic("teststore: a bug") }, releaseNothing)
	})
	assert.Nil(t, s.Current())
	assert.True(t, free(t, s, 5*time.Second), "a panicking acquire kept the slot")
}
