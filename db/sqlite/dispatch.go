package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// stateIn renders the source states of an event as an SQL condition. The
// states are constants of package runstate, never user input.
func stateIn(ev runstate.Event) string {
	from := runstate.From(ev)
	q := make([]string, len(from))
	for i, s := range from {
		q[i] = "'" + string(s) + "'"
	}
	return "state IN (" + strings.Join(q, ",") + ")"
}

// ClaimRuns hands out up to c.Max of a client's pending runs, highest
// priority first, then oldest. Each candidate is checked: an expired job
// makes the run expired, a refusal by c.Decide makes it denied, and the rest
// become sent with a lease. All in one write transaction, so a run is sent
// at most once per attempt.
func (s *Store) ClaimRuns(ctx context.Context, c db.Claim) ([]db.Dispatch, error) {
	if c.Max <= 0 {
		return nil, nil
	}
	now := c.At.UnixNano()
	lease := c.At.Add(c.Lease).UnixNano()
	var out []db.Dispatch
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		// Prepared once per call, executed once per run: SQLite would
		// otherwise parse the same UPDATE for every run of a batch.
		send, err := tx.PrepareContext(ctx, `UPDATE runs SET state = 'sent', attempts = attempts + 1, sent_at = ?,
			lease_until = ?, server_id = ?, acked_at = NULL, updated_at = ? WHERE id = ? AND `+stateIn(runstate.Dispatch))
		if err != nil {
			return err
		}
		defer send.Close()
		for len(out) < c.Max {
			cands, err := pendingRuns(ctx, tx, c.ClientID, now, c.Max-len(out))
			if err != nil {
				return err
			}
			if len(cands) == 0 {
				return nil
			}
			for _, d := range cands {
				switch {
				case !d.Job.ExpiresAt.IsZero() && !c.At.Before(d.Job.ExpiresAt):
					if err := moveRun(ctx, tx, d.Run.ID, runstate.Expire, now, "expired before dispatch"); err != nil {
						return err
					}
					continue
				case c.Decide != nil:
					if ok, reason := c.Decide(d.Job, c.ClientID); !ok {
						if err := moveRun(ctx, tx, d.Run.ID, runstate.Deny, now, reason); err != nil {
							return err
						}
						continue
					}
				}
				if _, err := send.ExecContext(ctx, now, lease, c.ServerID, now, d.Run.ID); err != nil {
					return err
				}
				d.Run.State = runstate.Sent
				d.Run.Attempts++
				d.Run.SentAt, d.Run.LeaseUntil, d.Run.ServerID = c.At, c.At.Add(c.Lease), c.ServerID
				out = append(out, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
	}
	return out, nil
}

func pendingRuns(ctx context.Context, tx *sql.Tx, clientID, now int64, limit int) ([]db.Dispatch, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT r.id, r.attempts, r.created_at, j.id, j.name, j.permission, j.interpreter, j.script, j.priority,
		       j.submitted_by, j.created_at, j.expires_at, j.timeout_s, j.max_attempts
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.client_id = ? AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= ?)
		ORDER BY r.priority DESC, r.id
		LIMIT ?`, clientID, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.Dispatch
	for rows.Next() {
		var d db.Dispatch
		var rc, jc int64
		var exp sql.NullInt64
		var timeout int64
		if err := rows.Scan(&d.Run.ID, &d.Run.Attempts, &rc, &d.Job.ID, &d.Job.Name, &d.Job.Permission, &d.Job.Interpreter,
			&d.Job.Script, &d.Job.Priority, &d.Job.SubmittedBy, &jc, &exp, &timeout, &d.Job.MaxAttempts); err != nil {
			return nil, err
		}
		d.Run.JobID, d.Run.ClientID, d.Run.State, d.Run.CreatedAt = d.Job.ID, clientID, runstate.Pending, ti(rc)
		d.Job.CreatedAt, d.Job.ExpiresAt, d.Job.Timeout = ti(jc), tn(exp), time.Duration(timeout)*time.Second
		out = append(out, d)
	}
	return out, rows.Err()
}

// moveRun applies a server-side event that records only a reason.
func moveRun(ctx context.Context, tx *sql.Tx, id int64, ev runstate.Event, now int64, reason string) error {
	to, err := runstate.Next(runstate.From(ev)[0], ev)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE runs SET state = ?, reason = ?, finished_at = ?, updated_at = ? WHERE id = ? AND `+stateIn(ev),
		to, reason, now, now, id)
	return err
}

// ownedRuns loads the states of runs for a caller. Any id that does not exist
// or belongs to another client fails the whole call, before anything changes:
// a forged or misdirected id is a protocol violation, not a partial success.
func ownedRuns(ctx context.Context, tx *sql.Tx, clientID int64, ids []int64) (map[int64]runstate.State, error) {
	states := make(map[int64]runstate.State, len(ids))
	if len(ids) == 0 {
		return states, nil
	}
	owners := make(map[int64]int64, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, client_id, state FROM runs WHERE id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, owner int64
		var st runstate.State
		if err := rows.Scan(&id, &owner, &st); err != nil {
			return nil, err
		}
		owners[id], states[id] = owner, st
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		owner, ok := owners[id]
		if !ok {
			return nil, notFound("run", id)
		}
		if owner != clientID {
			return nil, fmt.Errorf("run %d was not sent to this client: %w", id, db.ErrConflict)
		}
	}
	return states, nil
}

