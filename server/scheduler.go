package server

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/service"
)

// scheduler makes the schedules' jobs (docs/protocol.md, "Schedules").
// Every daemon runs one: the store records each tick once (its unique
// key, in the job's transaction), so of daemons handling the same tick one
// makes its job and the others find it taken, and a daemon that dies at a
// tick leaves it to the next pass of another, or of itself restarted.
//
// A pass reads the schedules, asks which ticks are due (package schedule)
// and handles them (service.HandleTicks) as the owner would submit the
// job: through the blacklist (job.submit blacklisted: the tick is denied),
// the gate (as "schedule.tick", of job.submit's class, for the owner) and
// job.submit's checks and audit. It sleeps until the next tick, at most
// interval (another daemon may add or resume a schedule), or until Kick.
type scheduler struct {
	lifecycle.Base

	store db.Store
	svc   *service.Service
	// enter takes the gate for one tick of owner's.
	enter func(ctx context.Context, owner string) (func(), error)
	// refusal says why job.submit is refused to everyone (the blacklist),
	// "" when it is not.
	refusal func() string
	// fired tells the job's daemon-mode clients (push).
	fired    func(service.Submitted)
	now      func() time.Time
	interval time.Duration
	log      *slog.Logger
	kick     chan struct{}
}

func newScheduler(s *Server) *scheduler {
	return &scheduler{
		store: s.store, svc: s.svc, now: func() time.Time { return time.Now().UTC() }, interval: time.Second, log: s.log,
		kick: make(chan struct{}, 1),
		enter: func(ctx context.Context, owner string) (func(), error) {
			t, err := s.enterGate(ctx, gate.Request{Name: service.AuditTick, Class: s.ops[api.MethodJobSubmit].Class, User: owner})
			if err != nil {
				return nil, err
			}
			return t.Release, nil
		},
		refusal: func() string {
			if e, ok := s.blacklist.Load().Match(api.MethodJobSubmit); ok {
				return "job.submit is blacklisted (" + s.paths.Blacklist() + ":" + strconv.Itoa(e.Line) + ": " + e.Pattern + ")"
			}
			return ""
		},
		fired: func(j service.Submitted) { s.submitted(j) },
	}
}

// Kick asks for a pass now: a schedule was added or resumed.
func (sc *scheduler) Kick() {
	select {
	case sc.kick <- struct{}{}:
	default:
	}
}

// Start runs passes until Stop.
func (sc *scheduler) Start(ctx context.Context) error {
	sc.StartLoop(ctx, sc.run)
	return nil
}

func (sc *scheduler) run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sc.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		}
		next, err := sc.RunOnce(ctx, sc.now())
		if err != nil && ctx.Err() == nil {
			sc.log.Warn("scheduler: pass", "err", err)
		}
		wait := sc.interval
		if !next.IsZero() {
			// Just after the tick's second: a tick is due at its instant.
			wait = min(wait, max(next.Sub(sc.now())+5*time.Millisecond, 0))
		}
		t.Reset(wait)
	}
}

// RunOnce handles the ticks due at now of every schedule, and returns the
// earliest next tick (zero: none). One schedule's failure does not stop
// the others'; the first is returned.
func (sc *scheduler) RunOnce(ctx context.Context, now time.Time) (time.Time, error) {
	list, err := sc.store.ListSchedules(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var next time.Time
	var first error
	for _, s := range list {
		if s.Paused {
			continue
		}
		n, err := sc.handle(ctx, s, now)
		if err != nil {
			sc.log.Warn("scheduler: schedule", "schedule", s.Name, "err", err)
			if first == nil {
				first = err
			}
		}
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next, first
}

// handle handles one schedule's due ticks and returns its next tick.
func (sc *scheduler) handle(ctx context.Context, s db.Schedule, now time.Time) (time.Time, error) {
	plan, err := service.DueTicks(s, now)
	if err != nil {
		return time.Time{}, err
	}
	if last := plan.Last(); !last.IsZero() {
		release, err := sc.enter(ctx, s.Owner)
		if err != nil {
			return time.Time{}, err
		}
		res, err := sc.svc.HandleTicks(ctx, s, plan, now, sc.refusal())
		release()
		if err != nil {
			return time.Time{}, err
		}
		sc.logTick(res)
		if res.Fired.Job.ID != 0 {
			sc.fired(res.Fired)
		}
		s.LastTick = last
	}
	spec, err := service.ScheduleSpec(s)
	if err != nil {
		return time.Time{}, err
	}
	return service.NextTick(spec, s, now), nil
}

func (sc *scheduler) logTick(res service.TickResult) {
	switch {
	case res.Fired.Job.ID != 0:
		sc.log.Info("schedule tick", "schedule", res.Schedule, "tick", res.Tick, "job_id", res.Fired.Job.ID, "runs", res.Fired.Runs(), "skipped", res.Recorded)
	case res.Recorded == 0:
		// Nothing was due, or another daemon handled it.
	case res.Outcome != "" && res.Outcome != db.TickFired:
		sc.log.Warn("schedule tick without a job", "schedule", res.Schedule, "tick", res.Tick, "outcome", res.Outcome, "reason", res.Reason, "recorded", res.Recorded)
	default:
		sc.log.Info("schedule ticks skipped", "schedule", res.Schedule, "skipped", res.Recorded)
	}
}
