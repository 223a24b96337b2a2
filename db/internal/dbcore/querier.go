package dbcore

// What the shared operations need of a driver to run SQL: a Querier (a
// pool, a connection or a transaction), the transactions, and the few
// facts of its dialect. The SQL the shared operations hold is the SQL both
// dialects read the same; where they differ, the Dialect or the driver's
// own statements supply it.

import (
	"context"
	"database/sql"
	"errors"
	"strconv"

	"github.com/scirectl/scirectl/db"
)

// Querier runs statements on a driver's pool, connection or transaction.
type Querier interface {
	// QueryRow runs a query for one row; its Scan fails with an error
	// NoRows reports when there is none.
	QueryRow(ctx context.Context, query string, args ...any) Scanner
	// Each runs a query and calls fn for every row.
	Each(ctx context.Context, query string, args []any, fn func(Scanner) error) error
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Insert runs an INSERT of one row into a table with an id column and
	// returns the new row's id.
	Insert(ctx context.Context, query string, args ...any) (int64, error)
}

// NoRows reports the error of a QueryRow that found no row (database/sql's
// sql.ErrNoRows, which pgx's ErrNoRows also is).
func NoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Dialect is what the shared SQL needs to know of a driver's.
type Dialect struct {
	// Param starts the placeholder of a numbered parameter: "?" (?1, ?2)
	// or "$" ($1, $2); a placeholder may appear more than once.
	Param string
	// ForShare and ForUpdate are the row locking clauses a SELECT ends
	// with, with a leading space; empty where one writer excludes the rest.
	ForShare, ForUpdate string
	// SkipLocked ends a subquery that picks rows to change, with a leading
	// space: lock them, passing over those another transaction holds;
	// empty where one writer excludes the rest.
	SkipLocked string
	// LockTable is the statement that keeps every other transaction from
	// writing table until this one ends, and lets reads on; "" where one
	// writer excludes the rest.
	LockTable func(table string) string
	// Returning says the driver writes rows it must return with a
	// RETURNING clause (else it reads them in the same transaction).
	Returning bool
	// ClientRunsSQL selects (id, state) of the runs of a client ($1) that
	// DeleteClient must see, by id, at least the first 11 in flight, and
	// locks them as the driver must.
	ClientRunsSQL string
	// IDIn is the condition that column col is one of ids, its
	// parameters bound in a.
	IDIn func(a *Args, col string, ids []int64) string
	// StartsWith is the condition that text column col starts with
	// prefix, compared bytewise (never LIKE, whose % and _ and case
	// folding would widen the match), its parameters bound in a.
	StartsWith func(a *Args, col, prefix string) string
	// Text makes what an agent sends about a run (its output, a reason)
	// storable in a text column, where the database cannot hold every
	// string (nil: as it is).
	Text func(string) string
	// EventID is the events' column readers see as the id: one that grows
	// in the order events become visible (SQLite's id; PostgreSQL's seq).
	EventID string
	// NumberEvents, when set, gives the events committed since it last ran
	// their EventID, in id order (PostgreSQL); Events calls it first.
	NumberEvents func(ctx context.Context, w DB) error
	// IsUnique reports a unique constraint violation.
	IsUnique func(error) bool
	// Classify adds the db error an error of the database stands for
	// (ErrConflict, ErrNotFound, ErrInvalid), if any.
	Classify func(error) error
}

// Storable is s as the dialect's text columns can hold it (Text).
func (d *Dialect) Storable(s string) string {
	if d.Text != nil {
		return d.Text(s)
	}
	return s
}

// P is the placeholder of the n-th parameter, from 1.
func (d *Dialect) P(n int) string { return d.Param + strconv.Itoa(n) }

// DB is a driver as the shared operations use it.
type DB interface {
	Dialect() *Dialect
	// Reader runs one-statement reads outside a transaction (QueryRow
	// takes constant lookups only: a driver may prepare them once).
	Reader() Querier
	// Writer runs one-statement writes outside a transaction.
	Writer() Querier
	// Read runs fn in a read-only transaction: one snapshot.
	Read(ctx context.Context, fn func(Querier) error) error
	// Write runs fn in a write transaction.
	Write(ctx context.Context, fn func(Querier) error) error
	// InsertJobs stores the jobs of a SubmitJobs call, with their runs,
	// and then the audit records, in one transaction, and returns the jobs
	// as Job reads them; when it fails, the index of the job it failed on
	// (-1: none in particular). then, when not nil, runs last in the
	// transaction, with the jobs' ids filled in; its error rolls it all
	// back (FireTick records the tick of a scheduled job so).
	InsertJobs(ctx context.Context, ps []PreparedJob, audit []db.AuditEntry, then func(Querier, []PreparedJob) error) (jobs []db.Job, failed int, err error)
	// Maintain runs fn with the driver's Mover in a write transaction,
	// rolled back instead of committed when dryRun is set (Maintain does
	// that part).
	Maintain(ctx context.Context, dryRun bool, fn func(Mover) error) error
}

// Exists runs a query for one row and says whether it found one.
func Exists(ctx context.Context, q Querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query, args...).Scan(&one)
	if NoRows(err) {
		return false, nil
	}
	return err == nil, err
}

// IDs runs a query of one id column and returns the ids.
func IDs(ctx context.Context, q Querier, query string, args ...any) ([]int64, error) {
	var ids []int64
	err := q.Each(ctx, query, args, func(row Scanner) error {
		var id int64
		err := row.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}
