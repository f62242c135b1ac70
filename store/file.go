package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
	"golang.org/x/oauth2"

	"github.com/seamlessauth/bearer/internal/holdslot"
)

// DefaultLockRetry is how often [File.Lock] tries again while another
// process holds the lock.
const DefaultLockRetry = 10 * time.Millisecond

// File is a [Store] and [Locker] that keeps the token in a JSON file, for a
// command-line tool, a cron job and a daemon that share one login on one
// machine.
//
// Save writes a temporary file in the same directory, syncs it and renames
// it over the token file, so that a reader or a crash never sees half a
// token. The file has mode 0600 and missing directories are created with
// mode 0700. A token file that group or others may access, or (on Unix)
// that belongs to another user, is refused, as ssh refuses such a private
// key. Save and Clear leave alone a file that is
// not a token file of this store (corrupt, empty, of another format): it is
// the user's to look at. A symbolic link at the path is refused; give the
// store the real path.
//
// A process killed while saving may leave a temporary file named
// ".<name>.tmp-*", which holds a token pair, next to the token file; it is
// never read. Save removes those over a minute old (a Save takes
// milliseconds: a younger one may be another process's Save under way),
// and Clear removes them all.
//
// A DPoP key (see [KeyStore]) is kept in another sibling file, the token
// path with ".dpop-key" appended, under the same rules as the token file.
//
// Lock takes an OS file lock on a sibling file, the token path with ".lock"
// appended, which is never removed. The operating system releases the lock
// when its holder exits, even when it is killed.
//
// A File is safe for concurrent use. NewFile does not touch the file
// system; each method reads the file anew.
type File struct {
	path     string
	lockPath string
	retry    time.Duration
	extras   []string
	sem      *holdslot.Slot[flock.Flock] // held by this process's holder of the OS lock
	key      *File                       // the key file (see KeyStore): only its path is used

	beforeRename func(tmp string) error // test hook: runs between write and rename
}

// FileOption configures a [File].
type FileOption func(*File)

// WithLockRetry sets how often Lock tries again while another process holds
// the lock. Zero or negative means [DefaultLockRetry].
func WithLockRetry(d time.Duration) FileOption {
	return func(f *File) {
		if d > 0 {
			f.retry = d
		}
	}
}

// WithExtras adds token-response fields to keep in the file, read with
// [oauth2.Token.Extra] and restored with [oauth2.Token.WithExtra]. The
// fields "id_token" and "scope" are always kept.
func WithExtras(keys ...string) FileOption {
	return func(f *File) { f.extras = append(f.extras, keys...) }
}

// NewFile returns a File store for the token file at path. A relative path
// is made absolute now, so a later change of working directory does not
// move the store. NewFile does not touch the file system.
func NewFile(path string, opts ...FileOption) (*File, error) {
	if path == "" {
		return nil, errors.New("store: NewFile: the path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: NewFile: %s: %w", path, err)
	}
	f := &File{
		path:     abs,
		lockPath: abs + ".lock",
		retry:    DefaultLockRetry,
		extras:   append([]string(nil), defaultExtras...),
		sem:      holdslot.New[flock.Flock]("store"),
	}
	f.key = &File{path: abs + ".dpop-key"}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// Path returns the absolute path of the token file.
func (f *File) Path() string { return f.path }

// Load reads the token file. It returns an error wrapping [ErrNotFound]
// when there is no file, and an error naming the path when the file cannot
// be used; it never changes the file.
func (f *File) Load(ctx context.Context) (*oauth2.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: loading %s: %w", f.path, err)
	}
	data, err := f.read(true)
	if err != nil {
		return nil, err
	}
	tok, err := decodeToken(data)
	if errors.Is(err, ErrCleared) {
		return nil, clearedError{where: f.path}
	}
	if err != nil {
		return nil, f.badFile(err, "")
	}
	return tok, nil
}

// Save replaces the token file with tok, atomically. A token with only a
// refresh token is kept as it is (the Transport refreshes it before its first
// request). It refuses to replace
// a file that is not a token file of this store, or that group or others
// may access; the file is then left as it was.
func (f *File) Save(ctx context.Context, tok *oauth2.Token) error {
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return fmt.Errorf("store: saving %s: the token has neither an access nor a refresh token", f.path)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: saving %s: %w", f.path, err)
	}
	data, err := encodeToken(tok, f.extras)
	if err != nil {
		return fmt.Errorf("store: saving %s: %w", f.path, err)
	}
	if err := f.replaceable(true, "replaced"); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := f.mkdir(); err != nil {
		return err
	}
	if err := f.writeAtomic(data); err != nil {
		return err
	}
	f.removeTemps(staleTemp)
	return nil
}

// Clear removes the token from the token file: it replaces the file,
// atomically, with one that holds no token and records that it was
// cleared, so that the other processes that share it end their sessions too
// (see [ErrCleared]); Load then returns an error matching ErrNotFound and
// ErrCleared. A missing file is not an error, and stays missing. A file
// that is not a token file of this store is left in place, with an error.
func (f *File) Clear(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: clearing %s: %w", f.path, err)
	}
	// A token file that others may read is replaced all the same: that is
	// the fix.
	if err := f.replaceable(false, "replaced"); err != nil {
		if errors.Is(err, ErrNotFound) { // missing, or cleared already
			f.removeTemps(0)
			return nil
		}
		return err
	}
	if err := f.writeAtomic(tombstone()); err != nil {
		return err
	}
	f.removeTemps(0)
	return nil
}

