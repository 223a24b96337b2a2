package server

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/push"
)

// rolloutKeeper moves rollouts along (docs/protocol.md, "Rollouts"). The
// limits themselves are the store's, checked by every claim; the keeper
// does what no claim does:
//
//   - it halts a rollout as soon as it must (Store.EnforceRollouts): after
//     a failed report, a lost or expired run, a canary denied, and on
//     every pass for whatever a crash or another daemon left (halts are
//     conditional updates, so two daemons never both halt a job);
//   - it pushes the daemon-mode clients whose runs may go out now
//     (Store.RolloutWake) when a slot frees, the canaries pass, or a job
//     is resumed: an agent held back by the window is told when its turn
//     comes instead of waiting for its next poll.
//
// Work arrives through kick (coalesced: one pass at a time, at most one
// every minGap) and every interval. A pass enters the gate as the
// non-modifier "rollout.enforce", like the rescuer's sweep.
type rolloutKeeper struct {
	lifecycle.Base

	store    db.Store
	push     *push.Pusher
	enter    func(ctx context.Context) (func(), error)
	leader   func(ctx context.Context, now time.Time) bool
	interval time.Duration
	minGap   time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	pending db.RolloutScope // what kicks asked to enforce
	wake    []int64         // jobs whose clients to push
	kicked  bool
	kick    chan struct{}
}

func newRolloutKeeper(s *Server) *rolloutKeeper {
	interval := s.cfg.RescueInterval
	if interval <= 0 || interval > time.Second {
		interval = time.Second
	}
	return &rolloutKeeper{
		store: s.store, push: s.push, leader: s.pushLeader, interval: interval, minGap: 50 * time.Millisecond, log: s.log,
		kick: make(chan struct{}, 1),
		enter: func(ctx context.Context) (func(), error) {
			t, err := s.gate.Enter(ctx, gate.Request{Name: "rollout.enforce", Class: gate.NonModifier, User: "server"})
			if err != nil {
				return nil, err
			}
			return t.Release, nil
		},
	}
}

// Enforce asks for the rollouts of scope to be judged soon (their runs
// failed, were lost or denied); an empty scope just asks for a pass.
func (k *rolloutKeeper) Enforce(scope db.RolloutScope) {
	k.mu.Lock()
	k.pending.JobIDs = append(k.pending.JobIDs, scope.JobIDs...)
	k.pending.RunIDs = append(k.pending.RunIDs, scope.RunIDs...)
	k.kicked = true
	k.mu.Unlock()
	k.signal()
}

// Wake asks for the daemon-mode clients of jobs' runs that may go out now
// to be pushed soon (a job resumed or submitted).
func (k *rolloutKeeper) Wake(jobs ...int64) {
	k.mu.Lock()
	k.wake = append(k.wake, jobs...)
	k.kicked = true
	k.mu.Unlock()
	k.signal()
}

func (k *rolloutKeeper) signal() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// Start runs passes until Stop.
func (k *rolloutKeeper) Start(ctx context.Context) error {
	k.StartLoop(ctx, k.run)
	return nil
}

func (k *rolloutKeeper) run(ctx context.Context) {
	tick := time.NewTicker(k.interval)
	defer tick.Stop()
	for {
		periodic := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			periodic = true
		case <-k.kick:
		}
		if err := k.RunOnce(ctx, periodic); err != nil && ctx.Err() == nil {
			k.log.Warn("rollouts: pass", "err", err)
		}
		// Kicks that came during the pass wait for the next one, at
		// most minGap from now: a report storm costs a pass per gap.
		select {
		case <-ctx.Done():
			return
		case <-time.After(k.minGap):
		}
	}
}

// RunOnce makes one pass: the kicked scope, or (periodic) every active
// rollout, is enforced; then the clients whose runs may go out are pushed
// — every active rollout's on a periodic pass when this daemon leads, and
// those of jobs asked for.
func (k *rolloutKeeper) RunOnce(ctx context.Context, periodic bool) error {
	k.mu.Lock()
	scope, wake, kicked := k.pending, k.wake, k.kicked
	k.pending, k.wake, k.kicked = db.RolloutScope{}, nil, false
	k.mu.Unlock()
	if !periodic && !kicked {
		return nil
	}
	// What was asked and not done goes back for the next pass.
	requeue := func() {
		k.mu.Lock()
		k.pending.JobIDs = append(k.pending.JobIDs, scope.JobIDs...)
		k.pending.RunIDs = append(k.pending.RunIDs, scope.RunIDs...)
		k.wake = append(k.wake, wake...)
		k.kicked = true
		k.mu.Unlock()
	}
	release, err := k.enter(ctx)
	if err != nil {
		requeue()
		return err
	}
	defer release()
	now := time.Now().UTC()
	// The kicked scope names jobs a periodic pass may not see (a job whose
	// last run just failed has none left active): both are enforced.
	var scopes []db.RolloutScope
	if len(scope.JobIDs) > 0 || len(scope.RunIDs) > 0 {
		scopes = append(scopes, dedup(scope))
	}
	if periodic {
		scopes = append(scopes, db.RolloutScope{})
	}
	for _, sc := range scopes {
		halts, err := k.store.EnforceRollouts(ctx, sc, now)
		for _, h := range halts {
			k.log.Warn("rollout halted", "job_id", h.JobID, "reason", h.Reason, "skipped", h.Skipped)
		}
		if err != nil {
			requeue()
			return err
		}
	}
	// Any pass may follow a slot freeing (a report, a sweep): the active
	// rollouts' next clients are pushed, by the leading daemon alone on a
	// periodic pass (the others' pushes would only repeat it).
	var clients []int64
	if !periodic || k.leader(ctx, now) {
		if clients, err = k.store.RolloutWake(ctx, nil); err != nil {
			return err
		}
	}
	if len(wake) > 0 {
		more, err := k.store.RolloutWake(ctx, uniq(wake))
		if err != nil {
			return err
		}
		clients = append(clients, more...)
	}
	for _, id := range uniq(clients) {
		k.push.Push(id)
	}
	return nil
}

func dedup(s db.RolloutScope) db.RolloutScope {
	return db.RolloutScope{JobIDs: uniq(s.JobIDs), RunIDs: uniq(s.RunIDs)}
}

// uniq sorts ids and drops repeats (in place).
func uniq(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}
