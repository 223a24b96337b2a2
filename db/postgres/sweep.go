package postgres

// Run maintenance: the time-driven transitions (lease expiry, lost runs,
// expiry), failover requeue and operator cancellation — the SQLite driver's
// sweep.go, for several daemons at once.
//
// Every method works the same way, in one transaction: a SELECT finds the
// runs that qualify and locks them (FOR UPDATE OF r; the sweeps SKIP LOCKED,
// so two daemons sweeping at once split the work instead of queueing behind
// each other, and a run another transaction holds is left for the next
// sweep), then one conditional UPDATE per run moves it, its WHERE repeating
// the id, the source states runstate allows for the event, and the condition
// that made the run qualify. A run is reported as changed only when its
// UPDATE changed a row. The UPDATEs go to the server as one batch.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// errDryRun rolls back a dry run's transaction after its changes were
// computed.
var errDryRun = errors.New("dry run")

// maintain runs fn in a transaction, rolled back instead of committed when
// dryRun is set.
func (s *Store) maintain(ctx context.Context, dryRun bool, fn func(tx pgx.Tx) error) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		return nil
	}
	return err
}

// limitClause is " LIMIT n" for n > 0 and nothing otherwise.
func limitClause(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}

// candidate is a run a SELECT found, with what its UPDATE re-checks.
type candidate struct {
	db.Change
	maxAttempts int
	updatedAt   int64
}

const candCols = `r.id, r.job_id, r.client_id, COALESCE(r.server_id, 0), r.attempts, r.state, r.updated_at, j.max_attempts`

// candidates runs a SELECT of candCols and reads all rows before any UPDATE
// runs.
func candidates(ctx context.Context, tx pgx.Tx, q string, args ...any) ([]candidate, error) {
	var out []candidate
	err := eachRow(ctx, tx, q, args, func(rows pgx.Rows) error {
		var c candidate
		err := rows.Scan(&c.RunID, &c.JobID, &c.ClientID, &c.ServerID, &c.Attempts, &c.From, &c.updatedAt, &c.maxAttempts)
		out = append(out, c)
		return err
	})
	return out, err
}

// update is one queued conditional UPDATE and the change it makes.
type update struct {
	change db.Change
	sql    string
	args   []any
}

// apply sends the UPDATEs as one batch and returns the changes of those
// that moved their run, in order.
func apply(ctx context.Context, tx pgx.Tx, ups []update) ([]db.Change, error) {
	if len(ups) == 0 {
		return nil, nil
	}
	var b pgx.Batch
	for _, u := range ups {
		b.Queue(u.sql, u.args...)
	}
	br := tx.SendBatch(ctx, &b)
	out := make([]db.Change, 0, len(ups))
	for _, u := range ups {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		if tag.RowsAffected() == 1 {
			out = append(out, u.change)
		}
	}
	return out, br.Close()
}

