package sqlite

// Run maintenance: the time-driven transitions (lease expiry, lost runs,
// expiry), failover requeue and operator cancellation.
//
// Every method works the same way, in one write transaction: a SELECT finds
// the runs that qualify (through an index, see the plans noted below), then
// one conditional UPDATE per run moves it, its WHERE repeating the id, the
// source states runstate allows for the event, and the condition that made
// the run qualify. A run is reported as changed only when its UPDATE changed
// a row. On SQLite the transaction is BEGIN IMMEDIATE on the single writer
// connection, so nothing can slip between the SELECT and the UPDATEs; on
// PostgreSQL the SELECTs take FOR UPDATE OF r SKIP LOCKED and the UPDATEs'
// conditions keep two daemons from both moving a run.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// inFlight is the WHERE clause of the partial index runs_inflight
// (state, lease_until), as the migration writes it. SQLite uses a partial
// index only for a query whose WHERE holds the index's condition term for
// term: it does not infer that state = 'sent' implies it. Queries that must
// read only in-flight runs therefore repeat it before their own state
// condition (PostgreSQL proves the implication itself; there the repeated
// term is free). Keep it in step with the migration.
const inFlight = "r.state IN ('sent', 'received', 'running')"

// stateIs renders the source states of ev for a query on runs aliased r:
// "r.state = 'x'" for one state, which is the form the partial indexes
// runs_pending_job and runs_cancelled are written in, else an IN list.
func stateIs(ev runstate.Event) string {
	from := runstate.From(ev)
	if len(from) == 1 {
		return "r.state = '" + string(from[0]) + "'"
	}
	q := make([]string, len(from))
	for i, s := range from {
		q[i] = "'" + string(s) + "'"
	}
	return "r.state IN (" + strings.Join(q, ", ") + ")"
}

// errDryRun rolls back a dry run's transaction after its changes were
// computed.
var errDryRun = errors.New("dry run")

// maintain runs fn in a write transaction, rolled back instead of committed
// when dryRun is set.
func (s *Store) maintain(ctx context.Context, dryRun bool, fn func(tx *sql.Tx) error) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
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

// limitClause is " LIMIT n" for n > 0 and nothing otherwise (SQLite's
// LIMIT -1 and PostgreSQL's LIMIT ALL differ; leaving it out ports).
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

// candidates runs a SELECT whose columns are r.id, r.job_id, r.client_id,
// COALESCE(r.server_id, 0), r.attempts, r.state, r.updated_at and a job's
// max_attempts, and reads all rows before any UPDATE runs.
func candidates(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]candidate, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.RunID, &c.JobID, &c.ClientID, &c.ServerID, &c.Attempts, &c.From, &c.updatedAt, &c.maxAttempts); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const candCols = `r.id, r.job_id, r.client_id, COALESCE(r.server_id, 0), r.attempts, r.state, r.updated_at, j.max_attempts`

