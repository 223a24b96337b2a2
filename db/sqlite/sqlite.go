// Package sqlite is the embedded default Store: pure-Go SQLite (modernc, no
// cgo) in WAL mode. All writes go through one connection, because SQLite
// allows one writer and two connections upgrading DEFERRED transactions
// deadlock into SQLITE_BUSY; reads use a separate pool and never wait for the
// writer. Import it for its side effect of registering the sqlite:// scheme.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/gate"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() { db.Register("sqlite", driver{}) }

var _ db.Store = (*Store)(nil)

type driver struct{}

// Open opens sqlite://PATH (sqlite:///abs/path or sqlite://rel/path). The
// query parameter synchronous=normal trades the last commits on power loss
// for speed; the default, full, loses nothing acknowledged.
func (driver) Open(ctx context.Context, u *url.URL) (db.Store, error) {
	path := u.Host + u.Path
	if u.Opaque != "" {
		path = u.Opaque
	}
	if path == "" {
		return nil, fmt.Errorf("sqlite URL %q: no file path", u.String())
	}
	sync := "FULL"
	if s := u.Query().Get("synchronous"); s != "" {
		switch strings.ToUpper(s) {
		case "FULL", "NORMAL":
			sync = strings.ToUpper(s)
		default:
			return nil, fmt.Errorf("sqlite URL: synchronous=%q: want full or normal", s)
		}
	}
	return OpenFile(ctx, path, sync)
}

// Store is the SQLite implementation of db.Store.
type Store struct {
	shared // the methods dbcore implements over this store (core.go)

	w     *sql.DB        // single writer connection
	r     *sql.DB        // read pool
	gc    *committer     // batches concurrent write transactions (groupcommit.go)
	ckpt  *checkpointer  // copies the log into the database file off the writer (checkpoint.go)
	hot   *hotStatements // prepared on w once (statements.go)
	wc    *stmtCache     // the writer's other constant statements, prepared at open
	rc    *stmtCache     // the read pool's constant statements, prepared on first use
	busy  busyClients    // clients whose last claim took all it asked for (dispatch.go)
	idle  *idleMarks     // clients known to have nothing due (idlemarks.go)
	locks namedLocks     // TryLock's (retention.go)
	path  string
}

// OpenFile opens (creating if needed) the database file and migrates it.
func OpenFile(ctx context.Context, path, synchronous string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	// The database holds token hashes, scripts and their output: a new one
	// is created 0600 whatever the umask, before SQLite opens it, because
	// SQLite creates its -wal and -shm files with the database file's mode
	// (an older file is made 0600 below, once open).
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	base := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	if err := migrateUp(base); err != nil {
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	durable := "&_pragma=synchronous(" + synchronous + ")"
	w, err := sql.Open("sqlite", base+durable+"&_pragma=temp_store(MEMORY)&_txlock=immediate"+
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(writerAutoCheckpoint)+")")
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0)*2)
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	wc, err := newWriteCache(ctx, w)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	cw, err := sql.Open("sqlite", base+durable)
	if err != nil {
		wc.close()
		r.Close()
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	ckpt := newCheckpointer(cw)
	hot := newHotStatements(wc)
	idle := &idleMarks{}
	s := &Store{w: w, r: r, gc: newCommitter(w, hot, ckpt, idle), idle: idle, ckpt: ckpt, hot: hot, wc: wc, rc: newReadCache(r), path: path}
	s.shared = dbcore.NewStore(core{s}, "sqlite", LatestVersion)
	if err := s.Ready(ctx); err != nil {
		s.Close()
		return nil, err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && (p == path || !errors.Is(err, fs.ErrNotExist)) {
			s.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
	}
	return s, nil
}

// SchemaVersion is the migration version this binary expects.
const SchemaVersion = 12

func migrateUp(dsn string) error {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()
	return dbcore.MigrateUp(migrations, "sqlite", conn, migrateDriver)
}

// migrateDriver is golang-migrate's SQLite driver on conn, which runs each
// migration file in a transaction, except a file whose first line is
// noTransaction (migrationDriver).
func migrateDriver(conn *sql.DB) (database.Driver, error) {
	d, err := migratesqlite.WithInstance(conn, &migratesqlite.Config{})
	if err != nil {
		return nil, err
	}
	return migrationDriver{d, conn}, nil
}

// noTransaction starts a migration file that must not run in a
// transaction: one that changes a database-wide setting with a VACUUM,
// which SQLite refuses inside one (0009_retention: auto_vacuum). Such a
// file opens and commits its own transactions around what they keep
// atomic.
const noTransaction = "-- migrate: no transaction\n"

// migrationDriver is golang-migrate's SQLite driver, but for the files
// marked noTransaction, which it runs as they are, on one connection.
// (The driver's own x-no-tx-wrap option would apply to every file, and
// each of the others must stay all or nothing.)
type migrationDriver struct {
	database.Driver
	conn *sql.DB
}

func (d migrationDriver) Run(migration io.Reader) error {
	body, err := io.ReadAll(migration)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(body, []byte(noTransaction)) {
		return d.Driver.Run(bytes.NewReader(body))
	}
	// One Exec runs every statement of the file, in order, on one
	// connection: a PRAGMA and the VACUUM it needs must share one.
	ctx := context.Background()
	c, err := d.conn.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, string(body)); err != nil {
		// A statement that failed inside the file's own transaction
		// leaves it open: end it before the connection goes back.
		c.ExecContext(ctx, `ROLLBACK`)
		return &database.Error{OrigErr: err, Err: "migration failed", Query: body}
	}
	return nil
}

// Close closes the pools; the WAL is checkpointed by SQLite on last close.
func (s *Store) Close() error {
	s.gc.close()
	ckptErr := s.ckpt.close()
	s.wc.close()
	s.rc.close()
	return errors.Join(ckptErr, s.r.Close(), s.w.Close())
}

// tx runs fn in a write transaction (BEGIN IMMEDIATE through _txlock),
// shared with the other writes that arrive meanwhile (group commit): fn
// must do all its work through tx and may run after other callers' fns in
// the same transaction, each isolated by a savepoint.
//
// fn is given ctx without its cancellation (its values stay), and runs its
// statements with that: once started, a write runs to its end whatever
// its caller does (the committer already answers it only after the commit,
// see committer.do), and a statement whose context can be cancelled costs
// a goroutine started and woken each time — the driver's interrupt
// watcher, and database/sql's for each query's rows. The writer ran a
// dozen such statements a job at batch 1.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	wctx := context.WithoutCancel(ctx)
	return s.gc.do(ctx, func(tx *sql.Tx) error { return fn(wctx, tx) }, false)
}

// cycleTx is tx for the writes of the dispatch cycle and of last-seen
// times, which make no run pending: they leave the idle marks as they are
// (idlemarks.go).
func (s *Store) cycleTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	wctx := context.WithoutCancel(ctx)
	return s.gc.do(ctx, func(tx *sql.Tx) error { return fn(wctx, tx) }, true)
}

// Times are stored as Unix nanoseconds; NULL and 0 mean unset.

func nt(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func tn(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return dbcore.Time(v.Int64)
}

// ClusterLock is nil: a SQLite database has one daemon (the server's
// process-wide gate is the whole gate), since its file is not shared.
func (s *Store) ClusterLock() gate.ClusterLock { return nil }
