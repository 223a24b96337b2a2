package postgres

// Run maintenance: the time-driven transitions (lease expiry, lost runs,
// expiry), failover requeue and operator cancellation, for several daemons
// at once. The algorithm is dbcore's (Sweep, RequeueServer, CancelJob);
// this is its SQL and locking. Each step's SELECT locks the runs it finds
// (FOR UPDATE OF r; the sweeps SKIP LOCKED, so two daemons sweeping at once
// split the work instead of queueing behind each other, and a run another
// transaction holds is left for the next sweep); its conditional UPDATEs go
// to the server as one batch.

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// Maintain runs the maintenance steps' fn with a mover in a transaction,
// rolled back instead of committed when dryRun is set.
func (c core) Maintain(ctx context.Context, dryRun bool, fn func(dbcore.Mover) error) error {
	return dbcore.Maintain(dryRun, func(f func(pgx.Tx) error) error { return c.s.tx(ctx, f) },
		func(tx pgx.Tx) error { return fn(mover{tx}) })
}

// mover is the PostgreSQL side of the maintenance steps, in a transaction:
// the SELECTs lock what they find, and the UPDATEs go as one batch.
type mover struct{ tx pgx.Tx }

// candidateSQL is the SELECT of each step, with one parameter ($1); the
// LIMIT goes before the locking clause.
var candidateSQL = map[dbcore.Step]struct{ query, lock string }{
	dbcore.LeaseExpired: {`SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + db.StateIn("r.state", runstate.LeaseExpired) + ` AND r.lease_until < $1
		ORDER BY r.lease_until, r.id`, skipLocked},
	dbcore.ServerSent: {`SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + db.StateIn("r.state", runstate.LeaseExpired) + ` AND r.server_id = $1
		ORDER BY r.lease_until, r.id`, skipLocked},
	// updated_at + timeout + grace < at, written updated_at < cutoff -
	// timeout (cutoff = at - grace) so that no sum can overflow.
	dbcore.Silent: {`SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE ` + db.StateIn("r.state", runstate.Lose) + ` AND j.timeout_s > 0
		  AND r.updated_at < $1 - j.timeout_s * 1000000000
		ORDER BY r.updated_at, r.id`, skipLocked},
	// jobs_expires, then runs_pending_job for each job.
	dbcore.JobExpired: {`SELECT ` + dbcore.CandidateCols + `
		FROM jobs j JOIN runs r ON r.job_id = j.id
		WHERE j.expires_at < $1 AND ` + db.StateIn("r.state", runstate.Expire) + `
		ORDER BY j.expires_at, r.id`, skipLocked},
	// A cancellation waits for the runs others hold.
	dbcore.Cancel: {`SELECT ` + dbcore.CandidateCols + `
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.job_id = $1 AND ` + db.StateIn("r.state", runstate.Cancel) + `
		ORDER BY r.id`, `
		FOR UPDATE OF r`},
}

// skipLocked is the locking clause of the sweeps: two daemons sweeping at
// once split the work, and a run another transaction holds is left for
// the next sweep.
const skipLocked = `
		FOR UPDATE OF r SKIP LOCKED`

func (m mover) Candidates(ctx context.Context, step dbcore.Step, arg int64, limit int) ([]dbcore.Candidate, error) {
	q := candidateSQL[step]
	var out []dbcore.Candidate
	err := eachRow(ctx, m.tx, q.query+dbcore.LimitClause(limit)+q.lock, []any{arg}, func(rows pgx.Rows) error {
		c, err := dbcore.ScanCandidate(rows)
		out = append(out, c)
		return err
	})
	return out, err
}

// requeueCond is the condition that made a run a requeue's candidate,
// repeated in its UPDATE with the same parameter, $1.
var requeueCond = map[dbcore.Step]string{dbcore.LeaseExpired: "lease_until < $1", dbcore.ServerSent: "server_id = $1"}

// Move sends the UPDATEs as one batch.
func (m mover) Move(ctx context.Context, step dbcore.Step, arg, now int64, moves []dbcore.Candidate) ([]db.Change, error) {
	where := db.StateIn("state", step.Event())
	if cond, ok := requeueCond[step]; ok {
		where = ` AND ` + where + ` AND ` + cond
	}
	var b pgx.Batch
	for _, c := range moves {
		switch step {
		case dbcore.LeaseExpired, dbcore.ServerSent:
			if c.To == runstate.Pending {
				b.Queue(`UPDATE runs SET state = $2, lease_until = NULL, server_id = NULL, updated_at = $3
					WHERE id = $4`+where, arg, c.To, now, c.RunID)
			} else {
				b.Queue(`UPDATE runs SET state = $2, reason = $3, finished_at = $4, updated_at = $4
					WHERE id = $5`+where, arg, c.To, c.Reason, now, c.RunID)
			}
		case dbcore.Silent:
			b.Queue(`UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
				WHERE id = $4 AND `+where+` AND state = $5 AND updated_at = $6`, c.To, c.Reason, now, c.RunID, c.From, c.UpdatedAt)
		case dbcore.Cancel:
			b.Queue(`UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
				WHERE id = $4 AND `+where+` AND state = $5`, c.To, c.Reason, now, c.RunID, c.From)
		default:
			b.Queue(`UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3
				WHERE id = $4 AND `+where, c.To, c.Reason, now, c.RunID)
		}
	}
	br := m.tx.SendBatch(ctx, &b)
	out := make([]db.Change, 0, len(moves))
	for _, c := range moves {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		if tag.RowsAffected() == 1 {
			out = append(out, c.Change)
		}
	}
	return out, br.Close()
}

func (m mover) JobExists(ctx context.Context, id int64) (bool, error) {
	return dbcore.Exists(ctx, querier{m.tx}, `SELECT 1 FROM jobs WHERE id = $1`, id)
}

// CancelledRuns lists the client's runs cancelled at or after since that
// had been sent to it, oldest cancellation first (runs_cancelled).
func (s *Store) CancelledRuns(ctx context.Context, clientID int64, since time.Time) ([]int64, error) {
	var out []int64
	err := eachRow(ctx, s.pool, `SELECT r.id FROM runs r
		WHERE r.client_id = $1 AND r.state = 'cancelled' AND r.sent_at IS NOT NULL AND r.finished_at >= $2
		ORDER BY r.finished_at, r.id`, []any{clientID, dbcore.Since(since)}, func(rows pgx.Rows) error {
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
