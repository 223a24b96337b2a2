package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
	"github.com/scirectl/scirectl/schedule"
)

// Schedules (docs/protocol.md, "Schedules"): a job submitted at the ticks
// of a cron expression, as its owner. Package schedule says which ticks
// are due; the store records each tick once; this file decides what a
// tick does (fire, skip, or record why it could not) with the same checks
// as job.submit.

// ScheduleRequest is a schedule as an operator adds it.
type ScheduleRequest struct {
	Name     string
	Cron     string
	Timezone string // IANA name; empty: UTC
	CatchUp  string // latest (default) or none
	Overlap  string // skip (default) or allow
	Paused   bool
	// Job is what each tick submits. NotBefore and ExpiresAt must be
	// zero: a recurring job has no fixed instants.
	Job JobRequest
}

// ScheduledJob is the job a schedule submits, as stored (JSON in the
// schedule's row) and shown.
type ScheduledJob struct {
	Script           string   `json:"script"`
	Targets          []string `json:"targets,omitempty"`
	Groups           []string `json:"groups,omitempty"`
	Selectors        []string `json:"selectors,omitempty"`
	Interpreter      *string  `json:"interpreter,omitempty"`
	Name             string   `json:"name,omitempty"`
	Permission       *string  `json:"permission,omitempty"`
	Priority         int64    `json:"priority,omitempty"`
	Timeout          int64    `json:"timeout,omitempty"`
	MaxAttempts      int64    `json:"max_attempts,omitempty"`
	MaxParallel      string   `json:"max_parallel,omitempty"`
	MaxFailures      string   `json:"max_failures,omitempty"`
	Canary           int64    `json:"canary,omitempty"`
	SuccessThreshold string   `json:"success_threshold,omitempty"`
}

func scheduledJob(r JobRequest) ScheduledJob {
	return ScheduledJob{Script: r.Script, Targets: r.Targets, Groups: r.Groups, Selectors: r.Selectors, Interpreter: r.Interpreter,
		Name: r.Name, Permission: r.Permission, Priority: r.Priority, Timeout: r.Timeout, MaxAttempts: r.MaxAttempts,
		MaxParallel: r.MaxParallel, MaxFailures: r.MaxFailures, Canary: r.Canary, SuccessThreshold: r.SuccessThreshold}
}

// Request is the job.submit request a tick makes of the template.
func (j ScheduledJob) Request() JobRequest {
	return JobRequest{Script: j.Script, Targets: j.Targets, Groups: j.Groups, Selectors: j.Selectors, Interpreter: j.Interpreter,
		Name: j.Name, Permission: j.Permission, Priority: j.Priority, Timeout: j.Timeout, MaxAttempts: j.MaxAttempts,
		MaxParallel: j.MaxParallel, MaxFailures: j.MaxFailures, Canary: j.Canary, SuccessThreshold: j.SuccessThreshold}
}

// ScheduleView is a schedule with what an operator wants to know of it.
type ScheduleView struct {
	db.Schedule
	Spec schedule.Spec
	Job  ScheduledJob
	// Next is its next tick (zero while paused); LastJobStatus the status
	// of the latest job it made ("" when none, or deleted since).
	Next          time.Time
	LastJobStatus string
}

// TickView is an entry of a schedule's history with its job's status.
type TickView struct {
	db.Tick
	JobStatus string
}

