// Package store defines where a bearer Transport keeps its token pair, and
// provides two stores: [Memory], in-process, and [File], a token file that
// several processes on one machine can share.
//
// A [Store] persists one token pair (one identity). A store shared by several
// processes or machines should also implement [Locker], so that only one of
// them refreshes at a time: with refresh-token rotation, two refreshes with the
// same refresh token end the whole session.
package store

import (
	"context"
	"errors"

	"golang.org/x/oauth2"
)

// ErrNotFound is returned by [Store.Load] when the store holds no token.
var ErrNotFound = errors.New("store: no token stored")

// ErrCleared is matched, together with [ErrNotFound], by the error of
// [Store.Load] after [Store.Clear]: the store remembers that it was cleared
// (a logout), as opposed to never having had a token or having lost it, as
// a Redis server without persistence does when it restarts. A Transport
// that finds ErrCleared under a token it saved ends its session too (another
// holder logged out); one that finds a plain ErrNotFound saves its token
// back. Memory, File and redisstore remember; a Store that cannot returns
// ErrNotFound alone.
var ErrCleared = errors.New("store: the token was cleared (logged out)")

// clearedError is Load's error after Clear: it matches ErrNotFound and
// ErrCleared.
type clearedError struct{ where string }

func (e clearedError) Error() string {
	if e.where == "" {
		return ErrCleared.Error()
	}
	return "store: the token in " + e.where + " was cleared (logged out)"
}

func (e clearedError) Is(target error) bool { return target == ErrNotFound || target == ErrCleared }

// Store persists one token pair. Implementations must be safe for concurrent
// use. They must never put a token in an error message or a log line.
type Store interface {
	// Load returns the stored token, or an error wrapping ErrNotFound when
	// there is none.
	Load(ctx context.Context) (*oauth2.Token, error)
	// Save replaces the stored token.
	Save(ctx context.Context, tok *oauth2.Token) error
	// Clear removes the stored token. Clearing an empty store is not an
	// error. A store shared by several holders should remember that it was
	// cleared (see ErrCleared).
	Clear(ctx context.Context) error
}

// Locker is implemented by stores that can be shared between processes or
// machines. The Transport holds the lock while it reloads, refreshes and saves
// the token, so that only one holder of the store refreshes at a time, and
// while it logs in or out. A shared store that is found empty under a token
// that was saved in it was logged out by another holder: the Transport then
// ends its session too, instead of saving its token back.
type Locker interface {
	// Lock blocks until the lock is held or ctx ends. The returned unlock
	// function releases it.
	Lock(ctx context.Context) (unlock func() error, err error)
}
