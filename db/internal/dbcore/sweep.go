package dbcore

// Run maintenance (Store.Sweep, RequeueServer, CancelJob): the algorithm,
// the same for every driver. Each step finds the runs that qualify (a
// SELECT, which the driver locks as it must), decides what each one
// becomes, and moves each with a conditional UPDATE whose WHERE repeats the
// id, the source states runstate allows for the step's event and the
// condition that made the run qualify. A run is reported as changed only
// when its UPDATE changed a row, so several daemons may run the same sweep
// at once: a run changes at most once, and only the caller that changed it
// gets it back.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// Step is one kind of maintenance move.
type Step int

// The steps, with the argument a Mover gets for each.
const (
	// LeaseExpired: sent runs whose lease ended (lease_until < arg, now).
	LeaseExpired Step = iota
	// ServerSent: sent runs of a daemon (server_id = arg), lease or not.
	ServerSent
	// Silent: received and running runs of a job with a timeout, silent
	// for longer than it (updated_at + timeout < arg, the cutoff).
	Silent
	// JobExpired: pending runs of jobs whose expires_at passed (< arg, now).
	JobExpired
	// Cancel: the runs of a job (arg) that are not final.
	Cancel
)

// Event is the run event a step performs.
func (s Step) Event() runstate.Event {
	switch s {
	case LeaseExpired, ServerSent:
		return runstate.LeaseExpired
	case Silent:
		return runstate.Lose
	case JobExpired:
		return runstate.Expire
	case Cancel:
		return runstate.Cancel
	}
	panic(fmt.Sprintf("dbcore: unknown step %d", s))
}

// Candidate is a run a step's SELECT found, with what its UPDATE re-checks.
type Candidate struct {
	db.Change
	MaxAttempts int
	UpdatedAt   int64
}

// CandidateCols are the columns ScanCandidate reads, of runs r joined with
// their jobs j.
const CandidateCols = `r.id, r.job_id, r.client_id, COALESCE(r.server_id, 0), r.attempts, r.state, r.updated_at, j.max_attempts`

// ScanCandidate reads a row of CandidateCols.
func ScanCandidate(row Scanner) (Candidate, error) {
	var c Candidate
	err := row.Scan(&c.RunID, &c.JobID, &c.ClientID, &c.ServerID, &c.Attempts, &c.From, &c.UpdatedAt, &c.MaxAttempts)
	return c, err
}

// LimitClause is " LIMIT n" for n > 0 and nothing otherwise (SQLite's
// LIMIT -1 and PostgreSQL's LIMIT ALL differ; leaving it out ports).
func LimitClause(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d", n)
}

// Mover is a driver's half of the maintenance steps, inside one of its
// transactions: the SQL and the locking.
type Mover interface {
	// Candidates finds the runs step may move, in the step's order, at
	// most limit of them (0: all), and reads them all before any UPDATE.
	Candidates(ctx context.Context, step Step, arg int64, limit int) ([]Candidate, error)
	// Move moves each run of moves to its To (with its Reason) at now by a
	// conditional UPDATE, and returns the Change of each move whose UPDATE
	// changed a row, in order. Moves are as Plan left them.
	Move(ctx context.Context, step Step, arg, now int64, moves []Candidate) ([]db.Change, error)
	// JobExists says whether job id exists (CancelJob).
	JobExists(ctx context.Context, id int64) (bool, error)
}

// Plan decides what each candidate of step becomes: To and Reason (reason
// is Cancel's; the others have their own). A requeued run goes back to
// pending, or to failed with reason "max attempts" when runstate.Requeue
// says its attempts are used up.
func Plan(step Step, cands []Candidate, reason string) error {
	ev := step.Event()
	for i := range cands {
		c := &cands[i]
		switch step {
		case LeaseExpired, ServerSent:
			if c.To = runstate.Requeue(c.Attempts, c.MaxAttempts); c.To != runstate.Pending {
				c.Reason = db.ReasonMaxAttempts
			}
			continue
		case Silent:
			c.Reason = db.ReasonLost
		case JobExpired:
			c.Reason = db.ReasonExpired
		case Cancel:
			c.Reason = reason
		}
		var err error
		if c.To, err = runstate.Next(c.From, ev); err != nil {
			return err
		}
	}
	return nil
}

