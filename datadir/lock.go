package datadir

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/scirectl/scirectl/internal/lockfile"
)

// One daemon per SQLite database. The SQLite driver assumes it is the
// only writer (one writer connection, group commit), the gate only
// excludes operations of its own process, and the client and certificate
// caches are only invalidated in it: a second daemon on the same file
// would let a modifier run alongside the other daemon's work. So serve
// takes an exclusive OS lock (flock) on DBFILE.lock, next to the database
// file, before it writes anything, and keeps it until it stops; the
// kernel drops it when the process dies in any way, so there is nothing
// to clean up after a crash or SIGKILL. The file holds the holder's pid
// and name, for the message the next one prints.
//
// The commands that write the database file directly (db restore, reset,
// migrate and backup with --offline; recover) take the same lock, and so
// refuse while a server runs on it, and keep a server from starting while
// they work.
//
// What is locked is the database file, not the data directory: PostgreSQL
// is made for several daemons (db.Store.ClusterLock), and daemons on PostgreSQL,
// or on different SQLite files, may share a data directory (its CA,
// certificates and admin token are written once and then only read).

// DatabaseLockPath is the lock file of a sqlite:// database URL, and ""
// for other databases (nothing to lock).
func DatabaseLockPath(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", fmt.Errorf("database URL: %w", err)
	}
	if u.Scheme != "sqlite" {
		return "", nil
	}
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return "", fmt.Errorf("sqlite URL %q: no file path", dbURL)
	}
	// The same file under another name (a symbolic link to the data
	// directory, a relative path) must find the same lock.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(path)); err == nil {
		path = filepath.Join(dir, filepath.Base(path))
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path + ".lock", nil
}

// LockDatabase takes the lock of a SQLite database for who ("scirectl
// serve"); create makes the database's directory first if needed (else
// a missing one is an error wrapping fs.ErrNotExist). It returns a nil
// lock for other databases; a *lockfile.HeldError when another process
// holds it; lockfile.ErrUnsupported where there are no file locks.
func LockDatabase(dbURL, who string, create bool) (*lockfile.Lock, error) {
	path, err := DatabaseLockPath(dbURL)
	if err != nil || path == "" {
		return nil, err
	}
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("lock the database: %w", err)
		}
	}
	return lockfile.Acquire(path, who)
}

// DatabaseHeldError is the refusal when another process holds a SQLite
// database's lock: "scirectl serve (pid 1234) holds /var/lib/scire/scire.db:
// " and what to do.
type DatabaseHeldError struct {
	*lockfile.HeldError
	DB   string // the database file
	Hint string
}

func (e *DatabaseHeldError) Error() string {
	return fmt.Sprintf("%s holds %s: %s", e.Holder(), e.DB, e.Hint)
}

func (e *DatabaseHeldError) Unwrap() error { return e.HeldError }

// HeldByOther turns a *lockfile.HeldError from LockDatabase into a
// DatabaseHeldError with hint; other errors pass.
func HeldByOther(err error, hint string) error {
	var he *lockfile.HeldError
	if !errors.As(err, &he) {
		return err
	}
	return &DatabaseHeldError{HeldError: he, DB: strings.TrimSuffix(he.Path, ".lock"), Hint: hint}
}
