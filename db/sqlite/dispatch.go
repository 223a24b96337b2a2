package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// ClaimRuns hands out up to c.Max of a client's pending runs, highest
// priority first, then oldest. Each candidate is checked: an expired job
// makes the run expired, a refusal by c.Decide makes it denied, and the rest
// become sent with a lease, in one statement. All in one write transaction,
// so a run is sent at most once per attempt.
//
// The write transaction is skipped when a read on the read pool finds no
// due pending run of the client (hasDueSQL, pendingSQL's condition): the
// claim would then change nothing, and an idle agent's poll costs a read
// instead of the writer's BEGIN IMMEDIATE and COMMIT. A run that becomes
// due after the read is the next poll's, as one committed just after the
// transaction would be. A claim that expects work (c.Expected: its agent
// was just woken for some) skips the read.
func (s *Store) ClaimRuns(ctx context.Context, c db.Claim) ([]db.Dispatch, error) {
	if c.Max <= 0 {
		return nil, nil
	}
	if !c.Expected && !s.busy.is(c.ClientID) {
		now := c.At.UnixNano()
		if s.idle.idle(c.ClientID, now) {
			return nil, nil // nothing was due, and nothing has changed that (idlemarks.go)
		}
		gen := s.idle.generation()
		due, until, err := s.hasDue(ctx, c)
		if err != nil || !due {
			if err == nil {
				s.idle.mark(c.ClientID, gen, until)
			}
			return nil, err
		}
	}
	var out []db.Dispatch
	err := s.cycleTx(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		out, err = s.claim(ctx, tx, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
	}
	s.busy.set(c.ClientID, len(out) == c.Max)
	return out, nil
}

// busyClients are the clients whose last claim took as many runs as it
// asked for: they likely have more, and their next claim goes straight to
// the write transaction. The read that spares an idle agent's poll the
// writer (hasDue) would only add to a busy agent's: it was 7% of the
// server's CPU at batch 1 (docs/benchmarks.md). A claim that comes back
// short clears the mark. Skipping the read is always correct: the write
// finds what the read would have.
type busyClients struct {
	mu sync.Mutex
	m  map[int64]bool
}

func (b *busyClients) is(id int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[id]
}

func (b *busyClients) set(id int64, busy bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case busy && b.m == nil:
		b.m = map[int64]bool{id: true}
	case busy:
		b.m[id] = true
	default:
		delete(b.m, id)
	}
}

// hasDue reads, on the read pool, whether the client has a due pending
// run (ClaimRuns), and if not, when its first pending run becomes due
// (noUntil when it has none).
func (s *Store) hasDue(ctx context.Context, c db.Claim) (due bool, until int64, err error) {
	var next sql.NullInt64
	if err := s.readRow(ctx, hasDueSQL, c.ClientID, c.At.UnixNano()).Scan(&due, &next); err != nil {
		return false, 0, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
	}
	until = noUntil
	if next.Valid {
		until = next.Int64
	}
	return due, until, nil
}

