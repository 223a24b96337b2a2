package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// SubmitJob stores a job and one pending run per target client in one
// transaction: a job is either there with all its runs or not at all.
func (s *Store) SubmitJob(ctx context.Context, nj db.NewJob) (db.Job, error) {
	js, err := s.SubmitJobs(ctx, []db.NewJob{nj}, nil)
	if err != nil {
		return db.Job{}, err
	}
	return js[0], nil
}

// SubmitJobs stores jobs as SubmitJob does, and the audit records of their
// submission, in one transaction (one commit for the lot).
func (s *Store) SubmitJobs(ctx context.Context, njs []db.NewJob, audit []db.Operation) ([]db.Job, error) {
	ps, err := dbcore.PrepareJobs(njs)
	if err != nil {
		return nil, err
	}
	var failed int
	err = s.tx(ctx, func(tx *sql.Tx) error {
		insertRun, err := s.txStmt(ctx, tx, insertRunSQL)
		if err != nil {
			return err
		}
		for i := range ps {
			failed = i
			p := &ps[i]
			nj, now := p.Job, p.Job.CreatedAt.UnixNano()
			res, err := s.txExec(ctx, tx, insertJobSQL,
				nj.Name, nj.Permission, nj.Interpreter, nj.Script, nj.Priority, nj.SubmittedBy, string(p.Targets),
				now, nt(nj.NotBefore), nt(nj.ExpiresAt), int64(nj.Timeout/time.Second), nj.MaxAttempts)
			if err != nil {
				return err
			}
			if p.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			p.Runs = 0
			for _, cid := range nj.ClientIDs {
				res, err := insertRun.ExecContext(ctx, p.ID, nj.Priority, nt(nj.NotBefore), now, now, cid)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return dbcore.NotFound("client", cid)
				}
				p.Runs++
			}
		}
		failed = -1
		for _, op := range audit {
			if _, err := s.txExec(ctx, tx, recordOperationSQL, op.At.UnixNano(), op.ServerID, op.Actor, op.Name, op.Target, op.Outcome, op.Detail); err != nil {
				return fmt.Errorf("record operation %s: %w", op.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, db.SubmitError(len(njs), failed, err)
	}
	out := make([]db.Job, len(ps))
	for i, p := range ps {
		nj, now := p.Job, p.Job.CreatedAt.UnixNano()
		// The job as Job would read it back (times in UTC to the
		// nanosecond, the timeout in whole seconds), without reading it back.
		j := db.Job{ID: p.ID, Name: nj.Name, Permission: nj.Permission, Interpreter: nj.Interpreter, Script: nj.Script,
			Priority: nj.Priority, SubmittedBy: nj.SubmittedBy, CreatedAt: dbcore.Time(now), NotBefore: stored(nj.NotBefore),
			ExpiresAt: stored(nj.ExpiresAt), Timeout: nj.Timeout / time.Second * time.Second, MaxAttempts: nj.MaxAttempts,
			Counts: dbcore.NewCounts(p.Runs)}
		_ = json.Unmarshal(p.Targets, &j.Targets)
		out[i] = j
	}
	return out, nil
}

var (
	insertJobSQL = writeStatement(`
		INSERT INTO jobs (name, permission, interpreter, script, priority, submitted_by, targets,
		                  created_at, not_before, expires_at, timeout_s, max_attempts)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	insertRunSQL = writeStatement(`
		INSERT INTO runs (job_id, client_id, priority, not_before, created_at, updated_at)
		SELECT ?, id, ?, ?, ?, ? FROM clients WHERE id = ?`)
)

// stored is t as it reads back from the database: UTC, no monotonic
// reading, zero when unset.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return dbcore.Time(t.UnixNano())
}

// Job returns a job with the counts of its runs by state.
func (s *Store) Job(ctx context.Context, id int64) (db.Job, error) {
	j, err := dbcore.ScanJob(s.readRow(ctx, `SELECT `+dbcore.JobCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, dbcore.NotFound("job", id)
	} else if err != nil {
		return j, fmt.Errorf("job %d: %w", id, err)
	}
	counts, err := s.runCounts(ctx, []int64{id})
	if err != nil {
		return j, err
	}
	j.Counts = counts[id]
	return j, nil
}

func (s *Store) runCounts(ctx context.Context, ids []int64) (map[int64]map[runstate.State]int, error) {
	out := make(map[int64]map[runstate.State]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
		out[id] = map[runstate.State]int{}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT job_id, state, COUNT(*) FROM runs WHERE job_id IN (`+placeholders(len(ids))+`) GROUP BY job_id, state`, args...)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var st runstate.State
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		out[id][st] = n
	}
	return out, rows.Err()
}

// ListJobs lists jobs newest first.
func (s *Store) ListJobs(ctx context.Context, f db.JobFilter) ([]db.Job, error) {
	a := newArgs()
	rows, err := s.r.QueryContext(ctx, dbcore.JobsQuery(f, a), a.List...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	defer rows.Close()
	var jobs []db.Job
	var ids []int64
	for rows.Next() {
		j, err := dbcore.ScanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, j)
		ids = append(ids, j.ID)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	rows.Close()
	counts, err := s.runCounts(ctx, ids)
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
	rows, err := s.readRows(ctx, `SELECT `+dbcore.RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.job_id = ? ORDER BY r.id`, jobID)
	if err != nil {
		return nil, fmt.Errorf("runs of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []db.Run
	for rows.Next() {
		r, err := dbcore.ScanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("runs of job %d: %w", jobID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Run returns one run.
func (s *Store) Run(ctx context.Context, id int64) (db.Run, error) {
	r, err := dbcore.ScanRun(s.readRow(ctx, `SELECT `+dbcore.RunCols+` FROM runs r JOIN clients c ON c.id = r.client_id WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, dbcore.NotFound("run", id)
	}
	return r, err
}
