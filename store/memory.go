package store

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/holdslot"
)

// Memory is a [Store] and [Locker] that keeps the token in memory. Several
// Transports in one process may share a Memory; its lock then lets only one of
// them refresh at a time. The zero value is not usable: call [NewMemory].
type Memory struct {
	lock *holdslot.Slot[struct{}]

	mu      sync.Mutex
	tok     *oauth2.Token
	cleared bool   // Clear was called since the last Save
	key     []byte // see KeyStore
}

// NewMemory returns a Memory store holding tok, which may be nil.
func NewMemory(tok *oauth2.Token) *Memory {
	m := &Memory{lock: holdslot.New[struct{}]("store")}
	if tok != nil {
		m.tok = copyToken(tok)
	}
	return m
}

// Load returns a copy of the stored token, or an error matching
// ErrNotFound, and ErrCleared too after Clear.
func (m *Memory) Load(ctx context.Context) (*oauth2.Token, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cleared {
		return nil, clearedError{}
	}
	if m.tok == nil {
		return nil, ErrNotFound
	}
	return copyToken(m.tok), nil
}

// Save stores a copy of tok.
func (m *Memory) Save(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil {
		return fmt.Errorf("store: Save of a nil token")
	}
	m.mu.Lock()
	m.tok, m.cleared = copyToken(tok), false
	m.mu.Unlock()
	return nil
}

// Clear forgets the stored token, and remembers that it was cleared.
func (m *Memory) Clear(ctx context.Context) error {
	m.mu.Lock()
	m.tok, m.cleared = nil, true
	m.mu.Unlock()
	return nil
}

// Lock takes the store's lock, waiting until it is free or ctx ends. The
// returned function releases it; it must be called once.
func (m *Memory) Lock(ctx context.Context) (func() error, error) {
	return m.lock.Lock(ctx, holdNothing, releaseNothing)
}

// The in-process slot is all of Memory's lock.
func holdNothing(context.Context) (*struct{}, error)  { return &struct{}{}, nil }
func releaseNothing(context.Context, *struct{}) error { return nil }

// copyToken returns a shallow copy, so that callers cannot change what the
// store holds. The extras (raw) are shared; they are never modified.
func copyToken(tok *oauth2.Token) *oauth2.Token {
	c := *tok
	return &c
}
