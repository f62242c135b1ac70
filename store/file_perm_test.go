//go:build unix

package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// withUmask runs the rest of the test under mask. The umask belongs to the
// process: tests that use it must not run in parallel.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Mode().Perm()
}

func TestFileModes(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o077} {
		t.Run(fmt.Sprintf("umask %03o", mask), func(t *testing.T) {
			withUmask(t, mask)
			root := t.TempDir()
			path := filepath.Join(root, "a", "b", "token.json")
			f := newFile(t, path)

			require.NoError(t, f.Save(context.Background(), testToken()))
			unlock, err := f.Lock(context.Background())
			require.NoError(t, err)
			require.NoError(t, unlock())

			assert.Equal(t, os.FileMode(0o600), mode(t, path), "token file")
			assert.Equal(t, os.FileMode(0o600), mode(t, path+".lock"), "lock file")
			assert.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(root, "a")), "created directory")
			assert.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(root, "a", "b")), "created directory")
		})
	}
}

func TestFileSaveLeavesExistingDirectoryModeAlone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, newFile(t, filepath.Join(dir, "token.json")).Save(context.Background(), testToken()))
	assert.Equal(t, os.FileMode(0o755), mode(t, dir))
}

// TestFileRefusesOpenModes: a token file that group or others may access
// may have leaked. Load and Save refuse it, say how to fix it, and leave it
// as it is; once fixed, it loads.
func TestFileRefusesOpenModes(t *testing.T) {
	good := goodFile(t)
	for _, m := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o602, 0o666} {
		t.Run(m.String(), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "token.json")
			require.NoError(t, os.WriteFile(path, good, 0o600))
			require.NoError(t, os.Chmod(path, m))
			before := snapshot(t, path)
			f := newFile(t, path)

			tok, err := f.Load(ctx)
			assert.Nil(t, tok)
			assertRefusedMode(t, err, path, m)
			assertRefusedMode(t, f.Save(ctx, testToken()), path, m)
			assert.Equal(t, before, snapshot(t, path), "the file or its mode changed")

			require.NoError(t, os.Chmod(path, 0o600))
			_, err = f.Load(ctx)
			assert.NoError(t, err, "after chmod 600")
		})
	}
}

func assertRefusedMode(t *testing.T, err error, path string, m os.FileMode) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorContains(t, err, "store: ")
	assert.ErrorContains(t, err, path)
	assert.ErrorContains(t, err, fmt.Sprintf("mode %04o", m))
	assert.ErrorContains(t, err, "chmod 600 "+path)
	assertNoSecret(t, err)
}

func TestFileOwnerOnlyModesAreAccepted(t *testing.T) {
	for _, m := range []os.FileMode{0o600, 0o400} {
		t.Run(m.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token.json")
			require.NoError(t, os.WriteFile(path, goodFile(t), 0o600))
			require.NoError(t, os.Chmod(path, m))
			_, err := newFile(t, path).Load(context.Background())
			assert.NoError(t, err)
		})
	}
}

// TestFileClearReplacesOpenFile: Clear ends a session, and replacing a
// token file that others could read with a private tombstone is the fix,
// not a risk.
func TestFileClearReplacesOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, os.WriteFile(path, goodFile(t), 0o600))
	require.NoError(t, os.Chmod(path, 0o644))
	f := newFile(t, path)
	require.NoError(t, f.Clear(context.Background()))
	assertCleared(t, f)
}

// TestFileReadOnlyDirectory: with no permission to write in the directory,
// Save fails with an error naming the path, and the token there is intact
// and still loads. Root ignores permission bits, so as root the directory
// is made immutable (chattr +i) instead, which binds root too; where that
// is not possible the test is skipped.
func TestFileReadOnlyDirectory(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "token.json")
	f := newFile(t, path)
	require.NoError(t, f.Save(ctx, testToken()))
	before := snapshot(t, path)
	makeReadOnly(t, dir)

	err := f.Save(ctx, &oauth2.Token{AccessToken: "at_new_" + secret})
	require.Error(t, err)
	assert.ErrorContains(t, err, "store: ")
	assert.ErrorContains(t, err, path)
	assertNoSecret(t, err)
	assert.Equal(t, before, snapshot(t, path), "the file changed")
	tok, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, testToken().AccessToken, tok.AccessToken)
}

// makeReadOnly makes dir refuse new entries until the test ends.
func makeReadOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(dir, 0o500))
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	out, err := exec.Command("chattr", "+i", dir).CombinedOutput()
	if err != nil {
		t.Skipf("running as root, where mode bits do not stop writes, and chattr +i is not available here (%v: %s): "+
			"skipping the read-only directory case; TestFileParentIsAFile still covers a directory that cannot be written", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	})
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err == nil {
		os.Remove(probe)
		t.Skip("running as root and chattr +i did not stop writes here: skipping the read-only directory case")
	}
}

// TestFileRefusesAnotherUsersFile: a token file that belongs to another
// user is refused on Load and never replaced by Save, even with mode 0600:
// whoever planted it would log this process in as them, or read what it
// saves. Clear still removes it.
func TestFileRefusesAnotherUsersFile(t *testing.T) {
	ctx := context.Background()
	var path string
	if os.Geteuid() == 0 {
		path = filepath.Join(t.TempDir(), "token.json")
		require.NoError(t, newFile(t, path).Save(ctx, testToken()))
		require.NoError(t, os.Chown(path, 65534, 65534)) // nobody
	} else {
		path = "/etc/passwd" // root's; Load and Save must not get past the owner
	}
	before := snapshot(t, path)
	f := newFile(t, path)

	_, err := f.Load(ctx)
	assert.ErrorContains(t, err, "belongs to user")
	assert.ErrorContains(t, err, path)
	assertNoSecret(t, err)
	err = f.Save(ctx, testToken())
	assert.ErrorContains(t, err, "belongs to user")
	assert.Equal(t, before, snapshot(t, path), "the file was replaced")

	if os.Geteuid() == 0 {
		require.NoError(t, f.Clear(ctx))
		assertCleared(t, f)
	}
}
