package redisstore_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
	"github.com/seamlessauth/bearer/store/redisstore"
)

func TestNewValidates(t *testing.T) {
	// New does not contact Redis: a client of nothing will do.
	c := redis.NewClient(&redis.Options{Addr: deadAddr(t)})
	defer c.Close()
	tests := []struct {
		name     string
		client   redis.UniversalClient
		identity string
		opts     []redisstore.Option
		wantErr  string // "" for success
	}{
		{name: "valid", client: c, identity: "svc"},
		{name: "valid with options", client: c, identity: "user:42", opts: []redisstore.Option{
			redisstore.WithPrefix("app:"), redisstore.WithLockTTL(time.Second), redisstore.WithTokenTTL(time.Hour)}},
		{name: "nil client", identity: "svc", wantErr: "client is nil"},
		{name: "typed nil client", client: (*redis.Client)(nil), identity: "svc", wantErr: "client is nil"},
		{name: "empty identity", client: c, wantErr: "identity is empty"},
		{name: "brace in identity", client: c, identity: "a}b", wantErr: "contains a brace"},
		{name: "brace in prefix", client: c, identity: "svc", opts: []redisstore.Option{redisstore.WithPrefix("{app}:")}, wantErr: "contains a brace"},
		{name: "zero lock TTL", client: c, identity: "svc", opts: []redisstore.Option{redisstore.WithLockTTL(0)}, wantErr: "lock TTL"},
		{name: "negative lock TTL", client: c, identity: "svc", opts: []redisstore.Option{redisstore.WithLockTTL(-time.Second)}, wantErr: "lock TTL"},
		{name: "negative token TTL", client: c, identity: "svc", opts: []redisstore.Option{redisstore.WithTokenTTL(-time.Second)}, wantErr: "token TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := redisstore.New(tt.client, tt.identity, tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Contains(t, s.String(), "{"+tt.identity+"}:token")
				return
			}
			require.Error(t, err)
			assert.Nil(t, s)
			assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), err.Error())
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestRoundTrip(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	tests := []struct {
		name   string
		tok    *oauth2.Token
		wantID string
	}{
		{name: "full", tok: &oauth2.Token{AccessToken: "at-1", TokenType: "Bearer", RefreshToken: "rt-1", Expiry: expiry}},
		{name: "no expiry, no refresh token", tok: &oauth2.Token{AccessToken: "at-2"}},
		{name: "refresh token only", tok: &oauth2.Token{RefreshToken: "rt-3"}},
		{name: "id token kept, other extras dropped",
			tok: (&oauth2.Token{AccessToken: "at-4", TokenType: "DPoP", Expiry: expiry}).
				WithExtra(map[string]any{"id_token": "id-4", "scope": "read"}),
			wantID: "id-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, rdb, prefix, tt.name)
			_, err := s.Load(t.Context())
			require.ErrorIs(t, err, store.ErrNotFound)

			require.NoError(t, s.Save(t.Context(), tt.tok))
			got, err := s.Load(t.Context())
			require.NoError(t, err)
			assert.Equal(t, tt.tok.AccessToken, got.AccessToken)
			assert.Equal(t, tt.tok.TokenType, got.TokenType)
			assert.Equal(t, tt.tok.RefreshToken, got.RefreshToken)
			assert.True(t, tt.tok.Expiry.Equal(got.Expiry), "expiry %v, want %v", got.Expiry, tt.tok.Expiry)
			if tt.wantID != "" {
				assert.Equal(t, tt.wantID, got.Extra("id_token"))
			} else {
				assert.Nil(t, got.Extra("id_token"))
			}
			assert.Nil(t, got.Extra("scope"))

			require.NoError(t, s.Clear(t.Context()))
			_, err = s.Load(t.Context())
			assert.ErrorIs(t, err, store.ErrNotFound)
			assert.NoError(t, s.Clear(t.Context()), "clearing an empty store")
		})
	}
}

// TestStoredForm pins the key name and the JSON, which other programs of a
// fleet (in other languages, too) may read.
func TestStoredForm(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	s := newStore(t, rdb, prefix, "user:42")
	tok := (&oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}).WithExtra(map[string]any{"id_token": "idt"})
	require.NoError(t, s.Save(t.Context(), tok))

	raw, err := rdb.Get(t.Context(), prefix+"{user:42}:token").Result()
	require.NoError(t, err)
	assert.JSONEq(t, `{"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2030-01-02T03:04:05Z","id_token":"idt"}`, raw)
	ttl, err := rdb.PTTL(t.Context(), prefix+"{user:42}:token").Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "no TTL unless one is known")
}

