package postgres

// This driver as the shared operations of package dbcore use it: its
// dialect, its Querier over pgx, and its transactions.

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// dialect: $n parameters, row locks, and table locks for what row locks
// cannot guard (a nesting of groups that two transactions could each
// complete into a cycle).
var dialect = &dbcore.Dialect{
	P:         func(n int) string { return "$" + strconv.Itoa(n) },
	ForShare:  " FOR SHARE",
	ForUpdate: " FOR UPDATE",
	LockTable: func(table string) string { return `LOCK TABLE ` + table + ` IN SHARE ROW EXCLUSIVE MODE` },
	IsUnique:  isUnique,
	Classify:  classify,
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

// core is the Store as a dbcore.DB: reads on the pool or in a REPEATABLE
// READ snapshot, writes in READ COMMITTED transactions retried on
// serialization failures and deadlocks.
type core struct{ s *Store }

func (s *Store) core() core { return core{s} }

func (c core) Dialect() *dbcore.Dialect { return dialect }

func (c core) Reader() dbcore.Querier { return querier{c.s.pool} }

func (c core) Read(ctx context.Context, fn func(dbcore.Querier) error) error {
	return c.s.read(ctx, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

func (c core) Write(ctx context.Context, fn func(dbcore.Querier) error) error {
	return c.s.tx(ctx, func(tx pgx.Tx) error { return fn(querier{tx}) })
}

var _ dbcore.DB = core{}

// Groups: dbcore's.

// CreateGroup adds an empty group; a taken name is ErrConflict.
func (s *Store) CreateGroup(ctx context.Context, kind, name, note string) (db.Group, error) {
	return dbcore.CreateGroup(ctx, s.core(), kind, name, note)
}

// DeleteGroup removes a group with its memberships and nesting links; a
// group named by an ACL rule is ErrConflict.
func (s *Store) DeleteGroup(ctx context.Context, kind, name string) error {
	return dbcore.DeleteGroup(ctx, s.core(), kind, name)
}

// Group returns one group with its direct members.
func (s *Store) Group(ctx context.Context, kind, name string) (db.Group, error) {
	return dbcore.Group(ctx, s.core(), kind, name)
}

// ListGroups lists the groups of a kind by name, with their direct members.
func (s *Store) ListGroups(ctx context.Context, kind string) ([]db.Group, error) {
	return dbcore.ListGroups(ctx, s.core(), kind)
}

// AddGroupMember adds a user, client or child group to a group.
func (s *Store) AddGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return dbcore.AddGroupMember(ctx, s.core(), kind, group, m)
}

// RemoveGroupMember removes one direct membership.
func (s *Store) RemoveGroupMember(ctx context.Context, kind, group string, m db.Member) error {
	return dbcore.RemoveGroupMember(ctx, s.core(), kind, group, m)
}
