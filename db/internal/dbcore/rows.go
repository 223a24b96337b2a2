// Package dbcore is the part of the database drivers that is not SQL
// dialect, written once: reading rows into db types (scan.go), the agent
// protocol's decisions (dispatch.go: what a claim does with a run, what an
// ack counts, what a report does), the run maintenance algorithm
// (sweep.go), groups (groups.go), ACL rules and the policy snapshot
// (acl.go), users and tokens (users.go), clients (clients.go), jobs
// (jobs.go), the other reads (reads.go), and the backup file, schema
// versions and migrations (backup.go).
//
// A driver supplies what is dialect (querier.go): its Dialect (placeholders,
// row and table locks, the few conditions and statements the two engines
// write differently), a Querier over its client library, its transactions
// (DB), the SQL and locking of each maintenance step (Mover) and the
// insertion of jobs (InsertJobs). Its Store embeds Store, which implements
// the db.Store methods that are dbcore's alone; the hot path of the agent
// protocol (ClaimRuns, AckRuns, ReportRuns, RenewRuns) stays the driver's,
// calling the decisions here. The SQL held here is the SQL both engines
// read the same.
//
// Nothing here names a driver or a client library: rows come in as a
// Scanner, which *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all are.
package dbcore

import (
	"fmt"
	"math"
	"time"

	"github.com/scirectl/scirectl/db"
)

// Scanner is one row of a result: *sql.Row, *sql.Rows, pgx.Row, pgx.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result being read, as both *sql.Rows and pgx.Rows are (their
// Close methods differ: the caller closes).
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Each calls fn for every row of rows, stopping at the first error, and
// returns that error or rows' own. The caller closes rows.
func Each[R Rows](rows R, fn func(R) error) error {
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Times are stored as Unix nanoseconds; NULL and 0 mean unset.

// Time reads a stored time: zero for 0, else UTC.
func Time(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// NullTime reads a stored time from a nullable column (scanned into an
// *int64, which both database/sql and pgx set to nil for NULL).
func NullTime(ns *int64) time.Time {
	if ns == nil {
		return time.Time{}
	}
	return Time(*ns)
}

// Since is the stored form of a lower bound on a time: since itself, or
// the lowest time there is when since is zero.
func Since(since time.Time) int64 {
	if since.IsZero() {
		return math.MinInt64
	}
	return since.UnixNano()
}

// NotFound is the error of a missing object: "run 7: not found".
func NotFound(what string, id any) error {
	return fmt.Errorf("%s %v: %w", what, id, db.ErrNotFound)
}
