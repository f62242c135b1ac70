package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// goodFile returns the bytes of a valid token file.
func goodFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "good.json")
	require.NoError(t, newFile(t, path).Save(context.Background(), testToken()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// snapshot describes what is at path, to check that a failed operation left
// it as it was.
func snapshot(t *testing.T, path string) string {
	t.Helper()
	info, err := os.Lstat(path)
	require.NoError(t, err)
	switch {
	case info.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(path)
		require.NoError(t, err)
		return "symlink to " + target
	case info.IsDir():
		entries, err := os.ReadDir(path)
		require.NoError(t, err)
		return "directory of " + strings.Repeat("x", len(entries))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return info.Mode().String() + " " + string(data)
}

// TestFileBadInput puts something other than a token file of this store at
// the path. Load, Save and Clear must each fail with an error that names
// the path and says what is wrong, leave what is there as it was, and never
// quote a token.
func TestFileBadInput(t *testing.T) {
	good := goodFile(t)
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want string // in every error
	}{
		{"truncated", writeBytes(good[:len(good)/2]), "not valid JSON"},
		{"corrupt bytes", writeBytes([]byte("\x00\xff" + secret + "\x01garbage")), "not valid JSON"},
		{"corrupt JSON", writeBytes([]byte(`{"format": "bearer-token", "version": 1, "access_token": "at_` + secret + `",,}`)), "not valid JSON"},
		{"empty", writeBytes(nil), "is empty"},
		{"only whitespace", writeBytes([]byte(" \n")), "not valid JSON"},
		{"x/oauth2 token JSON", writeBytes([]byte(`{"access_token":"at_` + secret + `","token_type":"Bearer","refresh_token":"rt_` + secret + `","expiry":"2031-01-01T00:00:00Z"}`)), "not a bearer token file"},
		{"JSON array", writeBytes([]byte(`["at_` + secret + `"]`)), "not a bearer token file"},
		{"JSON string", writeBytes([]byte(`"at_` + secret + `"`)), "not a bearer token file"},
		{"another format", writeBytes([]byte(`{"format":"ssh-key","version":1,"access_token":"at_` + secret + `"}`)), "not a bearer token file"},
		{"later version", writeBytes([]byte(`{"format":"bearer-token","version":2,"tokens":["at_` + secret + `"]}`)), "format version 2"},
		{"version not a number", writeBytes([]byte(`{"format":"bearer-token","version":"one","access_token":"at_` + secret + `"}`)), "no valid format version"},
		{"no token at all", writeBytes([]byte(`{"format":"bearer-token","version":1,"token_type":"Bearer"}`)), "neither an access nor a refresh token"},
		{"malformed field", writeBytes([]byte(`{"format":"bearer-token","version":1,"access_token":"at_` + secret + `","extra":["` + secret + `"]}`)), `malformed "extra" field`},
		{"malformed expiry", writeBytes([]byte(`{"format":"bearer-token","version":1,"access_token":"at_` + secret + `","expiry":"` + secret + `"}`)), `malformed "expiry" field`},
		{"too large", writeBytes([]byte(`{"format":"bearer-token","version":1,"access_token":"` + strings.Repeat("a", 1<<20) + `"}`)), "larger than"},
		{"directory", func(t *testing.T, path string) {
			require.NoError(t, os.MkdirAll(filepath.Join(path, "inside"), 0o700))
		}, "is a directory"},
		{"symlink", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target.json")
			require.NoError(t, os.WriteFile(target, good, 0o600))
			require.NoError(t, os.Symlink(target, path))
		}, "symbolic link"},
	}
	ops := []struct {
		name string
		do   func(f *store.File) error
	}{
		{"Load", func(f *store.File) error {
			tok, err := f.Load(context.Background())
			if tok != nil {
				return assert.AnError // a token from a bad file
			}
			return err
		}},
		{"Save", func(f *store.File) error {
			return f.Save(context.Background(), &oauth2.Token{AccessToken: "at_new_" + secret})
		}},
		{"Clear", func(f *store.File) error { return f.Clear(context.Background()) }},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "token.json")
				tt.make(t, path)
				before := snapshot(t, path)

				err := op.do(newFile(t, path))

				require.Error(t, err)
				assert.NotErrorIs(t, err, store.ErrNotFound)
				assert.NotEqual(t, assert.AnError, err, "a bad file gave a token")
				assert.ErrorContains(t, err, "store: ")
				assert.ErrorContains(t, err, path)
				assert.ErrorContains(t, err, tt.want)
				assertNoSecret(t, err)
				assert.Equal(t, before, snapshot(t, path), "the file changed")
				assertNoTempFiles(t, filepath.Dir(path))
			})
		}
	}
}

func writeBytes(data []byte) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		require.NoError(t, os.WriteFile(path, data, 0o600))
	}
}

// assertNoTempFiles checks that a failed Save cleaned up after itself.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		assert.NotContains(t, e.Name(), ".tmp-", "a temporary file was left behind")
	}
}

// TestFileBadInputFixed checks that the error is not sticky: once the user
// removes the bad file, the store works.
func TestFileBadInputFixed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	f := newFile(t, path)
	require.Error(t, f.Save(ctx, testToken()))

	require.NoError(t, os.Remove(path))
	require.NoError(t, f.Save(ctx, testToken()))
	got, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, testToken().AccessToken, got.AccessToken)
}

// TestFileParentIsAFile gives a path whose directory cannot exist because
// a regular file holds its name: this fails even for root.
func TestFileParentIsAFile(t *testing.T) {
	ctx := context.Background()
	parent := filepath.Join(t.TempDir(), "notadir")
	require.NoError(t, os.WriteFile(parent, []byte("user data"), 0o600))
	path := filepath.Join(parent, "token.json")
	f := newFile(t, path)

	err := f.Save(ctx, testToken())
	require.Error(t, err)
	assert.ErrorContains(t, err, "store: ")
	assert.ErrorContains(t, err, path)
	assertNoSecret(t, err)

	_, err = f.Load(ctx)
	require.Error(t, err)
	assert.ErrorContains(t, err, path)
	assert.NotErrorIs(t, err, store.ErrNotFound, "a path that cannot hold a file is not an empty store")

	_, err = f.Lock(ctx)
	assert.ErrorContains(t, err, path)

	data, err := os.ReadFile(parent)
	require.NoError(t, err)
	assert.Equal(t, "user data", string(data))
}
