package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
)

// eventWatcher tells the long polls of events.list (and whatever else
// waits for events) that a new one is there. While someone waits it asks
// the store for the newest event id every interval, once for all the
// waiters of the daemon; while nobody waits it asks nothing. So an idle
// follower costs one indexed read per interval shared with the others,
// and none at all once it is gone.
type eventWatcher struct {
	lifecycle.Base

	store    db.Store
	interval time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	last    int64         // the newest id seen; -1 before the first read
	changed chan struct{} // closed when last grows, then replaced
	waiters int
	wake    chan struct{} // a first waiter came
}

func newEventWatcher(store db.Store, log *slog.Logger) *eventWatcher {
	return &eventWatcher{store: store, interval: 100 * time.Millisecond, log: log, last: -1,
		changed: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// Wait returns once an event newer than after is there, or ctx is done.
func (w *eventWatcher) Wait(ctx context.Context, after int64) {
	w.mu.Lock()
	w.waiters++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.waiters--
		w.mu.Unlock()
	}()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	for {
		w.mu.Lock()
		last, changed := w.last, w.changed
		w.mu.Unlock()
		if last > after {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// Start watches until Stop.
func (w *eventWatcher) Start(ctx context.Context) error {
	w.StartLoop(ctx, w.run)
	return nil
}

func (w *eventWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := w.waiters == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
		}
		if err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("events: watch", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce reads the newest event id and wakes the waiters if it grew.
func (w *eventWatcher) RunOnce(ctx context.Context) error {
	id, err := w.store.LastEventID(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if id != w.last {
		w.last = id
		close(w.changed)
		w.changed = make(chan struct{})
	}
	return nil
}
