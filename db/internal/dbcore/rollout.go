package dbcore

// Rollouts at the store (docs/protocol.md, "Rollouts"): the rules are
// package rollout's; this file counts the runs they need, in the
// transaction that acts on the answer, the same for every driver.
//
// A job with a window, a budget or canaries is gated: its runs carry
// gated, and only they are in the partial indexes the counts read, so a
// plain job costs dispatch nothing but a column. Before a claim sends a
// gated run it locks the job's row (Dialect.ForUpdate: two daemons then
// take turns, and each counts the other's sends, which committed before
// it got the lock) and counts the job's runs out and failed. A halt locks
// the same row first; the pending runs a concurrent claim holds are
// skipped by that claim, which finds the job halted once it gets the row.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// NeedsAdmission reports whether a claim must ask Admit before sending
// candidate d: its job is gated, or paused.
func NeedsAdmission(d db.Dispatch) bool { return d.Run.Gated || d.Job.Paused }

// Move is a candidate a claim moves without sending it.
type Move struct {
	ID     int64
	Event  runstate.Event
	Reason string
}

// Sorted is a claim's candidates sorted by what happens to them.
type Sorted struct {
	Send  []db.Dispatch // sent now
	Moves []Move        // expired or denied
	Admit []db.Dispatch // sent only if Admit says so
}

// SortCandidates decides about a claim's candidates (Decide): expired and
// denied ones move, those whose job is gated or paused wait for Admit, the
// rest are sent.
func SortCandidates(c db.Claim, cands []db.Dispatch) Sorted {
	var s Sorted
	for _, d := range cands {
		if ev, reason := Decide(c, d); ev != "" {
			s.Moves = append(s.Moves, Move{ID: d.Run.ID, Event: ev, Reason: reason})
		} else if NeedsAdmission(d) {
			s.Admit = append(s.Admit, d)
		} else {
			s.Send = append(s.Send, d)
		}
	}
	return s
}

// RolloutJob is a job's rollout as a store reads it, with its counts.
type RolloutJob struct {
	ID         int64
	Spec       rollout.Spec
	Paused     bool
	Halted     bool
	HaltReason string
	Counts     rollout.Counts
}

const rolloutJobCols = `id, max_parallel, max_failures, canary, success_threshold, paused, halted_at IS NOT NULL, halt_reason`

