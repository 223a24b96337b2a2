package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// stateIn renders the source states of an event as an SQL condition on the
// column col ("state", "r.state"). The states are constants of package
// runstate, never user input.
func stateIn(col string, ev runstate.Event) string {
	from := runstate.From(ev)
	q := make([]string, len(from))
	for i, s := range from {
		q[i] = "'" + string(s) + "'"
	}
	return col + " IN (" + strings.Join(q, ",") + ")"
}

// ClaimRuns hands out up to c.Max of a client's pending runs, highest
// priority first, then oldest. The candidates are locked with FOR UPDATE
// SKIP LOCKED in the transaction that moves them, so two daemons claiming
// for the same client at once get different runs and neither waits for the
// other. Each candidate is checked: an expired job makes the run expired, a
// refusal by c.Decide makes it denied, and the rest become sent with a
// lease, each by a conditional UPDATE.
func (s *Store) ClaimRuns(ctx context.Context, c db.Claim) ([]db.Dispatch, error) {
	if c.Max <= 0 {
		return nil, nil
	}
	now := c.At.UnixNano()
	lease := c.At.Add(c.Lease).UnixNano()
	var out []db.Dispatch
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = out[:0]
		for len(out) < c.Max {
			cands, err := pendingRuns(ctx, tx, c.ClientID, now, c.Max-len(out))
			if err != nil {
				return err
			}
			if len(cands) == 0 {
				return nil
			}
			var b pgx.Batch
			var sent []db.Dispatch
			for _, d := range cands {
				switch {
				case !d.Job.ExpiresAt.IsZero() && !c.At.Before(d.Job.ExpiresAt):
					queueMove(&b, d.Run.ID, runstate.Expire, now, "expired before dispatch")
					continue
				case c.Decide != nil:
					if ok, reason := c.Decide(d.Job, c.ClientID); !ok {
						queueMove(&b, d.Run.ID, runstate.Deny, now, reason)
						continue
					}
				}
				b.Queue(`UPDATE runs SET state = 'sent', attempts = attempts + 1, sent_at = $1,
					lease_until = $2, server_id = $3, acked_at = NULL, updated_at = $1 WHERE id = $4 AND `+stateIn("state", runstate.Dispatch),
					now, lease, c.ServerID, d.Run.ID)
				d.Run.State = runstate.Sent
				d.Run.Attempts++
				d.Run.SentAt, d.Run.LeaseUntil, d.Run.ServerID = c.At, c.At.Add(c.Lease), c.ServerID
				sent = append(sent, d)
			}
			if err := tx.SendBatch(ctx, &b).Close(); err != nil {
				return err
			}
			out = append(out, sent...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim runs for client %d: %w", c.ClientID, err)
	}
	return out, nil
}

// pendingRuns locks up to limit of a client's due pending runs, in dispatch
// order, skipping those another transaction holds.
func pendingRuns(ctx context.Context, tx pgx.Tx, clientID, now int64, limit int) ([]db.Dispatch, error) {
	var out []db.Dispatch
	err := eachRow(ctx, tx, `
		SELECT r.id, r.attempts, r.created_at, j.id, j.name, j.permission, j.interpreter, j.script, j.priority,
		       j.submitted_by, j.created_at, j.expires_at, j.timeout_s, j.max_attempts
		FROM runs r JOIN jobs j ON j.id = r.job_id
		WHERE r.client_id = $1 AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= $2)
		ORDER BY r.priority DESC, r.id
		LIMIT $3
		FOR UPDATE OF r SKIP LOCKED`, []any{clientID, now, limit}, func(rows pgx.Rows) error {
		var d db.Dispatch
		var rc, jc int64
		var exp *int64
		var timeout int64
		if err := rows.Scan(&d.Run.ID, &d.Run.Attempts, &rc, &d.Job.ID, &d.Job.Name, &d.Job.Permission, &d.Job.Interpreter,
			&d.Job.Script, &d.Job.Priority, &d.Job.SubmittedBy, &jc, &exp, &timeout, &d.Job.MaxAttempts); err != nil {
			return err
		}
		d.Run.JobID, d.Run.ClientID, d.Run.State, d.Run.CreatedAt = d.Job.ID, clientID, runstate.Pending, ti(rc)
		d.Job.CreatedAt, d.Job.ExpiresAt, d.Job.Timeout = ti(jc), tn(exp), time.Duration(timeout)*time.Second
		out = append(out, d)
		return nil
	})
	return out, err
}

// queueMove queues a server-side event that records only a reason.
func queueMove(b *pgx.Batch, id int64, ev runstate.Event, now int64, reason string) {
	to, err := runstate.Next(runstate.From(ev)[0], ev)
	if err != nil {
		panic(err) // From(ev) is where ev may start: a bug in runstate
	}
	b.Queue(`UPDATE runs SET state = $1, reason = $2, finished_at = $3, updated_at = $3 WHERE id = $4 AND `+stateIn("state", ev),
		to, reason, now, id)
}

// ownedRuns locks the runs of a call, in id order (so two calls never wait
// for each other in a cycle), and returns their states. Any id that does not
// exist or belongs to another client fails the whole call, before anything
// changes: a forged or misdirected id is a protocol violation, not a partial
// success.
func ownedRuns(ctx context.Context, tx pgx.Tx, clientID int64, ids []int64) (map[int64]runstate.State, error) {
	states := make(map[int64]runstate.State, len(ids))
	if len(ids) == 0 {
		return states, nil
	}
	owners := make(map[int64]int64, len(ids))
	err := eachRow(ctx, tx, `SELECT id, client_id, state FROM runs WHERE id = ANY($1) ORDER BY id FOR UPDATE`, []any{ids},
		func(rows pgx.Rows) error {
			var id, owner int64
			var st runstate.State
			if err := rows.Scan(&id, &owner, &st); err != nil {
				return err
			}
			owners[id], states[id] = owner, st
			return nil
		})
	if err != nil {
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
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = db.AckResult{}
		states, err := ownedRuns(ctx, tx, clientID, ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			switch st := states[id]; {
			case st == runstate.Sent:
				if _, err := tx.Exec(ctx, `UPDATE runs SET state = 'received', acked_at = $1, updated_at = $1 WHERE id = $2 AND `+stateIn("state", runstate.Ack),
					now, id); err != nil {
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
	err := s.tx(ctx, func(tx pgx.Tx) error {
		out = make([]db.ReportResult, 0, len(reports))
		ids := make([]int64, len(reports))
		for i, r := range reports {
			ids[i] = r.RunID
		}
		states, err := ownedRuns(ctx, tx, clientID, ids)
		if err != nil {
			return err
		}
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
				if err := applyReport(ctx, tx, r, ev, to, now); err != nil {
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
		return nil, fmt.Errorf("report runs for client %d: %w", clientID, classify(err))
	}
	return out, nil
}

func applyReport(ctx context.Context, tx pgx.Tx, r db.Report, ev runstate.Event, to runstate.State, now int64) error {
	var exit *int64
	if r.ExitCode != nil {
		e := int64(*r.ExitCode)
		exit = &e
	}
	var q string
	var args []any
	if to == runstate.Running {
		q = `UPDATE runs SET state = $1, started_at = COALESCE($2, started_at, $3), acked_at = COALESCE(acked_at, $3), updated_at = $3
			WHERE id = $4 AND ` + stateIn("state", ev)
		args = []any{to, nt(r.StartedAt), now, r.RunID}
	} else {
		fin := nt(r.Finished)
		if fin == nil {
			fin = &now
		}
		q = `UPDATE runs SET state = $1, exit_code = $2, reason = $3, started_at = COALESCE($4, started_at), finished_at = $5,
			acked_at = COALESCE(acked_at, $6), output = $7, output_truncated = $8, updated_at = $6
			WHERE id = $9 AND ` + stateIn("state", ev)
		args = []any{to, exit, text(r.Reason), nt(r.StartedAt), fin, now, text(r.Output), r.Truncated, r.RunID}
	}
	tag, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("run %d changed under a report: %w", r.RunID, db.ErrConflict)
	}
	return nil
}
