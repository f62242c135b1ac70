package storetest

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/store"
)

// TwoIdentitiesStore checks that two identities in one space share neither
// their token nor their lock.
func TwoIdentitiesStore(t *testing.T, cfg Config) {
	sp := newSpace(t, cfg)
	alice, bob := sp.store(t, "alice", 0), sp.store(t, "bob", 0)

	require.NoError(t, alice.Save(t.Context(), Tok("alice")))
	_, err := bob.Load(t.Context())
	require.ErrorIs(t, err, store.ErrNotFound, "bob sees alice's token")
	require.NoError(t, bob.Save(t.Context(), Tok("bob")))

	got, err := alice.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-alice", got.AccessToken)

	unlock := lock(t, t.Context(), alice)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	unlockBob := lock(t, ctx, bob, "alice's lock held bob's")
	require.NoError(t, bob.Save(t.Context(), Tok("bob2")), "bob saves while alice holds her lock")
	require.NoError(t, unlockBob())
	require.NoError(t, alice.Clear(t.Context()))
	require.NoError(t, unlock())

	got, err = bob.Load(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "at-bob2", got.AccessToken, "clearing alice touched bob")
	_, err = alice.Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, err, store.ErrCleared)
}

// TwoIdentitiesTransports checks that two users' Transports on one
// connection refresh their own lineages, that one user's refresh does not
// wait for the other's lock, and that one user's logout leaves the other
// logged in.
func TwoIdentitiesTransports(t *testing.T, cfg Config) {
	sp := newSpace(t, cfg)
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
		u.tr = NewTransport(t, srv, sp.store(t, u.name, 0), bearer.Config{
			OnLogout: func(_ context.Context, err error) { u.logouts <- err },
		})
		require.NoError(t, u.tr.SetToken(t.Context(), srv.Issue()))
	}

	// Alice's lock is held elsewhere (a refresh of hers in another
	// process); bob refreshes regardless.
	unlockAlice := lock(t, t.Context(), sp.store(t, "alice", 0))
	srv.RevokeAccessTokens()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	status, err := Get(ctx, users[1].tr, srv.APIURL)
	require.NoError(t, err, "bob waited for alice's lock")
	assert.Equal(t, http.StatusOK, status)
	require.NoError(t, unlockAlice())
	status, err = Get(t.Context(), users[0].tr, srv.APIURL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, int64(2), srv.Stats().Refreshes, "one refresh per user")
	assert.Zero(t, srv.Stats().ReuseDetections)

	stored := map[string]string{}
	for _, u := range users {
		own, err := u.tr.Token(t.Context())
		require.NoError(t, err)
		got, err := sp.store(t, u.name, 0).Load(t.Context())
		require.NoError(t, err)
		assert.Equal(t, own.AccessToken, got.AccessToken, "%s's stored token", u.name)
		stored[u.name] = own.RefreshToken
	}
	require.NotEqual(t, stored["alice"], stored["bob"])

	// Alice's session is revoked: she is logged out, bob goes on.
	srv.RevokeLineage(stored["alice"])
	_, err = Get(t.Context(), users[0].tr, srv.APIURL)
	require.True(t, errors.Is(err, bearer.ErrLoggedOut), "alice: %v", err)
	require.Len(t, users[0].logouts, 1)
	_, err = sp.store(t, "alice", 0).Load(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound, "alice's logout clears her token")
	assert.ErrorIs(t, err, store.ErrCleared, "alice's logout leaves the mark of a logout")

	srv.RevokeAccessTokens()
	status, err = Get(t.Context(), users[1].tr, srv.APIURL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status, "bob")
	assert.Empty(t, users[1].logouts, "bob was logged out")
	_, err = sp.store(t, "bob", 0).Load(t.Context())
	assert.NoError(t, err, "bob's token")
}

// lock takes st's lock, for the test to release. If the test stops first,
// the lock is released at its end: a held lock keeps a connection, which
// closing a pool would wait for.
func lock(t *testing.T, ctx context.Context, st Store, msgAndArgs ...any) func() error {
	t.Helper()
	unlock, err := st.Lock(ctx)
	require.NoError(t, err, msgAndArgs...)
	t.Cleanup(func() { unlock() })
	return unlock
}

// Tok is a token pair named for whom it belongs to.
func Tok(name string) *oauth2.Token {
	return &oauth2.Token{AccessToken: "at-" + name, RefreshToken: "rt-" + name, TokenType: "Bearer"}
}
