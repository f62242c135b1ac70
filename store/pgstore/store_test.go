package pgstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
	"github.com/seamlessauth/bearer/store/pgstore"
)

// TestStoreContract: load, save, clear and the tombstone, for a full pair
// and for a pair that holds only a refresh token.
func TestStoreContract(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	expiry := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	tests := []struct {
		name string
		tok  *oauth2.Token
	}{
		{"full pair", (&oauth2.Token{AccessToken: "at-1", RefreshToken: "rt-1", TokenType: "Bearer", Expiry: expiry}).
			WithExtra(map[string]any{"id_token": "idt-1"})},
		{"refresh token only", &oauth2.Token{RefreshToken: "rt-only"}},
		{"access token only", &oauth2.Token{AccessToken: "at-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, pool, table, tt.name)
			_, err := s.Load(t.Context())
			require.ErrorIs(t, err, store.ErrNotFound, "a new identity")
			assert.NotErrorIs(t, err, store.ErrCleared, "never saved is not cleared")

			require.NoError(t, s.Save(t.Context(), tt.tok))
			got, err := s.Load(t.Context())
			require.NoError(t, err)
			assert.Equal(t, tt.tok.AccessToken, got.AccessToken)
			assert.Equal(t, tt.tok.RefreshToken, got.RefreshToken)
			assert.Equal(t, tt.tok.TokenType, got.TokenType)
			assert.True(t, tt.tok.Expiry.Equal(got.Expiry), "expiry %v, want %v", got.Expiry, tt.tok.Expiry)
			assert.Equal(t, tt.tok.Extra("id_token"), got.Extra("id_token"))

			require.NoError(t, s.Clear(t.Context()))
			_, err = s.Load(t.Context())
			assert.ErrorIs(t, err, store.ErrNotFound)
			assert.ErrorIs(t, err, store.ErrCleared, "Clear leaves a tombstone")
			require.NoError(t, s.Clear(t.Context()), "clearing a cleared store")

			require.NoError(t, s.Save(t.Context(), tok("again")), "a login after a logout")
			got, err = s.Load(t.Context())
			require.NoError(t, err)
			assert.Equal(t, "at-again", got.AccessToken)
		})
	}
}

// TestClearEmpty: clearing an identity that never had a token leaves a
// tombstone too.
func TestClearEmpty(t *testing.T) {
	pool := newPool(t)
	s := newStore(t, pool, testTable(t, pool), "nobody")
	require.NoError(t, s.Clear(t.Context()))
	_, err := s.Load(t.Context())
	assert.ErrorIs(t, err, store.ErrCleared)
}

// TestVersionCounts: every write adds one to the row's version, the fence
// of the writes made under the lock.
func TestVersionCounts(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	s := newStore(t, pool, table, "v")
	for i := range 3 {
		require.NoError(t, s.Save(t.Context(), tok(fmt.Sprint(i))))
	}
	require.NoError(t, s.Clear(t.Context()))
	var version int64
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT version FROM "+pgx.Identifier{table}.Sanitize()+" WHERE identity = 'v'").Scan(&version))
	assert.Equal(t, int64(4), version)
}

// TestNoTokenInErrorsOrString: a row that is not a token, and String, name
// no token.
func TestNoTokenInErrorsOrString(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	s := newStore(t, pool, table, "leak")
	require.NoError(t, s.Save(t.Context(), tok("secret")))
	assert.NotContains(t, s.String(), "secret")
	assert.Contains(t, s.String(), "leak")

	_, err := pool.Exec(t.Context(), "UPDATE "+pgx.Identifier{table}.Sanitize()+` SET token = '{"access_token": 7, "refresh_token": "rt-secret"}'`)
	require.NoError(t, err)
	_, err = s.Load(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
	assert.NotErrorIs(t, err, store.ErrNotFound)
}

// TestMigrate: Migrate is idempotent, also when several processes run it at
// once, and a Store on a table that does not exist fails without a token in
// its error.
func TestMigrate(t *testing.T) {
	pool := newPool(t)
	table := testTable(t, pool)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- pgstore.Migrate(t.Context(), pool, pgstore.WithTable(table)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	missing := newStore(t, pool, "bearertest_no_such_table", "x")
	err := missing.Save(t.Context(), tok("secret"))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret")
	_, err = missing.Lock(t.Context())
	assert.Error(t, err, "the version is read under the lock")
	assert.Zero(t, lockHolder(t, pool, "bearertest_no_such_table", "x"), "a failed Lock leaves no lock behind")
}

// TestNewValidates: New and Migrate refuse what cannot work.
func TestNewValidates(t *testing.T) {
	_, err := pgstore.New(nil, "x")
	assert.Error(t, err)
	pool := newPool(t)
	_, err = pgstore.New(pool, "")
	assert.Error(t, err)
	_, err = pgstore.New(pool, "x", pgstore.WithTable("a.b.c"))
	assert.Error(t, err)
	_, err = pgstore.New(pool, "x", pgstore.WithTable(""))
	assert.Error(t, err)
	assert.Error(t, pgstore.Migrate(t.Context(), nil))
	assert.Error(t, pgstore.Migrate(t.Context(), pool, pgstore.WithTable("no_such_schema.t")))
}
