package dbcore

// The list queries (ListClients, ListJobs, ListOperations): which
// conditions a filter adds, built once; the driver binds the parameters in
// its placeholder style.

import (
	"strings"

	"github.com/scirectl/scirectl/db"
)

// Args collects the parameters of a query being built.
type Args struct {
	List []any
	// Placeholder is the driver's for the n-th parameter (from 1): "?" or
	// "$n".
	Placeholder func(n int) string
}

// Bind adds parameter v and returns its placeholder.
func (a *Args) Bind(v any) string {
	a.List = append(a.List, v)
	return a.Placeholder(len(a.List))
}

// DefaultLimit is the page size of a list whose filter sets none.
const DefaultLimit = 100

func limitOf(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return n
}

// ClientsQuery is ListClients' query for f: rows of ClientCols, by id.
func ClientsQuery(f db.ClientFilter, a *Args) string {
	q := `SELECT ` + ClientCols + ` FROM clients WHERE 1=1`
	if f.Status != "" {
		q += ` AND status = ` + a.Bind(f.Status)
	}
	if f.Name != "" {
		q += ` AND name = ` + a.Bind(f.Name)
	}
	return q + ` ORDER BY id`
}

// JobsQuery is ListJobs' query for f: rows of JobCols, newest first.
func JobsQuery(f db.JobFilter, a *Args) string {
	q := `SELECT ` + JobCols + ` FROM jobs WHERE 1=1`
	if f.SubmittedBy != "" {
		q += ` AND submitted_by = ` + a.Bind(f.SubmittedBy)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ` + a.Bind(f.BeforeID)
	}
	return q + ` ORDER BY id DESC LIMIT ` + a.Bind(limitOf(f.Limit))
}

// OperationCols are the columns ScanOperation reads, of the operations
// table.
const OperationCols = `id, at, COALESCE(server_id, 0), actor, name, target, outcome, detail`

// ScanOperation reads a row of OperationCols.
func ScanOperation(row Scanner) (db.Operation, error) {
	var op db.Operation
	var at int64
	err := row.Scan(&op.ID, &at, &op.ServerID, &op.Actor, &op.Name, &op.Target, &op.Outcome, &op.Detail)
	op.At = Time(at)
	return op, err
}

// OperationsQuery is ListOperations' query for f: rows of OperationCols,
// newest first. A Name ending in "*" is a prefix: startsWith is the
// driver's condition that the name column starts with prefix, compared
// bytewise (never LIKE, whose % and _ and ASCII case folding would widen
// the match).
func OperationsQuery(f db.OperationFilter, a *Args, startsWith func(a *Args, prefix string) string) string {
	q := `SELECT ` + OperationCols + ` FROM operations WHERE 1=1`
	if f.Actor != "" {
		q += ` AND actor = ` + a.Bind(f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Name, "*"); ok {
		if prefix != "" {
			q += ` AND ` + startsWith(a, prefix)
		}
	} else if f.Name != "" {
		q += ` AND name = ` + a.Bind(f.Name)
	}
	if !f.Since.IsZero() {
		q += ` AND at >= ` + a.Bind(f.Since.UnixNano())
	}
	switch f.Outcome {
	case "":
	case "ok":
		q += ` AND outcome = 'ok'`
	case "error":
		q += ` AND outcome <> 'ok'`
	default:
		q += ` AND outcome = ` + a.Bind(f.Outcome)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ` + a.Bind(f.BeforeID)
	}
	return q + ` ORDER BY id DESC LIMIT ` + a.Bind(limitOf(f.Limit))
}
