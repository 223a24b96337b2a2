package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// InsertJobs stores the jobs of a SubmitJobs call and the audit records of
// their submission in one transaction. A single job without audit records
// is one statement, no transaction block. then, when not nil, runs last in
// the transaction.
func (c core) InsertJobs(ctx context.Context, ps []dbcore.PreparedJob, audit []db.AuditEntry, then func(dbcore.Querier, []dbcore.PreparedJob) error) ([]db.Job, int, error) {
	s := c.s
	var err error
	out := make([]db.Job, len(ps))
	failed := -1
	insert := func(q queryer) error {
		for i, p := range ps {
			failed = i
			dup, err := dbcore.KeyedJob(ctx, querier{q}, dialect, p.Job)
			if err != nil {
				return err
			} else if dup != 0 {
				out[i], ps[i].Duplicate = db.Job{ID: dup, Duplicate: true}, dup // read back by SubmitJobs
				continue
			}
			j, runs, err := insertJob(ctx, q, p.Job, string(p.Targets), p.Job.CreatedAt.UnixNano(), p.Job.ClientIDs)
			if noRows(err) {
				err = missingClient(ctx, q, p.Job.ClientIDs)
			}
			if err != nil {
				return err
			}
			j.Counts = dbcore.NewCounts(runs)
			out[i] = j
			ps[i].ID, ps[i].Runs = j.ID, runs
			if err := dbcore.RecordKey(ctx, querier{q}, dialect, p.Job, j.ID); err != nil {
				return err
			}
		}
		failed = -1
		for _, op := range audit {
			if err := recordOperation(ctx, q, op); err != nil {
				return err
			}
		}
		if then != nil {
			return then(querier{q}, ps)
		}
		return nil
	}
	keyed := slices.ContainsFunc(ps, func(p dbcore.PreparedJob) bool { return p.Job.IdempotencyKey != "" })
	if len(ps) == 1 && len(audit) == 0 && then == nil && !keyed {
		err = s.retry(ctx, func() error { return insert(s.pool) })
	} else {
		err = s.tx(ctx, func(tx pgx.Tx) error { return insert(tx) })
		if errors.Is(err, dbcore.ErrKeyRace) {
			// Another submit with the key committed first: this time
			// the read finds its job.
			err = s.tx(ctx, func(tx pgx.Tx) error { return insert(tx) })
		}
	}
	if err != nil {
		return nil, failed, err
	}
	return out, -1, nil
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
			                  created_at, not_before, expires_at, timeout_s, max_attempts,
			                  max_parallel, max_failures, canary, success_threshold, rerun_of)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $15, $16, $17, $18, $19 WHERE (SELECT count(*) FROM c) = $14
			RETURNING `+dbcore.JobCols+`),
		r AS (
			INSERT INTO runs (job_id, client_id, priority, not_before, created_at, updated_at, gated, canary)
			SELECT j.id, x.cid, $5, $9, $8, $8, $20, x.ord <= $17 FROM j, unnest($13::bigint[]) WITH ORDINALITY AS x(cid, ord) ORDER BY x.ord
			RETURNING 1)
		SELECT `+dbcore.JobCols+`, (SELECT count(*) FROM r) FROM j`,
		nj.Name, nj.Permission, nj.Interpreter, nj.Script, nj.Priority, nj.SubmittedBy, targets,
		now, nt(nj.NotBefore), nt(nj.ExpiresAt), int64(nj.Timeout/time.Second), nj.MaxAttempts, cids, len(cids),
		nj.Rollout.MaxParallel, dbcore.BudgetColumn(nj.Rollout), nj.Rollout.Canary, nj.Rollout.Threshold(), dbcore.NullID(nj.RerunOf),
		nj.Rollout.Gated())
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
