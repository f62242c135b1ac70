//go:build unix

package store_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFileLockRefusesWhatIsNotItsFile: the lock file is opened without
// following a symbolic link, so whoever can write the directory cannot make
// Lock create (or lock) a file elsewhere; a FIFO, which would block the
// open, and a directory are refused as well.
func TestFileLockRefusesWhatIsNotItsFile(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, lockPath, elsewhere string)
		want  string
	}{
		{"a link to a file that does not exist", func(t *testing.T, lock, elsewhere string) {
			require.NoError(t, os.Symlink(elsewhere, lock))
		}, "symbolic link"},
		{"a link to a file of the user's", func(t *testing.T, lock, elsewhere string) {
			require.NoError(t, os.WriteFile(elsewhere, []byte("the user's"), 0o600))
			require.NoError(t, os.Symlink(elsewhere, lock))
		}, "symbolic link"},
		{"a FIFO", func(t *testing.T, lock, _ string) {
			require.NoError(t, syscall.Mkfifo(lock, 0o600))
		}, "not a regular file"},
		{"a directory", func(t *testing.T, lock, _ string) {
			require.NoError(t, os.Mkdir(lock, 0o700))
		}, "lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "token.json")
			elsewhere := filepath.Join(t.TempDir(), "victim")
			tt.plant(t, path+".lock", elsewhere)
			var before string
			if data, err := os.ReadFile(elsewhere); err == nil {
				before = string(data)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			unlock, err := newFile(t, path).Lock(ctx)
			if err == nil {
				unlock()
			}
			require.Error(t, err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorContains(t, err, path+".lock")
			assert.ErrorContains(t, err, tt.want)
			data, rerr := os.ReadFile(elsewhere)
			if before == "" {
				assert.True(t, errors.Is(rerr, fs.ErrNotExist), "a file was created through the link")
			} else {
				assert.Equal(t, before, string(data))
			}
		})
	}
}
