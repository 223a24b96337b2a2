package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// The dispatch path (agent.getJobs, agent.ackJobs, agent.reportStatus) does
// a batch of runs with a constant number of statements: a batch of 100
// runs costs about what one run does.
//
// The statements that change runs by id never put the state condition on
// the table they scan. They lock the runs first, by primary key, in a
// MATERIALIZED CTE (`cur`), and test the source states on the rows it
// locked: a condition like `id = ANY($1) AND state = 'sent'` on runs lets
// the planner use a partial index on state (runs_inflight, runs_dispatch)
// instead of the primary key, which it does when its statistics are
// behind — a burst of dispatch makes thousands of runs sent within
// seconds — and then every such statement reads all runs in that state
// (measured: 1.3 ms for a one-run ack, with a cached generic plan). The
// locked rows are the latest versions and nobody else may change them
// before the statement ends, so testing their state is as atomic as a
// WHERE on the table.

// claimSQL moves locked pending runs to sent ($4: their ids).
var claimSQL = `
	WITH cur AS MATERIALIZED (SELECT id, state FROM runs WHERE id = ANY($4))
	UPDATE runs r SET state = '` + string(dbcore.Target(runstate.Dispatch)) + `', attempts = r.attempts + 1, sent_at = $1,
		lease_until = $2, server_id = $3, acked_at = NULL, updated_at = $1
	FROM cur WHERE r.id = cur.id AND ` + db.StateIn("cur.state", runstate.Dispatch)

// moveSQL gives locked runs a server-side event that records only a reason
// ($3: their ids, $4: the reason of each).
func moveSQL(ev runstate.Event) string {
	return `
	WITH cur AS MATERIALIZED (SELECT id, state FROM runs WHERE id = ANY($3))
	UPDATE runs r SET state = $1, reason = u.reason, finished_at = $2, updated_at = $2
	FROM cur, unnest($3::bigint[], $4::text[]) AS u(id, reason)
	WHERE r.id = cur.id AND u.id = cur.id AND ` + db.StateIn("cur.state", ev)
}

var (
	expireSQL = moveSQL(runstate.Expire)
	denySQL   = moveSQL(runstate.Deny)
)

