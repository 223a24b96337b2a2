package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

// openTestStore opens a store on a new file of default durability, closed
// when the test ends.
func openTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenFile(context.Background(), filepath.Join(t.TempDir(), "scire.db"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// idleStore opens a store with two active clients.
func idleStore(t *testing.T) (*Store, db.Client, db.Client) {
	t.Helper()
	ctx := context.Background()
	s := openTestStore(t)
	var cs []db.Client
	for _, name := range []string{"a", "b"} {
		c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if c, err = s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return s, cs[0], cs[1]
}

func idleClaim(t *testing.T, s *Store, c db.Client, at time.Time) []db.Dispatch {
	t.Helper()
	ds, err := s.ClaimRuns(context.Background(), db.Claim{ClientID: c.ID, Max: 10, At: at, Lease: time.Minute, ServerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func idleSubmit(t *testing.T, s *Store, c db.Client, at, notBefore time.Time) {
	t.Helper()
	if _, err := s.SubmitJob(context.Background(), db.NewJob{Name: "j", Script: "true", Interpreter: "/bin/sh", SubmittedBy: "admin",
		ClientIDs: []int64{c.ID}, CreatedAt: at, NotBefore: notBefore}); err != nil {
		t.Fatal(err)
	}
}

// A client found with nothing due is marked, and its next claims do not
// read; a submit for it ends the mark, and the claim after it gets the
// run.
func TestIdleMarkEndsAtSubmit(t *testing.T) {
	s, a, _ := idleStore(t)
	at := time.Now()
	if ds := idleClaim(t, s, a, at); len(ds) != 0 {
		t.Fatalf("claim with nothing submitted: %d runs", len(ds))
	}
	if !s.idle.idle(a.ID, at.UnixNano()) {
		t.Fatal("the client is not marked idle after a claim found nothing")
	}
	idleSubmit(t, s, a, at, time.Time{})
	if s.idle.idle(a.ID, at.UnixNano()) {
		t.Fatal("the client is still marked idle after a submit")
	}
	if ds := idleClaim(t, s, a, at); len(ds) != 1 {
		t.Fatalf("claim after the submit: %d runs, want 1", len(ds))
	}
}

// A client whose only run waits for its not_before is marked until then:
// at that time its run is claimed, with no write in between.
func TestIdleMarkEndsAtNotBefore(t *testing.T) {
	s, a, _ := idleStore(t)
	at := time.Now()
	due := at.Add(time.Hour)
	idleSubmit(t, s, a, at, due)
	if ds := idleClaim(t, s, a, at); len(ds) != 0 {
		t.Fatalf("claim before not_before: %d runs", len(ds))
	}
	if !s.idle.idle(a.ID, due.Add(-time.Second).UnixNano()) {
		t.Fatal("the client is not marked idle until its run's not_before")
	}
	if s.idle.idle(a.ID, due.UnixNano()) {
		t.Fatal("the client is still marked idle at its run's not_before")
	}
	if ds := idleClaim(t, s, a, due.Add(time.Second)); len(ds) != 1 {
		t.Fatalf("claim after not_before: %d runs, want 1", len(ds))
	}
}

// The writes of the dispatch cycle (claims, acknowledgements, reports,
// renewals, last-seen times) keep the marks; any other write ends them,
// a run given back to pending by the rescuer's sweep included.
func TestIdleMarkKeptByTheDispatchCycle(t *testing.T) {
	ctx := context.Background()
	s, a, b := idleStore(t)
	at := time.Now()
	idleClaim(t, s, a, at)
	idleSubmit(t, s, b, at, time.Time{})
	idleSubmit(t, s, b, at, time.Time{})
	idleClaim(t, s, a, at) // marked anew after the submits
	ds := idleClaim(t, s, b, at)
	if len(ds) != 2 {
		t.Fatalf("b's claim: %d runs, want 2", len(ds))
	}
	acked := []int64{ds[0].Run.ID} // the other is never acknowledged
	if _, err := s.AckRuns(ctx, b.ID, acked, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RenewRuns(ctx, b.ID, acked, at); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportRuns(ctx, b.ID, []db.Report{{RunID: acked[0], State: "succeeded", StartedAt: at, Finished: at}}, at); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchClients(ctx, map[int64]time.Time{a.ID: at, b.ID: at}); err != nil {
		t.Fatal(err)
	}
	if !s.idle.idle(a.ID, at.UnixNano()) {
		t.Fatal("a's mark ended with b's claim, acknowledgement, renewal, report or last-seen time")
	}
	// A write that changes nothing (a sweep with nothing due) keeps it.
	if ch, err := s.Sweep(ctx, db.SweepOptions{At: at}); err != nil || len(ch) != 0 {
		t.Fatalf("sweep with nothing due: %+v, %v", ch, err)
	}
	if !s.idle.idle(a.ID, at.UnixNano()) {
		t.Fatal("a's mark ended with a sweep that changed nothing")
	}
	// The lease of b's other run runs out: the sweep puts it back to pending.
	late := at.Add(time.Hour)
	ch, err := s.Sweep(ctx, db.SweepOptions{At: late})
	if err != nil || len(ch) != 1 || ch[0].To != "pending" {
		t.Fatalf("sweep: %+v, %v; want one run back to pending", ch, err)
	}
	if s.idle.idle(a.ID, late.UnixNano()) {
		t.Fatal("a's mark outlived a sweep")
	}
	if ds := idleClaim(t, s, b, late); len(ds) != 1 {
		t.Fatalf("b's claim after the lease ran out: %d runs, want 1 (requeued)", len(ds))
	}
	idleClaim(t, s, a, late)
	if !s.idle.idle(a.ID, late.UnixNano()) {
		t.Fatal("a is not marked after a claim that found nothing")
	}
}
