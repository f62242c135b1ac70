package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"

	"github.com/gofrs/flock"
)

// This file holds File's cross-process lock.

// Lock takes the cross-process lock on the token file, waiting until it is
// free or ctx ends. The returned function releases it; it must be called
// once. Holders in this process queue in memory; other processes are polled
// every retry interval (see [WithLockRetry]).
func (f *File) Lock(ctx context.Context) (func() error, error) {
	return f.sem.Lock(ctx, f.lockOS, f.unlockOS)
}

// unlockOS releases the OS lock and closes the lock file.
func (f *File) unlockOS(_ context.Context, fl *flock.Flock) error {
	if err := fl.Unlock(); err != nil {
		return fmt.Errorf("store: unlocking %s: %w", f.lockPath, err)
	}
	return nil
}

// lockOS takes the OS lock. Each acquisition opens the lock file anew: the
// lock belongs to an open file, and dies with it when the process does.
// The file is opened without following a symbolic link (O_NOFOLLOW), so
// that whoever can write the directory cannot make this process create or
// lock a file elsewhere, and must then be a regular file.
func (f *File) lockOS(ctx context.Context) (*flock.Flock, error) {
	if err := f.mkdir(); err != nil {
		return nil, err
	}
	flags := os.O_CREATE | os.O_RDONLY | openLockFlags
	switch runtime.GOOS {
	case "aix", "solaris", "illumos": // no exclusive lock on a read-only file (as flock.New)
		flags = os.O_CREATE | os.O_RDWR | openLockFlags
	}
	fl := flock.New(f.lockPath, flock.SetPermissions(0o600), flock.SetFlag(flags))
	ok, err := fl.TryLockContext(ctx, f.retry)
	if err == nil && !ok {
		err = errors.New("the lock was not taken")
	}
	if err == nil {
		err = f.lockFileUsable(fl)
	}
	if err != nil {
		_ = fl.Unlock() // closes the file if it was opened
		if info, lerr := os.Lstat(f.lockPath); lerr == nil && info.Mode()&fs.ModeSymlink != 0 {
			err = errors.New("it is a symbolic link, which is never followed; remove it")
		}
		return nil, fmt.Errorf("store: locking %s: %w", f.lockPath, unwrapPath(err))
	}
	return fl, nil
}

// lockFileUsable checks the lock file that fl opened and locked.
func (f *File) lockFileUsable(fl *flock.Flock) error {
	info, err := fl.Stat()
	switch {
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return fmt.Errorf("it is not a regular file (%v); remove it", info.Mode().Type())
	}
	return nil
}
