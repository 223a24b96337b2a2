package dbcore

// Retention (db.RetentionStore): old final jobs deleted in batches by
// creation time, jobs deleted by id, old audit records. The SQL is the
// same in both dialects; each batch's deletions are one transaction of the
// driver's writer (SQLite: the group commit, PostgreSQL: a short READ
// COMMITTED transaction). A final run never changes again and no run is
// ever added to a job, so a job found final and old is still so when it is
// deleted, even in another transaction.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// notFinal is the list of the states a run may leave, for an IN (…).
var notFinal = func() string {
	var q []string
	for _, s := range runstate.All {
		if !s.Final() {
			q = append(q, "'"+string(s)+"'")
		}
	}
	return strings.Join(q, ", ")
}()

// pruneCandidatesSQL reads the next jobs created before $1 after the
// cursor ($2, $3), oldest first, each with whether it is old and final:
// no run that is not final or that changed at or after $1. The jobs
// come through jobs_created (created_at < $1, from the cursor on), each
// job's runs through runs_job.
func pruneCandidatesSQL(d *Dialect, limit int) string {
	return `SELECT j.id, j.created_at,
		CASE WHEN EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id
			AND (r.state IN (` + notFinal + `) OR r.updated_at >= ` + d.P(1) + `)) THEN 0 ELSE 1 END
		FROM jobs j
		WHERE j.created_at < ` + d.P(1) + ` AND (j.created_at, j.id) > (` + d.P(2) + `, ` + d.P(3) + `)
		ORDER BY j.created_at, j.id` + LimitClause(limit)
}

