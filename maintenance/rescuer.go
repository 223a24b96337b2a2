// Package maintenance holds the server's background services over the
// store. The rescuer applies the time-driven transitions of the run state
// machine — expired leases, lost runs, passed expiry dates — on a schedule
// and once at start (the startup recovery of docs/architecture.md). Its work is done by
// conditional UPDATEs in the store, so several daemons may run it at once
// without harm: each run changes once, for whichever daemon gets there
// first.
//
// Each service is a lifecycle.Service: Start runs its loop, Stop ends it
// and waits, and RunOnce runs one pass on the caller's goroutine (the
// startup recovery, and tests).
package maintenance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/runstate"
)

// Rescuer sweeps the runs store on a schedule. The zero value of every
// field but Store takes the documented default. It is a
// lifecycle.Service: Start sweeps every Interval until Stop.
type Rescuer struct {
	lifecycle.Base

	Store    db.Store
	Interval time.Duration // between sweeps; default 5s
	Grace    time.Duration // added to a job's timeout before a silent run is lost; default 2m
	Batch    int           // runs per kind of change per transaction; default 1000
	Log      *slog.Logger
	Now      func() time.Time // default time.Now
	// Enter, when set, is called around each sweep (the server passes its
	// gate here, so a sweep never runs beside a db.restore or db.reset);
	// it returns the function that ends the sweep's turn.
	Enter func(ctx context.Context) (release func(), err error)
	// OnChange, when set, is told about every change a sweep made (the
	// server logs them; daemon-mode pushes will hang off it).
	OnChange func([]db.Change)
	// Takeover: with several daemons on one database, a daemon whose
	// heartbeat is older than DeadAfter (default 30s) is dead, and the runs
	// it sent that no agent acknowledged are handed back at once instead of
	// waiting for their leases. Only daemons that died within the last
	// Lease are looked at: after that their leases have ended anyway. Self
	// is this daemon's id (never taken over); Lease 0 turns takeover off.
	DeadAfter time.Duration
	Lease     time.Duration
	Self      func() int64
}

func (r *Rescuer) defaults() {
	if r.Interval <= 0 {
		r.Interval = 5 * time.Second
	}
	if r.Grace <= 0 {
		r.Grace = 2 * time.Minute
	}
	if r.Batch <= 0 {
		r.Batch = 1000
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.DeadAfter <= 0 {
		r.DeadAfter = 30 * time.Second
	}
}

// maxRounds bounds one RunOnce: a backlog bigger than maxRounds·Batch is
// left for the next tick rather than holding the gate for long.
const maxRounds = 50

// RunOnce sweeps until nothing more is due (or maxRounds batches), and
// returns every change it made.
func (r *Rescuer) RunOnce(ctx context.Context) ([]db.Change, error) {
	r.defaults()
	var all []db.Change
	for round := 0; round < maxRounds; round++ {
		changes, err := r.sweep(ctx)
		if err != nil {
			return all, err
		}
		all = append(all, changes...)
		if !r.full(changes) {
			return all, nil
		}
	}
	return all, nil
}

func (r *Rescuer) sweep(ctx context.Context) ([]db.Change, error) {
	if r.Enter != nil {
		release, err := r.Enter(ctx)
		if err != nil {
			return nil, fmt.Errorf("rescuer: %w", err)
		}
		defer release()
	}
	now := r.Now().UTC()
	changes, err := r.takeover(ctx, now)
	if err != nil {
		return changes, err
	}
	swept, err := r.Store.Sweep(ctx, db.SweepOptions{At: now, Grace: r.Grace, Limit: r.Batch})
	changes = append(changes, swept...)
	if err != nil {
		return changes, fmt.Errorf("rescuer: sweep: %w", err)
	}
	if len(changes) > 0 && r.OnChange != nil {
		r.OnChange(changes)
	}
	return changes, nil
}

// takeover hands back what recently dead daemons had sent.
func (r *Rescuer) takeover(ctx context.Context, now time.Time) ([]db.Change, error) {
	if r.Lease <= 0 {
		return nil, nil
	}
	servers, err := r.Store.ListServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("rescuer: list servers: %w", err)
	}
	var self int64
	if r.Self != nil {
		self = r.Self()
	}
	var out []db.Change
	for _, si := range servers {
		silent := now.Sub(si.HeartbeatAt)
		if si.ID == self || silent <= r.DeadAfter || silent > r.DeadAfter+r.Lease {
			continue
		}
		ch, err := r.Store.RequeueServer(ctx, si.ID, now, false)
		if err != nil {
			return out, fmt.Errorf("rescuer: take over server %d: %w", si.ID, err)
		}
		if len(ch) > 0 {
			r.Log.Warn("took over a dead server's runs", "server_id", si.ID, "address", si.Address,
				"silent", silent.Round(time.Second).String(), "changed", Summary(ch))
		}
		out = append(out, ch...)
	}
	return out, nil
}

// full reports whether some kind of change hit the batch limit, so more
// may be due.
func (r *Rescuer) full(changes []db.Change) bool {
	n := map[string]int{}
	for _, c := range changes {
		n[Kind(c)]++
	}
	for _, k := range n {
		if k >= r.Batch {
			return true
		}
	}
	return false
}

var _ lifecycle.Service = (*Rescuer)(nil)

// Start sweeps every Interval, on a goroutine of its own, until Stop or
// until ctx is done; Stop waits for a sweep under way to end. Starting a
// running rescuer does nothing.
func (r *Rescuer) Start(ctx context.Context) error {
	r.defaults() // here, not on the loop's goroutine: RunOnce may run beside it
	r.StartLoop(ctx, r.Run)
	return nil
}

// Run sweeps every Interval until ctx is done. A failed sweep is logged
// and retried at the next tick. Start runs it on a goroutine of its own.
func (r *Rescuer) Run(ctx context.Context) {
	r.defaults()
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changes, err := r.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("rescuer", "err", err)
		}
		if len(changes) > 0 {
			r.Log.Info("rescuer", "changed", Summary(changes))
		}
	}
}

// Kind names what a change did, for summaries and metrics.
func Kind(c db.Change) string {
	switch {
	case c.To == runstate.Pending:
		return "requeued"
	case c.Reason == db.ReasonMaxAttempts:
		return "failed (max attempts)"
	case c.Reason == db.ReasonLost:
		return "failed (lost)"
	case c.To == runstate.Expired:
		return "expired"
	case c.To == runstate.Cancelled:
		return "cancelled"
	}
	return string(c.From) + "→" + string(c.To)
}

// Summary counts changes by kind: "2 requeued, 1 failed (lost)", or
// "nothing" for none.
func Summary(changes []db.Change) string {
	n := map[string]int{}
	for _, c := range changes {
		n[Kind(c)]++
	}
	if len(n) == 0 {
		return "nothing"
	}
	kinds := make([]string, 0, len(n))
	for k := range n {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", n[k], k)
	}
	return strings.Join(parts, ", ")
}
