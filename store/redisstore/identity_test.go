package redisstore_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// TestTwoIdentitiesStore: two identities on one Redis and one prefix share
// neither their token nor their lock.
func TestTwoIdentitiesStore(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	alice, bob := newStore(t, rdb, prefix, "alice"), newStore(t, rdb, prefix, "bob")

	require.NoError(t, alice.Save(t.Context(), tok("alice")))
	_, err := bob.Load(t.Context())
	require.ErrorIs(t, err, store.ErrNotFound, "bob sees alice's token")
	require.NoError(t, bob.Save(t.Context(), tok("bob")))

	got, err := alice.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-alice", got.AccessToken)

	unlock, err := alice.Lock(t.Context())
	require.NoError(t, err)
	unlockBob, err := bob.Lock(t.Context())
	require.NoError(t, err, "alice's lock held bob's")
	require.NoError(t, bob.Save(t.Context(), tok("bob2")), "bob saves while alice holds her lock")
	require.NoError(t, unlockBob())
	require.NoError(t, alice.Clear(t.Context()))
	require.NoError(t, unlock())

	got, err = bob.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-bob2", got.AccessToken, "clearing alice touched bob")
	_, err = alice.Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestTwoIdentitiesTransports: two users' Transports on one Redis refresh
// their own lineages, and one user's logout leaves the other logged in.
func TestTwoIdentitiesTransports(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	srv := bearertest.NewServer(bearertest.Options{Rotate: true, ReuseDetection: true})
	defer srv.Close()

	type user struct {
		name    string
		tr      *bearer.Transport
		logouts chan error
	}
	users := []*user{{name: "alice"}, {name: "bob"}}
	for _, u := range users {
		u.logouts = make(chan error, 1)
		u.tr = apiTransport(t, srv, newStore(t, rdb, prefix, u.name), bearer.Config{
			OnLogout: func(_ context.Context, err error) { u.logouts <- err },
		})
		require.NoError(t, u.tr.SetToken(t.Context(), srv.Issue()))
	}

	srv.RevokeAccessTokens()
	for _, u := range users {
		status, err := get(t.Context(), u.tr, srv.APIURL)
		require.NoError(t, err, u.name)
		assert.Equal(t, http.StatusOK, status, u.name)
	}
	assert.Equal(t, int64(2), srv.Stats().Refreshes, "one refresh per user")
	assert.Zero(t, srv.Stats().ReuseDetections)

	stored := map[string]string{}
	for _, u := range users {
		own, err := u.tr.Token(t.Context())
		require.NoError(t, err)
		got, err := newStore(t, rdb, prefix, u.name).Load(t.Context())
		require.NoError(t, err)
		assert.Equal(t, own.AccessToken, got.AccessToken, "%s's stored token", u.name)
		stored[u.name] = own.RefreshToken
	}
	require.NotEqual(t, stored["alice"], stored["bob"])

	// Alice's session is revoked: she is logged out, bob goes on.
	srv.RevokeLineage(stored["alice"])
	_, err := get(t.Context(), users[0].tr, srv.APIURL)
	require.True(t, errors.Is(err, bearer.ErrLoggedOut), "alice: %v", err)
	require.Len(t, users[0].logouts, 1)
	_, err = newStore(t, rdb, prefix, "alice").Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound, "alice's logout clears her key")

	srv.RevokeAccessTokens()
	status, err := get(t.Context(), users[1].tr, srv.APIURL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "bob")
	assert.Empty(t, users[1].logouts, "bob was logged out")
	_, err = newStore(t, rdb, prefix, "bob").Load(t.Context())
	assert.NoError(t, err, "bob's key")
}