// changed executes a prepared conditional UPDATE and says whether it moved
// the run.
func changed(ctx context.Context, st *sql.Stmt, args ...any) (bool, error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
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
	err := s.maintain(ctx, o.DryRun, func(tx *sql.Tx) error {
		out = nil
		// Lease expiry: plan SEARCH r USING INDEX runs_inflight (state=? AND lease_until<?).
		c, err := requeueSent(ctx, tx, now, "r.lease_until < ?", "lease_until < ?", now, o.Limit)
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
	err := s.maintain(ctx, dryRun, func(tx *sql.Tx) error {
		var err error
		// Plan: SEARCH r USING INDEX runs_inflight (state=?): the sent runs only.
		out, err = requeueSent(ctx, tx, at.UnixNano(), "r.server_id = ?", "server_id = ?", serverID, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("requeue runs of server %d: %w", serverID, err)
	}
	return out, nil
}

// requeueSent moves sent runs matching cond (selCond on the SELECT, whose
// runs are aliased r, updCond on the UPDATE; both take arg) back to pending,
// or to failed when runstate.Requeue says their attempts are used up. A
// requeued run keeps its attempts (the next claim counts the next one) and
// sent_at (the agent may hold it: its ack may have been lost, and a later
// cancellation must still reach it through CancelledRuns); it loses its
// lease and server, since nobody holds it now.
func requeueSent(ctx context.Context, tx *sql.Tx, now int64, selCond, updCond string, arg any, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE `+inFlight+` AND `+stateIs(runstate.LeaseExpired)+` AND `+selCond+`
		ORDER BY r.lease_until, r.id`+limitClause(limit), arg)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	toPending, err := tx.PrepareContext(ctx, `UPDATE runs SET state = ?, lease_until = NULL, server_id = NULL, updated_at = ?
		WHERE id = ? AND `+db.StateIn("state", runstate.LeaseExpired)+` AND `+updCond)
	if err != nil {
		return nil, err
	}
	defer toPending.Close()
	toFailed, err := tx.PrepareContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND `+db.StateIn("state", runstate.LeaseExpired)+` AND `+updCond)
	if err != nil {
		return nil, err
	}
	defer toFailed.Close()
	out := make([]db.Change, 0, len(cands))
	for _, c := range cands {
		var ok bool
		switch c.To = runstate.Requeue(c.Attempts, c.maxAttempts); c.To {
		case runstate.Pending:
			ok, err = changed(ctx, toPending, c.To, now, c.RunID, arg)
		default:
			c.Reason = db.ReasonMaxAttempts
			ok, err = changed(ctx, toFailed, c.To, c.Reason, now, now, c.RunID, arg)
		}
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c.Change)
		}
	}
	return out, nil
}

// loseSilent fails received and running runs of jobs with a timeout that
// have been silent for longer than it: updated_at + timeout + grace < at,
// i.e. updated_at + timeout < cutoff (at - grace). The condition spans both
// tables, so no index range can hold it; the plan reads the received and
// running runs through runs_inflight (SEARCH r USING INDEX runs_inflight
// (state=?)), which is the work in flight, never the history.
func loseSilent(ctx context.Context, tx *sql.Tx, now, cutoff int64, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE `+inFlight+` AND `+stateIs(runstate.Lose)+` AND j.timeout_s > 0
		  AND r.updated_at + j.timeout_s * 1000000000 < ?
		ORDER BY r.updated_at, r.id`+limitClause(limit), cutoff)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	// Moved only if nothing happened to the run since it was seen silent.
	st, err := tx.PrepareContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND `+db.StateIn("state", runstate.Lose)+` AND state = ? AND updated_at = ?`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]db.Change, 0, len(cands))
	for _, c := range cands {
		if c.To, err = runstate.Next(c.From, runstate.Lose); err != nil {
			return nil, err
		}
		c.Reason = db.ReasonLost
		ok, err := changed(ctx, st, c.To, c.Reason, now, now, c.RunID, c.From, c.updatedAt)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c.Change)
		}
	}
	return out, nil
}

// expirePending expires the pending runs of jobs whose expires_at passed.
// The plan walks the jobs that have an expiry, oldest first, and looks up
// each one's pending runs:
//
//	SEARCH j USING COVERING INDEX jobs_expires (expires_at<?)
//	SEARCH r USING INDEX runs_pending_job (job_id=?)
//
// CROSS JOIN pins that order in SQLite (its planner would otherwise rather
// scan every pending run); for PostgreSQL it is an ordinary join.
func expirePending(ctx context.Context, tx *sql.Tx, now int64, limit int) ([]db.Change, error) {
	cands, err := candidates(ctx, tx, `SELECT `+candCols+`
		FROM jobs j CROSS JOIN runs r
		WHERE j.expires_at < ? AND r.job_id = j.id AND `+stateIs(runstate.Expire)+`
		ORDER BY j.expires_at, r.id`+limitClause(limit), now)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	st, err := tx.PrepareContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND `+db.StateIn("state", runstate.Expire))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]db.Change, 0, len(cands))
	for _, c := range cands {
		if c.To, err = runstate.Next(c.From, runstate.Expire); err != nil {
			return nil, err
		}
		c.Reason = db.ReasonExpired
		ok, err := changed(ctx, st, c.To, c.Reason, now, now, c.RunID)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, c.Change)
		}
	}
	return out, nil
}

// CancelJob cancels the job's runs that are not final yet.
func (s *Store) CancelJob(ctx context.Context, jobID int64, at time.Time, reason string) ([]db.Change, error) {
	if at.IsZero() {
		at = time.Now().UTC()
	}
	now := at.UnixNano()
	var out []db.Change
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = nil
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = ?`, jobID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return notFound("job", jobID)
		} else if err != nil {
			return err
		}
		// Plan: SEARCH r USING INDEX runs_job (job_id=?).
		cands, err := candidates(ctx, tx, `SELECT `+candCols+`
			FROM runs r JOIN jobs j ON j.id = r.job_id
			WHERE r.job_id = ? AND `+stateIs(runstate.Cancel)+`
			ORDER BY r.id`, jobID)
		if err != nil || len(cands) == 0 {
			return err
		}
		st, err := tx.PrepareContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ?
			WHERE id = ? AND `+db.StateIn("state", runstate.Cancel)+` AND state = ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, c := range cands {
			if c.To, err = runstate.Next(c.From, runstate.Cancel); err != nil {
				return err
			}
			c.Reason = reason
			ok, err := changed(ctx, st, c.To, c.Reason, now, now, c.RunID, c.From)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, c.Change)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cancel job %d: %w", jobID, err)
	}
	return out, nil
}

