package store

import (
	"context"
	"errors"
	"sync/atomic"
)

// slot is a lock for one holder in this process that a waiter gives up on
// when its context ends. Make it with make(slot, 1).
type slot chan struct{}

// take waits until the slot is free, or fails with ctx.Err() once ctx has
// ended, even if the slot is free.
func (s slot) take(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// give frees the slot.
func (s slot) give() { <-s }

// onlyOnce returns an unlock function that calls unlock the first time and
// reports an error, releasing nothing, on later calls.
func onlyOnce(unlock func() error) func() error {
	var done atomic.Bool
	return func() error {
		if done.Swap(true) {
			return errors.New("store: unlock of a lock already released")
		}
		return unlock()
	}
}
