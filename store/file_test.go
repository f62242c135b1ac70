package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// Secrets in test tokens carry this marker, so that a test can check that
// no error message quotes one.
const secret = "SECRET"

func testToken() *oauth2.Token {
	return (&oauth2.Token{
		AccessToken:  "at_" + secret + "_access",
		TokenType:    "Bearer",
		RefreshToken: "rt_" + secret + "_refresh",
		Expiry:       time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600)),
	}).WithExtra(map[string]any{
		"id_token": "eyJ" + secret + "_id",
		"scope":    "read write",
		"other":    "not kept by default",
	})
}

func newFile(t *testing.T, path string, opts ...store.FileOption) *store.File {
	t.Helper()
	f, err := store.NewFile(path, opts...)
	require.NoError(t, err)
	return f
}

// assertNoSecret checks that err does not quote a token.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		assert.NotContains(t, err.Error(), secret, "an error quotes a token")
	}
}

func TestNewFileRejectsEmptyPath(t *testing.T) {
	f, err := store.NewFile("")
	assert.Nil(t, f)
	assert.ErrorContains(t, err, "store: ")
	assert.ErrorContains(t, err, "empty")
}

func TestNewFileMakesPathAbsolute(t *testing.T) {
	f := newFile(t, "token.json")
	assert.True(t, filepath.IsAbs(f.Path()), f.Path())
	assert.Equal(t, "token.json", filepath.Base(f.Path()))
}

func TestFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path)
	want := testToken()

	require.NoError(t, f.Save(ctx, want))
	got, err := newFile(t, path).Load(ctx) // a second store: nothing is cached
	require.NoError(t, err)

	assert.Equal(t, want.AccessToken, got.AccessToken)
	assert.Equal(t, want.TokenType, got.TokenType)
	assert.Equal(t, want.RefreshToken, got.RefreshToken)
	assert.True(t, want.Expiry.Equal(got.Expiry), "expiry %v, want %v", got.Expiry, want.Expiry)
	assert.Equal(t, "eyJ"+secret+"_id", got.Extra("id_token"))
	assert.Equal(t, "read write", got.Extra("scope"))
	assert.Nil(t, got.Extra("other"), "an extra not asked for was kept")
}

func TestFileKeepsExtrasAskedFor(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path, store.WithExtras("other", "absent"))
	require.NoError(t, f.Save(ctx, testToken()))

	got, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "not kept by default", got.Extra("other"))
	assert.Nil(t, got.Extra("absent"))
	assert.Equal(t, "eyJ"+secret+"_id", got.Extra("id_token"), "the default extras are kept too")
}

func TestFileTokenWithoutExpiryOrExtras(t *testing.T) {
	ctx := context.Background()
	f := newFile(t, filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, f.Save(ctx, &oauth2.Token{AccessToken: "at_only"}))

	got, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at_only", got.AccessToken)
	assert.Empty(t, got.RefreshToken)
	assert.True(t, got.Expiry.IsZero(), "a token without expiry gained one: %v", got.Expiry)
	assert.Nil(t, got.Extra("id_token"))
}

func TestFileFormatNamesItself(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, newFile(t, path).Save(context.Background(), testToken()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)

	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	require.NoError(t, json.Unmarshal(data, &head))
	assert.Equal(t, "bearer-token", head.Format)
	assert.Equal(t, 1, head.Version)
}

func TestFileLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "token.json")
	_, err := newFile(t, path).Load(context.Background())
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorContains(t, err, path)
	assert.NoDirExists(t, filepath.Dir(path), "Load created a directory")
}

func TestFileSaveReplaces(t *testing.T) {
	ctx := context.Background()
	f := newFile(t, filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, f.Save(ctx, &oauth2.Token{AccessToken: "one", RefreshToken: "r1"}))
	require.NoError(t, f.Save(ctx, &oauth2.Token{AccessToken: "two"}))

	got, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "two", got.AccessToken)
	assert.Empty(t, got.RefreshToken, "a field of the old token survived")
}

func TestFileSaveRejectsTokenWithoutAnyToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path)
	for _, tok := range []*oauth2.Token{nil, {TokenType: "Bearer"}} {
		err := f.Save(context.Background(), tok)
		assert.ErrorContains(t, err, path)
		assertNoSecret(t, err)
	}
	assert.NoFileExists(t, path)
}

// TestFileKeepsRefreshOnlyToken: a token with only a refresh token, as a
// user starts from one, is saved and loaded as it is.
func TestFileKeepsRefreshOnlyToken(t *testing.T) {
	f := newFile(t, filepath.Join(t.TempDir(), "token.json"))
	require.NoError(t, f.Save(context.Background(), &oauth2.Token{RefreshToken: "rt_" + secret}))
	got, err := f.Load(context.Background())
	require.NoError(t, err)
	assert.Empty(t, got.AccessToken)
	assert.Equal(t, "rt_"+secret, got.RefreshToken)
}

func TestFileClear(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path)
	require.NoError(t, f.Save(ctx, testToken()))

	require.NoError(t, f.Clear(ctx))
	assertCleared(t, f)
	assert.NoError(t, f.Clear(ctx), "clearing a cleared file")
	assertCleared(t, f)
	require.NoError(t, f.Save(ctx, testToken()), "a new login replaces the tombstone")
	got, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, testToken().AccessToken, got.AccessToken)

	missing := filepath.Join(t.TempDir(), "no", "dir", "token.json")
	assert.NoError(t, newFile(t, missing).Clear(ctx), "clearing in a missing directory")
	assert.NoFileExists(t, missing)
	_, err = newFile(t, missing).Load(ctx)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.NotErrorIs(t, err, store.ErrCleared, "never cleared")
}

// assertCleared checks that f holds no token and remembers the Clear: its
// file is a private tombstone without any token in it.
func assertCleared(t *testing.T, f *store.File) {
	t.Helper()
	_, err := f.Load(context.Background())
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, err, store.ErrCleared)
	assertNoSecret(t, err)
	data, err := os.ReadFile(f.Path())
	require.NoError(t, err)
	assert.NotContains(t, string(data), secret)
	assert.NotContains(t, string(data), testToken().AccessToken)
	info, err := os.Stat(f.Path())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestFileHonoursEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path)

	_, err := f.Load(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, f.Save(ctx, testToken()), context.Canceled)
	assert.ErrorIs(t, f.Clear(ctx), context.Canceled)
	_, err = f.Lock(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NoFileExists(t, path)
}

func TestFileErrorsArePrefixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, os.Mkdir(path, 0o700))
	_, err := newFile(t, path).Load(context.Background())
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "store: "), err.Error())
	assert.False(t, errors.Is(err, store.ErrNotFound))
}

// TestFileRemovesCrashLeftovers: the temporary files that a Save killed
// before its rename leaves next to the token file hold full token pairs.
// Save removes those more than a minute old (a younger one may be another
// process's Save under way); Clear removes them all. Files of other names
// are left alone.
func TestFileRemovesCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "token.json")
	f := newFile(t, path)
	plant := func(name string, age time.Duration) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(`{"access_token":"at_`+secret+`"}`), 0o600))
		old := time.Now().Add(-age)
		require.NoError(t, os.Chtimes(p, old, old))
		return p
	}
	stale := plant(".token.json.tmp-1234567", time.Hour)
	fresh := plant(".token.json.tmp-7654321", time.Second)
	others := []string{
		plant(".other.json.tmp-1234567", time.Hour),
		plant("token.json.tmp-1234567", time.Hour),
		plant(".token.json.tmp", time.Hour),
	}

	require.NoError(t, f.Save(ctx, testToken()))
	assert.NoFileExists(t, stale, "a leftover an hour old")
	assert.FileExists(t, fresh, "a temporary file a second old may be a Save under way")

	require.NoError(t, f.Clear(ctx))
	assert.NoFileExists(t, fresh, "Clear leaves no copy of the token")
	plant(".token.json.tmp-999", 0)
	require.NoError(t, f.Clear(ctx), "clearing an empty store")
	assert.NoFileExists(t, filepath.Join(dir, ".token.json.tmp-999"))
	for _, p := range others {
		assert.FileExists(t, p, "not a temporary file of this store")
	}
}
