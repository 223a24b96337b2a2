// Package postgres is the scale-out Store: several `scirectl serve` daemons
// share one PostgreSQL database (pgx v5, a connection pool per store).
// Import it for its side effect of registering the postgres:// and
// postgresql:// schemes.
//
// Every run transition is one conditional UPDATE whose WHERE clause holds the
// source states of runstate, so two daemons never both win a transition;
// dispatch picks a client's pending runs with SELECT … FOR UPDATE SKIP LOCKED
// inside the transaction that marks them sent, so two daemons never hand out
// the same run. The schema mirrors the SQLite driver's column for column, and
// Backup writes (Restore reads) the SQLite driver's file format, so a backup
// moves between the engines.
//
// The URL is pgx's (libpq's keywords and pool_max_conns etc. in the query);
// one parameter of its own is taken out before pgx sees it:
// lock_pool_max_conns, the number of sessions the cluster-wide gate lock may
// hold at once (ClusterLock; default 4 × the pool size, at least 16).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

//go:embed migrations/*.sql
var migrations embed.FS

func init() {
	db.Register("postgres", driver{})
	db.Register("postgresql", driver{})
}

var _ db.Store = (*Store)(nil)

type driver struct{}

// Open opens a postgres:// or postgresql:// URL and migrates the database.
func (driver) Open(ctx context.Context, u *url.URL) (db.Store, error) {
	return OpenURL(ctx, u.String())
}

// Store is the PostgreSQL implementation of db.Store.
type Store struct {
	shared // the methods dbcore implements over this store (core.go)

	pool  *pgxpool.Pool // every query
	locks *pgxpool.Pool // one session per cluster-wide gate lock
	held  heldLocks     // the sessions of locks taken and not given back
}

// lockPoolParam is the URL parameter sizing the lock pool.
const lockPoolParam = "lock_pool_max_conns"

// OpenURL opens the database of a postgres:// URL, brings its schema up to
// date (golang-migrate's pgx5 driver takes an advisory lock, so daemons
// starting together migrate one after the other) and checks it is current.
func OpenURL(ctx context.Context, rawURL string) (*Store, error) {
	red := db.Redact(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("postgres URL %q: scheme %q, want postgres or postgresql", red, u.Scheme)
	}
	q := u.Query()
	lockConns := 0
	if v := q.Get(lockPoolParam); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("postgres URL %q: %s=%q: want a positive number", red, lockPoolParam, v)
		}
		lockConns = n
	}
	q.Del(lockPoolParam)
	// url.Values encodes a space as "+", which pgx reads literally; a literal
	// "+" is already "%2B", so every "+" left is a space.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("postgres URL %q: %w", red, err)
	}
	if err := migrateUp(ctx, cfg.ConnConfig); err != nil {
		return nil, fmt.Errorf("migrate postgres %s: %w", red, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres %s: %w", red, err)
	}
	lcfg := cfg.Copy()
	if lockConns == 0 {
		lockConns = max(16, 4*int(cfg.MaxConns))
	}
	lcfg.MaxConns = int32(lockConns)
	lcfg.MinConns = 0
	// A lock wait ends with a cancel request (the session survives; it is
	// discarded anyway), and a backend whose client went away notices
	// within a second even while it waits for a lock.
	lcfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 5 * time.Second}
	}
	if lcfg.ConnConfig.RuntimeParams == nil {
		lcfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	lcfg.ConnConfig.RuntimeParams["application_name"] = "scirectl gate"
	lcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// PostgreSQL 14 and later; older servers just lack the check.
		c.Exec(ctx, `SET client_connection_check_interval = 1000`)
		return nil
	}
	locks, err := pgxpool.NewWithConfig(ctx, lcfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", red, err)
	}
	s := &Store{pool: pool, locks: locks}
	s.shared = dbcore.NewStore(core{s}, "postgres", LatestVersion)
	if err := s.Ready(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// SchemaVersion is the migration version this binary expects; it is kept
// equal to the SQLite driver's, whose backup files this driver writes.
const SchemaVersion = 12

func migrateUp(ctx context.Context, cc *pgx.ConnConfig) error {
	conn := stdlib.OpenDB(*cc.Copy())
	defer conn.Close()
	// Connect under ctx (migrate itself takes no context); the connection
	// stays in conn's pool for migrate to use.
	if err := conn.PingContext(ctx); err != nil {
		return err
	}
	return dbcore.MigrateUp(migrations, "pgx5", conn, migrateDriver)
}

// migrateDriver is golang-migrate's PostgreSQL (pgx) driver on conn.
func migrateDriver(conn *sql.DB) (database.Driver, error) {
	return migratepgx.WithInstance(conn, &migratepgx.Config{})
}

// Close closes both pools. A cluster lock still held ends with its session
// (its unlock function then does nothing).
func (s *Store) Close() error {
	s.held.closeAll()
	s.locks.Close()
	s.pool.Close()
	return nil
}

// tx runs fn in a READ COMMITTED transaction, committed when fn returns
// nil. A transaction PostgreSQL aborts for a deadlock or a serialization
// failure is run again (fn must be safe to repeat), a few times.
func (s *Store) tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.txOpts(ctx, pgx.TxOptions{}, fn)
}