// Sweep applies the lease, loss and expiry transitions due at o.At.
func (s *Store) Sweep(ctx context.Context, o db.SweepOptions) ([]db.Change, error) {
	if o.Limit < 0 {
		return nil, fmt.Errorf("sweep runs: limit %d: %w", o.Limit, db.ErrInvalid)
	}
	if o.At.IsZero() {
		o.At = time.Now().UTC()
	}
	now := o.At.UnixNano()
	var out []db.Change
	err := s.maintain(ctx, o.DryRun, func(tx pgx.Tx) error {
		out = nil
		c, err := requeueSent(ctx, tx, now, "lease_until < $1", now, o.Limit)
		if err != nil {
			return fmt.Errorf("expired leases: %w", err)
		}
		out = append(out, c...)
		if c, err = loseSilent(ctx, tx, now, now-int64(o.Grace), o.Limit); err != nil {
			return fmt.Errorf("lost runs: %w", err)
		}
		out = append(out, c...)
		if c, err = expirePending(ctx, tx, now, o.Limit); err != nil {
			return fmt.Errorf("expired jobs: %w", err)
		}
		out = append(out, c...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sweep runs at %s: %w", o.At.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// RequeueServer hands the sent, unacknowledged runs of a dead daemon back.
func (s *Store) RequeueServer(ctx context.Context, serverID int64, at time.Time, dryRun bool) ([]db.Change, error) {
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out []db.Change
	err := s.maintain(ctx, dryRun, func(tx pgx.Tx) error {
		var err error
		out, err = requeueSent(ctx, tx, at.UnixNano(), "server_id = $1", serverID, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("requeue runs of server %d: %w", serverID, err)
	}
	return out, nil
}

// requeueSent moves sent runs matching cond (a condition on runs' own
// columns with one parameter, $1, the same in the SELECT and the UPDATE)
// back to pending, or to failed when runstate.Requeue says their attempts
// are used up. A requeued run keeps its attempts (the next claim counts the
// next one) and sent_at (the agent may hold it: its ack may have been lost,
// and a later cancellation must still reach it through CancelledRuns); it
// loses its lease and server, since nobody holds it now.
func requeueSent(ctx context.Context, tx pgx.Tx, now int64, cond string, arg any, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE `+db.StateIn("r.state", runstate.LeaseExpired)+` AND r.`+cond+`
		ORDER BY r.lease_until, r.id`+limitClause(limit)+`
		FOR UPDATE OF r SKIP LOCKED`, arg)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	where := ` AND ` + db.StateIn("state", runstate.LeaseExpired) + ` AND ` + cond
	ups := make([]update, 0, len(cands))
	for _, c := range cands {
		switch c.To = runstate.Requeue(c.Attempts, c.maxAttempts); c.To {
		case runstate.Pending:
			ups = append(ups, update{c.Change, `UPDATE runs SET state = $2, lease_until = NULL, server_id = NULL, updated_at = $3
				WHERE id = $4` + where, []any{arg, c.To, now, c.RunID}})
		default:
			c.Reason = db.ReasonMaxAttempts
			ups = append(ups, update{c.Change, `UPDATE runs SET state = $2, reason = $3, finished_at = $4, updated_at = $4
				WHERE id = $5` + where, []any{arg, c.To, c.Reason, now, c.RunID}})
		}
	}
	return apply(ctx, tx, ups)
}

// loseSilent fails received and running runs of jobs with a timeout that
// have been silent for longer than it: updated_at + timeout + grace < at,
// written updated_at < cutoff - timeout (cutoff = at - grace) so that no
// sum can overflow.
func loseSilent(ctx context.Context, tx pgx.Tx, now, cutoff int64, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE `+db.StateIn("r.state", runstate.Lose)+` AND j.timeout_s > 0
		  AND r.updated_at < $1 - j.timeout_s * 1000000000
		ORDER BY r.updated_at, r.id`+limitClause(limit)+`
		FOR UPDATE OF r SKIP LOCKED`, cutoff)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	ups := make([]update, 0, len(cands))
	for _, c := range cands {
		if c.To, err = runstate.Next(c.From, runstate.Lose); err != nil {
			return nil, err
		}
		c.Reason = db.ReasonLost
		// Moved only if nothing happened to the run since it was seen silent.
		ups = append(ups, update{c.Change, `UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
			WHERE id = $4 AND ` + db.StateIn("state", runstate.Lose) + ` AND state = $5 AND updated_at = $6`,
			[]any{c.To, c.Reason, now, c.RunID, c.From, c.updatedAt}})
	}
	return apply(ctx, tx, ups)
}

// expirePending expires the pending runs of jobs whose expires_at passed
// (jobs_expires, then runs_pending_job for each job).
func expirePending(ctx context.Context, tx pgx.Tx, now int64, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM jobs j JOIN runs r ON r.job_id = j.id
		WHERE j.expires_at < $1 AND `+db.StateIn("r.state", runstate.Expire)+`
		ORDER BY j.expires_at, r.id`+limitClause(limit)+`
		FOR UPDATE OF r SKIP LOCKED`, now)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	ups := make([]update, 0, len(cands))
	for _, c := range cands {
		if c.To, err = runstate.Next(c.From, runstate.Expire); err != nil {
			return nil, err
		}
		c.Reason = db.ReasonExpired
		ups = append(ups, update{c.Change, `UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
			WHERE id = $4 AND ` + db.StateIn("state", runstate.Expire),
			[]any{c.To, c.Reason, now, c.RunID}})
	}
	return apply(ctx, tx, ups)
}

// CancelJob cancels the job's runs that are not final yet. It waits for the
// runs another transaction holds (a claim in progress, say): a cancellation
// must not skip any.
func (s *Store) CancelJob(ctx context.Context, jobID int64, at time.Time, reason string) ([]db.Change, error) {
	if at.IsZero() {
		at = time.Now().UTC()
	}
	now := at.UnixNano()
	var out []db.Change
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM jobs WHERE id = $1`, jobID).Scan(&one); noRows(err) {
			return notFound("job", jobID)
		} else if err != nil {
			return err
		}
		cands, err := candidates(ctx, tx, `SELECT `+candCols+`
			FROM runs r JOIN jobs j ON j.id = r.job_id
			WHERE r.job_id = $1 AND `+db.StateIn("r.state", runstate.Cancel)+`
			ORDER BY r.id
			FOR UPDATE OF r`, jobID)
		if err != nil || len(cands) == 0 {
			return err
		}
		ups := make([]update, 0, len(cands))
		for _, c := range cands {
			if c.To, err = runstate.Next(c.From, runstate.Cancel); err != nil {
				return err
			}
			c.Reason = reason
			ups = append(ups, update{c.Change, `UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
				WHERE id = $4 AND ` + db.StateIn("state", runstate.Cancel) + ` AND state = $5`,
				[]any{c.To, c.Reason, now, c.RunID, c.From}})
		}
		out, err = apply(ctx, tx, ups)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel job %d: %w", jobID, classify(err))
	}
	return out, nil
}

// CancelledRuns lists the client's runs cancelled at or after since that
// had been sent to it, oldest cancellation first (runs_cancelled).
func (s *Store) CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error) {
	lo := int64(math.MinInt64)
	if !since.IsZero() {
		lo = since.UnixNano()
	}
	var out []int64
	err := eachRow(ctx, s.pool, `SELECT r.id FROM runs r
		WHERE r.client_id = $1 AND r.state = 'cancelled' AND r.sent_at IS NOT NULL AND r.finished_at >= $2
		ORDER BY r.finished_at, r.id`, []any{clientID, lo}, func(rows pgx.Rows) error {
		var id int64
		err := rows.Scan(&id)
		out = append(out, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancelled runs of client %d: %w", clientID, err)
	}
	return out, nil
}

// renewSQL restarts the loss timer of the caller's ($2) received runs among
// the ids $1, at $3. Like the dispatch statements (dispatch.go) it locks
// the runs by primary key first and tests their state on the locked rows.
var renewSQL = `
	WITH cur AS MATERIALIZED (SELECT id, client_id, state, updated_at FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE)
	UPDATE runs r SET updated_at = $3 FROM cur
	WHERE r.id = cur.id AND cur.client_id = $2 AND ` + db.StateIn("cur.state", runstate.Renew) + ` AND cur.updated_at < $3`

// RenewRuns restarts the loss timer of the received runs the agent holds.
// The states are read first, without locks, so that a heartbeat whose runs
// are all running (or none received any more) writes nothing; the UPDATE
// re-tests the state of the runs it locked, so a run lost or reported in
// between is left as it is.
func (s *Store) RenewRuns(ctx context.Context, clientID int64, ids []int64, at time.Time) (db.RenewResult, error) {
	var res db.RenewResult
	if len(ids) == 0 {
		return res, nil
	}
	var held []db.HeldRun
	err := eachRow(ctx, s.pool, `SELECT id, state, reason FROM runs WHERE id = ANY($1) AND client_id = $2`,
		[]any{ids, clientID}, func(rows pgx.Rows) error {
			var h db.HeldRun
			err := rows.Scan(&h.ID, &h.State, &h.Reason)
			held = append(held, h)
			return err
		})
	if err != nil {
		return res, fmt.Errorf("renew runs of client %d: %w", clientID, classify(err))
	}
	renew, lost := db.SortHeld(held)
	res.Lost = lost
	if len(renew) == 0 {
		return res, nil
	}
	err = s.retry(ctx, func() error {
		tag, err := s.pool.Exec(ctx, renewSQL, renew, clientID, at.UnixNano())
		res.Renewed = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return db.RenewResult{}, fmt.Errorf("renew runs of client %d: %w", clientID, classify(err))
	}
	return res, nil
}
