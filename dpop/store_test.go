package dpop

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/store"
)

func TestKeyKeptInStores(t *testing.T) {
	ctx := context.Background()
	file, err := store.NewFile(filepath.Join(t.TempDir(), "sub", "token.json"))
	require.NoError(t, err)
	for name, ks := range map[string]store.KeyStore{"Memory": store.NewMemory(nil), "File": file} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(ctx, ks)
			require.ErrorIs(t, err, store.ErrNotFound)
			k, err := GenerateKey()
			require.NoError(t, err)
			require.NoError(t, Save(ctx, ks, k))
			back, err := Load(ctx, ks)
			require.NoError(t, err)
			assert.Equal(t, k.Thumbprint(), back.Thumbprint())
		})
	}
	info, err := os.Stat(filepath.Join(filepath.Dir(file.Path()), "token.json.dpop-key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the key file is private to its owner")
}

func TestLoadOrGenerateMakesOneKey(t *testing.T) {
	// Two File stores on one path, as two processes have: the OS lock
	// makes one of them generate the key and the other load it.
	path := filepath.Join(t.TempDir(), "token.json")
	var wg sync.WaitGroup
	jkts := make([]string, 8)
	for i := range jkts {
		wg.Go(func() {
			f, err := store.NewFile(path)
			if !assert.NoError(t, err) {
				return
			}
			k, err := LoadOrGenerate(context.Background(), f)
			if assert.NoError(t, err) {
				jkts[i] = k.Thumbprint()
			}
		})
	}
	wg.Wait()
	for _, j := range jkts {
		assert.Equal(t, jkts[0], j)
	}
}

func TestLoadRefusesAKeyOthersMayRead(t *testing.T) {
	ctx := context.Background()
	f, err := store.NewFile(filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, err)
	k, err := GenerateKey()
	require.NoError(t, err)
	require.NoError(t, Save(ctx, f, k))
	keyPath := f.Path() + ".dpop-key"
	require.NoError(t, os.Chmod(keyPath, 0o644))
	_, err = Load(ctx, f)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "group or others")
	data, _ := os.ReadFile(keyPath)
	assert.NotContains(t, err.Error(), string(data[30:60]), "the error does not show the key")
	require.Error(t, Save(ctx, f, k), "nor is it replaced: the user should look at it")
}
