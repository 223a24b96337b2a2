package maintenance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
)

// CleanerLock is the name of the lock (db.Store.TryLock) a cleaner holds
// for a pass: one daemon of a cluster cleans at a time, the others skip
// their pass.
const CleanerLock = "cleaner"

// AuditClean is the operation name of a pass in the audit trail and at
// the gate.
const AuditClean = "cleaner.clean"

// The cleaner's batches. Each holds the store's writer (SQLite: the one
// writer connection, which the agents' claims share) for its deletions:
// 100 jobs take about 3 ms there alone, 500 about 9 ms, and several times
// that on a busy two-core machine, where the claims made during a clean of
// a million old jobs waited in proportion (docs/benchmarks.md,
// 2026-12-07). A page is 4 KiB.
const (
	DefaultCleanBatch = 100
	DefaultVacuumStep = 256
)

// Cleaner deletes what is kept no longer (docs/maintenance.md,
// "Retention"): jobs whose runs are all final and whose last run ended
// more than Retain ago, with their runs and output, and audit records
// older than RetainAudit; then, where the database needs to be asked
// (SQLite), it gives the freed space back to the file system. It works in
// small batches, each a transaction of the store's ordinary writer passed
// through Enter, with a pause between them at least as long as the batch
// took: the agents' claims, which share the writer, wait for one batch at
// most, and the cleaner never takes more than half of it.
//
// A pass holds the store's lock CleanerLock: with several daemons on one
// database, one of them cleans and the others find the lock taken and skip
// their pass. The zero value of every field but Store takes the default in
// its comment. It is a lifecycle.Service: Start cleans after Delay, then
// every Interval, until Stop.
type Cleaner struct {
	lifecycle.Base

	Store       db.Store
	Retain      time.Duration // final jobs older than this are deleted; 0: kept for ever
	RetainAudit time.Duration // audit records older than this are deleted; 0: kept for ever
	Interval    time.Duration // between passes; default 1h
	Delay       time.Duration // before the first pass; default 1m
	Batch       int           // jobs examined, or audit records deleted, per transaction; default DefaultCleanBatch
	Pause       time.Duration // the least pause between batches; default 10ms
	VacuumStep  int           // pages given back per transaction; default 256 (1 MiB)
	Log         *slog.Logger
	Now         func() time.Time // default time.Now
	// Enter, when set, is called around each batch (the server passes its
	// gate here as the non-modifier AuditClean, so no batch runs beside a
	// db.restore or db.reset); it returns the function that ends the
	// batch's turn.
	Enter func(ctx context.Context) (release func(), err error)
	// Record writes the audit record of a pass that deleted something;
	// default Store.RecordOperation.
	Record func(ctx context.Context, e db.AuditEntry)
}

// CleanResult is what one pass did.
type CleanResult struct {
	Jobs, Runs, Operations int   // deleted
	Events, Keys           int   // deleted: events, expired idempotency keys
	Pages                  int64 // given back to the file system
	Batches                int   // transactions that deleted or gave back
	Took                   time.Duration
	// Skipped: another daemon held CleanerLock, and this pass did nothing.
	Skipped bool
}

// Deleted reports whether the pass deleted anything.
func (r CleanResult) Deleted() bool { return r.Jobs+r.Runs+r.Operations+r.Events+r.Keys > 0 }

// Summary is the pass in words: "deleted 3 jobs, 5 runs, 0 audit rows".
func (r CleanResult) Summary() string {
	s := fmt.Sprintf("deleted %d jobs, %d runs, %d audit rows, %d events, %d expired idempotency keys", r.Jobs, r.Runs, r.Operations, r.Events, r.Keys)
	if r.Pages > 0 {
		s += fmt.Sprintf("; %d pages given back", r.Pages)
	}
	return s
}

func (c *Cleaner) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Hour
	}
	if c.Delay <= 0 {
		c.Delay = time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = DefaultCleanBatch
	}
	if c.Pause <= 0 {
		c.Pause = 10 * time.Millisecond
	}
	if c.VacuumStep <= 0 {
		c.VacuumStep = DefaultVacuumStep
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Record == nil {
		c.Record = func(ctx context.Context, e db.AuditEntry) {
			if err := c.Store.RecordOperation(ctx, e); err != nil {
				c.Log.Error("audit", "operation", e.Name, "err", err)
			}
		}
	}
}

// Off reports whether the cleaner has nothing to do: neither jobs nor
// audit records expire.
func (c *Cleaner) Off() bool { return c.Retain <= 0 && c.RetainAudit <= 0 }

