package maintenance_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/runstate"
)

const day = 24 * time.Hour

// now is the cleaner tests' clock: every time below is relative to it.
var now = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// openStore is a new SQLite store with an active client.
func openStore(t *testing.T) (db.Store, int64) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "m1", At: now.Add(-1000 * day)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	return s, c.ID
}

// jobsEndedAt submits n jobs created at `at` for the client, and has the
// client claim them and report them final at `at` (st final), or leaves
// them pending (st pending).
func jobsEndedAt(t *testing.T, s db.Store, client int64, n int, at time.Time, st runstate.State) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
			ClientIDs: []int64{client}, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if st == runstate.Pending {
		return
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: n, At: at, Lease: time.Hour, ServerID: 1})
	if err != nil || len(ds) != n {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	reps := make([]db.Report, len(ds))
	for i, d := range ds {
		code := 0
		reps[i] = db.Report{RunID: d.Run.ID, State: st, ExitCode: &code, StartedAt: at, Finished: at}
	}
	if _, err := s.ReportRuns(ctx, client, reps, at); err != nil {
		t.Fatal(err)
	}
}

func countJobs(t *testing.T, s db.Store) int {
	t.Helper()
	js, err := s.ListJobs(context.Background(), db.JobFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return len(js)
}

func audits(t *testing.T, s db.Store, name string) []db.AuditEntry {
	t.Helper()
	es, err := s.ListOperations(context.Background(), db.AuditFilter{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// A pass on an injected clock deletes the final jobs older than Retain
// and the audit records older than RetainAudit, in batches each through
// Enter, keeps the rest, and records itself once in the audit trail.
func TestCleanerRunOnceDeletesWhatExpired(t *testing.T) {
	s, client := openStore(t)
	ctx := context.Background()
	jobsEndedAt(t, s, client, 5, now.Add(-100*day), runstate.Succeeded) // expired
	jobsEndedAt(t, s, client, 2, now.Add(-95*day), runstate.Failed)     // expired
	jobsEndedAt(t, s, client, 3, now.Add(-10*day), runstate.Succeeded)  // kept: recent
	jobsEndedAt(t, s, client, 1, now.Add(-200*day), runstate.Pending)   // kept: not final
	for _, age := range []time.Duration{500 * day, 450 * day, 401 * day, 10 * day} {
		if err := s.RecordOperation(ctx, db.AuditEntry{At: now.Add(-age), Actor: "admin", Name: "acl.add", Outcome: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	var entered, released atomic.Int32
	c := &maintenance.Cleaner{Store: s, Retain: 90 * day, RetainAudit: 400 * day, Batch: 2, Pause: time.Millisecond,
		Now: func() time.Time { return now },
		Enter: func(context.Context) (func(), error) {
			entered.Add(1)
			return func() { released.Add(1) }, nil
		}}
	res, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs != 7 || res.Runs != 7 || res.Operations != 3 || res.Skipped {
		t.Fatalf("pass: %+v, want 7 jobs, 7 runs, 3 audit rows", res)
	}
	// Jobs: 11 created before the cutoff or not, 8 of them before it
	// (batches of 2: 5); audit records: 2 batches, the last short; the
	// space: at least one step.
	if n := entered.Load(); n < 8 || n != released.Load() {
		t.Fatalf("entered %d, released %d: want every batch through Enter", n, released.Load())
	}
	if n := countJobs(t, s); n != 4 {
		t.Fatalf("%d jobs left, want 4", n)
	}
	rec := audits(t, s, maintenance.AuditClean)
	if len(rec) != 1 || rec[0].Actor != "server" || rec[0].Outcome != "ok" ||
		!strings.HasPrefix(rec[0].Detail, "deleted 7 jobs, 7 runs, 3 audit rows") {
		t.Fatalf("audit of the pass: %+v", rec)
	}
	if left := audits(t, s, "acl.add"); len(left) != 1 {
		t.Fatalf("%d acl.add records left, want the recent one", len(left))
	}

	// Nothing left to do: no deletion, no record.
	if again, err := c.RunOnce(ctx); err != nil || again.Deleted() {
		t.Fatalf("second pass: %+v, %v", again, err)
	}
	if rec := audits(t, s, maintenance.AuditClean); len(rec) != 1 {
		t.Fatalf("%d pass records, want 1: a pass that deletes nothing is not audited", len(rec))
	}

	// The clock moves on a month: the recent jobs expire too.
	c.Now = func() time.Time { return now.Add(90 * day) }
	if later, err := c.RunOnce(ctx); err != nil || later.Jobs != 3 {
		t.Fatalf("a month later: %+v, %v", later, err)
	}
}

// While another daemon holds the cleaner's lock, a pass does nothing.
func TestCleanerSkipsWhileAnotherCleans(t *testing.T) {
	s, client := openStore(t)
	ctx := context.Background()
	jobsEndedAt(t, s, client, 3, now.Add(-100*day), runstate.Succeeded)
	release, err := s.TryLock(ctx, maintenance.CleanerLock)
	if err != nil {
		t.Fatal(err)
	}
	c := &maintenance.Cleaner{Store: s, Retain: 90 * day, Now: func() time.Time { return now }}
	res, err := c.RunOnce(ctx)
	if err != nil || !res.Skipped || res.Deleted() {
		t.Fatalf("pass while locked: %+v, %v; want skipped", res, err)
	}
	if n := countJobs(t, s); n != 3 {
		t.Fatalf("%d jobs left, want 3", n)
	}
	release()
	if res, err := c.RunOnce(ctx); err != nil || res.Jobs != 3 {
		t.Fatalf("pass once released: %+v, %v", res, err)
	}
	// The pass gave the lock back.
	un, err := s.TryLock(ctx, maintenance.CleanerLock)
	if err != nil {
		t.Fatalf("lock after a pass: %v", err)
	}
	un()
}

// Off (both periods 0): nothing is deleted, and Start starts no loop.
func TestCleanerOff(t *testing.T) {
	s, client := openStore(t)
	jobsEndedAt(t, s, client, 2, now.Add(-1000*day), runstate.Succeeded)
	c := &maintenance.Cleaner{Store: s, Now: func() time.Time { return now }, Delay: time.Millisecond}
	if res, err := c.RunOnce(context.Background()); err != nil || res.Deleted() {
		t.Fatalf("off: %+v, %v", res, err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Fatal("an off cleaner runs a loop")
	}
	c.Stop()
	if n := countJobs(t, s); n != 2 {
		t.Fatalf("%d jobs left, want 2", n)
	}
	if got := c.Describe(); got != "off" {
		t.Fatalf("Describe = %q", got)
	}
	c.Retain, c.RetainAudit = 90*day, 36*time.Hour
	if got := c.Describe(); got != "jobs 90d, audit records 1d12h" {
		t.Fatalf("Describe = %q", got)
	}
}

// Started, the cleaner makes its first pass after Delay, then every
// Interval; Stop ends it and waits.
func TestCleanerRunsOnSchedule(t *testing.T) {
	s, client := openStore(t)
	jobsEndedAt(t, s, client, 3, now.Add(-100*day), runstate.Succeeded)
	var passes atomic.Int32
	c := &maintenance.Cleaner{Store: s, Retain: 90 * day, Delay: 10 * time.Millisecond, Interval: 20 * time.Millisecond,
		Now: func() time.Time { return now },
		Enter: func(context.Context) (func(), error) {
			passes.Add(1)
			return func() {}, nil
		}}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countJobs(t, s) != 0 || passes.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d jobs left, %d batches", countJobs(t, s), passes.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Stop()
	if c.Running() {
		t.Fatal("running after Stop")
	}
	n := passes.Load()
	time.Sleep(50 * time.Millisecond)
	if passes.Load() != n {
		t.Fatal("a batch after Stop")
	}
}

// A pass stopped between batches keeps what it deleted, says why, and is
// audited so.
func TestCleanerStoppedMidPass(t *testing.T) {
	s, client := openStore(t)
	jobsEndedAt(t, s, client, 6, now.Add(-100*day), runstate.Succeeded)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var batches atomic.Int32
	c := &maintenance.Cleaner{Store: s, Retain: 90 * day, Batch: 2, Pause: time.Millisecond, Now: func() time.Time { return now },
		Enter: func(context.Context) (func(), error) {
			n := batches.Add(1)
			return func() {
				if n == 2 {
					cancel() // Stop, as the second batch ends
				}
			}, nil
		}}
	res, err := c.RunOnce(ctx)
	if !errors.Is(err, context.Canceled) || res.Jobs != 4 {
		t.Fatalf("stopped pass: %+v, %v; want 4 jobs deleted and context.Canceled", res, err)
	}
	rec := audits(t, s, maintenance.AuditClean)
	if len(rec) != 1 || !strings.HasPrefix(rec[0].Outcome, "stopped: ") || !strings.HasPrefix(rec[0].Detail, "deleted 4 jobs") {
		t.Fatalf("audit of the stopped pass: %+v", rec)
	}
	if n := countJobs(t, s); n != 2 {
		t.Fatalf("%d jobs left, want 2", n)
	}
}