// AddSchedule checks a schedule and stores it, owned by caller: its ticks
// submit as caller. The job is checked as job.submit checks it now, and
// refused for the same reasons (a bad value, a job the ACL refuses caller
// on every target: *Denied), except that targets which match no active
// client now are accepted: machines come and go, and a tick without one
// is recorded as failed.
func (s *Service) AddSchedule(ctx context.Context, caller db.User, req ScheduleRequest) (ScheduleView, error) {
	spec, err := schedule.Parse(req.Cron, req.Timezone)
	if err != nil {
		return ScheduleView{}, refuse(ErrInvalid, "%v", err)
	}
	catchUp, err := schedule.ParseCatchUp(req.CatchUp)
	if err != nil {
		return ScheduleView{}, refuse(ErrInvalid, "catch_up: %s", strings.TrimPrefix(err.Error(), "--catch-up: "))
	}
	overlap, err := schedule.ParseOverlap(req.Overlap)
	if err != nil {
		return ScheduleView{}, refuse(ErrInvalid, "overlap: %s", strings.TrimPrefix(err.Error(), "--overlap: "))
	}
	if err := db.CheckNewName("schedule", req.Name); err != nil {
		return ScheduleView{}, refuse(ErrInvalid, "name: %s", strings.TrimSuffix(err.Error(), ": "+db.ErrInvalid.Error()))
	}
	if !req.Job.NotBefore.IsZero() || !req.Job.ExpiresAt.IsZero() {
		return ScheduleView{}, refuse(ErrInvalid, "job: not_before and expires_at are for one job; a schedule's jobs start at its ticks")
	}
	req.Job.Method = "schedule.add"
	if _, err := s.PrepareJob(ctx, caller, req.Job); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrConflict {
			// No active target now: accepted (see above).
		} else if errors.As(err, &e) && e.Kind == ErrInvalid {
			return ScheduleView{}, refuse(ErrInvalid, "job: %s", e.Msg)
		} else {
			return ScheduleView{}, err
		}
	}
	job, err := json.Marshal(scheduledJob(req.Job))
	if err != nil {
		return ScheduleView{}, err
	}
	sc, err := s.Store.CreateSchedule(ctx, db.NewSchedule{Name: req.Name, Owner: caller.Name, Cron: spec.Expr(), Timezone: spec.Zone(),
		CatchUp: string(catchUp), Overlap: string(overlap), Job: job, Paused: req.Paused, CreatedAt: time.Now().UTC()})
	if err != nil {
		return ScheduleView{}, err
	}
	return s.view(ctx, sc, time.Now().UTC())
}

