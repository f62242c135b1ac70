package store_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/internal/storekey"
	"github.com/seamlessauth/bearer/store"
)

// TestSaveKeyBounds: Memory and File keep a key of up to storekey.Max
// bytes, and refuse an empty one or a larger one without writing anything.
func TestSaveKeyBounds(t *testing.T) {
	file, err := store.NewFile(filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, err)
	for name, ks := range map[string]store.KeyStore{"Memory": store.NewMemory(nil), "File": file} {
		t.Run(name, func(t *testing.T) {
			for _, key := range [][]byte{nil, {}, make([]byte, storekey.Max+1)} {
				assert.ErrorContains(t, ks.SaveKey(t.Context(), key), "store: SaveKey: the key", "%d bytes", len(key))
			}
			_, err := ks.LoadKey(t.Context())
			require.ErrorIs(t, err, store.ErrNotFound, "a refused key was written")

			largest := make([]byte, storekey.Max)
			largest[0], largest[len(largest)-1] = 'k', 'y'
			require.NoError(t, ks.SaveKey(t.Context(), largest))
			got, err := ks.LoadKey(t.Context())
			require.NoError(t, err)
			assert.Equal(t, largest, got)
		})
	}
}
