package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/runstate"
)

// testDueNotBefore: the daemon-mode active clients whose pending runs'
// not_before falls in the window, and the next time after it (the
// not_before push, on every driver).
func testDueNotBefore(t *testing.T, s db.Store) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	client := func(fp, mode string, active bool) int64 {
		c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fp, Name: fp, Hostname: fp, Mode: mode,
			CallbackURL: "https://" + fp + ":1/RPC2", At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if active {
			if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
				t.Fatal(err)
			}
		}
		return c.ID
	}
	d1, d2, poll, pending := client("d1", db.ModeDaemon, true), client("d2", db.ModeDaemon, true),
		client("p1", db.ModePoll, true), client("d3", db.ModeDaemon, false)
	submit := func(notBefore time.Time, ids ...int64) {
		if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Script: "true", Interpreter: "/bin/sh", SubmittedBy: "admin",
			NotBefore: notBefore, ClientIDs: ids, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	submit(time.Time{}, d1, d2, poll)              // no not_before: never due
	submit(t0.Add(time.Minute), d1, poll, pending) // due in (t0, t0+1m]
	submit(t0.Add(2*time.Minute), d2)              // next
	submit(t0.Add(-time.Minute), d2)               // before the window
	ids, next, err := s.DueNotBefore(ctx, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []int64{d1}) || !next.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("due %v, next %v; want [%d], %v", ids, next, d1, t0.Add(2*time.Minute))
	}
	ids, next, err = s.DueNotBefore(ctx, t0.Add(time.Minute), t0.Add(time.Hour))
	if err != nil || !slices.Equal(ids, []int64{d2}) || !next.IsZero() {
		t.Fatalf("due %v, next %v, %v; want [%d], none", ids, next, err, d2)
	}
	// A run no longer pending is not due.
	ds := claimAt(t, s, d2, t0.Add(time.Hour), time.Minute, 1)
	if len(ds) != 3 {
		t.Fatalf("claimed %d runs of d2, want 3", len(ds))
	}
	if ids, _, err := s.DueNotBefore(ctx, t0.Add(time.Minute), t0.Add(time.Hour)); err != nil || len(ids) != 0 {
		t.Fatalf("due after the claim = %v, %v; want none", ids, err)
	}
}

// testCounts: the /metrics aggregates count what the store holds.
func testCounts(t *testing.T, s db.Store) {
	ctx := context.Background()
	empty := must(s.RunCounts(ctx))(t)
	if len(empty) != 0 {
		t.Fatalf("RunCounts of an empty store = %v", empty)
	}
	a := mustClient(t, s, "a", true)
	b := mustClient(t, s, "b", true)
	mustClient(t, s, "p", false)
	mustSubmit(t, s, "one", 0, a.ID, b.ID)
	mustSubmit(t, s, "two", 0, a.ID)
	claim(t, s, b.ID, 1)
	runs := must(s.RunCounts(ctx))(t)
	if runs[runstate.Pending] != 2 || runs[runstate.Sent] != 1 || len(runs) != 2 {
		t.Fatalf("RunCounts = %v, want 2 pending and 1 sent", runs)
	}
	if err := s.TouchClients(ctx, map[int64]time.Time{a.ID: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	byStatus, seen, err := s.ClientCounts(ctx, t0.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if byStatus[db.ClientActive] != 2 || byStatus[db.ClientPending] != 1 || seen != 1 {
		t.Fatalf("ClientCounts = %v, seen %d; want 2 active, 1 pending, 1 seen", byStatus, seen)
	}
}

// testCapabilities: what differs between drivers is stated by the Store
// itself, never found by a type assertion: the migration version a store
// reaches, and the cluster lock of a database several daemons share (nil
// for one that is alone on its database; each driver's own tests say
// which it is), which then excludes a second modifier.
func testCapabilities(t *testing.T, s db.Store) {
	ctx := context.Background()
	if v, _, err := s.SchemaVersion(ctx); err != nil || v != s.LatestVersion() {
		t.Fatalf("SchemaVersion %d (%v), LatestVersion %d", v, err, s.LatestVersion())
	}
	cl := s.ClusterLock()
	if cl == nil {
		return
	}
	unlock, err := cl.Lock(ctx, gate.Modifier, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Lock(ctx, gate.NonModifier, true); err == nil {
		t.Fatal("a non-modifier took the cluster lock while a modifier held it")
	}
	unlock()
	unlock2, err := cl.Lock(ctx, gate.NonModifier, true)
	if err != nil {
		t.Fatalf("cluster lock after release: %v", err)
	}
	unlock2()
}