func TestTokenTTL(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	soon := time.Now().Add(time.Minute)
	tests := []struct {
		name     string
		option   time.Duration
		tok      *oauth2.Token
		min, max time.Duration // -1, -1: no TTL
	}{
		{name: "none known", tok: &oauth2.Token{AccessToken: "a", Expiry: soon}, min: -1, max: -1},
		{name: "option", option: time.Hour, tok: &oauth2.Token{AccessToken: "a", Expiry: soon},
			min: 59 * time.Minute, max: time.Hour},
		{name: "announced by the server, as a number", option: time.Hour,
			tok: (&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"refresh_expires_in": float64(120)}),
			min: 110 * time.Second, max: 120 * time.Second},
		{name: "announced by the server, as a string",
			tok: (&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"refresh_token_expires_in": "300"}),
			min: 290 * time.Second, max: 300 * time.Second},
		{name: "zero announced means unknown", option: time.Hour,
			tok: (&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"refresh_expires_in": float64(0)}),
			min: 59 * time.Minute, max: time.Hour},
		{name: "never before the access token expires", option: time.Minute,
			tok: &oauth2.Token{AccessToken: "a", Expiry: time.Now().Add(2 * time.Hour)},
			min: 119 * time.Minute, max: 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, rdb, prefix, tt.name, redisstore.WithTokenTTL(tt.option))
			require.NoError(t, s.Save(t.Context(), tt.tok))
			ttl, err := rdb.PTTL(t.Context(), tokenKey(prefix, tt.name)).Result()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, ttl, tt.min)
			assert.LessOrEqual(t, ttl, tt.max)
		})
	}
}

func TestLoadRejectsBadValues(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	tests := []struct {
		name  string
		value string
	}{
		{name: "truncated JSON", value: `{"access_token":"at-secret-1","refresh_token":"rt-secret-1"`},
		{name: "not JSON", value: `at-secret-2 rt-secret-2`},
		{name: "wrong types", value: `{"access_token":["at-secret-3"]}`},
		{name: "no token in it", value: `{"token_type":"Bearer"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, rdb, prefix, tt.name)
			require.NoError(t, rdb.Set(t.Context(), tokenKey(prefix, tt.name), tt.value, 0).Err())
			tok, err := s.Load(t.Context())
			require.Error(t, err)
			assert.Nil(t, tok)
			assert.True(t, strings.HasPrefix(err.Error(), "redisstore: "), err.Error())
			assert.NotErrorIs(t, err, store.ErrNotFound)
			assert.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestSaveNil(t *testing.T) {
	rdb := newClient(t)
	s := newStore(t, rdb, testPrefix(t, rdb), "svc")
	assert.EqualError(t, s.Save(t.Context(), nil), "redisstore: Save of a nil token")
}

// deadAddr returns a loopback address where nothing listens.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestRefreshOnlyToken: a token with a refresh token and no access token,
// as a user starts from one, goes through the Store whichever way it gets
// there: saved under the lock, or written into Redis by another program.
func TestRefreshOnlyToken(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	tests := []struct {
		name  string
		put   func(t *testing.T, s *redisstore.Store, key string)
		value string // the stored JSON afterwards
	}{
		{name: "saved under the lock", put: func(t *testing.T, s *redisstore.Store, _ string) {
			unlock, err := s.Lock(t.Context())
			require.NoError(t, err)
			require.NoError(t, s.Save(t.Context(), &oauth2.Token{RefreshToken: "rt-1"}))
			require.NoError(t, unlock())
		}, value: `{"access_token":"","refresh_token":"rt-1"}`},
		{name: "written without an access_token field", put: func(t *testing.T, _ *redisstore.Store, key string) {
			require.NoError(t, rdb.Set(t.Context(), key, `{"refresh_token":"rt-1"}`, 0).Err())
		}, value: `{"refresh_token":"rt-1"}`},
		{name: "written with a null access token", put: func(t *testing.T, _ *redisstore.Store, key string) {
			require.NoError(t, rdb.Set(t.Context(), key, `{"access_token":null,"refresh_token":"rt-1"}`, 0).Err())
		}, value: `{"access_token":null,"refresh_token":"rt-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t, rdb, prefix, tt.name)
			tt.put(t, s, tokenKey(prefix, tt.name))
			raw, err := rdb.Get(t.Context(), tokenKey(prefix, tt.name)).Result()
			require.NoError(t, err)
			assert.JSONEq(t, tt.value, raw)

			got, err := s.Load(t.Context())
			require.NoError(t, err)
			assert.Empty(t, got.AccessToken)
			assert.Equal(t, "rt-1", got.RefreshToken)
			assert.True(t, got.Expiry.IsZero())
		})
	}
}
