package sqlite

// Run maintenance: the time-driven transitions (lease expiry, lost runs,
// expiry), failover requeue and operator cancellation. The algorithm is
// dbcore's (Sweep, RequeueServer, CancelJob); this is its SQL. Each step's
// SELECT finds the runs through an index (the plans are noted below); its
// UPDATEs, one per run through a prepared statement, repeat the condition.
// The transaction is BEGIN IMMEDIATE on the single writer connection, so
// nothing can slip between the SELECT and the UPDATEs.

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
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

// Maintain runs the maintenance steps' fn with a mover in a write
// transaction, rolled back instead of committed when dryRun is set.
func (c core) Maintain(ctx context.Context, dryRun bool, fn func(dbcore.Mover) error) error {
	return dbcore.Maintain(dryRun, func(f func(*sql.Tx) error) error {
		return c.s.tx(ctx, func(_ context.Context, tx *sql.Tx) error { return f(tx) })
	},
		func(tx *sql.Tx) error { return fn(mover{tx}) })
}

// mover is the SQLite side of the maintenance steps, in a write
// transaction: the single writer, so nothing can slip between a SELECT and
// its UPDATEs, which go one by one through a prepared statement.
type mover struct{ tx *sql.Tx }

// candidateSQL is the SELECT of each step, with one parameter; a LIMIT
// may follow.
var candidateSQL = map[dbcore.Step]string{
	// Plan: SEARCH r USING INDEX runs_inflight (state=? AND lease_until<?).
	dbcore.LeaseExpired: `SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + inFlight + ` AND ` + stateIs(runstate.LeaseExpired) + ` AND r.lease_until < ?
		ORDER BY r.lease_until, r.id`,
	// Plan: SEARCH r USING INDEX runs_inflight (state=?): the sent runs only.
	dbcore.ServerSent: `SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + inFlight + ` AND ` + stateIs(runstate.LeaseExpired) + ` AND r.server_id = ?
		ORDER BY r.lease_until, r.id`,
	// updated_at + timeout + grace < at, i.e. updated_at + timeout < cutoff
	// (at - grace). The condition spans both tables, so no index range can
	// hold it; the plan reads the received and running runs through
	// runs_inflight (SEARCH r USING INDEX runs_inflight (state=?)), which is
	// the work in flight, never the history.
	dbcore.Silent: `SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + inFlight + ` AND ` + stateIs(runstate.Lose) + ` AND j.timeout_s > 0
		  AND r.updated_at + j.timeout_s * 1000000000 < ?
		ORDER BY r.updated_at, r.id`,
	// The plan walks the jobs that have an expiry, oldest first, and looks
	// up each one's pending runs:
	//
	//	SEARCH j USING COVERING INDEX jobs_expires (expires_at<?)
	//	SEARCH r USING INDEX runs_pending_job (job_id=?)
	//
	// CROSS JOIN pins that order (the planner would otherwise rather scan
	// every pending run).
	dbcore.JobExpired: `SELECT ` + dbcore.CandidateCols + `
		FROM jobs j CROSS JOIN runs r
		WHERE j.expires_at < ? AND r.job_id = j.id AND ` + stateIs(runstate.Expire) + `
		ORDER BY j.expires_at, r.id`,
	// Plan: SEARCH r USING INDEX runs_job (job_id=?).
	dbcore.Cancel: `SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.job_id = ? AND ` + stateIs(runstate.Cancel) + `
		ORDER BY r.id`,
}

func (m mover) Candidates(ctx context.Context, step dbcore.Step, arg int64, limit int) ([]dbcore.Candidate, error) {
	rows, err := m.tx.QueryContext(ctx, candidateSQL[step]+dbcore.LimitClause(limit), arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dbcore.Candidate
	err = dbcore.Each(rows, func(rows *sql.Rows) error {
		c, err := dbcore.ScanCandidate(rows)
		out = append(out, c)
		return err
	})
	return out, err
}

// The UPDATEs of the steps. A requeue repeats the condition that made the
// run a candidate (its parameter last); a lost run moves only if nothing
// happened to it since it was seen silent, a cancelled one only from the
// state it was seen in.
var (
	requeueCond = map[dbcore.Step]string{dbcore.LeaseExpired: "lease_until < ?", dbcore.ServerSent: "server_id = ?"}
	// toPendingSQL: state, updated_at, id, the condition's parameter.
	toPendingSQL = `UPDATE runs SET state = ?, lease_until = NULL, server_id = NULL, updated_at = ?
		WHERE id = ? AND ` + db.StateIn("state", runstate.LeaseExpired) + ` AND `
	// requeuedEventSQL: now, the run requeued.
	requeuedEventSQL = `INSERT INTO events (type, at, job_id, run_id, client_id, detail)
		SELECT 'run.requeued', ?1, job_id, id, client_id, reason FROM runs WHERE id = ?2`
	// finishRunSQL: state, reason, finished_at, updated_at, id, then the
	// step's own parameters.
	finishRunSQL = `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ?
		WHERE id = ? AND `
)

func (m mover) Move(ctx context.Context, step dbcore.Step, arg, now int64, moves []dbcore.Candidate) ([]db.Change, error) {
	where := db.StateIn("state", step.Event())
	switch step {
	case dbcore.LeaseExpired, dbcore.ServerSent:
		where += " AND " + requeueCond[step]
	case dbcore.Silent:
		where += " AND state = ? AND updated_at = ?"
	case dbcore.Cancel:
		where += " AND state = ?"
	}
	var toPending *sql.Stmt
	finish, err := m.tx.PrepareContext(ctx, finishRunSQL+where)
	if err != nil {
		return nil, err
	}
	defer finish.Close()
	out := make([]db.Change, 0, len(moves))
	for _, c := range moves {
		var res sql.Result
		var err error
		switch step {
		case dbcore.LeaseExpired, dbcore.ServerSent:
			if c.To != runstate.Pending {
				res, err = finish.ExecContext(ctx, c.To, c.Reason, now, now, c.RunID, arg)
				break
			}
			if toPending == nil {
				if toPending, err = m.tx.PrepareContext(ctx, toPendingSQL+requeueCond[step]); err != nil {
					return nil, err
				}
				defer toPending.Close()
			}
			res, err = toPending.ExecContext(ctx, c.To, now, c.RunID, arg)
		case dbcore.Silent:
			res, err = finish.ExecContext(ctx, c.To, c.Reason, now, now, c.RunID, c.From, c.UpdatedAt)
		case dbcore.Cancel:
			res, err = finish.ExecContext(ctx, c.To, c.Reason, now, now, c.RunID, c.From)
		default:
			res, err = finish.ExecContext(ctx, c.To, c.Reason, now, now, c.RunID)
		}
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		if n != 1 {
			continue
		}
		out = append(out, c.Change)
		if c.To == runstate.Pending {
			// The one statement that requeues a run writes its event
			// (migration 12: no trigger watches the state).
			if _, err := m.tx.ExecContext(ctx, requeuedEventSQL, now, c.RunID); err != nil {
				return nil, fmt.Errorf("run.requeued event: %w", err)
			}
		}
	}
	return out, nil
}

func (m mover) JobExists(ctx context.Context, id int64) (bool, error) {
	return dbcore.Exists(ctx, querier{q: m.tx}, `SELECT 1 FROM jobs WHERE id = ?`, id)
}

// CancelledRuns lists the client's runs cancelled at or after since that
// had been sent to it, oldest cancellation first. Plan: SEARCH r USING
// INDEX runs_cancelled (client_id=? AND finished_at>?), already in order.
func (s *Store) CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error) {
	rows, err := s.readRows(ctx, `SELECT r.id FROM runs r
		WHERE r.client_id = ? AND r.state = 'cancelled' AND r.sent_at IS NOT NULL AND r.finished_at >= ?
		ORDER BY r.finished_at, r.id`, clientID, dbcore.Since(since))
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
	err = s.cycleTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
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
