package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// InsertJobs stores the jobs of a SubmitJobs call and the audit records of
// their submission in one transaction (one commit for the lot), and
// returns the jobs as Job would read them back. then, when not nil, runs
// last in the transaction.
func (c core) InsertJobs(ctx context.Context, ps []dbcore.PreparedJob, audit []db.AuditEntry, then func(dbcore.Querier, []dbcore.PreparedJob) error) ([]db.Job, int, error) {
	s := c.s
	var failed int
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		insertRun, err := s.txStmt(ctx, tx, insertRunSQL)
		if err != nil {
			return err
		}
		for i := range ps {
			failed = i
			p := &ps[i]
			nj, now := p.Job, p.Job.CreatedAt.UnixNano()
			if p.Duplicate, err = dbcore.KeyedJob(ctx, querier{q: tx}, dialect, nj); err != nil {
				return err
			} else if p.Duplicate != 0 {
				continue
			}
			res, err := s.txExec(ctx, tx, insertJobSQL,
				nj.Name, nj.Permission, nj.Interpreter, nj.Script, nj.Priority, nj.SubmittedBy, string(p.Targets),
				now, nt(nj.NotBefore), nt(nj.ExpiresAt), int64(nj.Timeout/time.Second), nj.MaxAttempts,
				nj.Rollout.MaxParallel, dbcore.BudgetColumn(nj.Rollout), nj.Rollout.Canary, nj.Rollout.Threshold(), dbcore.NullID(nj.RerunOf))
			if err != nil {
				return err
			}
			if p.ID, err = res.LastInsertId(); err != nil {
				return err
			}
			p.Runs = 0
			gated := nj.Rollout.Gated()
			for k, cid := range nj.ClientIDs {
				res, err := insertRun.ExecContext(ctx, p.ID, nj.Priority, nt(nj.NotBefore), now, now, gated, k < nj.Rollout.Canary, cid)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 0 {
					return dbcore.NotFound("client", cid)
				}
				p.Runs++
			}
			if err := dbcore.RecordKey(ctx, querier{q: tx}, dialect, nj, p.ID); err != nil {
				return err
			}
		}
		failed = -1
		for _, op := range audit {
			if _, err := s.txExec(ctx, tx, recordOperationSQL, op.At.UnixNano(), op.ServerID, op.Actor, op.Name, op.Target, op.Outcome, op.Detail); err != nil {
				return fmt.Errorf("record operation %s: %w", op.Name, err)
			}
		}
		if then != nil {
			return then(querier{q: tx}, ps)
		}
		return nil
	})
	if err != nil {
		return nil, failed, err
	}
	out := make([]db.Job, len(ps))
	for i, p := range ps {
		if p.Duplicate != 0 {
			out[i] = db.Job{ID: p.Duplicate, Duplicate: true} // read back by SubmitJobs
			continue
		}
		nj, now := p.Job, p.Job.CreatedAt.UnixNano()
		// The job as Job would read it back (times in UTC to the
		// nanosecond, the timeout in whole seconds), without reading it back.
		j := db.Job{ID: p.ID, Name: nj.Name, Permission: nj.Permission, Interpreter: nj.Interpreter, Script: nj.Script,
			Priority: nj.Priority, SubmittedBy: nj.SubmittedBy, CreatedAt: dbcore.Time(now), NotBefore: stored(nj.NotBefore),
			ExpiresAt: stored(nj.ExpiresAt), Timeout: nj.Timeout / time.Second * time.Second, MaxAttempts: nj.MaxAttempts,
			Counts: dbcore.NewCounts(p.Runs), Rollout: dbcore.StoredRollout(nj.Rollout), RerunOf: nj.RerunOf}
		_ = json.Unmarshal(p.Targets, &j.Targets)
		out[i] = j
	}
	return out, -1, nil
}

var (
	insertJobSQL = writeStatement(`
		INSERT INTO jobs (name, permission, interpreter, script, priority, submitted_by, targets,
		                  created_at, not_before, expires_at, timeout_s, max_attempts,
		                  max_parallel, max_failures, canary, success_threshold, rerun_of)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	insertRunSQL = writeStatement(`
		INSERT INTO runs (job_id, client_id, priority, not_before, created_at, updated_at, gated, canary)
		SELECT ?, id, ?, ?, ?, ?, ?, ? FROM clients WHERE id = ?`)
)

// stored is t as it reads back from the database: UTC, no monotonic
// reading, zero when unset.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return dbcore.Time(t.UnixNano())
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
