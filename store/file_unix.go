//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// openLockFlags are added to the flags the lock file is opened with: a
// symbolic link is not followed (the open fails), and a FIFO planted there
// does not block the open.
const openLockFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// fileOwner returns the user that owns the file info describes.
func fileOwner(info fs.FileInfo) (uid int, ok bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
