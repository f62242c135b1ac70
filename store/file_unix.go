//go:build unix

package store

import "syscall"

// openLockFlags are added to the flags the lock file is opened with: a
// symbolic link is not followed (the open fails), and a FIFO planted there
// does not block the open.
const openLockFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
