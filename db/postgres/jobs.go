package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// SubmitJob stores a job and one pending run per target client in one
// statement: a job is either there with all its runs or not at all. Runs
// get their ids in the order of the targets. The clients are share-locked
// (KEY SHARE, as the foreign keys would), so none is deleted before the
// runs are in; when one is missing nothing is inserted.
func (s *Store) SubmitJob(ctx context.Context, nj db.NewJob) (db.Job, error) {
	js, err := s.SubmitJobs(ctx, []db.NewJob{nj}, nil)
	if err != nil {
		return db.Job{}, err
	}
	return js[0], nil
}

// SubmitJobs stores jobs as SubmitJob does, and the audit records of their
// submission, in one transaction. A single job without audit records is
// one statement, no transaction block.
func (s *Store) SubmitJobs(ctx context.Context, njs []db.NewJob, audit []db.Operation) ([]db.Job, error) {
	ps, err := dbcore.PrepareJobs(njs)
	if err != nil {
		return nil, err
	}
	out := make([]db.Job, len(ps))
	failed := -1
	insert := func(q queryer) error {
		for i, p := range ps {
			failed = i
			j, runs, err := insertJob(ctx, q, p.Job, string(p.Targets), p.Job.CreatedAt.UnixNano(), p.Job.ClientIDs)
			if noRows(err) {
				err = missingClient(ctx, q, p.Job.ClientIDs)
			}
			if err != nil {
				return err
			}
			j.Counts = dbcore.NewCounts(runs)
			out[i] = j
		}
		failed = -1
		for _, op := range audit {
			if err := recordOperation(ctx, q, op); err != nil {
				return err
			}
		}
		return nil
	}
	if len(ps) == 1 && len(audit) == 0 {
		err = s.retry(ctx, func() error { return insert(s.pool) })
	} else {
		err = s.tx(ctx, func(tx pgx.Tx) error { return insert(tx) })
	}
	if err != nil {
		return nil, db.SubmitError(len(ps), failed, classify(err))
	}
	return out, nil
}

// insertJob inserts a job and its runs if every client of cids exists, and
// returns the job and how many runs it got; pgx.ErrNoRows when a client is
// missing.
func insertJob(ctx context.Context, q queryer, nj db.NewJob, targets string, now int64, cids []int64) (db.Job, int, error) {
	var runs int
	var j db.Job
	row := q.QueryRow(ctx, `
		WITH c AS (SELECT id FROM clients WHERE id = ANY($13) FOR KEY SHARE),
		j AS (
			INSERT INTO jobs (name, permission, interpreter, script, priority, submitted_by, targets,
			                  created_at, not_before, expires_at, timeout_s, max_attempts)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 WHERE (SELECT count(*) FROM c) = $14
			RETURNING `+dbcore.JobCols+`),
		r AS (
			INSERT INTO runs (job_id, client_id, priority, not_before, created_at, updated_at)
			SELECT j.id, x.cid, $5, $9, $8, $8 FROM j, unnest($13::bigint[]) WITH ORDINALITY AS x(cid, ord) ORDER BY x.ord
			RETURNING 1)
		SELECT `+dbcore.JobCols+`, (SELECT count(*) FROM r) FROM j`,
		nj.Name, nj.Permission, nj.Interpreter, nj.Script, nj.Priority, nj.SubmittedBy, targets,
		now, nt(nj.NotBefore), nt(nj.ExpiresAt), int64(nj.Timeout/time.Second), nj.MaxAttempts, cids, len(cids))
	j, err := dbcore.ScanJob(row, &runs)
	return j, runs, err
}

// missingClient names the first client of cids that does not exist.
func missingClient(ctx context.Context, q queryer, cids []int64) error {
	found := make(map[int64]bool, len(cids))
	err := eachRow(ctx, q, `SELECT id FROM clients WHERE id = ANY($1)`, []any{cids}, func(rows pgx.Rows) error {
		var cid int64
		err := rows.Scan(&cid)
		found[cid] = true
		return err
	})
	if err != nil {
		return err
	}
	for _, cid := range cids {
		if !found[cid] {
			return dbcore.NotFound("client", cid)
		}
	}
	return fmt.Errorf("the target clients changed during the submit: %w", db.ErrConflict)
}

// Job returns a job with the counts of its runs by state.
func (s *Store) Job(ctx context.Context, id int64) (db.Job, error) {
	j, err := dbcore.ScanJob(s.pool.QueryRow(ctx, `SELECT `+dbcore.JobCols+` FROM jobs WHERE id = $1`, id))
	if noRows(err) {
		return j, dbcore.NotFound("job", id)
	} else if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	counts, err := runCounts(ctx, s.pool, []int64{id})
	if err != nil {
		return j, err
	}
	j.Counts = counts[id]
	return j, nil
}

func runCounts(ctx context.Context, q queryer, ids []int64) (map[int64]map[runstate.State]int, error) {
	out := make(map[int64]map[runstate.State]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	for _, id := range ids {
		out[id] = map[runstate.State]int{}
	}
	err := eachRow(ctx, q, `SELECT job_id, state, COUNT(*) FROM runs WHERE job_id = ANY($1) GROUP BY job_id, state`, []any{ids},
		func(rows pgx.Rows) error {
			var id int64
			var st runstate.State
			var n int
			if err := rows.Scan(&id, &st, &n); err != nil {
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

// ListJobs lists jobs newest first.
func (s *Store) ListJobs(ctx context.Context, f db.JobFilter) ([]db.Job, error) {
	a := newArgs()
	var jobs []db.Job
	var ids []int64
	err := eachRow(ctx, s.pool, dbcore.JobsQuery(f, a), a.List, func(rows pgx.Rows) error {
		j, err := dbcore.ScanJob(rows)
		jobs = append(jobs, j)
		ids = append(ids, j.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", classify(err))
	}
	counts, err := runCounts(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		jobs[i].Counts = counts[jobs[i].ID]
	}
	return jobs, nil
}

// Runs lists a job's runs by id.
func (s *Store) Runs(ctx context.Context, jobID int64) ([]db.Run, error) {
	var out []db.Run
	err := eachRow(ctx, s.pool, `SELECT `+dbcore.RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.job_id = $1 ORDER BY r.id`,
		[]any{jobID}, func(rows pgx.Rows) error {
			r, err := dbcore.ScanRun(rows)
			out = append(out, r)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("runs of job %d: %w", jobID, err)
	}
	return out, nil
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id int64) (db.Run, error) {
	r, err := dbcore.ScanRun(s.pool.QueryRow(ctx, `SELECT `+dbcore.RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.id = $1`, id))
	if noRows(err) {
		return r, dbcore.NotFound("run", id)
	} else if err != nil {
		return r, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}
