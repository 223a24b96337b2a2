package maintenance_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/runstate"
)

// fixture is a real SQLite store with one active client and n jobs sent to
// it with a lease that ends at t0+lease.
func fixture(t *testing.T, n int, lease time.Duration, t0 time.Time) (db.Store, int64) {
	t.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "m1", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Permission: "run", Interpreter: "/bin/sh", Script: "true",
			SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: t0, MaxAttempts: 2}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: n, At: t0, Lease: lease, ServerID: 1})
	if err != nil || len(ds) != n {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	return s, c.ID
}

func TestRunOnceRequeuesInBatchesThroughEnter(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).UTC()
	s, _ := fixture(t, 5, time.Minute, t0)
	var entered, released, told atomic.Int32
	r := &maintenance.Rescuer{Store: s, Batch: 2,
		Enter: func(context.Context) (func(), error) {
			entered.Add(1)
			return func() { released.Add(1) }, nil
		},
		OnChange: func(ch []db.Change) { told.Add(int32(len(ch))) },
	}
	changes, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 5 || told.Load() != 5 {
		t.Fatalf("RunOnce changed %d (told %d), want 5", len(changes), told.Load())
	}
	for _, c := range changes {
		if c.From != runstate.Sent || c.To != runstate.Pending || c.Attempts != 1 {
			t.Errorf("change %+v, want sent→pending after attempt 1", c)
		}
	}
	// Batches of 2: three sweeps with changes, each through Enter.
	if entered.Load() < 3 || entered.Load() != released.Load() {
		t.Errorf("entered %d, released %d; want ≥ 3 and equal", entered.Load(), released.Load())
	}
	if got := maintenance.Summary(changes); got != "5 requeued" {
		t.Errorf("Summary = %q", got)
	}
	// Nothing is due any more.
	if again, err := r.RunOnce(context.Background()); err != nil || len(again) != 0 {
		t.Fatalf("second RunOnce: %d changes, %v", len(again), err)
	}
}

func TestLeaseNotOverIsLeftAlone(t *testing.T) {
	s, _ := fixture(t, 3, time.Hour, time.Now().UTC())
	r := &maintenance.Rescuer{Store: s}
	if ch, err := r.RunOnce(context.Background()); err != nil || len(ch) != 0 {
		t.Fatalf("RunOnce = %d changes, %v; want none", len(ch), err)
	}
}

func TestRunSweepsOnSchedule(t *testing.T) {
	// Leases end a moment from now: the scheduled sweeps pick them up.
	s, client := fixture(t, 2, 50*time.Millisecond, time.Now().UTC())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := &maintenance.Rescuer{Store: s, Interval: 10 * time.Millisecond}
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: 10, At: time.Now().UTC(), Lease: time.Hour, ServerID: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 2 {
			for _, d := range ds {
				if d.Run.Attempts != 2 {
					t.Errorf("redispatched run %d at attempt %d, want 2", d.Run.ID, d.Run.Attempts)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the scheduled rescuer never requeued the runs")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxAttemptsAndSummary(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).UTC()
	s, client := fixture(t, 1, time.Minute, t0)
	r := &maintenance.Rescuer{Store: s}
	ctx := context.Background()
	if _, err := r.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Second attempt (max_attempts 2), lease over again: failed.
	if _, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: 1, At: t0.Add(time.Minute), Lease: time.Minute, ServerID: 1}); err != nil {
		t.Fatal(err)
	}
	changes, err := r.RunOnce(ctx)
	if err != nil || len(changes) != 1 || changes[0].To != runstate.Failed || changes[0].Reason != db.ReasonMaxAttempts {
		t.Fatalf("changes = %+v, %v", changes, err)
	}
	if got := maintenance.Summary(changes); !strings.Contains(got, "max attempts") {
		t.Errorf("Summary = %q", got)
	}
	if got := maintenance.Summary(nil); got != "nothing" {
		t.Errorf("Summary(nil) = %q", got)
	}
}

// A daemon that stopped heartbeating recently has the runs it sent handed
// back at once; this daemon's own runs, and those of a daemon dead for
// longer than a lease, are left to their leases.
func TestTakeoverOfADeadDaemon(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	s, client := fixture(t, 0, time.Hour, now)
	servers := map[string]db.ServerInfo{}
	for name, beat := range map[string]time.Duration{"self": 0, "dead": time.Minute, "ancient": 3 * time.Hour, "alive": 5 * time.Second} {
		si, err := s.RegisterServer(ctx, db.ServerInfo{Address: name, StartedAt: now.Add(-4 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.HeartbeatServer(ctx, si.ID, now.Add(-beat)); err != nil {
			t.Fatal(err)
		}
		servers[name] = si
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: name, Permission: "run", Interpreter: "/bin/sh", Script: "true",
			SubmittedBy: "admin", ClientIDs: []int64{client}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		if ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: 1, At: now, Lease: time.Hour, ServerID: si.ID}); err != nil || len(ds) != 1 {
			t.Fatalf("claim for %s: %v", name, err)
		}
	}
	r := &maintenance.Rescuer{Store: s, Lease: 2 * time.Hour, Self: func() int64 { return servers["self"].ID }}
	changes, err := r.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].ServerID != servers["dead"].ID || changes[0].To != runstate.Pending {
		t.Fatalf("takeover changed %+v; want the dead daemon's run only", changes)
	}
	// Takeover off (Lease 0): nothing.
	if ch, err := (&maintenance.Rescuer{Store: s}).RunOnce(ctx); err != nil || len(ch) != 0 {
		t.Fatalf("without takeover: %+v, %v", ch, err)
	}
}

// The rescuer as a service: Start sweeps on schedule, Stop ends the loop
// and waits for a sweep under way, Stop without Start does nothing.
func TestRescuerStartStop(t *testing.T) {
	s, _ := fixture(t, 0, time.Hour, time.Now().UTC())

	(&maintenance.Rescuer{Store: s}).Stop() // never started: returns at once

	var sweeps atomic.Int32
	inSweep := make(chan struct{}, 1)
	release := make(chan struct{})
	r := &maintenance.Rescuer{Store: s, Interval: 5 * time.Millisecond,
		Enter: func(context.Context) (func(), error) {
			if sweeps.Add(1) == 2 {
				inSweep <- struct{}{}
				<-release // a sweep that takes its time, ignoring cancellation
			}
			return func() {}, nil
		}}
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	r.Start(ctx) // running already: nothing
	<-inSweep
	stopped := make(chan struct{})
	go func() { r.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned during a sweep")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the sweep ended")
	}
	if r.Running() {
		t.Fatal("running after Stop")
	}
	n := sweeps.Load()
	time.Sleep(30 * time.Millisecond)
	if sweeps.Load() != n {
		t.Fatal("swept after Stop")
	}
	r.Stop() // twice: nothing
}