// staleTemp is the age from which a temporary file of Save is taken for the
// leftover of a process that died while saving.
const staleTemp = time.Minute

// removeTemps removes the temporary files that Saves of the token file left
// behind, those at least minAge old. It does its best: a file it cannot
// remove costs the caller nothing, and the next call tries again.
func (f *File) removeTemps(minAge time.Duration) {
	dir, base := filepath.Split(f.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	prefix := "." + base + ".tmp-"
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		if minAge > 0 {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < minAge {
				continue
			}
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// read returns the content of the token file, after checking that it is a
// regular file, not a link, and (if checkMode) private to its owner.
func (f *File) read(checkMode bool) ([]byte, error) {
	info, err := os.Lstat(f.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, f.path)
		}
		return nil, fmt.Errorf("store: reading %s: %w", f.path, unwrapPath(err))
	}
	if err := f.usable(info, checkMode); err != nil {
		return nil, err
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", f.path, unwrapPath(err))
	}
	defer fh.Close()
	if opened, err := fh.Stat(); err != nil || !os.SameFile(info, opened) {
		return nil, fmt.Errorf("store: reading %s: the file was replaced while being opened; try again", f.path)
	}
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("store: reading %s: %w", f.path, unwrapPath(err))
	}
	if len(data) > maxFileSize {
		return nil, f.badFile(fmt.Errorf("is larger than %d bytes", maxFileSize), "")
	}
	return data, nil
}

// usable checks what kind of file info describes.
func (f *File) usable(info fs.FileInfo, checkMode bool) error {
	switch mode := info.Mode(); {
	case mode&fs.ModeSymlink != 0:
		return fmt.Errorf("store: %s is a symbolic link; give the store the path of the file itself", f.path)
	case mode.IsDir():
		return fmt.Errorf("store: %s is a directory, not a token file; remove it or choose another path", f.path)
	case !mode.IsRegular():
		return fmt.Errorf("store: %s is not a regular file (%v); remove it or choose another path", f.path, mode.Type())
	}
	if uid, ok := fileOwner(info); checkMode && ok && uid != os.Geteuid() {
		// Whoever planted it would log this process in as them, or read
		// what it saves.
		return fmt.Errorf("store: %s belongs to user %d, not to the user running this process (%d); "+
			"remove it and log in again", f.path, uid, os.Geteuid())
	}
	// Windows reports no meaningful mode bits: ACLs govern access there.
	if perm := info.Mode().Perm(); checkMode && runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("store: %s may be accessed by group or others (mode %04o); "+
			"its token may have leaked: run chmod 600 %s, or remove it and log in again",
			f.path, perm, f.path)
	}
	return nil
}

// replaceable checks that the file may be replaced or removed (the
// participle says which, for the error): it is missing (an error wrapping
// ErrNotFound), or it is a token file of this store.
func (f *File) replaceable(checkMode bool, participle string) error {
	data, err := f.read(checkMode)
	if err != nil {
		return err
	}
	if _, err := decodeToken(data); errors.Is(err, ErrCleared) {
		return clearedError{where: f.path}
	} else if err != nil {
		return f.badFile(err, participle)
	}
	return nil
}

// badFile describes a file that is not a usable token file, and that was
// left alone rather than replaced or removed, if participle says so.
func (f *File) badFile(what error, participle string) error {
	if participle != "" {
		what = fmt.Errorf("%w, so it was not %s", what, participle)
	}
	return fmt.Errorf("store: token file %s %w; look at it, then remove it or choose another path", f.path, what)
}

// mkdir creates the token file's directory, and its missing parents, with
// mode 0700.
func (f *File) mkdir() error {
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: creating the directory of %s: %w", f.path, err)
	}
	return nil
}

// writeAtomic writes data to a temporary file next to the token file,
// syncs it, renames it over the token file and syncs the directory. On an
// error the token file is as it was.
func (f *File) writeAtomic(data []byte) (err error) {
	dir, base := filepath.Split(f.path)
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("store: saving %s: creating a temporary file: %w", f.path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp made the file with mode 0600, which the umask cannot widen.
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("store: saving %s: writing: %w", f.path, unwrapPath(err))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store: saving %s: syncing: %w", f.path, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: saving %s: %w", f.path, unwrapPath(err))
	}
	if f.beforeRename != nil {
		if err := f.beforeRename(tmp.Name()); err != nil {
			return fmt.Errorf("store: saving %s: %w", f.path, err)
		}
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("store: saving %s: renaming the temporary file: %w", f.path, unwrapPath(err))
	}
	return f.syncDir()
}

// syncDir makes a rename or removal in the token file's directory durable.
// Systems that cannot sync a directory (Windows, some file systems) are
// taken at their word.
func (f *File) syncDir() error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(filepath.Dir(f.path))
	if err != nil {
		return fmt.Errorf("store: syncing the directory of %s: %w", f.path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("store: syncing the directory of %s: %w", f.path, err)
	}
	return nil
}

// unwrapPath strips the *fs.PathError around err, whose path is either the
// token file's, which the message already names, or a temporary file's.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
