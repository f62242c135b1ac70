package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seamlessauth/bearer/store"
)

// fuzzMarker is part of every token value in the seed files, so that the
// fuzz target can check that no error quotes one.
const fuzzMarker = "SECRET"

// FuzzFileLoad writes the input as a token file (mode 0600) and loads it
// with File.Load. A token comes without an error and an error without a
// token; an error is prefixed "store: " and never quotes the file (tokens
// in the seeds carry fuzzMarker); a token loaded has an access token or a
// refresh token, and survives Save and Load unchanged, the kept extras
// included; and Load never changes the file.
func FuzzFileLoad(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		fh, err := os.CreateTemp(dir, "token-*.json")
		require.NoError(t, err)
		path := fh.Name()
		defer os.Remove(path)
		_, err = fh.Write(data)
		require.NoError(t, err)
		require.NoError(t, fh.Close())
		ctx := context.Background()

		file, err := store.NewFile(path)
		require.NoError(t, err)
		tok, err := file.Load(ctx)
		assert.True(t, (tok == nil) != (err == nil), "token %v, error %v", tok != nil, err)
		after, rerr := os.ReadFile(path)
		require.NoError(t, rerr)
		assert.Equal(t, data, after, "Load changed the file")
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), "store: "), "unprefixed error %q", err)
			assert.NotContains(t, err.Error(), fuzzMarker, "the error quotes the file")
			return
		}
		assert.True(t, tok.AccessToken != "" || tok.RefreshToken != "", "a token with neither an access nor a refresh token")

		again, err := store.NewFile(filepath.Join(dir, filepath.Base(path)+".again"))
		require.NoError(t, err)
		defer os.Remove(again.Path())
		if !assert.NoError(t, again.Save(ctx, tok), "a token that was loaded cannot be saved") {
			return
		}
		back, err := again.Load(ctx)
		require.NoError(t, err)
		assert.Equal(t, tok.AccessToken, back.AccessToken)
		assert.Equal(t, tok.RefreshToken, back.RefreshToken)
		assert.Equal(t, tok.TokenType, back.TokenType)
		assert.True(t, tok.Expiry.Equal(back.Expiry), "expiry %v became %v", tok.Expiry, back.Expiry)
		for _, k := range []string{"id_token", "scope"} {
			if v := tok.Extra(k); v != nil && v != "" {
				assert.Equal(t, v, back.Extra(k), "extra %q", k)
			}
		}
	})
}