func (s *Store) txOpts(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error { return pgx.BeginTxFunc(ctx, s.pool, opts, fn) })
}

// retry runs fn, a transaction or a statement of its own, again when
// PostgreSQL aborted it for a deadlock or a serialization failure (fn must
// be safe to repeat), a few times.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= 8 || !retryable(err) || ctx.Err() != nil {
			return err
		}
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << attempt))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(d):
		}
	}
}

// read runs fn in a read-only REPEATABLE READ transaction: one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.txOpts(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// SQLSTATE codes this driver branches on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeNotNullViolation    = "23502"
	codeDeadlock            = "40P01"
	codeSerialization       = "40001"
	codeLockNotAvailable    = "55P03"
	codeQueryCanceled       = "57014"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func retryable(err error) bool {
	c := pgCode(err)
	return c == codeDeadlock || c == codeSerialization
}

func isUnique(err error) bool { return pgCode(err) == codeUniqueViolation }

// classify adds the db error a PostgreSQL error stands for, keeping the
// original in the chain: unique violations are conflicts, a reference to a
// missing row is not found, and data PostgreSQL refuses (a check, a NUL or
// invalid UTF-8 in text, a number out of range) is invalid input. Other
// errors, and errors that already carry a db error, are returned as they are.
func classify(err error) error {
	if err == nil || errors.Is(err, db.ErrConflict) || errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrInvalid) {
		return err
	}
	switch c := pgCode(err); {
	case c == codeUniqueViolation:
		return fmt.Errorf("%w: %w", err, db.ErrConflict)
	case c == codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", err, db.ErrNotFound)
	case c == codeCheckViolation, c == codeNotNullViolation, strings.HasPrefix(c, "22"): // class 22: data exception
		return fmt.Errorf("%w: %w", err, db.ErrInvalid)
	}
	return err
}

// Times are stored as Unix nanoseconds; NULL and 0 mean unset.

func nt(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	v := t.UnixNano()
	return &v
}

// queryer is what a pool and a transaction have in common.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// eachRow runs a query and calls fn for every row.
func eachRow(ctx context.Context, q queryer, query string, args []any, fn func(pgx.Rows) error) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// text makes a string storable in a PostgreSQL text column, which holds
// neither NUL nor invalid UTF-8 (SQLite holds both): each is replaced by
// U+FFFD. For what agents send about runs (output, reasons), where a
// refusal would have the agent retry the same report for ever; names and
// other input are validated and refused instead.
func text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// noRows reports pgx's "no rows in result set".
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) || errors.Is(err, sql.ErrNoRows) }
