package dbcore

// The agent protocol's decisions: what a claim does with each pending run,
// which runs of an ack or report call the caller may name, what an ack
// counts, and what a report does to a run in a given state. The drivers
// read and move the runs; these say what should happen.

import (
	"context"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// ReasonExpiredBeforeDispatch is the reason of a run a claim found pending
// after its job's expires_at.
const ReasonExpiredBeforeDispatch = "expired before dispatch"

// Decide says what claim c does with candidate d: send it (ev is ""), or
// move it by ev (runstate.Expire, runstate.Deny) for reason, without
// sending it.
func Decide(c db.Claim, d db.Dispatch) (ev runstate.Event, reason string) {
	switch {
	case !d.Job.ExpiresAt.IsZero() && !c.At.Before(d.Job.ExpiresAt):
		return runstate.Expire, ReasonExpiredBeforeDispatch
	case c.Decide != nil:
		if ok, reason := c.Decide(d.Job, c.ClientID); !ok {
			return runstate.Deny, reason
		}
	}
	return "", ""
}

// MarkSent makes d the run claim c sends: as it reads back after the
// claim's UPDATE.
func MarkSent(d *db.Dispatch, c db.Claim) {
	d.Run.State = runstate.Sent
	d.Run.Attempts++
	d.Run.SentAt, d.Run.LeaseUntil, d.Run.ServerID = c.At, c.At.Add(c.Lease), c.ServerID
}

// OwnedRun is a run named in an ack or report call, as the driver read it:
// its client, its state, how often it was sent, and whether the call's own
// UPDATE moved it (State is then the state before).
type OwnedRun struct {
	Owner    int64
	State    runstate.State
	Attempts int
	Moved    bool
}

// CheckOwned fails the call when an id does not exist or belongs to
// another client (with sentOnly, for reports, also a run never sent: a
// pending run no agent can hold, runstate.NeedsSent), naming the first
// such id in the order of the call: a forged or misdirected id is a
// protocol violation, not a partial success.
func CheckOwned(clientID int64, ids []int64, runs map[int64]OwnedRun, sentOnly bool) error {
	for _, id := range ids {
		r, ok := runs[id]
		if !ok {
			return NotFound("run", id)
		}
		if r.Owner != clientID {
			return fmt.Errorf("run %d was not sent to this client: %w", id, db.ErrConflict)
		}
		if sentOnly && r.Attempts == 0 {
			return fmt.Errorf("run %d was never sent to this client: %w", id, db.ErrConflict)
		}
	}
	return nil
}

// Acked is how an AckRuns ends on every driver: the tally, or the
// failure naming the client.
func Acked(clientID int64, res db.AckResult, err error) (db.AckResult, error) {
	if err != nil {
		return db.AckResult{}, fmt.Errorf("ack runs for client %d: %w", clientID, err)
	}
	return res, nil
}

// TallyAcks counts an ack call of clientID naming ids, whose runs are
// runs: it fails unless every run is the caller's (CheckOwned); a run the
// call moved, or one already received or beyond (a retry after a lost
// reply), is acknowledged; any other is stale (its lease expired and it
// went back to pending, or an operator cancelled it). A run still sent
// that the call did not move changed under it: ErrConflict.
func TallyAcks(clientID int64, ids []int64, runs map[int64]OwnedRun) (db.AckResult, error) {
	var res db.AckResult
	if err := CheckOwned(clientID, ids, runs, false); err != nil {
		return res, err
	}
	for _, id := range ids {
		switch r := runs[id]; {
		case r.Moved:
			res.Acknowledged++
		case r.State == runstate.Sent:
			return db.AckResult{}, fmt.Errorf("run %d changed under an ack: %w", id, db.ErrConflict)
		case r.State == runstate.Received || r.State == runstate.Running || r.State == runstate.Succeeded || r.State == runstate.Failed:
			res.Acknowledged++ // a retry after a lost reply
		default:
			res.Stale = append(res.Stale, id)
		}
	}
	return res, nil
}

// Judge decides what report r does to a run in state cur that was sent
// attempts times: the event it is and the state it leads to (ok: a
// transition), or the result it gets without one: an accepted repeat, an
// ignored report on a final run, or a refusal with the reason.
func Judge(cur runstate.State, attempts int, r db.Report) (ev runstate.Event, to runstate.State, ok bool, res db.ReportResult) {
	res = db.ReportResult{RunID: r.RunID}
	ev, err := runstate.ReportEvent(r.State)
	if err != nil {
		res.Note = err.Error()
		return "", "", false, res
	}
	to, terr := runstate.NextRun(cur, attempts, ev)
	switch {
	case terr == nil:
		res.Accepted = true
		return ev, to, true, res
	case cur == r.State:
		res.Accepted, res.Note = true, "already "+string(cur)
	case cur.Final():
		res.Accepted, res.Note = true, fmt.Sprintf("run is already %s; %s report ignored", cur, r.State)
	default:
		res.Note = terr.Error()
	}
	return ev, "", false, res
}

// JudgeInOrder judges reports of clientID one by one against runs, the
// runs of ids, each seeing the state the previous ones left, and calls
// apply for every transition. It fails first unless every run is the
// caller's and was sent (CheckOwned). It fills out[i] for each report but
// those done[i] marks (done may be nil): reports the driver already
// applied some other way.
func JudgeInOrder(clientID int64, ids []int64, runs map[int64]OwnedRun, reports []db.Report, out []db.ReportResult, done []bool,
	apply func(r db.Report, ev runstate.Event, to runstate.State) error) error {
	if err := CheckOwned(clientID, ids, runs, true); err != nil {
		return err
	}
	for i, r := range reports {
		if done != nil && done[i] {
			continue
		}
		o := runs[r.RunID]
		ev, to, ok, res := Judge(o.State, o.Attempts, r)
		if ok {
			if err := apply(r, ev, to); err != nil {
				return err
			}
			o.State = to
			runs[r.RunID] = o
		}
		out[i] = res
	}
	return nil
}

// Target is the state event ev leads to (from its first source state: the
// events the drivers write as constants lead to one state from all).
func Target(ev runstate.Event) runstate.State {
	to, err := runstate.Next(runstate.From(ev)[0], ev)
	if err != nil {
		panic(err) // From(ev) is where ev may start: a bug in runstate
	}
	return to
}

// PendingCols are the columns ScanPending reads: a pending run r of a
// claim's client and its job j.
const PendingCols = `r.id, r.attempts, r.created_at, j.id, j.name, j.permission, j.interpreter, j.script, j.priority,
	j.submitted_by, j.created_at, COALESCE(j.expires_at, 0), j.timeout_s, j.max_attempts, r.gated, r.canary, j.paused`

// ScanPending reads a row of PendingCols: a candidate of a claim for
// clientID. (A driver whose rows are a concrete type may scan them itself,
// into the same destinations, and call FillPending: a Scan through the
// Scanner interface costs the destination list an allocation per row.)
func ScanPending(row Scanner, clientID int64) (db.Dispatch, error) {
	var d db.Dispatch
	var rc, jc, exp, timeout int64
	if err := row.Scan(&d.Run.ID, &d.Run.Attempts, &rc, &d.Job.ID, &d.Job.Name, &d.Job.Permission, &d.Job.Interpreter,
		&d.Job.Script, &d.Job.Priority, &d.Job.SubmittedBy, &jc, &exp, &timeout, &d.Job.MaxAttempts,
		&d.Run.Gated, &d.Run.Canary, &d.Job.Paused); err != nil {
		return d, err
	}
	FillPending(&d, clientID, rc, jc, exp, timeout)
	return d, nil
}

// FillPending completes a candidate scanned from PendingCols: the run's
// and job's creation times rc and jc, the job's expiry exp (0: none) and
// timeout in seconds.
func FillPending(d *db.Dispatch, clientID, rc, jc, exp, timeout int64) {
	d.Run.JobID, d.Run.ClientID, d.Run.State, d.Run.CreatedAt = d.Job.ID, clientID, runstate.Pending, Time(rc)
	d.Job.CreatedAt, d.Job.ExpiresAt, d.Job.Timeout = Time(jc), Time(exp), time.Duration(timeout)*time.Second
}

// Nanos is a time as a nullable parameter: NULL for the zero time, else
// Unix nanoseconds.
func Nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// ApplyReport moves the run of report r by its event ev to state to, at
// now, with a conditional UPDATE (the one-by-one path of a report call,
// after Judge): running records the start (the agent's time, else the one
// known, else now); a final state the exit code, reason, output and
// finish, keeping a known start. The run must move: ErrConflict if not.
func ApplyReport(ctx context.Context, q Querier, d *Dialect, r db.Report, ev runstate.Event, to runstate.State, now int64) error {
	var query string
	var args []any
	if to == runstate.Running {
		query = `UPDATE runs SET state = ` + d.P(1) + `, started_at = COALESCE(` + d.P(2) + `, started_at, ` + d.P(3) + `),
			acked_at = COALESCE(acked_at, ` + d.P(3) + `), updated_at = ` + d.P(3) + `
			WHERE id = ` + d.P(4) + ` AND ` + db.StateIn("state", ev)
		args = []any{to, Nanos(r.StartedAt), now, r.RunID}
	} else {
		var exit any
		if r.ExitCode != nil {
			exit = int64(*r.ExitCode)
		}
		fin := now
		if !r.Finished.IsZero() {
			fin = r.Finished.UnixNano()
		}
		query = `UPDATE runs SET state = ` + d.P(1) + `, exit_code = ` + d.P(2) + `, reason = ` + d.P(3) + `,
			started_at = COALESCE(` + d.P(4) + `, started_at), finished_at = ` + d.P(5) + `, acked_at = COALESCE(acked_at, ` + d.P(6) + `),
			output = ` + d.P(7) + `, output_truncated = ` + d.P(8) + `, updated_at = ` + d.P(6) + `
			WHERE id = ` + d.P(9) + ` AND ` + db.StateIn("state", ev)
		args = []any{to, exit, d.Storable(r.Reason), Nanos(r.StartedAt), fin, now, d.Storable(r.Output), r.Truncated, r.RunID}
	}
	n, err := q.Exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("run %d changed under a report: %w", r.RunID, db.ErrConflict)
	}
	return nil
}
