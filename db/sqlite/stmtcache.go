package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// stmtCache keeps one prepared statement per SQL text on one *sql.DB.
//
// Compiling a statement costs SQLite (as modernc transpiles it) 100–250 µs
// for the queries of this package, more than running them: in the profile
// of 5,000 idle agents, parsing the same few statements took an eighth of
// all samples (docs/benchmarks.md). A *sql.Stmt of a *sql.DB is prepared on each pool
// connection the first time it runs there and reused after, so caching it by
// its text makes every constant statement compile once per connection.
//
// Only constant SQL belongs here: text built from input (an IN list sized by
// the caller, optional filters) would grow the cache without bound.
//
// The writer's cache cannot prepare on first use: the writer has one
// connection, held by the transaction that would ask, and DB.Prepare would
// wait for it forever. Its statements are therefore declared with
// writeStatement and all prepared when the store opens.
type stmtCache struct {
	db    *sql.DB
	fixed bool // the writer's: only what was prepared at open
	mu    sync.Mutex
	m     map[string]*sql.Stmt
}

// writerSQL lists the statements declared with writeStatement.
var writerSQL []string

// writeStatement declares a constant statement of the writer, to be
// prepared when the store opens; it returns q. Call it from a package-level
// var declaration.
func writeStatement(q string) string {
	writerSQL = append(writerSQL, q)
	return q
}

func newReadCache(db *sql.DB) *stmtCache { return &stmtCache{db: db, m: map[string]*sql.Stmt{}} }

// newWriteCache prepares every declared writer statement on w.
func newWriteCache(ctx context.Context, w *sql.DB) (*stmtCache, error) {
	c := &stmtCache{db: w, fixed: true, m: make(map[string]*sql.Stmt, len(writerSQL))}
	for _, q := range writerSQL {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		c.m[q] = st
	}
	return c, nil
}

// get returns the prepared statement for q, preparing it on first use
// (the read pool's cache only).
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	if c.fixed {
		return nil, fmt.Errorf("sqlite: statement not declared with writeStatement: %q", q)
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// readRow runs a constant single-row query on the read pool, prepared once.
func (s *Store) readRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx) // see readRows
	st, err := s.rc.get(ctx, q)
	if err != nil {
		return s.r.QueryRowContext(ctx, q, args...) // reports the same error through Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// readRows runs a constant query on the read pool, prepared once.
//
// The constant queries are indexed lookups that take microseconds, and
// they run without ctx's cancellation (its values stay): for a query
// whose context can be cancelled, database/sql starts a goroutine that
// waits for the cancellation or the rows' close (Rows.awaitDone): a
// goroutine started and woken per lookup (runtime.newproc was 1.8% of the
// server's samples with 5,000 idle agents, besides the wake-ups).
// Queries built from filters, which may scan, keep ctx.
func (s *Store) readRows(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	st, err := s.rc.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// txStmt binds a constant statement, prepared once on the writer
// connection, to tx (which runs on that connection).
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	st, err := s.wc.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

// txExec runs a constant statement in tx, prepared once on the writer.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	st, err := s.txStmt(ctx, tx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}
