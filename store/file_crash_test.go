//go:build unix

package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/store"
)

// crashPathEnv, when set, makes TestFileCrashHelper the child of
// TestFileCrashBetweenWriteAndRename: it saves a token to that path and
// stops between writing the temporary file and renaming it.
const crashPathEnv = "BEARER_STORE_CRASH_PATH"

const writtenPrefix = "written "

// TestFileCrashHelper is run as a child process. It prints the temporary
// file's path once written, then waits, without renaming, until it is
// killed (or its stdin closes).
func TestFileCrashHelper(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("run as a child process by TestFileCrashBetweenWriteAndRename")
	}
	f := newFile(t, path)
	store.SetBeforeRename(f, func(tmp string) error {
		fmt.Printf("%s%s\n", writtenPrefix, tmp)
		io.Copy(io.Discard, os.Stdin)
		return errors.New("the parent closed stdin instead of killing the child")
	})
	assert.NoError(t, f.Save(context.Background(), &oauth2.Token{AccessToken: "at_new"}))
}

// TestFileCrashBetweenWriteAndRename kills a process with SIGKILL after it
// wrote and synced its new token to the temporary file, before the rename.
// The token file still holds the old token, the leftover temporary file is
// never taken for the token, and later Saves work.
func TestFileCrashBetweenWriteAndRename(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	require.NoError(t, newFile(t, path).Save(ctx, &oauth2.Token{AccessToken: "at_old"}))
	before := snapshot(t, path)

	cmd := exec.Command(os.Args[0], "-test.run=^TestFileCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	tmp := waitForLine(t, stdout, writtenPrefix, 30*time.Second)
	written, err := os.ReadFile(tmp)
	require.NoError(t, err, "the child's temporary file")
	require.Contains(t, string(written), "at_new", "the child had not written its token yet")

	require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred cleanup runs
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, "signal: killed", exit.String())

	assert.Equal(t, before, snapshot(t, path), "the token file changed")
	assert.FileExists(t, tmp, "the leftover temporary file (the crash is what the test simulates)")
	tok, err := newFile(t, path).Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at_old", tok.AccessToken)

	f := newFile(t, path)
	require.NoError(t, f.Save(ctx, &oauth2.Token{AccessToken: "at_after"}))
	tok, err = f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at_after", tok.AccessToken)
}

// waitForLine reads lines from r until one starts with prefix, and returns
// the rest of it. It reads on another goroutine, which ends when r does.
func waitForLine(t *testing.T, r io.Reader, prefix string, timeout time.Duration) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				found <- rest
				io.Copy(io.Discard, r)
				return
			}
		}
		close(found)
	}()
	select {
	case line, ok := <-found:
		require.True(t, ok, "the child ended without printing %q", prefix)
		return line
	case <-time.After(timeout):
		t.Fatalf("the child did not print %q within %v", prefix, timeout)
		return ""
	}
}

// TestFileFailedRenameKeepsOldFile fails a Save between write and rename,
// in process: the old token stays and the temporary file is removed.
func TestFileFailedRenameKeepsOldFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token.json")
	f := newFile(t, path)
	require.NoError(t, f.Save(ctx, &oauth2.Token{AccessToken: "at_old"}))
	before := snapshot(t, path)

	var tmp string
	store.SetBeforeRename(f, func(name string) error {
		tmp = name
		return errors.New("simulated failure")
	})
	err := f.Save(ctx, &oauth2.Token{AccessToken: "at_" + secret})
	assert.ErrorContains(t, err, path)
	assert.ErrorContains(t, err, "simulated failure")
	assertNoSecret(t, err)

	assert.Equal(t, before, snapshot(t, path))
	require.NotEmpty(t, tmp)
	assert.Equal(t, filepath.Dir(path), filepath.Dir(tmp), "the temporary file is not next to the token file")
	assert.NoFileExists(t, tmp)
	tok, err := f.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "at_old", tok.AccessToken)
}