// ClaimRuns hands out up to c.Max of a client's pending runs, highest
// priority first, then oldest. The candidates are locked with FOR UPDATE
// SKIP LOCKED in the transaction that moves them, so two daemons claiming
// for the same client at once get different runs and neither waits for the
// other. Each candidate is checked: an expired job makes the run expired, a
// refusal by c.Decide makes it denied, and the rest become sent with a
// lease — one conditional UPDATE per kind for the whole batch.
//
// The transaction is two round trips (a batchTx): BEGIN with the SELECT,
// then the UPDATEs with COMMIT; a third only when refusals left room for
// more candidates, whose SELECT then travels with the UPDATEs.
//
// It is skipped when one query outside a transaction (hasDueSQL,
// pendingSQL's condition without the locks) finds no due pending run of
// the client: an idle agent's poll is then one round trip, not two. A run
// that becomes due after that query is the next poll's. A claim that
// expects work (c.Expected) goes straight to the transaction.
func (s *Store) ClaimRuns(ctx context.Context, c db.Claim) ([]db.Dispatch, error) {
	if c.Max <= 0 {
		return nil, nil
	}
	now := c.At.UnixNano()
	if !c.Expected {
		var due bool
		if err := s.pool.QueryRow(ctx, hasDueSQL, c.ClientID, now).Scan(&due); err != nil {
			return nil, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
		}
		if !due {
			return nil, nil
		}
	}
	lease := c.At.Add(c.Lease).UnixNano()
	var out []db.Dispatch
	err := s.retry(ctx, func() error {
		out = out[:0]
		return s.batchTx(ctx, func(q dbcore.Querier, send func(b *pgx.Batch, commit bool) error) error {
			var cands []db.Dispatch
			var held []int64 // runs of rollouts and paused jobs left pending
			want := c.Max
			b := &pgx.Batch{}
			queuePending(b, &cands, c.ClientID, now, want, nil)
			if err := send(b, false); err != nil {
				return err
			}
			for {
				if len(cands) == 0 {
					return send(&pgx.Batch{}, true)
				}
				sorted := dbcore.SortCandidates(c, cands)
				if len(sorted.Admit) > 0 {
					// Rare: a gated or paused job's run. Its job is
					// locked and counted in statements of their own.
					admitted, h, err := dbcore.Admit(ctx, q, dialect, c, sorted.Admit)
					if err != nil {
						return err
					}
					sorted.Send, held = append(sorted.Send, admitted...), append(held, h...)
				}
				b = &pgx.Batch{}
				sent := queueClaim(b, c, sorted, now, lease)
				out = append(out, sent...)
				more := len(cands) == want && len(out) < c.Max // else no more due runs that nobody else holds
				cands = nil
				if !more {
					return send(b, true)
				}
				want = c.Max - len(out)
				queuePending(b, &cands, c.ClientID, now, want, held)
				if err := send(b, false); err != nil {
					return err
				}
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
	}
	return out, nil
}

// queueClaim queues the UPDATEs that move a claim's sorted candidates,
// locked: those to send, the expired, the denied. It returns the runs to
// send.
func queueClaim(b *pgx.Batch, c db.Claim, sorted dbcore.Sorted, now, lease int64) []db.Dispatch {
	var sentIDs, expIDs, denyIDs []int64
	var expWhy, denyWhy []string
	sent := make([]db.Dispatch, 0, len(sorted.Send))
	for _, m := range sorted.Moves {
		switch m.Event {
		case runstate.Expire:
			expIDs, expWhy = append(expIDs, m.ID), append(expWhy, m.Reason)
		case runstate.Deny:
			denyIDs, denyWhy = append(denyIDs, m.ID), append(denyWhy, text(m.Reason))
		}
	}
	for _, d := range sorted.Send {
		sentIDs = append(sentIDs, d.Run.ID)
		dbcore.MarkSent(&d, c)
		sent = append(sent, d)
	}
	if len(sentIDs) > 0 {
		b.Queue(claimSQL, now, lease, c.ServerID, sentIDs).Exec(func(tag pgconn.CommandTag) error {
			return moved(tag, len(sentIDs), "sent")
		})
	}
	if len(expIDs) > 0 {
		b.Queue(expireSQL, dbcore.Target(runstate.Expire), now, expIDs, expWhy).Exec(func(tag pgconn.CommandTag) error {
			return moved(tag, len(expIDs), "expired")
		})
	}
	if len(denyIDs) > 0 {
		b.Queue(denySQL, dbcore.Target(runstate.Deny), now, denyIDs, denyWhy).Exec(func(tag pgconn.CommandTag) error {
			return moved(tag, len(denyIDs), "denied")
		})
	}
	return sent
}

// moved checks that an UPDATE of locked runs moved all of them.
func moved(tag pgconn.CommandTag, want int, what string) error {
	if n := tag.RowsAffected(); n != int64(want) {
		return fmt.Errorf("%d of %d locked runs %s: %w", n, want, what, db.ErrConflict)
	}
	return nil
}

// pendingSQL locks up to $3 of a client's due pending runs, in dispatch
// order, skipping those another transaction holds.
const pendingSQL = `
	SELECT ` + dbcore.PendingCols + `
	FROM runs r JOIN jobs j ON j.id = r.job_id
	WHERE r.client_id = $1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= $2)
	ORDER BY r.priority DESC, r.id
	LIMIT $3
	FOR UPDATE OF r SKIP LOCKED`

// pendingExceptSQL is pendingSQL without the runs of $4: those a claim
// left pending (it holds their locks, so SKIP LOCKED would not pass them).
const pendingExceptSQL = `
	SELECT ` + dbcore.PendingCols + `
	FROM runs r JOIN jobs j ON j.id = r.job_id
	WHERE r.client_id = $1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= $2) AND NOT (r.id = ANY($4))
	ORDER BY r.priority DESC, r.id
	LIMIT $3
	FOR UPDATE OF r SKIP LOCKED`

// hasDueSQL says whether pendingSQL would find a run (ignoring the locks).
const hasDueSQL = `
	SELECT EXISTS (SELECT 1 FROM runs r
		WHERE r.client_id = $1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= $2))`

// queuePending queues pendingSQL (pendingExceptSQL when except is not
// empty); its rows are appended to *out when the batch is read.
func queuePending(b *pgx.Batch, out *[]db.Dispatch, clientID, now int64, limit int, except []int64) {
	var q *pgx.QueuedQuery
	if len(except) > 0 {
		q = b.Queue(pendingExceptSQL, clientID, now, limit, except)
	} else {
		q = b.Queue(pendingSQL, clientID, now, limit)
	}
	q.Query(func(rows pgx.Rows) error {
		return dbcore.Each(rows, func(rows pgx.Rows) error {
			d, err := dbcore.ScanPending(rows, clientID)
			if err != nil {
				return err
			}
			*out = append(*out, d)
			return nil
		})
	})
}

// batchTx runs fn in a READ COMMITTED transaction whose statements travel
// in batches, one round trip each: fn calls send for each batch, BEGIN goes
// with the first and COMMIT with the one fn marks commit (an empty batch
// may carry it alone). Between batches, after the first, fn may also run
// statements of its own in the transaction through q. Errors are fn's or the batches'; a transaction not
// committed is rolled back, and a connection left in an unknown state is
// closed rather than reused.
func (s *Store) batchTx(ctx context.Context, fn func(q dbcore.Querier, send func(b *pgx.Batch, commit bool) error) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release() // pgxpool closes a connection still in a transaction
	begun, done := false, false
	send := func(b *pgx.Batch, commit bool) error {
		if done {
			return errors.New("batchTx: send after commit")
		}
		q := b.QueuedQueries
		if !begun {
			q = append([]*pgx.QueuedQuery{{SQL: "BEGIN"}}, q...)
			begun = true
		}
		if commit {
			q = append(q, &pgx.QueuedQuery{SQL: "COMMIT"})
			done = true
		}
		b.QueuedQueries = q
		return conn.SendBatch(ctx, b).Close()
	}
	err = fn(querier{conn}, send)
	if err == nil && !done {
		err = send(&pgx.Batch{}, true)
	}
	if st := conn.Conn().PgConn().TxStatus(); st != 'I' && !conn.Conn().IsClosed() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, rerr := conn.Exec(rctx, "ROLLBACK"); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err == nil && !done {
		err = errors.New("batchTx: not committed")
	}
	return err
}

// scanLocked reads the rows (id, client_id, state, attempts, moved) of a statement
// built on lockedCTE.
func scanLocked(rows pgx.Rows, n int) (map[int64]dbcore.OwnedRun, error) {
	out := make(map[int64]dbcore.OwnedRun, n)
	defer rows.Close()
	err := dbcore.Each(rows, func(rows pgx.Rows) error {
		var id int64
		var r dbcore.OwnedRun
		err := rows.Scan(&id, &r.Owner, &r.State, &r.Attempts, &r.Moved)
		out[id] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lockedCTE locks the runs of a call ($1: their ids, $2: the calling
// client, $3: how many distinct ids) in id order, so two calls never wait
// for each other in a cycle, and says in `owned` whether every id exists
// and belongs to the caller; the UPDATE that follows it changes nothing
// unless so.
const lockedCTE = `
	WITH cur AS MATERIALIZED (SELECT id, client_id, state, attempts FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE),
	owned AS (SELECT count(*) = $3 AND bool_and(client_id = $2) AS ok FROM cur)`

// lockedSentCTE is lockedCTE for reports: every run must also have been
// sent (dbcore.CheckOwned's sentOnly).
const lockedSentCTE = `
	WITH cur AS MATERIALIZED (SELECT id, client_id, state, attempts FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE),
	owned AS (SELECT count(*) = $3 AND bool_and(client_id = $2 AND attempts > 0) AS ok FROM cur)`

// lockedResult ends a statement built on lockedCTE whose UPDATE is the CTE
// moved: every locked run with its state before and whether it moved.
const lockedResult = `
	SELECT cur.id, cur.client_id, cur.state, cur.attempts, moved.id IS NOT NULL FROM cur LEFT JOIN moved ON moved.id = cur.id`

var ackSQL = lockedCTE + `,
	moved AS (UPDATE runs r SET state = '` + string(dbcore.Target(runstate.Ack)) + `', acked_at = $4, updated_at = $4
		FROM cur WHERE r.id = cur.id AND ` + db.StateIn("cur.state", runstate.Ack) + ` AND (SELECT ok FROM owned)
		RETURNING r.id)` + lockedResult

// distinct counts the distinct ids of a call.
func distinct(ids []int64) int {
	seen := make(map[int64]struct{}, len(ids))
	for _, id := range ids {
		seen[id] = struct{}{}
	}
	return len(seen)
}

// AckRuns marks runs the caller has durably stored as received, in one
// statement: it locks the runs, checks they are all the caller's, and
// moves those that are sent. A repeated ack counts again without a second
// transition.
func (s *Store) AckRuns(ctx context.Context, clientID int64, ids []int64, at time.Time) (db.AckResult, error) {
	var res db.AckResult
	if len(ids) == 0 {
		return res, nil
	}
	err := s.retry(ctx, func() error {
		res = db.AckResult{}
		rows, err := s.pool.Query(ctx, ackSQL, ids, clientID, distinct(ids), at.UnixNano())
		if err != nil {
			return err
		}
		runs, err := scanLocked(rows, len(ids))
		if err != nil {
			return err
		}
		res, err = dbcore.TallyAcks(clientID, ids, runs)
		return err
	})
	return dbcore.Acked(clientID, res, err)
}

// reportEvents are the events an agent's report may be; reportMatch is the
// condition, on a locked run cur and a report u, that u's event may start
// from cur's state.
var (
	reportEvents = []runstate.Event{runstate.Start, runstate.Succeed, runstate.Fail}
	reportMatch  = func() string {
		var c []string
		for _, ev := range reportEvents {
			c = append(c, "(u.ev = '"+string(ev)+"' AND "+db.StateIn("cur.state", ev)+")")
		}
		return "(" + strings.Join(c, " OR ") + ")"
	}()
)

// reportSQL applies a call's reports, one per run ($4…: one array element
// per report), in one statement. The reports are matched with their locked
// runs first (todo: a hash join, where a join filter in the UPDATE would
// compare every report with every run). A report to running records the
// start (the agent's time, else the one known, else now); a final one the
// exit code, reason, output and finish, keeping a known start.
var reportSQL = lockedSentCTE + `,
	todo AS MATERIALIZED (
		SELECT u.* FROM cur JOIN unnest($1::bigint[], $4::text[], $6::text[], $7::boolean[], $8::bigint[], $9::text[],
		                                $10::bigint[], $11::bigint[], $12::text[], $13::boolean[])
		          AS u(id, ev, to_state, final, exit, reason, started, finished, output, truncated) ON u.id = cur.id
		WHERE ` + reportMatch + ` AND (SELECT ok FROM owned)),
	moved AS (UPDATE runs r SET state = u.to_state,
			started_at = CASE WHEN u.final THEN COALESCE(u.started, r.started_at) ELSE COALESCE(u.started, r.started_at, $5) END,
			acked_at = COALESCE(r.acked_at, $5), updated_at = $5,
			exit_code = CASE WHEN u.final THEN u.exit ELSE r.exit_code END,
			reason = CASE WHEN u.final THEN u.reason ELSE r.reason END,
			finished_at = CASE WHEN u.final THEN u.finished ELSE r.finished_at END,
			output = CASE WHEN u.final THEN u.output ELSE r.output END,
			output_truncated = CASE WHEN u.final THEN u.truncated ELSE r.output_truncated END
		FROM todo u WHERE r.id = u.id
		RETURNING r.id)` + lockedResult

// ReportRuns applies agents' status reports. Reports are idempotent: a
// repeat is accepted without a second transition, and a report for a run
// that is already final keeps the first final state and says so. A call
// with one report per run is one statement; one that reports a run twice
// (running, then final) is applied in order, report by report.
func (s *Store) ReportRuns(ctx context.Context, clientID int64, reports []db.Report, at time.Time) ([]db.ReportResult, error) {
	if len(reports) == 0 {
		return []db.ReportResult{}, nil
	}
	ids := make([]int64, len(reports))
	for i, r := range reports {
		ids[i] = r.RunID
	}
	var out []db.ReportResult
	var err error
	if n := distinct(ids); n == len(ids) {
		err = s.retry(ctx, func() error {
			out, err = reportOnce(ctx, s.pool, clientID, ids, reports, at.UnixNano())
			return err
		})
	} else {
		err = s.tx(ctx, func(tx pgx.Tx) error {
			out, err = reportInOrder(ctx, tx, clientID, ids, reports, at.UnixNano())
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("report runs for client %d: %w", clientID, classify(err))
	}
	return out, nil
}

// reportOnce applies reports for distinct runs with reportSQL.
func reportOnce(ctx context.Context, q queryer, clientID int64, ids []int64, reports []db.Report, now int64) ([]db.ReportResult, error) {
	n := len(reports)
	evs, tos := make([]string, n), make([]string, n)
	final := make([]bool, n)
	exits, started, finished := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	reasons, outputs := make([]string, n), make([]string, n)
	truncated := make([]bool, n)
	for i, r := range reports {
		if ev, err := runstate.ReportEvent(r.State); err == nil {
			evs[i], tos[i] = string(ev), string(dbcore.Target(ev))
		} // else no event: the report matches no run and dbcore.Judge says why
		final[i] = r.State != runstate.Running
		if r.ExitCode != nil {
			e := int64(*r.ExitCode)
			exits[i] = &e
		}
		started[i] = nt(r.StartedAt)
		if finished[i] = nt(r.Finished); finished[i] == nil {
			finished[i] = &now
		}
		reasons[i], outputs[i], truncated[i] = text(r.Reason), text(r.Output), r.Truncated
	}
	rows, err := q.Query(ctx, reportSQL, ids, clientID, n, evs, now, tos, final, exits, reasons, started, finished, outputs, truncated)
	if err != nil {
		return nil, err
	}
	runs, err := scanLocked(rows, n)
	if err != nil {
		return nil, err
	}
	if err := dbcore.CheckOwned(clientID, ids, runs, true); err != nil {
		return nil, err
	}
	out := make([]db.ReportResult, n)
	for i, r := range reports {
		lr := runs[r.RunID]
		_, _, ok, res := dbcore.Judge(lr.State, lr.Attempts, r)
		if ok != lr.Moved {
			return nil, fmt.Errorf("run %d changed under a report: %w", r.RunID, db.ErrConflict)
		}
		out[i] = res
	}
	if err := dbcore.KeepCancelledOutput(ctx, querier{q}, dialect, reports, runs); err != nil {
		return nil, err
	}
	return out, nil
}

// reportInOrder applies reports one by one, each seeing the state the
// previous ones left: for a call that reports a run more than once.
func reportInOrder(ctx context.Context, tx pgx.Tx, clientID int64, ids []int64, reports []db.Report, now int64) ([]db.ReportResult, error) {
	// The runs are locked in id order.
	rows, err := tx.Query(ctx, `SELECT id, client_id, state, attempts, false FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, err
	}
	runs, err := scanLocked(rows, len(ids))
	if err != nil {
		return nil, err
	}
	out := make([]db.ReportResult, len(reports))
	before := maps.Clone(runs)
	err = dbcore.JudgeInOrder(clientID, ids, runs, reports, out, nil, func(r db.Report, ev runstate.Event, to runstate.State) error {
		return dbcore.ApplyReport(ctx, querier{tx}, dialect, r, ev, to, now)
	})
	if err != nil {
		return nil, err
	}
	if err := dbcore.KeepCancelledOutput(ctx, querier{tx}, dialect, reports, before); err != nil {
		return nil, err
	}
	return out, nil
}