// RunOnce makes one pass: the old jobs, then the old audit records, then
// the space given back, each in batches. A pass that deleted something
// is logged and audited (one record). When another daemon holds the lock
// the pass is skipped (CleanResult.Skipped). A pass ended by ctx, or by
// an error, keeps what its batches deleted, and is audited so.
func (c *Cleaner) RunOnce(ctx context.Context) (CleanResult, error) {
	c.defaults()
	var res CleanResult
	if c.Off() {
		return res, nil
	}
	start := time.Now()
	release, err := c.Store.TryLock(ctx, CleanerLock)
	if errors.Is(err, db.ErrConflict) {
		res.Skipped = true
		return res, nil
	} else if err != nil {
		return res, fmt.Errorf("cleaner: %w", err)
	}
	defer release()
	err = c.pass(ctx, &res)
	res.Took = time.Since(start)
	if res.Deleted() || res.Pages > 0 {
		outcome := "ok"
		if err != nil {
			outcome = "stopped: " + err.Error()
		}
		c.Record(context.WithoutCancel(ctx), db.AuditEntry{At: c.Now().UTC(), Actor: "server", Name: AuditClean,
			Outcome: outcome, Detail: fmt.Sprintf("%s in %s", res.Summary(), res.Took.Round(time.Millisecond))})
		c.Log.Info("cleaner", "deleted_jobs", res.Jobs, "deleted_runs", res.Runs, "deleted_audit_rows", res.Operations,
			"pages_given_back", res.Pages, "batches", res.Batches, "took", res.Took.Round(time.Millisecond).String())
	}
	return res, err
}

func (c *Cleaner) pass(ctx context.Context, res *CleanResult) error {
	now := c.Now().UTC()
	if c.Retain > 0 {
		before := now.Add(-c.Retain)
		var next db.PruneCursor
		for more := true; more; {
			err := c.batch(ctx, func(ctx context.Context) error {
				r, err := c.Store.PruneJobs(ctx, db.PruneOptions{Before: before, Limit: c.Batch, After: next})
				if err != nil {
					return err
				}
				res.Jobs, res.Runs, next, more = res.Jobs+r.Jobs, res.Runs+r.Runs, r.Next, r.Examined >= c.Batch
				if r.Jobs > 0 {
					res.Batches++
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("cleaner: jobs: %w", err)
			}
		}
	}
	// Events are kept as long as jobs (--retain); idempotency keys as long
	// as they name a job (db.IdempotencyWindow), whatever --retain says.
	for _, p := range []struct {
		what   string
		keep   time.Duration
		prune  func(context.Context, time.Time, int) (int, error)
		counts *int
	}{
		{"audit records", c.RetainAudit, c.Store.PruneOperations, &res.Operations},
		{"events", c.Retain, c.Store.PruneEvents, &res.Events},
		{"idempotency keys", db.IdempotencyWindow, c.Store.PruneIdempotencyKeys, &res.Keys},
	} {
		if p.keep <= 0 {
			continue
		}
		before := now.Add(-p.keep)
		for more := true; more; {
			err := c.batch(ctx, func(ctx context.Context) error {
				n, err := p.prune(ctx, before, c.Batch)
				if err != nil {
					return err
				}
				*p.counts += n
				more = n >= c.Batch
				if n > 0 {
					res.Batches++
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("cleaner: %s: %w", p.what, err)
			}
		}
	}
	if !res.Deleted() {
		return nil
	}
	for more := true; more; {
		err := c.batch(ctx, func(ctx context.Context) error {
			freed, left, err := c.Store.ReclaimSpace(ctx, c.VacuumStep)
			if err != nil {
				return err
			}
			res.Pages += freed
			more = freed > 0 && left > 0
			if freed > 0 {
				res.Batches++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cleaner: give space back: %w", err)
		}
	}
	return nil
}

// batch runs fn through Enter, then pauses for as long as fn took (at
// least Pause), so the writer is the cleaner's half of the time at most.
func (c *Cleaner) batch(ctx context.Context, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	begin := time.Now()
	if c.Enter != nil {
		release, err := c.Enter(ctx)
		if err != nil {
			return err
		}
		defer release()
	}
	if err := fn(ctx); err != nil {
		return err
	}
	t := time.NewTimer(max(c.Pause, time.Since(begin)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil // the next batch says so
	case <-t.C:
		return nil
	}
}

var _ lifecycle.Service = (*Cleaner)(nil)

// Start cleans after Delay and then every Interval, on a goroutine of its
// own, until Stop or until ctx is done; Stop waits for the batch under way
// to end (a pass stops between batches). Starting a running cleaner does
// nothing. A cleaner that is Off starts no loop.
func (c *Cleaner) Start(ctx context.Context) error {
	c.defaults() // here, not on the loop's goroutine: RunOnce may run beside it
	if c.Off() {
		return nil
	}
	c.StartLoop(ctx, c.Run)
	return nil
}

// Run cleans after Delay, then every Interval, until ctx is done. A failed
// pass is logged and the next one comes at the next tick. Start runs it on
// a goroutine of its own.
func (c *Cleaner) Run(ctx context.Context) {
	c.defaults()
	t := time.NewTimer(c.Delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := c.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			c.Log.Warn("cleaner", "err", err)
		}
		if res.Skipped {
			c.Log.Debug("cleaner: another daemon is cleaning; pass skipped")
		}
		t.Reset(c.Interval)
	}
}

// Describe says what the cleaner keeps, for the start-up log: "jobs 90d,
// audit records 400d", "off".
func (c *Cleaner) Describe() string {
	if c.Off() {
		return "off"
	}
	var parts []string
	for _, p := range []struct {
		what string
		d    time.Duration
	}{{"jobs", c.Retain}, {"audit records", c.RetainAudit}} {
		if p.d > 0 {
			parts = append(parts, p.what+" "+api.FormatAge(p.d))
		} else {
			parts = append(parts, p.what+" for ever")
		}
	}
	return strings.Join(parts, ", ")
}
