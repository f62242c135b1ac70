package redisstore_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer"
	"github.com/seamlessauth/bearer/bearertest"
	"github.com/seamlessauth/bearer/dpop"
	"github.com/seamlessauth/bearer/internal/storekey"
	"github.com/seamlessauth/bearer/internal/storetest"
	"github.com/seamlessauth/bearer/store"
)

func TestDPoPKeyKeptBesideTheToken(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	ctx := t.Context()

	// Eight holders start together, each with its own client, as the
	// processes of a fleet: one key comes out of it.
	var wg sync.WaitGroup
	jkts := make([]string, 8)
	for i := range jkts {
		wg.Go(func() {
			k, err := dpop.LoadOrGenerate(ctx, newStore(t, newClient(t), prefix, "svc"))
			if assert.NoError(t, err) {
				jkts[i] = k.Thumbprint()
			}
		})
	}
	wg.Wait()
	for _, j := range jkts {
		assert.Equal(t, jkts[0], j)
	}
	raw, err := rdb.Get(ctx, prefix+"{svc}:dpop-key").Result()
	require.NoError(t, err)
	assert.Contains(t, raw, "PRIVATE KEY", "the key's stored form is PEM PKCS #8")

	s := newStore(t, rdb, prefix, "svc")
	require.NoError(t, s.Clear(ctx))
	k, err := dpop.Load(ctx, s)
	require.NoError(t, err, "Clear leaves the key")
	assert.Equal(t, jkts[0], k.Thumbprint())

	_, err = dpop.Load(ctx, newStore(t, rdb, prefix, "other"))
	assert.ErrorIs(t, err, store.ErrNotFound, "each identity its own key")
}

// Two processes share a DPoP-bound login through Redis: the one that did
// not log in gets the key from the store and its requests and refreshes
// prove possession of it.
func TestDPoPLoginSharedThroughRedis(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	ctx := context.Background()
	srv := bearertest.NewServer(bearertest.Options{DPoP: true, DPoPNonce: true, Rotate: true, ReuseDetection: true})
	t.Cleanup(srv.Close)
	cfg := srv.Config()

	holder := func() (*bearer.Transport, *dpop.Key) {
		st := newStore(t, newClient(t), prefix, "user-1")
		key, err := dpop.LoadOrGenerate(ctx, st)
		require.NoError(t, err)
		return storetest.NewTransport(t, srv, st, bearer.Config{DPoP: key}), key
	}
	a, aKey := holder()
	lctx := context.WithValue(ctx, oauth2.HTTPClient, aKey.Client(srv.Client()))
	code, _, err := srv.Authorize(ctx, cfg.AuthCodeURL("state"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(lctx, code)
	require.NoError(t, err)
	require.Equal(t, "DPoP", tok.TokenType)
	require.NoError(t, a.SetToken(ctx, tok))

	b, bKey := holder()
	assert.Equal(t, aKey.Thumbprint(), bKey.Thumbprint())
	for _, tr := range []*bearer.Transport{a, b, b, a} {
		status, err := storetest.Get(ctx, tr, srv.APIURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	srv.RevokeAccessTokens()
	for _, tr := range []*bearer.Transport{b, a} {
		status, err := storetest.Get(ctx, tr, srv.APIURL)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, status)
	}
	st := srv.Stats()
	assert.Equal(t, int64(1), st.Refreshes, "b refreshed with the shared key; a adopted the result")
	assert.Zero(t, st.DPoPRejected)
	assert.Zero(t, st.ReuseDetections)
}

// TestSaveKeyRefusesWhatNoStoreKeeps: an empty key and one over 16 KiB
// are refused, as the root stores refuse them, and nothing is written.
func TestSaveKeyRefusesWhatNoStoreKeeps(t *testing.T) {
	rdb := newClient(t)
	prefix := testPrefix(t, rdb)
	s := newStore(t, rdb, prefix, "svc")
	for _, key := range [][]byte{nil, make([]byte, storekey.Max+1)} {
		assert.ErrorContains(t, s.SaveKey(t.Context(), key), "redisstore: SaveKey: the key", "%d bytes", len(key))
	}
	_, err := s.LoadKey(t.Context())
	assert.ErrorIs(t, err, store.ErrNotFound)
}
