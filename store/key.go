package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/seamlessauth/bearer/internal/storekey"
)

// KeyStore is implemented by stores that keep, beside the token, the
// private key that the token is bound to (a DPoP key, RFC 9449), so that
// the processes that share the token share the key too: a DPoP-bound
// refresh token is of no use without it. The key is kept as the caller
// encoded it (dpop.Key.MarshalPrivate), as a secret of the same weight as
// the refresh token: whoever can read the store can use both. Clear leaves
// the key in place. Use package dpop's Save, Load and LoadOrGenerate rather
// than these methods.
type KeyStore interface {
	// LoadKey returns the key, or an error matching ErrNotFound when there
	// is none.
	LoadKey(ctx context.Context) ([]byte, error)
	// SaveKey replaces the key.
	SaveKey(ctx context.Context, key []byte) error
}

// LoadKey returns the key saved with SaveKey, or ErrNotFound.
func (m *Memory) LoadKey(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key == nil {
		return nil, fmt.Errorf("%w: no key", ErrNotFound)
	}
	return append([]byte(nil), m.key...), nil
}

// SaveKey keeps a copy of key.
func (m *Memory) SaveKey(ctx context.Context, key []byte) error {
	if err := storekey.Check(key); err != nil {
		return fmt.Errorf("store: SaveKey: %w", err)
	}
	m.mu.Lock()
	m.key = append([]byte(nil), key...)
	m.mu.Unlock()
	return nil
}

// LoadKey reads the key file: the token path with ".dpop-key" appended,
// which must be private to its owner, as the token file must. It returns an
// error wrapping ErrNotFound when there is none.
func (f *File) LoadKey(ctx context.Context) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: loading %s: %w", f.key.path, err)
	}
	return f.key.read(true)
}

// SaveKey replaces the key file, atomically, with mode 0600 (see LoadKey),
// and removes the temporary files over a minute old that a SaveKey killed
// midway left beside it, as Save does for the token file.
func (f *File) SaveKey(ctx context.Context, key []byte) error {
	if err := storekey.Check(key); err != nil {
		return fmt.Errorf("store: SaveKey: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: saving %s: %w", f.key.path, err)
	}
	if _, err := f.key.read(true); err != nil && !errors.Is(err, ErrNotFound) {
		return err // a link, a directory, a file others may read: left alone
	}
	if err := f.key.mkdir(); err != nil {
		return err
	}
	if err := f.key.writeAtomic(key); err != nil {
		return err
	}
	f.key.removeTemps(staleTemp) // copies of a key that a killed SaveKey left
	return nil
}
