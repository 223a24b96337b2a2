package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
)

// HeartbeatInterval is how often a daemon refreshes its registry row; a
// row three intervals old belongs to a dead daemon.
const HeartbeatInterval = 10 * time.Second

// serverHeartbeat keeps this daemon's row in the servers registry fresh,
// every Interval, so that peers can tell it is alive (the rescuer's
// takeover, the not_before leader, server.list). It is a
// lifecycle.Service; RunOnce writes one heartbeat.
type serverHeartbeat struct {
	lifecycle.Base

	store    db.Store
	id       func() int64 // this daemon's id; it changes when db.restore or db.reset register it again
	interval time.Duration
	log      *slog.Logger
}

func newServerHeartbeat(store db.Store, id func() int64, log *slog.Logger) *serverHeartbeat {
	return &serverHeartbeat{store: store, id: id, interval: HeartbeatInterval, log: log}
}

// Start beats every interval until Stop.
func (h *serverHeartbeat) Start(ctx context.Context) error {
	h.StartLoop(ctx, h.run)
	return nil
}

func (h *serverHeartbeat) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := h.beat(ctx, now); err != nil && ctx.Err() == nil {
				h.log.Warn("server heartbeat", "err", err)
			}
		}
	}
}

// RunOnce writes one heartbeat, now.
func (h *serverHeartbeat) RunOnce(ctx context.Context) error { return h.beat(ctx, time.Now()) }

func (h *serverHeartbeat) beat(ctx context.Context, now time.Time) error {
	return h.store.HeartbeatServer(ctx, h.id(), now.UTC())
}
