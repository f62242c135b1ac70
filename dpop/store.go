package dpop

import (
	"context"
	"errors"
	"fmt"

	"github.com/seamlessauth/bearer/store"
)

// Save keeps k in ks (see [store.KeyStore]) as [Key.MarshalPrivate] encodes
// it.
func Save(ctx context.Context, ks store.KeyStore, k *Key) error {
	data, err := k.MarshalPrivate()
	if err != nil {
		return err
	}
	if err := ks.SaveKey(ctx, data); err != nil {
		return fmt.Errorf("dpop: saving the key: %w", err)
	}
	return nil
}

// Load returns the key kept in ks. It fails with an error matching
// store.ErrNotFound when there is none.
func Load(ctx context.Context, ks store.KeyStore) (*Key, error) {
	data, err := ks.LoadKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("dpop: loading the key: %w", err)
	}
	return ParseKey(data)
}

// LoadOrGenerate returns the key kept in ks or, when there is none, a new
// one from [GenerateKey] that it saves there: every process that shares a
// store and calls it gets the same key. When ks is also a [store.Locker]
// the check and the save happen under its lock, so that two processes
// starting together do not each make a key.
func LoadOrGenerate(ctx context.Context, ks store.KeyStore) (*Key, error) {
	if l, ok := ks.(store.Locker); ok {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return nil, fmt.Errorf("dpop: locking the key's store: %w", err)
		}
		defer unlock()
	}
	k, err := Load(ctx, ks)
	if !errors.Is(err, store.ErrNotFound) {
		return k, err
	}
	if k, err = GenerateKey(); err != nil {
		return nil, err
	}
	if err := Save(ctx, ks, k); err != nil {
		return nil, err
	}
	return k, nil
}
