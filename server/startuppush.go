package server

import (
	"context"
	"log/slog"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/push"
)

// startupPush pushes every active daemon-mode client once, when the
// daemon starts and its listener is open: startup recovery may have
// requeued work, and work may have waited while no daemon ran (package push).
// It is a lifecycle.Service whose loop is that one pass, run beside the
// daemon's start; Stop cuts it short and waits. RunOnce makes the pass on
// the caller's goroutine.
type startupPush struct {
	lifecycle.Base

	store db.Store
	push  *push.Pusher
	log   *slog.Logger
}

func newStartupPush(store db.Store, p *push.Pusher, log *slog.Logger) *startupPush {
	return &startupPush{store: store, push: p, log: log}
}

// Start makes the pass on a goroutine of its own.
func (sp *startupPush) Start(ctx context.Context) error {
	sp.StartLoop(ctx, func(ctx context.Context) {
		if _, err := sp.RunOnce(ctx); err != nil && ctx.Err() == nil {
			sp.log.Warn("startup push: list clients", "err", err)
		}
	})
	return nil
}

// RunOnce asks for a push to every active daemon-mode client and returns
// how many there were.
func (sp *startupPush) RunOnce(ctx context.Context) (int, error) {
	cs, err := sp.store.ListClients(ctx, db.ClientFilter{Status: db.ClientActive})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		if c.Mode == db.ModeDaemon {
			sp.push.Push(c.ID)
			n++
		}
	}
	if n > 0 {
		sp.log.Info("startup push to daemon-mode clients", "clients", n)
	}
	return n, nil
}