// claim is ClaimRuns' write, in tx.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, c db.Claim) ([]db.Dispatch, error) {
	now, lease := c.At.UnixNano(), c.At.Add(c.Lease).UnixNano()
	var out []db.Dispatch
	var held []int64 // runs of rollouts and paused jobs left pending
	pending := tx.StmtContext(ctx, s.hot.pending)
	for more := true; more && len(out) < c.Max; {
		want := c.Max - len(out)
		var cands []db.Dispatch
		var err error
		if len(held) == 0 {
			cands, err = pendingRuns(ctx, pending, c.ClientID, now, want)
		} else {
			cands, err = s.pendingExcept(ctx, tx, c.ClientID, now, want, held)
		}
		if err != nil {
			return nil, err
		}
		// Fewer than asked for: there are no more. Asking again would
		// cost a query, and, with another LIMIT bound, a recompilation
		// of the statement (SQLite re-prepares when a LIMIT's bound
		// value changes).
		more = len(cands) == want
		sorted := dbcore.SortCandidates(c, cands)
		for _, m := range sorted.Moves {
			if err := moveRun(ctx, tx, m.ID, m.Event, now, m.Reason); err != nil {
				return nil, err
			}
		}
		if len(sorted.Admit) > 0 {
			admitted, h, err := dbcore.Admit(ctx, querier{q: tx}, dialect, c, sorted.Admit)
			if err != nil {
				return nil, err
			}
			sorted.Send, held = append(sorted.Send, admitted...), append(held, h...)
		}
		if len(sorted.Send) == 0 {
			continue
		}
		send, jobs := make([]int64, len(sorted.Send)), make([]int64, len(sorted.Send))
		first := len(out)
		for i, d := range sorted.Send {
			send[i], jobs[i] = d.Run.ID, d.Job.ID
			dbcore.MarkSent(&d, c)
			out = append(out, d)
		}
		var res sql.Result
		if len(send) == 1 {
			res, err = tx.StmtContext(ctx, s.hot.sendOne).ExecContext(ctx, now, lease, c.ServerID, send[0])
		} else {
			res, err = tx.StmtContext(ctx, s.hot.send).ExecContext(ctx, now, lease, c.ServerID, idArray(send))
		}
		if err != nil {
			return nil, err
		}
		// The single writer read these runs as pending in this very
		// transaction: all of them must have moved.
		if n, err := res.RowsAffected(); err != nil || n != int64(len(send)) {
			return nil, fmt.Errorf("sent %d of %d runs (%v, first %d): %w", n, len(send), err, out[first].Run.ID, db.ErrConflict)
		}
		if err := s.sentEvents(ctx, tx, c.ClientID, now, send, jobs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pendingExcept is the pending statement without the runs of except: a
// claim that left runs of a rollout or a paused job pending reads past
// them, so that they never hide the client's other work.
func (s *Store) pendingExcept(ctx context.Context, tx *sql.Tx, clientID, now int64, limit int, except []int64) ([]db.Dispatch, error) {
	stmt, err := s.txStmt(ctx, tx, pendingExceptSQL)
	if err != nil {
		return nil, err
	}
	rows, err := stmt.QueryContext(ctx, clientID, now, limit, idArray(except))
	if err != nil {
		return nil, err
	}
	return scanPending(rows, clientID)
}

func pendingRuns(ctx context.Context, q *sql.Stmt, clientID, now int64, limit int) ([]db.Dispatch, error) {
	rows, err := q.QueryContext(ctx, clientID, now, limit)
	if err != nil {
		return nil, err
	}
	return scanPending(rows, clientID)
}

func scanPending(rows *sql.Rows, clientID int64) ([]db.Dispatch, error) {
	defer rows.Close()
	var out []db.Dispatch
	for rows.Next() {
		// dbcore.ScanPending's columns, scanned here: rows.Scan on the
		// concrete type keeps the destination list off the heap.
		var d db.Dispatch
		var rc, jc, exp, timeout int64
		if err := rows.Scan(&d.Run.ID, &d.Run.Attempts, &rc, &d.Job.ID, &d.Job.Name, &d.Job.Permission, &d.Job.Interpreter,
			&d.Job.Script, &d.Job.Priority, &d.Job.SubmittedBy, &jc, &exp, &timeout, &d.Job.MaxAttempts,
			&d.Run.Gated, &d.Run.Canary, &d.Job.Paused); err != nil {
			return nil, err
		}
		dbcore.FillPending(&d, clientID, rc, jc, exp, timeout)
		out = append(out, d)
	}
	return out, rows.Err()
}

// moveRun applies a server-side event that records only a reason.
func moveRun(ctx context.Context, tx *sql.Tx, id int64, ev runstate.Event, now int64, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ? WHERE id = ? AND `+db.StateIn("state", ev),
		dbcore.Target(ev), reason, now, now, id)
	return err
}

// ownedRuns reads the runs of a call, for dbcore to check before
// anything changes (CheckOwned): a forged or misdirected id is a protocol
// violation, not a partial success.
func ownedRuns(ctx context.Context, tx *sql.Tx, ids []int64) (map[int64]dbcore.OwnedRun, error) {
	runs := make(map[int64]dbcore.OwnedRun, len(ids))
	rows, err := tx.QueryContext(ctx, `SELECT id, client_id, state, attempts FROM runs WHERE id IN (SELECT value FROM json_each(?))`, idArray(ids))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	err = dbcore.Each(rows, func(rows *sql.Rows) error {
		var id int64
		var r dbcore.OwnedRun
		err := rows.Scan(&id, &r.Owner, &r.State, &r.Attempts)
		runs[id] = r
		return err
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// AckRuns marks runs the caller has durably stored as received. A repeated
// ack counts again without a second transition.
//
// The common case — every id is a run sent to the caller — is one UPDATE.
// When it moves fewer runs than ids, the states are read to tell a repeat
// (counted) from a stale run (listed) from a forged or misdirected id (the
// call fails and its savepoint undoes the UPDATE).
func (s *Store) AckRuns(ctx context.Context, clientID int64, ids []int64, at time.Time) (db.AckResult, error) {
	var res db.AckResult
	now := at.UnixNano()
	err := s.cycleTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res = db.AckResult{}
		if len(ids) == 0 {
			return nil
		}
		var r sql.Result
		var err error
		if len(ids) == 1 {
			r, err = tx.StmtContext(ctx, s.hot.ackOne).ExecContext(ctx, now, ids[0], clientID)
		} else {
			r, err = tx.StmtContext(ctx, s.hot.ack).ExecContext(ctx, now, idArray(ids), clientID)
		}
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil {
			return err
		}
		if n > 0 {
			if err := s.ackEvents(ctx, tx, clientID, ids, now); err != nil {
				return err
			}
		}
		if n == int64(len(ids)) {
			res.Acknowledged = len(ids)
			return nil
		}
		// The states read now are after the UPDATE: a run it moved reads
		// received, and counts like a retry after a lost reply.
		runs, err := ownedRuns(ctx, tx, ids)
		if err != nil {
			return err
		}
		res, err = dbcore.TallyAcks(clientID, ids, runs)
		return err
	})
	return dbcore.Acked(clientID, res, err)
}

// ReportRuns applies agents' status reports. Reports are idempotent: a
// repeat is accepted without a second transition, and a report for a run
// that is already final keeps the first final state and says so.
//
// Reports for distinct runs are applied set-based: one UPDATE for the
// running reports and one for the final ones, each moving only runs of the
// caller in a source state of the event. A report that moved nothing is
// then judged on the run's state, as is every report of a document that
// names a run twice (applied one by one, in order).
func (s *Store) ReportRuns(ctx context.Context, clientID int64, reports []db.Report, at time.Time) ([]db.ReportResult, error) {
	var out []db.ReportResult
	err := s.cycleTx(ctx, func(ctx context.Context, tx *sql.Tx) (err error) {
		out, err = s.report(ctx, tx, clientID, reports, at.UnixNano())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("report runs for client %d: %w", clientID, err)
	}
	return out, nil
}

// report is ReportRuns' write, in tx.
func (s *Store) report(ctx context.Context, tx *sql.Tx, clientID int64, reports []db.Report, now int64) ([]db.ReportResult, error) {
	out := make([]db.ReportResult, len(reports))
	applied, err := s.applyReports(ctx, tx, clientID, reports, now)
	if err != nil {
		return nil, err
	}
	var rest []int64
	for i, r := range reports {
		out[i].RunID = r.RunID
		if applied[i] {
			out[i].Accepted = true
		} else {
			rest = append(rest, r.RunID)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	runs, err := ownedRuns(ctx, tx, rest)
	if err != nil {
		return nil, err
	}
	before := maps.Clone(runs)
	err = dbcore.JudgeInOrder(clientID, rest, runs, reports, out, applied, func(r db.Report, ev runstate.Event, to runstate.State) error {
		return dbcore.ApplyReport(ctx, querier{q: tx}, dialect, r, ev, to, now)
	})
	if err != nil {
		return nil, err
	}
	if err := dbcore.KeepCancelledOutput(ctx, querier{q: tx}, dialect, reports, before); err != nil {
		return nil, err
	}
	return out, nil
}

// reportRow is a report as the set-based statements read it from JSON.
type reportRow struct {
	ID        int64  `json:"id"`
	State     string `json:"state"`
	Exit      *int   `json:"exit"`
	Reason    string `json:"reason"`
	Started   *int64 `json:"started"`
	Finished  *int64 `json:"finished"`
	Output    string `json:"output"`
	Truncated bool   `json:"truncated"`
}

// applyReports runs the set-based UPDATEs and says which reports moved
// their run. Reports of a document naming a run twice, or in a state an
// agent may not report, are left to dbcore.Judge.
func (s *Store) applyReports(ctx context.Context, tx *sql.Tx, clientID int64, reports []db.Report, now int64) ([]bool, error) {
	applied := make([]bool, len(reports))
	seen := make(map[int64]int, len(reports))
	for i, r := range reports {
		if _, dup := seen[r.RunID]; dup {
			return applied, nil // order matters: judged one by one
		}
		seen[r.RunID] = i
	}
	if len(reports) < setReports {
		for i, r := range reports {
			ok, err := s.applyOne(ctx, tx, clientID, r, now)
			if err != nil {
				return nil, err
			}
			applied[i] = ok
		}
		return applied, nil
	}
	var start, finish []reportRow
	for _, r := range reports {
		row := reportRow{ID: r.RunID, State: string(r.State), Exit: r.ExitCode, Reason: r.Reason, Output: r.Output, Truncated: r.Truncated}
		if !r.StartedAt.IsZero() {
			v := r.StartedAt.UnixNano()
			row.Started = &v
		}
		if !r.Finished.IsZero() {
			v := r.Finished.UnixNano()
			row.Finished = &v
		}
		switch ev, _ := runstate.ReportEvent(r.State); ev {
		case runstate.Start:
			start = append(start, row)
		case runstate.Succeed, runstate.Fail:
			finish = append(finish, row)
		}
	}
	var moved []reported
	for _, g := range []struct {
		stmt *sql.Stmt
		rows []reportRow
	}{{s.hot.start, start}, {s.hot.finish, finish}} {
		if len(g.rows) == 0 {
			continue
		}
		doc, err := json.Marshal(g.rows)
		if err != nil {
			return nil, err
		}
		rows, err := tx.StmtContext(ctx, g.stmt).QueryContext(ctx, now, string(doc), clientID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var m reported
			var exit *int64
			if err := rows.Scan(&m.run, &m.job, &m.state, &exit, &m.reason); err != nil {
				rows.Close()
				return nil, err
			}
			if exit != nil {
				x := int(*exit)
				m.exit = &x
			}
			applied[seen[m.run]] = true
			moved = append(moved, m)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return applied, s.reportEvents(ctx, tx, clientID, now, moved)
}

// setReports is the number of reports from which the JSON statements are
// cheaper than one prepared UPDATE per report (measured: the join and its
// RETURNING cost about as much as three single-row UPDATEs).
const setReports = 4

// applyOne applies one report whose run is the caller's and in a source
// state of the report's event; false when the run is not (dbcore.Judge
// then decides).
func (s *Store) applyOne(ctx context.Context, tx *sql.Tx, clientID int64, r db.Report, now int64) (bool, error) {
	var res sql.Result
	var err error
	switch ev, _ := runstate.ReportEvent(r.State); ev {
	case runstate.Start:
		res, err = tx.StmtContext(ctx, s.hot.startOne).ExecContext(ctx, now, r.RunID, clientID, nt(r.StartedAt))
	case runstate.Succeed, runstate.Fail:
		var exit any
		if r.ExitCode != nil {
			exit = *r.ExitCode
		}
		res, err = tx.StmtContext(ctx, s.hot.finishOne).ExecContext(ctx, now, r.RunID, clientID, string(r.State), exit, r.Reason,
			nt(r.StartedAt), nt(r.Finished), r.Output, r.Truncated)
	default:
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
