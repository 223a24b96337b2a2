package dbcore

// The reads of clients, jobs, runs, servers and the audit trail: which
// conditions a filter adds, built once, with the parameters in the
// driver's placeholder style.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// Args collects the parameters of a query being built.
type Args struct {
	List []any
	d    *Dialect
}

// NewArgs starts the parameters of a query in dialect d.
func NewArgs(d *Dialect) *Args { return &Args{d: d} }

// Bind adds parameter v and returns its placeholder.
func (a *Args) Bind(v any) string {
	a.List = append(a.List, v)
	return a.d.P(len(a.List))
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
	if f.IDs != nil {
		q += ` AND ` + a.d.IDIn(a, "id", f.IDs)
	}
	return q + ` ORDER BY id`
}

// idsPerQuery is the longest list of ids ListClients puts in one query.
const idsPerQuery = 1000

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
func ScanOperation(row Scanner) (db.AuditEntry, error) {
	var op db.AuditEntry
	var at int64
	err := row.Scan(&op.ID, &at, &op.ServerID, &op.Actor, &op.Name, &op.Target, &op.Outcome, &op.Detail)
	op.At = Time(at)
	return op, err
}

// OperationsQuery is ListOperations' query for f: rows of OperationCols,
// newest first. A Name ending in "*" is a prefix (Dialect.StartsWith).
func OperationsQuery(f db.AuditFilter, a *Args, d *Dialect) string {
	q := `SELECT ` + OperationCols + ` FROM operations WHERE 1=1`
	if f.Actor != "" {
		q += ` AND actor = ` + a.Bind(f.Actor)
	}
	if prefix, ok := strings.CutSuffix(f.Name, "*"); ok {
		if prefix != "" {
			q += ` AND ` + d.StartsWith(a, "name", prefix)
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

// Client returns a client by id.
func (s Store) Client(ctx context.Context, id int64) (db.Client, error) {
	d := s.db.Dialect()
	c, err := ScanClient(s.db.Reader().QueryRow(ctx, `SELECT `+ClientCols+` FROM clients WHERE id = `+d.P(1), id))
	if NoRows(err) {
		return c, NotFound("client", id)
	} else if err != nil {
		return c, fmt.Errorf("client %d: %w", id, d.Classify(err))
	}
	return c, nil
}

// ClientByFingerprint returns a client by its certificate fingerprint.
func (s Store) ClientByFingerprint(ctx context.Context, fp string) (db.Client, error) {
	d := s.db.Dialect()
	c, err := ScanClient(s.db.Reader().QueryRow(ctx, `SELECT `+ClientCols+` FROM clients WHERE fingerprint = `+d.P(1), fp))
	if NoRows(err) {
		return c, NotFound("client with fingerprint", fp)
	} else if err != nil {
		return c, fmt.Errorf("client with fingerprint %s: %w", fp, d.Classify(err))
	}
	return c, nil
}

// ListClients lists clients by id; a long list of ids in several
// queries, in order.
func (s Store) ListClients(ctx context.Context, f db.ClientFilter) ([]db.Client, error) {
	var out []db.Client
	list := func(f db.ClientFilter) error {
		a := NewArgs(s.db.Dialect())
		err := s.db.Reader().Each(ctx, ClientsQuery(f, a), a.List, func(row Scanner) error {
			c, err := ScanClient(row)
			out = append(out, c)
			return err
		})
		if err != nil {
			return fmt.Errorf("list clients: %w", s.db.Dialect().Classify(err))
		}
		return nil
	}
	if f.IDs == nil {
		return out, list(f)
	}
	ids := slices.Clone(f.IDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for len(ids) > 0 {
		n := min(len(ids), idsPerQuery)
		f.IDs, ids = ids[:n], ids[n:]
		if err := list(f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Job returns a job with the counts of its runs by state.
func (s Store) Job(ctx context.Context, id int64) (db.Job, error) {
	d := s.db.Dialect()
	j, err := ScanJob(s.db.Reader().QueryRow(ctx, `SELECT `+JobCols+` FROM jobs WHERE id = `+d.P(1), id))
	if NoRows(err) {
		return j, NotFound("job", id)
	} else if err != nil {
		return j, fmt.Errorf("job %d: %w", id, d.Classify(err))
	}
	counts, err := s.runCounts(ctx, []int64{id})
	if err != nil {
		return j, err
	}
	j.Counts = counts[id]
	one := []db.Job{j}
	if err := CanaryPhases(ctx, s.db.Reader(), d, one); err != nil {
		return j, err
	}
	return one[0], nil
}

// ListJobs lists jobs newest first, with the counts of their runs.
func (s Store) ListJobs(ctx context.Context, f db.JobFilter) ([]db.Job, error) {
	a := NewArgs(s.db.Dialect())
	var jobs []db.Job
	var ids []int64
	err := s.db.Reader().Each(ctx, JobsQuery(f, a), a.List, func(row Scanner) error {
		j, err := ScanJob(row)
		jobs = append(jobs, j)
		ids = append(ids, j.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", s.db.Dialect().Classify(err))
	}
	counts, err := s.runCounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		jobs[i].Counts = counts[jobs[i].ID]
	}
	if err := CanaryPhases(ctx, s.db.Reader(), s.db.Dialect(), jobs); err != nil {
		return nil, err
	}
	return jobs, nil
}

// runCounts counts the runs of jobs by state, in one query.
func (s Store) runCounts(ctx context.Context, ids []int64) (map[int64]map[runstate.State]int, error) {
	out := make(map[int64]map[runstate.State]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	for _, id := range ids {
		out[id] = map[runstate.State]int{}
	}
	a := NewArgs(s.db.Dialect())
	err := s.db.Reader().Each(ctx, `SELECT job_id, state, COUNT(*) FROM runs WHERE `+s.db.Dialect().IDIn(a, "job_id", ids)+` GROUP BY job_id, state`, a.List,
		func(row Scanner) error {
			var id int64
			var st runstate.State
			var n int
			if err := row.Scan(&id, &st, &n); err != nil {
				return err
			}
			out[id][st] = n
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	return out, nil
}

// Run returns one run.
func (s Store) Run(ctx context.Context, id int64) (db.Run, error) {
	d := s.db.Dialect()
	r, err := ScanRun(s.db.Reader().QueryRow(ctx, `SELECT `+RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.id = `+d.P(1), id))
	if NoRows(err) {
		return r, NotFound("run", id)
	} else if err != nil {
		return r, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// ListServers lists registered daemons, newest first.
func (s Store) ListServers(ctx context.Context) ([]db.ServerInfo, error) {
	var out []db.ServerInfo
	err := s.db.Reader().Each(ctx, `SELECT `+ServerCols+` FROM servers ORDER BY id DESC`, nil, func(row Scanner) error {
		si, err := ScanServer(row)
		out = append(out, si)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	return out, nil
}

// ListOperations lists the audit trail, newest first.
func (s Store) ListOperations(ctx context.Context, f db.AuditFilter) ([]db.AuditEntry, error) {
	d := s.db.Dialect()
	a := NewArgs(d)
	var out []db.AuditEntry
	err := s.db.Reader().Each(ctx, OperationsQuery(f, a, d), a.List, func(row Scanner) error {
		op, err := ScanOperation(row)
		out = append(out, op)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", d.Classify(err))
	}
	return out, nil
}
