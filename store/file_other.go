//go:build !unix

package store

import "io/fs"

// openLockFlags are added to the flags the lock file is opened with; there
// are none here: Windows needs a privilege to create a symbolic link.
const openLockFlags = 0

// fileOwner reports no owner: ACLs govern access here.
func fileOwner(fs.FileInfo) (uid int, ok bool) { return 0, false }