// loadRollouts reads the rollouts of jobs ids with their counts; with lock
// it locks their rows first, in id order. total also counts every run of
// each job (for a halt's reason). Jobs that do not exist are left out.
func loadRollouts(ctx context.Context, q Querier, d *Dialect, ids []int64, lock, total bool) (map[int64]*RolloutJob, error) {
	out := make(map[int64]*RolloutJob, len(ids))
	a := NewArgs(d)
	query := `SELECT ` + rolloutJobCols + ` FROM jobs WHERE ` + d.IDIn(a, "id", ids) + ` ORDER BY id`
	if lock {
		query += d.ForUpdate
	}
	err := q.Each(ctx, query, a.List, func(row Scanner) error {
		var j RolloutJob
		var budget int64
		if err := row.Scan(&j.ID, &j.Spec.MaxParallel, &budget, &j.Spec.Canary, &j.Spec.SuccessThreshold, &j.Paused, &j.Halted, &j.HaltReason); err != nil {
			return err
		}
		j.Spec.MaxFailures, j.Spec.Budgeted = StoredBudget(budget)
		out[j.ID] = &j
		return nil
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	// The runs that are out or failed, and every canary: index ranges of
	// runs_rollout (job_id, canary, state), never the job's other runs.
	a = NewArgs(d)
	in := d.IDIn(a, "job_id", ids)
	no, yes := a.Bind(false), a.Bind(true)
	query = `SELECT job_id, canary, state, count(*) FROM runs WHERE gated AND ` + in + ` AND canary = ` + no + `
			AND state IN ('sent', 'received', 'running', 'failed') GROUP BY job_id, canary, state
		UNION ALL
		SELECT job_id, canary, state, count(*) FROM runs WHERE gated AND ` + in + ` AND canary = ` + yes + ` GROUP BY job_id, canary, state`
	err = q.Each(ctx, query, a.List, func(row Scanner) error {
		var id int64
		var canary bool
		var st runstate.State
		var n int
		if err := row.Scan(&id, &canary, &st, &n); err != nil {
			return err
		}
		j := out[id]
		if j == nil {
			return nil
		}
		c := &j.Counts
		if st.Out() {
			c.Out += n
		}
		if st == runstate.Failed {
			c.Failed += n
		}
		if canary {
			c.Canaries += n
			switch {
			case st == runstate.Succeeded:
				c.CanariesSucceeded += n
			case st.Final():
				c.CanariesBad += n
			}
		}
		return nil
	})
	if err != nil || !total {
		return out, err
	}
	a = NewArgs(d)
	err = q.Each(ctx, `SELECT job_id, count(*) FROM runs WHERE `+d.IDIn(a, "job_id", ids)+` GROUP BY job_id`, a.List, func(row Scanner) error {
		var id int64
		var n int
		if err := row.Scan(&id, &n); err != nil {
			return err
		}
		if j := out[id]; j != nil {
			j.Counts.Total = n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The first canary that did not succeed, for the halt's reason.
	for _, j := range out {
		if j.Counts.CanariesBad == 0 {
			continue
		}
		var name string
		var st runstate.State
		err := q.QueryRow(ctx, `SELECT c.name, r.state FROM runs r JOIN clients c ON c.id = r.client_id
			WHERE r.gated AND r.job_id = `+d.P(1)+` AND r.canary = `+d.P(2)+` AND r.state IN ('failed', 'denied', 'expired', 'cancelled', 'skipped')
			ORDER BY r.finished_at, r.id LIMIT 1`, j.ID, true).Scan(&name, &st)
		if err != nil && !NoRows(err) {
			return nil, err
		}
		if err == nil {
			j.Counts.BadCanary = name + " " + string(st)
		}
	}
	return out, nil
}

// Admit decides, in a claim's transaction, about the candidates of c
// whose job is gated or paused (Sorted.Admit): it locks their jobs and
// counts their runs, and returns those to send now (the runs this claim
// sends count toward the window at once) and the ids of those it leaves
// pending. The runs of a halted job become skipped here. A client has at
// most one run per job, so each candidate is a job of its own.
func Admit(ctx context.Context, q Querier, d *Dialect, c db.Claim, cands []db.Dispatch) (send []db.Dispatch, held []int64, err error) {
	var gated []int64
	for _, cand := range cands {
		if cand.Run.Gated {
			gated = append(gated, cand.Job.ID)
		}
	}
	var jobs map[int64]*RolloutJob
	if len(gated) > 0 {
		if jobs, err = loadRollouts(ctx, q, d, gated, true, false); err != nil {
			return nil, nil, fmt.Errorf("admit runs of rollouts: %w", err)
		}
	}
	now := c.At.UnixNano()
	for _, cand := range cands {
		j := jobs[cand.Job.ID]
		if j == nil { // paused, not gated (or gone: nothing to send)
			if !cand.Run.Gated && !cand.Job.Paused {
				send = append(send, cand)
			} else {
				held = append(held, cand.Run.ID)
			}
			continue
		}
		switch j.Spec.Admit(j.Counts, j.Paused, j.Halted, cand.Run.Canary) {
		case rollout.Send:
			j.Counts.Out++
			send = append(send, cand)
		case rollout.Hold:
			held = append(held, cand.Run.ID)
		case rollout.Skip:
			if _, err := skipPending(ctx, q, d, j.ID, cand.Run.ID, db.ReasonHaltedPrefix+j.HaltReason, now); err != nil {
				return nil, nil, fmt.Errorf("skip run %d of halted job %d: %w", cand.Run.ID, j.ID, err)
			}
		}
	}
	return send, held, nil
}

// skipPending makes the pending runs of job jobID skipped (only run runID
// when it is not 0), with reason, skipping (on a driver that locks rows)
// those another transaction holds: a claim that holds one finds the job
// halted when it gets the job's row, and skips it itself.
func skipPending(ctx context.Context, q Querier, d *Dialect, jobID, runID int64, reason string, now int64) (int64, error) {
	sub := `SELECT id FROM runs WHERE job_id = ` + d.P(1) + ` AND state = 'pending'`
	args := []any{jobID, runstate.Skipped, d.Storable(reason), now}
	if runID != 0 {
		sub += ` AND id = ` + d.P(5)
		args = append(args, runID)
	}
	return q.Exec(ctx, `UPDATE runs SET state = `+d.P(2)+`, reason = `+d.P(3)+`, finished_at = `+d.P(4)+`, updated_at = `+d.P(4)+`
		WHERE id IN (`+sub+d.SkipLocked+`) AND `+db.StateIn("state", runstate.Skip), args...)
}

// gatedJobs selects the gated jobs among a scope's: by job id, by run
// id, or (neither given) every gated job whose runs are not all final
// (the partial index runs_rollout_active, its condition as written).
func gatedJobs(ctx context.Context, q Querier, d *Dialect, scope db.RolloutScope) ([]int64, error) {
	if len(scope.JobIDs) == 0 && len(scope.RunIDs) == 0 {
		return IDs(ctx, q, `SELECT DISTINCT job_id FROM runs WHERE gated AND state IN ('pending', 'sent', 'received', 'running') ORDER BY job_id`)
	}
	a := NewArgs(d)
	var conds []string
	if len(scope.JobIDs) > 0 {
		conds = append(conds, d.IDIn(a, "job_id", scope.JobIDs))
	}
	if len(scope.RunIDs) > 0 {
		conds = append(conds, d.IDIn(a, "id", scope.RunIDs))
	}
	// One run of each job will do: the gated flag is the job's.
	return IDs(ctx, q, `SELECT DISTINCT job_id FROM runs WHERE gated AND (`+strings.Join(conds, " OR ")+`) ORDER BY job_id`, a.List...)
}

// EnforceRollouts is Store.EnforceRollouts: each gated job of scope in a
// transaction of its own, its row locked while it is judged.
func EnforceRollouts(ctx context.Context, w DB, scope db.RolloutScope, at time.Time) ([]db.Halt, error) {
	d := w.Dialect()
	if at.IsZero() {
		at = time.Now().UTC()
	}
	ids, err := gatedJobs(ctx, w.Reader(), d, scope)
	if err != nil {
		return nil, fmt.Errorf("enforce rollouts: %w", d.Classify(err))
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// A first look without locks: most passes find every rollout going
	// on, and need no write transaction at all.
	seen, err := loadRollouts(ctx, w.Reader(), d, ids, false, false)
	if err != nil {
		return nil, fmt.Errorf("enforce rollouts: %w", d.Classify(err))
	}
	var halts []db.Halt
	for _, id := range ids {
		if j := seen[id]; j == nil || !j.Halted && j.Spec.HaltReason(j.Counts) == "" {
			continue
		}
		var h *db.Halt
		err := w.Write(ctx, func(q Querier) (err error) {
			h, err = enforce(ctx, q, d, id, at)
			return err
		})
		if err != nil {
			return halts, fmt.Errorf("enforce the rollout of job %d: %w", id, d.Classify(err))
		}
		if h != nil {
			halts = append(halts, *h)
		}
	}
	return halts, nil
}

// enforce judges one gated job in q's transaction: a job that must halt
// halts (its halt recorded, with an audit record), and a halted job's
// pending runs become skipped. It returns the halt it made, if any.
func enforce(ctx context.Context, q Querier, d *Dialect, id int64, at time.Time) (*db.Halt, error) {
	jobs, err := loadRollouts(ctx, q, d, []int64{id}, true, true)
	if err != nil {
		return nil, err
	}
	j := jobs[id]
	if j == nil {
		return nil, nil
	}
	now := at.UnixNano()
	if j.Halted {
		_, err := skipPending(ctx, q, d, id, 0, db.ReasonHaltedPrefix+j.HaltReason, now)
		return nil, err
	}
	reason := j.Spec.HaltReason(j.Counts)
	if reason == "" {
		return nil, nil
	}
	if _, err := q.Exec(ctx, `UPDATE jobs SET halted_at = `+d.P(1)+`, halt_reason = `+d.P(2)+` WHERE id = `+d.P(3)+` AND halted_at IS NULL`,
		now, d.Storable(reason), id); err != nil {
		return nil, err
	}
	n, err := skipPending(ctx, q, d, id, 0, db.ReasonHaltedPrefix+reason, now)
	if err != nil {
		return nil, err
	}
	h := &db.Halt{JobID: id, Reason: reason, Skipped: int(n), At: at}
	detail := fmt.Sprintf("%s; %d pending runs skipped", reason, n)
	if err := RecordAudit(ctx, q, d, db.AuditEntry{At: at, Actor: "server", Name: AuditHalt, Target: fmt.Sprintf("job %d", id), Outcome: "ok", Detail: detail}); err != nil {
		return nil, fmt.Errorf("record the halt: %w", err)
	}
	return h, nil
}

// AuditHalt names the audit records of halts.
const AuditHalt = "rollout.halt"

// PauseJob is Store.PauseJob.
func PauseJob(ctx context.Context, w DB, id int64, paused bool) (bool, error) {
	d := w.Dialect()
	var changed bool
	err := w.Write(ctx, func(q Querier) error {
		ok, err := Exists(ctx, q, `SELECT 1 FROM jobs WHERE id = `+d.P(1)+d.ForUpdate, id)
		if err != nil {
			return err
		}
		if !ok {
			return NotFound("job", id)
		}
		if paused {
			if left, err := Exists(ctx, q, `SELECT 1 FROM runs WHERE job_id = `+d.P(1)+` AND state = 'pending' LIMIT 1`, id); err != nil {
				return err
			} else if !left {
				return fmt.Errorf("job %d has no run left to hand out (every run is out or final): %w", id, db.ErrConflict)
			}
		}
		n, err := q.Exec(ctx, `UPDATE jobs SET paused = `+d.P(1)+` WHERE id = `+d.P(2)+` AND paused <> `+d.P(1), paused, id)
		changed = n > 0
		return err
	})
	if err != nil {
		verb := "pause"
		if !paused {
			verb = "resume"
		}
		return false, fmt.Errorf("%s job %d: %w", verb, id, d.Classify(err))
	}
	return changed, nil
}

// RolloutWake is Store.RolloutWake.
func RolloutWake(ctx context.Context, w DB, jobIDs []int64, at time.Time) ([]int64, error) {
	d := w.Dialect()
	q := w.Reader()
	ids := jobIDs
	var err error
	if ids == nil {
		if ids, err = gatedJobs(ctx, q, d, db.RolloutScope{}); err != nil {
			return nil, fmt.Errorf("rollout wake: %w", err)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	jobs, err := loadRollouts(ctx, q, d, ids, false, false)
	if err != nil {
		return nil, fmt.Errorf("rollout wake: %w", err)
	}
	seen := map[int64]bool{}
	var out []int64
	for _, id := range ids {
		j := jobs[id]
		if j == nil || j.Paused || j.Halted || j.Spec.HaltReason(j.Counts) != "" {
			continue
		}
		limit := 0 // no LIMIT: every pending run
		if j.Spec.MaxParallel > 0 {
			if limit = j.Spec.MaxParallel - j.Counts.Out; limit <= 0 {
				continue
			}
		}
		cond := ""
		if j.Spec.Phase(j.Counts) == rollout.CanaryRunning {
			cond = ` AND r.canary = ` + d.P(3)
		}
		args := []any{id, at.UnixNano()}
		if cond != "" {
			args = append(args, true)
		}
		clients, err := IDs(ctx, q, `SELECT r.client_id FROM runs r JOIN clients c ON c.id = r.client_id
			WHERE r.job_id = `+d.P(1)+` AND r.state = 'pending' AND (r.not_before IS NULL OR r.not_before <= `+d.P(2)+`)`+cond+`
			  AND c.status = 'active' AND c.mode = 'daemon'
			ORDER BY r.id`+LimitClause(limit), args...)
		if err != nil {
			return nil, fmt.Errorf("rollout wake: job %d: %w", id, err)
		}
		for _, c := range clients {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// CanaryPhases fills in the canary phase of the jobs that have canaries.
func CanaryPhases(ctx context.Context, q Querier, d *Dialect, jobs []db.Job) error {
	var ids []int64
	for _, j := range jobs {
		if j.Rollout.Canary > 0 {
			ids = append(ids, j.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rs, err := loadRollouts(ctx, q, d, ids, false, false)
	if err != nil {
		return fmt.Errorf("canary phases: %w", err)
	}
	for i := range jobs {
		if r := rs[jobs[i].ID]; r != nil {
			jobs[i].CanaryPhase = r.Spec.Phase(r.Counts)
		}
	}
	return nil
}
