//go:build !unix

package store

// openLockFlags are added to the flags the lock file is opened with; there
// are none here: Windows needs a privilege to create a symbolic link.
const openLockFlags = 0
