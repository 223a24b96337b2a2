package sqlite

// This driver as the shared operations of package dbcore use it: its
// dialect, its Querier over database/sql, and its transactions.

import (
	"context"
	"database/sql"
	"strings"

	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// dialect: numbered parameters (?1, ?2), no row or table locks (the single
// writer connection excludes every other write), and rules removed by
// reading them first.
var dialect = &dbcore.Dialect{
	Param:     "?",
	LockTable: func(string) string { return "" },
	// The first 11 runs in flight: DeleteClient names up to 10.
	ClientRunsSQL: `SELECT id, state FROM runs WHERE client_id = ?1 AND state IN ('sent', 'received', 'running') ORDER BY id LIMIT 11`,
	IDIn: func(a *dbcore.Args, col string, ids []int64) string {
		ps := make([]string, len(ids))
		for i, id := range ids {
			ps[i] = a.Bind(id)
		}
		return col + ` IN (` + strings.Join(ps, ", ") + `)`
	},
	StartsWith: func(a *dbcore.Args, col, prefix string) string {
		// The first len(prefix) bytes of col.
		return `substr(CAST(` + col + ` AS BLOB), 1, ` + a.Bind(len(prefix)) + `) = CAST(` + a.Bind(prefix) + ` AS BLOB)`
	},
	EventID:  "id",
	IsUnique: isUnique,
	Classify: func(err error) error { return err },
}

// sqlQueryer is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type sqlQueryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// querier is a dbcore.Querier over database/sql.
type querier struct {
	q        sqlQueryer
	detached bool // run statements without ctx's cancellation (Store.tx)
}

func (q querier) ctx(ctx context.Context) context.Context {
	if q.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) dbcore.Scanner {
	return q.q.QueryRowContext(q.ctx(ctx), query, args...)
}

func (q querier) Each(ctx context.Context, query string, args []any, fn func(dbcore.Scanner) error) error {
	rows, err := q.q.QueryContext(q.ctx(ctx), query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return dbcore.Each(rows, func(rows *sql.Rows) error { return fn(rows) })
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(q.ctx(ctx), query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Insert(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.q.ExecContext(q.ctx(ctx), query, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// shared names dbcore's part of the Store, embedded in it: every method
// that is not this driver's SQL or the agent protocol's hot path.
type shared = dbcore.Store

// core is the Store as a dbcore.DB: reads on the read pool, writes in the
// writer's transactions.
type core struct{ s *Store }

func (c core) Dialect() *dbcore.Dialect { return dialect }

func (c core) Reader() dbcore.Querier { return reader{querier{q: c.s.r}, c.s} }

// reader is the read pool, whose single-row lookups are prepared once
// (readRow).
type reader struct {
	querier
	s *Store
}

func (r reader) QueryRow(ctx context.Context, query string, args ...any) dbcore.Scanner {
	return r.s.readRow(ctx, query, args...)
}

func (c core) Writer() dbcore.Querier { return querier{q: c.s.w} }

func (c core) Read(ctx context.Context, fn func(dbcore.Querier) error) error {
	tx, err := c.s.r.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(querier{q: tx})
}

// Write runs fn in a write transaction; its statements run without their
// context's cancellation, as Store.tx's.
func (c core) Write(ctx context.Context, fn func(dbcore.Querier) error) error {
	return c.s.tx(ctx, func(_ context.Context, tx *sql.Tx) error { return fn(querier{q: tx, detached: true}) })
}

var _ dbcore.DB = core{}