// AckRuns marks runs the caller has durably stored as received. A repeated
// ack counts again without a second transition.
func (s *Store) AckRuns(ctx context.Context, clientID int64, ids []int64, at time.Time) (db.AckResult, error) {
	var res db.AckResult
	now := at.UnixNano()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res = db.AckResult{}
		states, err := ownedRuns(ctx, tx, clientID, ids)
		if err != nil {
			return err
		}
		stmts := stmtCache{tx: tx}
		defer stmts.close()
		for _, id := range ids {
			switch st := states[id]; {
			case st == runstate.Sent:
				ack, err := stmts.get(ctx, `UPDATE runs SET state = 'received', acked_at = ?, updated_at = ? WHERE id = ? AND `+stateIn(runstate.Ack))
				if err != nil {
					return err
				}
				if _, err := ack.ExecContext(ctx, now, now, id); err != nil {
					return err
				}
				states[id] = runstate.Received
				res.Acknowledged++
			case st == runstate.Received || st == runstate.Running || st == runstate.Succeeded || st == runstate.Failed:
				res.Acknowledged++ // a retry after a lost reply
			default:
				res.Stale = append(res.Stale, id)
			}
		}
		return nil
	})
	if err != nil {
		return db.AckResult{}, fmt.Errorf("ack runs for client %d: %w", clientID, err)
	}
	return res, nil
}

// ReportRuns applies agents' status reports. Reports are idempotent: a
// repeat is accepted without a second transition, and a report for a run
// that is already final keeps the first final state and says so.
func (s *Store) ReportRuns(ctx context.Context, clientID int64, reports []db.Report, at time.Time) ([]db.ReportResult, error) {
	now := at.UnixNano()
	var out []db.ReportResult
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = make([]db.ReportResult, 0, len(reports))
		ids := make([]int64, len(reports))
		for i, r := range reports {
			ids[i] = r.RunID
		}
		states, err := ownedRuns(ctx, tx, clientID, ids)
		if err != nil {
			return err
		}
		stmts := stmtCache{tx: tx}
		defer stmts.close()
		for _, r := range reports {
			res := db.ReportResult{RunID: r.RunID}
			cur := states[r.RunID]
			ev, err := runstate.ReportEvent(r.State)
			if err != nil {
				res.Note = err.Error()
				out = append(out, res)
				continue
			}
			to, terr := runstate.Next(cur, ev)
			switch {
			case terr == nil:
				if err := applyReport(ctx, &stmts, r, ev, to, now); err != nil {
					return err
				}
				states[r.RunID] = to
				res.Accepted = true
			case cur == r.State:
				res.Accepted, res.Note = true, "already "+string(cur)
			case cur.Final():
				res.Accepted, res.Note = true, fmt.Sprintf("run is already %s; %s report ignored", cur, r.State)
			case cur == runstate.Running && r.State == runstate.Running:
				res.Accepted, res.Note = true, "already running"
			default:
				res.Note = terr.Error()
			}
			out = append(out, res)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report runs for client %d: %w", clientID, err)
	}
	return out, nil
}

func applyReport(ctx context.Context, stmts *stmtCache, r db.Report, ev runstate.Event, to runstate.State, now int64) error {
	var exit any
	if r.ExitCode != nil {
		exit = *r.ExitCode
	}
	var q string
	var args []any
	if to == runstate.Running {
		q = `UPDATE runs SET state = ?, started_at = COALESCE(?, started_at, ?), acked_at = COALESCE(acked_at, ?), updated_at = ?
			WHERE id = ? AND ` + stateIn(ev)
		args = []any{to, nt(r.StartedAt), now, now, now, r.RunID}
	} else {
		fin := nt(r.Finished)
		if fin == nil {
			fin = now
		}
		q = `UPDATE runs SET state = ?, exit_code = ?, reason = ?, started_at = COALESCE(?, started_at), finished_at = ?,
			acked_at = COALESCE(acked_at, ?), output = ?, output_truncated = ?, updated_at = ?
			WHERE id = ? AND ` + stateIn(ev)
		args = []any{to, exit, r.Reason, nt(r.StartedAt), fin, now, r.Output, r.Truncated, now, r.RunID}
	}
	stmt, err := stmts.get(ctx, q)
	if err != nil {
		return err
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("run %d changed under a report: %w", r.RunID, db.ErrConflict)
	}
	return nil
}

// stmtCache prepares each statement text once within one store call, for
// the statements run once per run of a batch (acks, reports): the batch
// then pays SQLite's parse once instead of once per run.
type stmtCache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	for _, st := range c.stmts {
		st.Close()
	}
}