// Schedules lists every schedule.
func (s *Service) Schedules(ctx context.Context) ([]ScheduleView, error) {
	scs, err := s.Store.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	out := make([]ScheduleView, 0, len(scs))
	for _, sc := range scs {
		v, err := s.view(ctx, sc, now)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Schedule reads one schedule by name.
func (s *Service) Schedule(ctx context.Context, name string) (ScheduleView, error) {
	sc, err := s.Store.Schedule(ctx, name)
	if err != nil {
		return ScheduleView{}, err
	}
	return s.view(ctx, sc, time.Now().UTC())
}

// view adds to a stored schedule its parsed spec and template, its next
// tick and its last job's status.
func (s *Service) view(ctx context.Context, sc db.Schedule, now time.Time) (ScheduleView, error) {
	v := ScheduleView{Schedule: sc}
	var err error
	if v.Spec, err = ScheduleSpec(sc); err != nil {
		return v, err
	}
	if err := json.Unmarshal(sc.Job, &v.Job); err != nil {
		return v, fmt.Errorf("schedule %q: stored job: %w", sc.Name, err)
	}
	if !sc.Paused {
		v.Next = NextTick(v.Spec, sc, now)
	}
	if sc.LastJobID != 0 {
		v.LastJobStatus = s.jobStatus(ctx, sc.LastJobID)
	}
	return v, nil
}

// ScheduleSpec is a stored schedule's expression and zone, parsed.
func ScheduleSpec(sc db.Schedule) (schedule.Spec, error) {
	spec, err := schedule.Parse(sc.Cron, sc.Timezone)
	if err != nil {
		return spec, fmt.Errorf("schedule %q: stored %w", sc.Name, err)
	}
	return spec, nil
}

// jobStatus is a job's status, "" when it is gone.
func (s *Service) jobStatus(ctx context.Context, id int64) string {
	j, err := s.Store.Job(ctx, id)
	if err != nil {
		return ""
	}
	return j.Status()
}

// lastHandled is the tick after which a schedule's ticks are due: its
// latest recorded tick, or when it was added or resumed if later.
func lastHandled(sc db.Schedule) time.Time {
	if sc.LastTick.After(sc.Since) {
		return sc.LastTick
	}
	return sc.Since
}

// NextTick is the schedule's next tick at now: the tick due now if one
// is (a daemon is about to fire it), else the first after the last one
// handled.
func NextTick(spec schedule.Spec, sc db.Schedule, now time.Time) time.Time {
	last := lastHandled(sc)
	next := spec.Next(last)
	if next.IsZero() || next.After(now) {
		return next
	}
	if p := schedule.Due(spec, last, now, schedule.CatchUp(sc.CatchUp)); !p.Fire.IsZero() {
		return p.Fire
	}
	return spec.Next(now)
}

// RemoveSchedule deletes a schedule and its history; its jobs stay.
func (s *Service) RemoveSchedule(ctx context.Context, name string) error {
	return s.Store.DeleteSchedule(ctx, name)
}

// PauseSchedule pauses or resumes a schedule. A resumed schedule's ticks
// count from now: those that passed while it was paused are not due.
func (s *Service) PauseSchedule(ctx context.Context, name string, paused bool) (bool, error) {
	return s.Store.PauseSchedule(ctx, name, paused, time.Now().UTC())
}

// ScheduleHistory lists a schedule's ticks, newest first, with the
// status of the jobs they made.
func (s *Service) ScheduleHistory(ctx context.Context, name string, f db.TickFilter) ([]TickView, error) {
	sc, err := s.Store.Schedule(ctx, name)
	if err != nil {
		return nil, err
	}
	ts, err := s.Store.ScheduleTicks(ctx, sc.ID, f)
	if err != nil {
		return nil, err
	}
	out := make([]TickView, len(ts))
	for i, t := range ts {
		out[i] = TickView{Tick: t}
		if t.JobID != 0 {
			out[i].JobStatus = s.jobStatus(ctx, t.JobID)
		}
	}
	return out, nil
}

// RunSchedule submits a schedule's job now, outside its ticks, as caller
// (not as the owner: who starts it answers for it, and the ACL checks
// caller), and records it in the history as "run".
func (s *Service) RunSchedule(ctx context.Context, caller db.User, name string) (Submitted, error) {
	v, err := s.Schedule(ctx, name)
	if err != nil {
		return Submitted{}, err
	}
	req := v.Job.Request()
	req.Method, req.Audit = "schedule.run", "schedule "+name
	sub, err := s.PrepareJob(ctx, caller, req)
	if err != nil {
		return Submitted{}, err
	}
	now := time.Now().UTC()
	j, _, err := s.Store.FireTick(ctx, db.NewTick{ScheduleID: v.ID, At: now, Outcome: db.TickRun, By: caller.Name}, sub.Job, sub.Audit)
	if err != nil {
		return Submitted{}, err
	}
	return submitted(sub, j), nil
}

// TickResult is what handling a schedule's due ticks did.
type TickResult struct {
	Schedule string
	Tick     time.Time // the tick to fire; zero when only skipped ones were due
	// Outcome is what became of Tick (db.TickFired, TickSkipped,
	// TickDenied, TickFailed), Reason why when it made no job.
	Outcome, Reason string
	// Fired is the job Tick made; Fired.Job.ID is 0 when it made none, or
	// when another daemon had fired it first.
	Fired Submitted
	// Recorded is how many ticks without a job this call recorded (the
	// skipped ones, and Tick when it made no job); those another daemon
	// had recorded first are not counted.
	Recorded int
}

// DueTicks says which of the schedule's ticks are due at now (package
// schedule's Due), changing nothing.
func DueTicks(sc db.Schedule, now time.Time) (schedule.Plan, error) {
	if sc.Paused {
		return schedule.Plan{}, nil
	}
	spec, err := ScheduleSpec(sc)
	if err != nil {
		return schedule.Plan{}, err
	}
	return schedule.Due(spec, lastHandled(sc), now, schedule.CatchUp(sc.CatchUp)), nil
}

// HandleTicks does what plan (DueTicks at now) says: the ticks passed
// over are recorded as skipped, and the tick to fire submits the
// schedule's job as its owner through job.submit's checks, unless the
// previous job still has runs out (--overlap skip). A tick that makes no
// job is recorded with its reason (denied: the ACL, or refusal, which the
// caller gives: the blacklist; failed: the job's own refusal) and
// audited; every record is the tick's only one, whichever daemon writes
// it first. Only a failure of the store is an error: the pass tries again.
func (s *Service) HandleTicks(ctx context.Context, sc db.Schedule, plan schedule.Plan, now time.Time, refusal string) (TickResult, error) {
	res := TickResult{Schedule: sc.Name, Tick: plan.Fire}
	var ticks []db.NewTick
	var audit []db.AuditEntry
	record := func(tick time.Time, outcome, reason string) {
		ticks = append(ticks, db.NewTick{ScheduleID: sc.ID, Tick: tick, At: now, Outcome: outcome, Reason: reason, By: sc.Owner})
		audit = append(audit, db.AuditEntry{At: now, ServerID: s.serverID(), Actor: sc.Owner, Name: AuditTick,
			Target: tickTarget(sc.Name, tick), Outcome: outcome, Detail: reason})
	}
	for i, t := range plan.Skipped {
		reason := "missed while no daemon ran (--catch-up " + sc.CatchUp + ")"
		if i == 0 && plan.Truncated {
			reason += "; earlier ticks were missed too"
		}
		record(t, db.TickSkipped, reason)
	}
	if !plan.Fire.IsZero() {
		outcome, reason, sub, err := s.tickJob(ctx, sc, plan.Fire, refusal)
		if err != nil {
			return res, err
		}
		res.Outcome, res.Reason = outcome, reason
		if outcome == db.TickFired {
			if len(ticks) > 0 {
				if res.Recorded, err = s.Store.RecordTicks(ctx, ticks, audit); err != nil {
					return res, err
				}
			}
			j, fired, err := s.Store.FireTick(ctx, db.NewTick{ScheduleID: sc.ID, Tick: plan.Fire, At: now, Outcome: db.TickFired, By: sc.Owner}, sub.Job, sub.Audit)
			if err != nil {
				return res, err
			}
			if fired {
				res.Fired = submitted(sub, j)
			}
			return res, nil
		}
		record(plan.Fire, outcome, reason)
	}
	if len(ticks) > 0 {
		n, err := s.Store.RecordTicks(ctx, ticks, audit)
		if err != nil {
			return res, err
		}
		res.Recorded = n
	}
	return res, nil
}

// AuditTick names the audit records of ticks.
const AuditTick = "schedule.tick"

func tickTarget(name string, tick time.Time) string {
	return fmt.Sprintf("schedule %s tick %s", name, tick.UTC().Format(time.RFC3339))
}

// tickJob decides a due tick: fired (with its checked job), or skipped,
// denied or failed with the reason. An error is the store's.
func (s *Service) tickJob(ctx context.Context, sc db.Schedule, tick time.Time, refusal string) (outcome, reason string, sub Submission, err error) {
	if sc.LastJobID != 0 && schedule.Overlap(sc.Overlap) != schedule.OverlapAllow {
		prev, err := s.Store.Job(ctx, sc.LastJobID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return "", "", sub, err
		}
		out := err == nil && prev.Counts[runstate.Sent]+prev.Counts[runstate.Received]+prev.Counts[runstate.Running] > 0
		if fire, why := schedule.Overlap(sc.Overlap).Decide(sc.LastJobID, out); !fire {
			return db.TickSkipped, why, sub, nil
		}
	}
	if refusal != "" {
		return db.TickDenied, refusal, sub, nil
	}
	owner, err := s.Store.UserByName(ctx, sc.Owner)
	if errors.Is(err, db.ErrNotFound) {
		return db.TickDenied, fmt.Sprintf("the owner, user %q, no longer exists", sc.Owner), sub, nil
	} else if err != nil {
		return "", "", sub, err
	}
	var tmpl ScheduledJob
	if err := json.Unmarshal(sc.Job, &tmpl); err != nil {
		return db.TickFailed, "stored job: " + err.Error(), sub, nil
	}
	req := tmpl.Request()
	req.Method, req.Audit = AuditTick, tickTarget(sc.Name, tick)
	sub, err = s.PrepareJob(ctx, owner, req)
	var denied *Denied
	var refused *Error
	switch {
	case errors.As(err, &denied):
		return db.TickDenied, denied.Refusal.Msg, sub, nil
	case errors.As(err, &refused):
		return db.TickFailed, refused.Msg, sub, nil
	case err != nil:
		return "", "", sub, err
	}
	return db.TickFired, "", sub, nil
}
