package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// testIdleClaim: a claim that hands out nothing still does everything a
// claim does. Drivers may skip the write transaction when a read shows the
// client has no due pending run (an idle agent's poll); the runs such a
// read must not miss are those a claim changes without sending them —
// expired and denied — and a run submitted after an empty claim must be
// handed out by the next one.
func testIdleClaim(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "idle", true)
	other := mustClient(t, s, "other", true)

	// Nothing at all, and another client's runs: nothing happens to them.
	theirs := mustSubmit(t, s, "theirs", 0, other.ID)
	if ds := claim(t, s, c.ID, 10); len(ds) != 0 {
		t.Fatalf("claim with nothing pending = %v", jobIDs(ds))
	}
	if st := runOf(t, s, theirs.ID, other.ID).State; st != runstate.Pending {
		t.Fatalf("another client's run is %s after an empty claim, want pending", st)
	}

	// The client's only pending run belongs to an expired job: the claim
	// hands out nothing but expires it.
	exp := submitJobFor(t, s, db.NewJob{Name: "old", ExpiresAt: t0.Add(-time.Second)}, c.ID)
	if ds := claim(t, s, c.ID, 10); len(ds) != 0 {
		t.Fatalf("claim of an expired job's run = %v", jobIDs(ds))
	}
	if r := runOf(t, s, exp.ID, c.ID); r.State != runstate.Expired {
		t.Fatalf("expired job's run is %s after the claim, want expired", r.State)
	}

	// The only pending run is refused by the policy: denied, not sent.
	den := mustSubmit(t, s, "secret", 0, c.ID)
	asked := 0
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 10, At: t0, Lease: time.Minute, ServerID: 1,
		Decide: func(j db.Job, _ int64) (bool, string) { asked++; return false, "rule 3 denies" }})
	if err != nil || len(ds) != 0 || asked != 1 {
		t.Fatalf("claim of a refused run = %v, %v; Decide asked %d times, want once", jobIDs(ds), err, asked)
	}
	if r := runOf(t, s, den.ID, c.ID); r.State != runstate.Denied || r.Reason != "rule 3 denies" {
		t.Fatalf("refused run = %s %q, want denied", r.State, r.Reason)
	}

	// Runs not pending (sent, cancelled) and a pending run not due yet:
	// an empty claim, and none of them changes.
	sent := mustSubmit(t, s, "sent", 0, c.ID)
	if ds := claim(t, s, c.ID, 10); len(ds) != 1 || ds[0].Job.ID != sent.ID {
		t.Fatalf("claim = %v, want %d", jobIDs(ds), sent.ID)
	}
	gone := mustSubmit(t, s, "gone", 0, c.ID)
	if _, err := s.CancelJob(ctx, gone.ID, t0, "operator"); err != nil {
		t.Fatal(err)
	}
	later := submitJobFor(t, s, db.NewJob{Name: "later", NotBefore: t0.Add(time.Hour)}, c.ID)
	sentRun := runOf(t, s, sent.ID, c.ID)
	if ds := claim(t, s, c.ID, 10); len(ds) != 0 {
		t.Fatalf("claim with nothing due = %v", jobIDs(ds))
	}
	if r := mustRun(t, s, sentRun.ID); r.State != runstate.Sent || r.Attempts != sentRun.Attempts || !r.LeaseUntil.Equal(sentRun.LeaseUntil) {
		t.Fatalf("sent run changed by an empty claim: %+v, was %+v", r, sentRun)
	}
	if st := runOf(t, s, gone.ID, c.ID).State; st != runstate.Cancelled {
		t.Fatalf("cancelled run is %s", st)
	}
	if st := runOf(t, s, later.ID, c.ID).State; st != runstate.Pending {
		t.Fatalf("run not due yet is %s after an empty claim, want pending", st)
	}

	// Once due, and once submitted after an empty claim, runs are handed
	// out by the next claim.
	ds = claimAt(t, s, c.ID, t0.Add(2*time.Hour), time.Minute, 1)
	if len(ds) != 1 || ds[0].Job.ID != later.ID {
		t.Fatalf("claim after not_before = %v, want %d", jobIDs(ds), later.ID)
	}
	if ds := claim(t, s, c.ID, 10); len(ds) != 0 {
		t.Fatalf("claim = %v, want nothing", jobIDs(ds))
	}
	fresh := mustSubmit(t, s, "fresh", 0, c.ID)
	if ds := claim(t, s, c.ID, 10); len(ds) != 1 || ds[0].Job.ID != fresh.ID || ds[0].Run.State != runstate.Sent {
		t.Fatalf("claim after a new submit = %v, want %d", jobIDs(ds), fresh.ID)
	}

	// A run sent and never acknowledged goes back to pending when its
	// lease runs out (the rescuer's sweep): the claim after an empty one
	// finds it — a driver that remembers empty claims must forget them
	// then.
	lost := mustSubmit(t, s, "lost", 0, c.ID)
	if ds := claimAt(t, s, c.ID, t0.Add(2*time.Hour), time.Minute, 10); len(ds) != 1 || ds[0].Job.ID != lost.ID {
		t.Fatalf("claim = %v, want %d", jobIDs(ds), lost.ID)
	}
	if ds := claimAt(t, s, c.ID, t0.Add(2*time.Hour), time.Minute, 10); len(ds) != 0 {
		t.Fatalf("claim = %v, want nothing", jobIDs(ds))
	}
	ch, err := s.Sweep(ctx, db.SweepOptions{At: t0.Add(2*time.Hour + 2*time.Minute)})
	requeued := 0
	for _, c := range ch {
		if c.To == runstate.Pending {
			requeued++
		}
	}
	if err != nil || requeued == 0 {
		t.Fatalf("sweep after the lease = %+v, %v; want runs back to pending", ch, err)
	}
	again := claimAt(t, s, c.ID, t0.Add(2*time.Hour+3*time.Minute), time.Minute, 10)
	if len(again) != requeued || !slices.Contains(jobIDs(again), lost.ID) {
		t.Fatalf("claim after the leases ran out = %v, want the %d runs back to pending, job %d's among them", jobIDs(again), requeued, lost.ID)
	}

	// A claim that expects work (its agent woken for it) may skip the
	// read, never the rules: it finds what there is, not what is not due,
	// and with nothing there it changes nothing.
	expect := func(at time.Time) []db.Dispatch {
		t.Helper()
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 10, At: at, Lease: time.Minute, ServerID: 1, Expected: true})
		if err != nil {
			t.Fatalf("claim expecting work: %v", err)
		}
		return ds
	}
	if ds := expect(t0); len(ds) != 0 {
		t.Fatalf("claim expecting work, with nothing pending = %v", jobIDs(ds))
	}
	soon := submitJobFor(t, s, db.NewJob{Name: "soon", NotBefore: t0.Add(3 * time.Hour)}, c.ID)
	woken := mustSubmit(t, s, "woken", 0, c.ID)
	if ds := expect(t0.Add(2 * time.Hour)); len(ds) != 1 || ds[0].Job.ID != woken.ID || ds[0].Run.State != runstate.Sent {
		t.Fatalf("claim expecting work = %v, want %d alone", jobIDs(ds), woken.ID)
	}
	if st := runOf(t, s, soon.ID, c.ID).State; st != runstate.Pending {
		t.Fatalf("run not due yet is %s after a claim expecting work, want pending", st)
	}
	if st := runOf(t, s, theirs.ID, other.ID).State; st != runstate.Pending {
		t.Fatalf("another client's run is %s after a claim expecting work, want pending", st)
	}
}
