package postgres

// This driver as the shared operations of package dbcore use it: its
// dialect, its Querier over pgx, and its transactions.

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// dialect: $n parameters, row locks, table locks for what row locks cannot
// guard (a nesting of groups that two transactions could each complete
// into a cycle), and DELETE … RETURNING.
var dialect = &dbcore.Dialect{
	Param:      "$",
	ForShare:   " FOR SHARE",
	ForUpdate:  " FOR UPDATE",
	SkipLocked: " FOR UPDATE SKIP LOCKED",
	LockTable:  func(table string) string { return `LOCK TABLE ` + table + ` IN SHARE ROW EXCLUSIVE MODE` },
	Returning:  true,
	// Every run of the client, locked, so that no daemon can send one
	// while it is deleted.
	ClientRunsSQL: `SELECT id, state FROM runs WHERE client_id = $1 ORDER BY id FOR UPDATE`,
	IDIn: func(a *dbcore.Args, col string, ids []int64) string {
		return col + ` = ANY(` + a.Bind(ids) + `)`
	},
	StartsWith: func(a *dbcore.Args, col, prefix string) string {
		return `starts_with(` + col + `, ` + a.Bind(prefix) + `)`
	},
	Text:         text,
	EventID:      "seq",
	NumberEvents: numberEvents,
	IsUnique:     isUnique,
	Classify:     classify,
}

// querier is a dbcore.Querier over a pool or a transaction.
type querier struct{ q queryer }

func (q querier) QueryRow(ctx context.Context, query string, args ...any) dbcore.Scanner {
	return q.q.QueryRow(ctx, query, args...)
}

func (q querier) Each(ctx context.Context, query string, args []any, fn func(dbcore.Scanner) error) error {
	return eachRow(ctx, q.q, query, args, func(rows pgx.Rows) error { return fn(rows) })
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q querier) Insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := q.q.QueryRow(ctx, query+` RETURNING id`, args...).Scan(&id)
	return id, err
}

// shared names dbcore's part of the Store, embedded in it: every method
// that is not this driver's SQL or the agent protocol's hot path.
type shared = dbcore.Store

// core is the Store as a dbcore.DB: reads on the pool or in a REPEATABLE
// READ snapshot, writes in READ COMMITTED transactions retried on
// serialization failures and deadlocks.
type core struct{ s *Store }

func (c core) Dialect() *dbcore.Dialect { return dialect }

func (c core) Reader() dbcore.Querier { return querier{c.s.pool} }

func (c core) Writer() dbcore.Querier { return querier{c.s.pool} }

func (c core) Read(ctx context.Context, fn func(dbcore.Querier) error) error {
	return c.s.read(ctx, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

func (c core) Write(ctx context.Context, fn func(dbcore.Querier) error) error {
	return c.s.tx(ctx, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

var _ dbcore.DB = core{}