// CancelledRuns lists the client's runs cancelled at or after since that
// had been sent to it, oldest cancellation first. Plan: SEARCH r USING
// INDEX runs_cancelled (client_id=? AND finished_at>?), already in order.
func (s *Store) CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error) {
	lo := int64(math.MinInt64)
	if !since.IsZero() {
		lo = since.UnixNano()
	}
	rows, err := s.readRows(ctx, `SELECT r.id FROM runs r
		WHERE r.client_id = ? AND r.state = 'cancelled' AND r.sent_at IS NOT NULL AND r.finished_at >= ?
		ORDER BY r.finished_at, r.id`, clientID, lo)
	if err != nil {
		return nil, fmt.Errorf("cancelled runs of client %d: %w", clientID, err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("cancelled runs of client %d: %w", clientID, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancelled runs of client %d: %w", clientID, err)
	}
	return out, nil
}

// heldSQL reads the state of the runs an agent says it holds, by primary
// key (SEARCH r USING INTEGER PRIMARY KEY (rowid=?)), on the read pool.
const heldSQL = `SELECT r.id, r.state, r.reason FROM runs r
	WHERE r.id IN (SELECT value FROM json_each(?1)) AND r.client_id = ?2`

// renewSQL restarts the loss timer of the caller's received runs among a
// JSON array of ids.
var renewSQL = writeStatement(`UPDATE runs SET updated_at = ?1
	WHERE id IN (SELECT value FROM json_each(?2)) AND client_id = ?3 AND ` + db.StateIn("state", runstate.Renew) + ` AND updated_at < ?1`)

// RenewRuns restarts the loss timer of the received runs the agent holds.
// The states are read first on the read pool, so that a heartbeat whose
// runs are all running (or none received any more) costs no write
// transaction; the UPDATE repeats the state condition, so a run lost or
// reported between the read and the write is left as it is.
func (s *Store) RenewRuns(ctx context.Context, clientID int64, ids []int64, at time.Time) (db.RenewResult, error) {
	var res db.RenewResult
	if len(ids) == 0 {
		return res, nil
	}
	rows, err := s.readRows(ctx, heldSQL, idArray(ids), clientID)
	if err != nil {
		return res, fmt.Errorf("renew runs of client %d: %w", clientID, err)
	}
	var held []db.HeldRun
	for rows.Next() {
		var h db.HeldRun
		if err := rows.Scan(&h.ID, &h.State, &h.Reason); err != nil {
			rows.Close()
			return res, fmt.Errorf("renew runs of client %d: %w", clientID, err)
		}
		held = append(held, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("renew runs of client %d: %w", clientID, err)
	}
	renew, lost := db.SortHeld(held)
	res.Lost = lost
	if len(renew) == 0 {
		return res, nil
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		r, err := s.txExec(ctx, tx, renewSQL, at.UnixNano(), idArray(renew), clientID)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		res.Renewed = int(n)
		return err
	})
	if err != nil {
		return db.RenewResult{}, fmt.Errorf("renew runs of client %d: %w", clientID, err)
	}
	return res, nil
}