// RunStep performs one step: Candidates, Plan, Move.
func RunStep(ctx context.Context, m Mover, step Step, arg, now int64, limit int, reason string) ([]db.Change, error) {
	cands, err := m.Candidates(ctx, step, arg, limit)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	if err := Plan(step, cands, reason); err != nil {
		return nil, err
	}
	return m.Move(ctx, step, arg, now, cands)
}

// InTx runs fn with a Mover in one transaction of the driver, rolled back
// instead of committed when dryRun is set (DB.Maintain).
type InTx func(dryRun bool, fn func(Mover) error) error

// Sweep is Store.Sweep: the lease, loss and expiry steps due at o.At, in
// that order, in one transaction.
func Sweep(ctx context.Context, o db.SweepOptions, inTx InTx) ([]db.Change, error) {
	if o.Limit < 0 {
		return nil, fmt.Errorf("sweep runs: limit %d: %w", o.Limit, db.ErrInvalid)
	}
	if o.At.IsZero() {
		o.At = time.Now().UTC()
	}
	now := o.At.UnixNano()
	var out []db.Change
	err := inTx(o.DryRun, func(m Mover) error {
		out = nil
		for _, st := range []struct {
			step Step
			arg  int64
			what string
		}{
			{LeaseExpired, now, "expired leases"},
			{Silent, now - int64(o.Grace), "lost runs"},
			{JobExpired, now, "expired jobs"},
		} {
			c, err := RunStep(ctx, m, st.step, st.arg, now, o.Limit, "")
			if err != nil {
				return fmt.Errorf("%s: %w", st.what, err)
			}
			out = append(out, c...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sweep runs at %s: %w", o.At.Format(time.RFC3339Nano), err)
	}
	return out, nil
}

// RequeueServer is Store.RequeueServer: the sent runs of daemon serverID
// back to pending (ServerSent).
func RequeueServer(ctx context.Context, serverID int64, at time.Time, dryRun bool, inTx InTx) ([]db.Change, error) {
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out []db.Change
	err := inTx(dryRun, func(m Mover) (err error) {
		out, err = RunStep(ctx, m, ServerSent, serverID, at.UnixNano(), 0, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("requeue runs of server %d: %w", serverID, err)
	}
	return out, nil
}

// CancelJob is Store.CancelJob: every run of job jobID that is not final
// becomes cancelled for reason; ErrNotFound for an unknown job. Its error
// is classify's (Dialect.Classify).
func CancelJob(ctx context.Context, jobID int64, at time.Time, reason string, inTx InTx, classify func(error) error) ([]db.Change, error) {
	if at.IsZero() {
		at = time.Now().UTC()
	}
	var out []db.Change
	err := inTx(false, func(m Mover) (err error) {
		out = nil
		if ok, err := m.JobExists(ctx, jobID); err != nil {
			return err
		} else if !ok {
			return NotFound("job", jobID)
		}
		out, err = RunStep(ctx, m, Cancel, jobID, at.UnixNano(), 0, reason)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel job %d: %w", jobID, classify(err))
	}
	return out, nil
}

// errDryRun rolls back a dry run's transaction after its changes were
// computed.
var errDryRun = errors.New("dry run")

// Maintain runs fn in a transaction of tx, rolled back instead of
// committed when dryRun is set: fn's error, or none.
func Maintain[T any](dryRun bool, tx func(func(T) error) error, fn func(T) error) error {
	err := tx(func(t T) error {
		if err := fn(t); err != nil {
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
