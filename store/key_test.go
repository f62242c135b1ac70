//go:build unix

package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The key file is refused as the token file is: a link, or a file of
// another user, is neither read nor replaced.
func TestFileKeyRefusesLinksAndOtherOwners(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := newFile(t, filepath.Join(dir, "token.json"))
	keyPath := f.Path() + ".dpop-key"

	target := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.WriteFile(target, []byte("PEM"), 0o600))
	require.NoError(t, os.Symlink(target, keyPath))
	_, err := f.LoadKey(ctx)
	assert.ErrorContains(t, err, "symbolic link")
	assert.Error(t, f.SaveKey(ctx, []byte("new")))
	b, err := os.ReadFile(target)
	require.NoError(t, err)
	assert.Equal(t, "PEM", string(b), "the link's target is left alone")
	require.NoError(t, os.Remove(keyPath))

	if os.Geteuid() != 0 {
		t.Skip("making a file of another user needs root")
	}
	require.NoError(t, os.WriteFile(keyPath, []byte("PEM"), 0o600))
	require.NoError(t, os.Chown(keyPath, 65534, 65534))
	_, err = f.LoadKey(ctx)
	assert.ErrorContains(t, err, "belongs to user")
	assert.Error(t, f.SaveKey(ctx, []byte("new")))
}

// A process killed while saving the key leaves a temporary copy of the
// private key beside it; SaveKey removes those over a minute old, as Save
// does the token's, and Clear leaves them (a key is not a token).
func TestFileSaveKeyRemovesStaleTemporaryKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := newFile(t, filepath.Join(dir, "token.json"))
	stale := filepath.Join(dir, ".token.json.dpop-key.tmp-123")
	young := filepath.Join(dir, ".token.json.dpop-key.tmp-456")
	for _, p := range []string{stale, young} {
		require.NoError(t, os.WriteFile(p, []byte("PEM"), 0o600))
	}
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(stale, old, old))

	require.NoError(t, f.SaveKey(ctx, []byte("PEM2")))
	_, err := os.Stat(stale)
	assert.ErrorIs(t, err, os.ErrNotExist, "a stale copy of a key is removed")
	_, err = os.Stat(young)
	assert.NoError(t, err, "a young one may be another process's SaveKey under way")
	got, err := f.LoadKey(ctx)
	require.NoError(t, err)
	assert.Equal(t, "PEM2", string(got))
}
