package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
)

// seenFlushInterval is how often the clients' last-seen times are written.
const seenFlushInterval = time.Second

// seenRecorder collects when each client was last heard from and writes the
// times in one statement every seenFlushInterval, instead of one write
// transaction per agent.heartbeat. With thousands of idle agents a
// transaction (and an fsync) per poll was most of the server's idle CPU
// (docs/benchmarks.md); a last-seen time is a display and a statistic, not
// work an agent was promised, so at most one interval of them is lost in a
// crash. client.list and a metrics scrape on this daemon flush first, so
// they show every poll that came before. The lastSeenWriter does the
// periodic writes, and a last one when it stops.
type seenRecorder struct {
	mu    sync.Mutex
	seen  map[int64]time.Time // every client heard from, for the metrics
	dirty map[int64]time.Time // not yet written
}

// saw records that client id was heard from at at.
func (r *seenRecorder) saw(id int64, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen, r.dirty = map[int64]time.Time{}, map[int64]time.Time{}
	}
	if at.After(r.seen[id]) {
		r.seen[id] = at
		r.dirty[id] = at
	}
}

// flush writes the times recorded since the last flush. On failure they are
// kept for the next one (a newer time recorded meanwhile wins).
func (r *seenRecorder) flush(ctx context.Context, store db.Store) error {
	r.mu.Lock()
	batch := r.dirty
	if len(batch) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.dirty = map[int64]time.Time{}
	r.mu.Unlock()
	err := store.TouchClients(ctx, batch)
	if err != nil {
		r.mu.Lock()
		for id, at := range batch {
			if at.After(r.dirty[id]) {
				r.dirty[id] = at
			}
		}
		r.mu.Unlock()
	}
	return err
}

// forget drops everything recorded (the database was replaced: the
// clients may not exist any more).
func (r *seenRecorder) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.dirty = nil, nil
}

// count is the number of clients heard from since since.
func (r *seenRecorder) count(since time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.seen {
		if !at.Before(since) {
			n++
		}
	}
	return n
}

// pending counts the times recorded and not yet written.
func (r *seenRecorder) pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.dirty)
}

// lastSeenStopTimeout bounds the last write when the writer stops.
const lastSeenStopTimeout = 30 * time.Second

// lastSeenWriter writes the clients' last-seen times the seenRecorder
// collected, every interval, and once more when it stops: scirectl serve
// stops it after the listener has drained, so every agent.heartbeat
// answered is written before the database closes. It is a
// lifecycle.Service; RunOnce writes what is pending.
type lastSeenWriter struct {
	lifecycle.Base

	seen     *seenRecorder
	store    db.Store
	interval time.Duration
	log      *slog.Logger
}

func newLastSeenWriter(seen *seenRecorder, store db.Store, log *slog.Logger) *lastSeenWriter {
	return &lastSeenWriter{seen: seen, store: store, interval: seenFlushInterval, log: log}
}

// Start writes every interval until Stop, then writes what is left.
func (w *lastSeenWriter) Start(ctx context.Context) error {
	w.StartLoop(ctx, w.run)
	return nil
}

func (w *lastSeenWriter) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.last(context.WithoutCancel(ctx))
			return
		case <-t.C:
			// A write cut short by Stop keeps its times for the last one.
			if err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("record clients' last-seen times", "err", err)
			}
		}
	}
}

// last is the write at stop: what it cannot write is lost, and said so.
func (w *lastSeenWriter) last(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, lastSeenStopTimeout)
	defer cancel()
	if err := w.RunOnce(ctx); err != nil {
		w.log.Warn("record clients' last-seen times at stop: not written", "clients", w.seen.pending(), "err", err)
	}
}

// RunOnce writes the times recorded since the last write.
func (w *lastSeenWriter) RunOnce(ctx context.Context) error { return w.seen.flush(ctx, w.store) }

// flushSeen writes the pending last-seen times before a read that shows
// them; a failure is logged, the read goes on.
func (s *Server) flushSeen(ctx context.Context) {
	if err := s.seen.flush(ctx, s.store); err != nil {
		s.log.Warn("record clients' last-seen times", "err", err)
	}
}