// PruneJobs deletes the old final jobs of one batch (db.Store.PruneJobs).
// The batch's jobs are found in a read transaction, outside the writer
// (SQLite: on the read pool, while agents' writes go on); only the
// deletions take the writer. A job found old and final stays so: its
// runs never change again.
func (s Store) PruneJobs(ctx context.Context, o db.PruneOptions) (db.PruneResult, error) {
	if o.Before.IsZero() || o.Limit < 0 {
		return db.PruneResult{}, fmt.Errorf("prune jobs: before %v, limit %d: %w", o.Before, o.Limit, db.ErrInvalid)
	}
	limit := o.Limit
	if limit == 0 {
		limit = db.DefaultPruneLimit
	}
	d := s.db.Dialect()
	fail := func(err error) (db.PruneResult, error) {
		return db.PruneResult{}, fmt.Errorf("prune jobs before %s: %w", o.Before.UTC().Format(time.RFC3339), d.Classify(err))
	}
	var res db.PruneResult
	var old []int64
	err := s.db.Read(ctx, func(q Querier) error {
		res, old = db.PruneResult{Next: o.After}, nil
		err := q.Each(ctx, pruneCandidatesSQL(d, limit), []any{o.Before.UnixNano(), o.After.CreatedAt, o.After.ID}, func(row Scanner) error {
			var id, created, isOld int64
			if err := row.Scan(&id, &created, &isOld); err != nil {
				return err
			}
			res.Examined++
			res.Next = db.PruneCursor{CreatedAt: created, ID: id}
			if isOld == 1 {
				old = append(old, id)
			}
			return nil
		})
		if err != nil || len(old) == 0 || !o.DryRun {
			return err
		}
		res.Jobs, res.Runs, err = deleteJobs(ctx, q, d, old, true)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if o.DryRun || len(old) == 0 {
		return res, nil
	}
	err = s.db.Write(ctx, func(q Querier) (err error) {
		res.Jobs, res.Runs, err = deleteJobs(ctx, q, d, old, false)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// deleteJobs deletes jobs ids, runs first (their output goes with them),
// and returns how many of each went; with dryRun it counts them instead.
func deleteJobs(ctx context.Context, q Querier, d *Dialect, ids []int64, dryRun bool) (jobs, runs int, err error) {
	a := NewArgs(d)
	in := d.IDIn(a, "job_id", ids)
	if dryRun {
		var n int64
		if err := q.QueryRow(ctx, `SELECT count(*) FROM runs WHERE `+in, a.List...).Scan(&n); err != nil {
			return 0, 0, err
		}
		return len(ids), int(n), nil
	}
	nr, err := q.Exec(ctx, `DELETE FROM runs WHERE `+in, a.List...)
	if err != nil {
		return 0, 0, err
	}
	a = NewArgs(d)
	nj, err := q.Exec(ctx, `DELETE FROM jobs WHERE `+d.IDIn(a, "id", ids), a.List...)
	return int(nj), int(nr), err
}

// DeleteJobs deletes jobs by id, all or none (db.Store.DeleteJobs).
func (s Store) DeleteJobs(ctx context.Context, ids []int64) (db.PruneResult, error) {
	d := s.db.Dialect()
	seen := make(map[int64]bool, len(ids))
	uniq := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	var res db.PruneResult
	if len(uniq) == 0 {
		return res, nil
	}
	err := s.db.Write(ctx, func(q Querier) error {
		a := NewArgs(d)
		out := map[int64]int64{} // job → its runs not final
		err := q.Each(ctx, `SELECT j.id, (SELECT count(*) FROM runs r WHERE r.job_id = j.id AND r.state IN (`+notFinal+`))
			FROM jobs j WHERE `+d.IDIn(a, "j.id", uniq), a.List, func(row Scanner) error {
			var id, n int64
			err := row.Scan(&id, &n)
			out[id] = n
			return err
		})
		if err != nil {
			return err
		}
		for _, id := range uniq {
			n, ok := out[id]
			if !ok {
				return NotFound("job", id)
			}
			if n > 0 {
				return fmt.Errorf("job %d has %d %s not final: cancel it first: %w", id, n, plural(n, "run", "runs"), db.ErrConflict)
			}
		}
		res.Jobs, res.Runs, err = deleteJobs(ctx, q, d, uniq, false)
		return err
	})
	if err != nil {
		return db.PruneResult{}, fmt.Errorf("delete jobs: %w", d.Classify(err))
	}
	res.Examined = len(uniq)
	return res, nil
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// PruneOperations deletes up to limit audit records older than before,
// the oldest first, through operations_at (db.Store.PruneOperations).
func (s Store) PruneOperations(ctx context.Context, before time.Time, limit int) (int, error) {
	return s.pruneOlder(ctx, "audit records", "operations", "id", "at", before, limit)
}

// PruneEvents deletes up to limit rows of events older than before, the
// oldest first, through events_at, and returns how many events they held
// (db.Store.PruneEvents): a row that holds a batch's events (schema 12)
// goes whole, as they share its time.
func (s Store) PruneEvents(ctx context.Context, before time.Time, limit int) (int, error) {
	d := s.db.Dialect()
	if before.IsZero() || limit < 1 {
		return 0, fmt.Errorf("prune events: before %v, limit %d: %w", before, limit, db.ErrInvalid)
	}
	var n int
	err := s.db.Write(ctx, func(q Querier) error {
		n = 0
		return q.Each(ctx, `DELETE FROM events WHERE id IN
			(SELECT id FROM events WHERE at < `+d.P(1)+` ORDER BY at`+LimitClause(limit)+`) RETURNING span`, []any{before.UnixNano()},
			func(row Scanner) error {
				var span int
				err := row.Scan(&span)
				n += span
				return err
			})
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", d.Classify(err))
	}
	return n, nil
}

// PruneIdempotencyKeys deletes up to limit keys made before before
// (db.Store.PruneIdempotencyKeys).
func (s Store) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int, error) {
	d := s.db.Dialect()
	if before.IsZero() || limit < 1 {
		return 0, fmt.Errorf("prune idempotency keys: before %v, limit %d: %w", before, limit, db.ErrInvalid)
	}
	var n int64
	err := s.db.Write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM idempotency_keys WHERE (submitted_by, key) IN
			(SELECT submitted_by, key FROM idempotency_keys WHERE created_at < `+d.P(1)+LimitClause(limit)+`)`, before.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", d.Classify(err))
	}
	return int(n), nil
}

// pruneOlder deletes up to limit rows of table whose time column is
// before before, the oldest first (an index on col makes it a range).
// The names are constants of the callers, never input.
func (s Store) pruneOlder(ctx context.Context, what, table, id, col string, before time.Time, limit int) (int, error) {
	d := s.db.Dialect()
	if before.IsZero() || limit < 1 {
		return 0, fmt.Errorf("prune %s: before %v, limit %d: %w", what, before, limit, db.ErrInvalid)
	}
	var n int64
	err := s.db.Write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM `+table+` WHERE `+id+` IN
			(SELECT `+id+` FROM `+table+` WHERE `+col+` < `+d.P(1)+` ORDER BY `+col+LimitClause(limit)+`)`, before.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune %s: %w", what, d.Classify(err))
	}
	return int(n), nil
}
