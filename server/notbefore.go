package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/push"
)

// notBeforeWatcher pushes the daemon-mode clients whose runs' not_before
// time arrives, at that time, when this daemon leads (pushLeader in
// push.go). It wakes at the next known not_before, when this daemon takes
// a job with one (wake), and every interval (a job submitted on another
// daemon). The window starts when the watcher is made, just after the
// startup push, which covered what was due before. While the daemon does
// not lead, the window stays open, so a daemon taking over pushes what
// came due since and is still waiting. It is a lifecycle.Service; RunOnce
// makes one pass.
type notBeforeWatcher struct {
	lifecycle.Base

	store    db.Store
	push     *push.Pusher
	wake     <-chan struct{}
	leader   func(ctx context.Context, now time.Time) bool
	interval time.Duration
	log      *slog.Logger

	// The window: the runs due after `after` are pushed; next is the
	// earliest not_before known to come, zero when none. Only the loop,
	// or RunOnce when the loop does not run, touches them.
	after, next time.Time
}

func newNotBeforeWatcher(store db.Store, p *push.Pusher, leader func(context.Context, time.Time) bool,
	interval time.Duration, log *slog.Logger) *notBeforeWatcher {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &notBeforeWatcher{store: store, push: p, wake: p.NotBeforeWake(), leader: leader, interval: interval, log: log,
		after: time.Now().UTC()}
}

// Start watches until Stop.
func (w *notBeforeWatcher) Start(ctx context.Context) error {
	w.StartLoop(ctx, w.run)
	return nil
}

func (w *notBeforeWatcher) run(ctx context.Context) {
	t := time.NewTimer(w.interval)
	defer t.Stop()
	for {
		wait := w.interval
		if !w.next.IsZero() {
			wait = max(min(wait, time.Until(w.next)), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
		if err := w.RunOnce(ctx, time.Now().UTC()); err != nil && ctx.Err() == nil {
			w.log.Warn("not_before push: query", "err", err)
		}
	}
}

// RunOnce pushes the clients whose runs came due between the end of the
// last pass and now, when this daemon leads, and notes the next
// not_before time. It returns the query's error; the window stays where
// it was, for the next pass.
func (w *notBeforeWatcher) RunOnce(ctx context.Context, now time.Time) error {
	if !w.leader(ctx, now) {
		w.next = time.Time{}
		return nil
	}
	ids, next, err := w.store.DueNotBefore(ctx, w.after, now)
	if err != nil {
		return err
	}
	for _, id := range ids {
		w.push.Push(id)
	}
	w.after, w.next = now, next
	return nil
}
