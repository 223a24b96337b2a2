package storetest

// Run maintenance: Sweep (lease expiry, lost runs, expiry), RequeueServer,
// CancelJob and CancelledRuns.

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// submitJobFor submits nj for the clients, filling what every job needs.
func submitJobFor(t *testing.T, s db.Store, nj db.NewJob, clients ...int64) db.Job {
	t.Helper()
	if nj.Name == "" {
		nj.Name = "job"
	}
	nj.Interpreter, nj.Script, nj.SubmittedBy, nj.CreatedAt, nj.ClientIDs = "/bin/sh", "true", "admin", t0, clients
	return must(s.SubmitJob(context.Background(), nj))(t)
}

// claimAt claims all of a client's pending runs at a time, for a daemon.
func claimAt(t *testing.T, s db.Store, clientID int64, at time.Time, lease time.Duration, server int64) []db.Dispatch {
	t.Helper()
	return must(s.ClaimRuns(context.Background(), db.Claim{ClientID: clientID, Max: 100, At: at, Lease: lease, ServerID: server}))(t)
}

// runOf is the one run of a job for a client.
func runOf(t *testing.T, s db.Store, jobID, clientID int64) db.Run {
	t.Helper()
	for _, r := range must(s.Runs(context.Background(), jobID))(t) {
		if r.ClientID == clientID {
			return r
		}
	}
	t.Fatalf("job %d has no run for client %d", jobID, clientID)
	return db.Run{}
}

func mustRun(t *testing.T, s db.Store, id int64) db.Run {
	t.Helper()
	return must(s.Run(context.Background(), id))(t)
}

func sweepAt(t *testing.T, s db.Store, o db.SweepOptions) []db.Change {
	t.Helper()
	return must(s.Sweep(context.Background(), o))(t)
}

// wantChanges fails unless got holds exactly want, in order.
func wantChanges(t *testing.T, what string, got []db.Change, want ...db.Change) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: changes\n got %+v\nwant %+v", what, got, want)
	}
}

// change is the Change a maintenance call should report for run r (as it
// was before) moving to `to`.
func change(r db.Run, to runstate.State, reason string) db.Change {
	return db.Change{RunID: r.ID, JobID: r.JobID, ClientID: r.ClientID, ServerID: r.ServerID,
		From: r.State, To: to, Reason: reason, Attempts: r.Attempts}
}

func testSweepLease(t *testing.T, s db.Store) {
	c := mustClient(t, s, "c", true)
	twice := submitJobFor(t, s, db.NewJob{Name: "twice", MaxAttempts: 2}, c.ID)
	once := submitJobFor(t, s, db.NewJob{Name: "once", MaxAttempts: 1}, c.ID)
	if ds := claimAt(t, s, c.ID, t0, time.Minute, 1); len(ds) != 2 {
		t.Fatalf("claimed %d runs, want 2", len(ds))
	}
	later := submitJobFor(t, s, db.NewJob{Name: "later"}, c.ID)
	claimAt(t, s, c.ID, t0.Add(30*time.Second), time.Minute, 1) // lease until t0+90s
	rTwice, rOnce, rLater := runOf(t, s, twice.ID, c.ID), runOf(t, s, once.ID, c.ID), runOf(t, s, later.ID, c.ID)

	// A lease that ends exactly now has not expired yet.
	wantChanges(t, "sweep at the lease's end", sweepAt(t, s, db.SweepOptions{At: t0.Add(time.Minute)}))

	at := t0.Add(61 * time.Second)
	got := sweepAt(t, s, db.SweepOptions{At: at})
	wantChanges(t, "first sweep", got,
		change(rTwice, runstate.Pending, ""), change(rOnce, runstate.Failed, db.ReasonMaxAttempts))
	r := mustRun(t, s, rTwice.ID)
	if r.State != runstate.Pending || r.Attempts != 1 || r.ServerID != 0 || !r.LeaseUntil.IsZero() || !r.UpdatedAt.Equal(at) ||
		!r.FinishedAt.IsZero() {
		t.Fatalf("requeued run = %+v, want pending, attempts 1, no server or lease, updated at %v", r, at)
	}
	r = mustRun(t, s, rOnce.ID)
	if r.State != runstate.Failed || r.Reason != db.ReasonMaxAttempts || !r.FinishedAt.Equal(at) || r.Attempts != 1 {
		t.Fatalf("run out of attempts = %+v, want failed %q at %v", r, db.ReasonMaxAttempts, at)
	}
	if r := mustRun(t, s, rLater.ID); r.State != runstate.Sent || !r.UpdatedAt.Equal(rLater.UpdatedAt) {
		t.Fatalf("run whose lease is not over = %+v, want it untouched", r)
	}
	wantChanges(t, "second sweep at the same time", sweepAt(t, s, db.SweepOptions{At: at}))

	// The next claim is attempt 2; when its lease expires too, the job's
	// two attempts are used up.
	ds := claimAt(t, s, c.ID, t0.Add(2*time.Minute), time.Minute, 2)
	if len(ds) != 1 || ds[0].Run.ID != rTwice.ID || ds[0].Run.Attempts != 2 {
		t.Fatalf("claim after requeue = %+v, want run %d at attempt 2", ds, rTwice.ID)
	}
	before := mustRun(t, s, rTwice.ID)
	got = sweepAt(t, s, db.SweepOptions{At: t0.Add(4 * time.Minute)})
	wantChanges(t, "sweep after the second lease", got,
		change(rLater, runstate.Pending, ""), change(before, runstate.Failed, db.ReasonMaxAttempts))
	if got[1].ServerID != 2 || got[1].Attempts != 2 {
		t.Fatalf("change = %+v, want server 2, attempts 2", got[1])
	}

	// Limit caps each kind of change: three new runs and rLater, sent
	// again, are four expired leases.
	for i := range 3 {
		submitJobFor(t, s, db.NewJob{Name: fmt.Sprint("l", i)}, c.ID)
	}
	if ds := claimAt(t, s, c.ID, t0.Add(5*time.Minute), time.Minute, 1); len(ds) != 4 {
		t.Fatalf("claimed %d runs, want 4", len(ds))
	}
	o := db.SweepOptions{At: t0.Add(10 * time.Minute), Limit: 3}
	if got := sweepAt(t, s, o); len(got) != 3 {
		t.Fatalf("sweep with limit 3 changed %d runs, want 3", len(got))
	}
	if got := sweepAt(t, s, o); len(got) != 1 {
		t.Fatalf("second sweep with limit 3 changed %d runs, want 1", len(got))
	}
	if got := sweepAt(t, s, o); len(got) != 0 {
		t.Fatalf("third sweep changed %+v, want nothing", got)
	}
}

func testSweepLost(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	rcv := mustSubmit(t, s, "received", 0, c.ID) // timeout 1m
	run := mustSubmit(t, s, "running", 0, c.ID)
	sent := mustSubmit(t, s, "sent", 0, c.ID)
	forever := submitJobFor(t, s, db.NewJob{Name: "no timeout"}, c.ID)
	claimAt(t, s, c.ID, t0, 10*time.Hour, 1)
	rRcv, rRun, rSent, rForever := runOf(t, s, rcv.ID, c.ID), runOf(t, s, run.ID, c.ID), runOf(t, s, sent.ID, c.ID), runOf(t, s, forever.ID, c.ID)
	must(s.AckRuns(ctx, c.ID, []int64{rRcv.ID, rRun.ID}, t0))(t)
	must(s.ReportRuns(ctx, c.ID, []db.Report{
		{RunID: rRun.ID, State: runstate.Running, StartedAt: t0.Add(10 * time.Second)},
		{RunID: rForever.ID, State: runstate.Running, StartedAt: t0},
	}, t0.Add(10*time.Second)))(t)
	rRcv, rRun = mustRun(t, s, rRcv.ID), mustRun(t, s, rRun.ID)

	grace := 30 * time.Second
	// Silent since t0: lost once t0 + 1m + 30s has passed, not at that instant.
	wantChanges(t, "sweep at the end of timeout and grace", sweepAt(t, s, db.SweepOptions{At: t0.Add(90 * time.Second), Grace: grace}))
	at := t0.Add(95 * time.Second)
	wantChanges(t, "sweep past the received run's grace", sweepAt(t, s, db.SweepOptions{At: at, Grace: grace}),
		change(rRcv, runstate.Failed, db.ReasonLost))
	r := mustRun(t, s, rRcv.ID)
	if r.State != runstate.Failed || r.Reason != db.ReasonLost || !r.FinishedAt.Equal(at) {
		t.Fatalf("lost run = %+v", r)
	}
	if st := runState(t, s, rRun.ID); st != runstate.Running {
		t.Fatalf("running run within its grace = %s, want running", st)
	}
	at = t0.Add(101 * time.Second)
	wantChanges(t, "sweep past the running run's grace", sweepAt(t, s, db.SweepOptions{At: at, Grace: grace}),
		change(rRun, runstate.Failed, db.ReasonLost))
	// A sent run is the lease's business, and a job without a timeout may run for ever.
	wantChanges(t, "sweep much later", sweepAt(t, s, db.SweepOptions{At: t0.Add(9 * time.Hour), Grace: grace}))
	if st := runState(t, s, rSent.ID); st != runstate.Sent {
		t.Fatalf("sent run = %s, want sent", st)
	}
	if st := runState(t, s, rForever.ID); st != runstate.Running {
		t.Fatalf("run of a job without timeout = %s, want running", st)
	}
}

// testRenewRuns: a received run waiting in the queue of an agent that
// heartbeats is renewed and not lost; the same run of an agent that falls
// silent is lost as before, and the agent learns it from its next renewal.
func testRenewRuns(t *testing.T, s db.Store) {
	ctx := context.Background()
	c, other := mustClient(t, s, "c", true), mustClient(t, s, "other", true)
	held := mustSubmit(t, s, "held", 0, c.ID)         // timeout 1m
	silent := mustSubmit(t, s, "silent", 0, c.ID)     // not named by the agent
	run := mustSubmit(t, s, "running", 0, c.ID)       // named, but running
	theirs := mustSubmit(t, s, "theirs", 0, other.ID) // named by c, of another client
	claimAt(t, s, c.ID, t0, 10*time.Hour, 1)
	claimAt(t, s, other.ID, t0, 10*time.Hour, 1)
	rHeld, rSilent, rRun, rTheirs := runOf(t, s, held.ID, c.ID), runOf(t, s, silent.ID, c.ID), runOf(t, s, run.ID, c.ID), runOf(t, s, theirs.ID, other.ID)
	must(s.AckRuns(ctx, c.ID, []int64{rHeld.ID, rSilent.ID, rRun.ID}, t0))(t)
	must(s.AckRuns(ctx, other.ID, []int64{rTheirs.ID}, t0))(t)
	must(s.ReportRuns(ctx, c.ID, []db.Report{{RunID: rRun.ID, State: runstate.Running, StartedAt: t0.Add(10 * time.Second)}}, t0.Add(10*time.Second)))(t)
	rSilent, rRun, rTheirs = mustRun(t, s, rSilent.ID), mustRun(t, s, rRun.ID), mustRun(t, s, rTheirs.ID)
	grace := 30 * time.Second
	names := []int64{rHeld.ID, rRun.ID, rTheirs.ID, 987654}

	// The agent renews every 30 s; the run waits in its queue for 3 minutes,
	// long past the 1m + 30s after its ack.
	var lost []int64 // what the renewals list as lost
	for at := t0.Add(30 * time.Second); !at.After(t0.Add(3 * time.Minute)); at = at.Add(30 * time.Second) {
		res := must(s.RenewRuns(ctx, c.ID, names, at))(t)
		if res.Renewed != 1 || !slices.Equal(res.Lost, lost) {
			t.Fatalf("renewal at %v = %+v, want 1 renewed (the received run), lost %v", at.Sub(t0), res, lost)
		}
		if at == t0.Add(90*time.Second) {
			// The runs nobody renews are lost; the running run's timer runs
			// from its start report (t0+10s), so it is lost at t0+100s.
			wantChanges(t, "sweep at 95s", sweepAt(t, s, db.SweepOptions{At: at.Add(5 * time.Second), Grace: grace}),
				change(rSilent, runstate.Failed, db.ReasonLost), change(rTheirs, runstate.Failed, db.ReasonLost))
			wantChanges(t, "sweep at 101s", sweepAt(t, s, db.SweepOptions{At: at.Add(11 * time.Second), Grace: grace}),
				change(rRun, runstate.Failed, db.ReasonLost))
			lost = []int64{rRun.ID} // the agent named it: it learns it was lost
		}
	}
	r := mustRun(t, s, rHeld.ID)
	if r.State != runstate.Received || !r.UpdatedAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("renewed run = %+v, want received, updated at t0+3m", r)
	}
	wantChanges(t, "sweep within the grace of the last renewal", sweepAt(t, s, db.SweepOptions{At: t0.Add(4*time.Minute + 30*time.Second), Grace: grace}))

	// A renewal older than the stored time changes nothing.
	if res := must(s.RenewRuns(ctx, c.ID, []int64{rHeld.ID}, t0.Add(time.Minute)))(t); res.Renewed != 0 {
		t.Fatalf("renewal in the past = %+v, want nothing renewed", res)
	}
	// The agent falls silent: lost once timeout and grace have passed since
	// its last renewal, and its next renewal lists the run lost.
	at := t0.Add(4*time.Minute + 31*time.Second)
	wantChanges(t, "sweep past the last renewal's grace", sweepAt(t, s, db.SweepOptions{At: at, Grace: grace}),
		change(r, runstate.Failed, db.ReasonLost))
	res := must(s.RenewRuns(ctx, c.ID, append(names, rSilent.ID), at.Add(time.Second)))(t)
	if want := []int64{rHeld.ID, rSilent.ID, rRun.ID}; res.Renewed != 0 || !slices.Equal(res.Lost, want) {
		t.Fatalf("renewal after the losses = %+v, want none renewed, lost %v (not another client's run)", res, want)
	}
	if r := mustRun(t, s, rHeld.ID); r.State != runstate.Failed || !r.UpdatedAt.Equal(at) {
		t.Fatalf("lost run after a renewal = %+v, want it unchanged", r)
	}
	if res := must(s.RenewRuns(ctx, c.ID, nil, at))(t); res.Renewed != 0 || len(res.Lost) != 0 {
		t.Fatalf("renewal of nothing = %+v", res)
	}
}

func testSweepExpire(t *testing.T, s db.Store) {
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	exp := t0.Add(time.Hour)
	expiring := submitJobFor(t, s, db.NewJob{Name: "expiring", ExpiresAt: exp}, a.ID, b.ID)
	never := submitJobFor(t, s, db.NewJob{Name: "never"}, b.ID)
	later := submitJobFor(t, s, db.NewJob{Name: "later", ExpiresAt: t0.Add(2 * time.Hour)}, b.ID)
	claimAt(t, s, a.ID, t0, 10*time.Hour, 1)
	rPending := runOf(t, s, expiring.ID, b.ID)

	wantChanges(t, "sweep at expires_at", sweepAt(t, s, db.SweepOptions{At: exp}))
	at := exp.Add(time.Nanosecond)
	wantChanges(t, "sweep after expires_at", sweepAt(t, s, db.SweepOptions{At: at}),
		change(rPending, runstate.Expired, db.ReasonExpired))
	r := mustRun(t, s, rPending.ID)
	if r.State != runstate.Expired || r.Reason != db.ReasonExpired || !r.FinishedAt.Equal(at) || !r.UpdatedAt.Equal(at) {
		t.Fatalf("expired run = %+v", r)
	}
	if st := runOf(t, s, expiring.ID, a.ID).State; st != runstate.Sent {
		t.Fatalf("sent run of an expired job = %s, want sent (only pending runs expire)", st)
	}
	if st := runOf(t, s, never.ID, b.ID).State; st != runstate.Pending {
		t.Fatalf("run of a job without expiry = %s", st)
	}
	if st := runOf(t, s, later.ID, b.ID).State; st != runstate.Pending {
		t.Fatalf("run of a job expiring later = %s", st)
	}
}

// dueStore sets up one run due for each kind of sweep and returns them.
func dueStore(t *testing.T, s db.Store) (lease, lost, expired db.Run) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	l := mustSubmit(t, s, "lease", 0, c.ID)
	claimAt(t, s, c.ID, t0, time.Minute, 1)
	lo := mustSubmit(t, s, "lost", 0, c.ID)
	claimAt(t, s, c.ID, t0, time.Hour, 1)
	lost = runOf(t, s, lo.ID, c.ID)
	must(s.AckRuns(ctx, c.ID, []int64{lost.ID}, t0))(t)
	e := submitJobFor(t, s, db.NewJob{Name: "expired", ExpiresAt: t0.Add(time.Second)}, c.ID)
	return runOf(t, s, l.ID, c.ID), mustRun(t, s, lost.ID), runOf(t, s, e.ID, c.ID)
}

func testSweepDryRun(t *testing.T, s db.Store) {
	lease, lost, expired := dueStore(t, s)
	want := []db.Change{
		change(lease, runstate.Pending, ""),
		change(lost, runstate.Failed, db.ReasonLost),
		change(expired, runstate.Expired, db.ReasonExpired),
	}
	o := db.SweepOptions{At: t0.Add(10 * time.Minute), DryRun: true}
	before := takeSnapshot(t, s)
	wantChanges(t, "dry run", sweepAt(t, s, o), want...)
	sameSnapshot(t, "after a dry run", s, before)
	wantChanges(t, "second dry run", sweepAt(t, s, o), want...)
	o.DryRun = false
	wantChanges(t, "sweep", sweepAt(t, s, o), want...)
	wantChanges(t, "dry run after the sweep", sweepAt(t, s, db.SweepOptions{At: o.At, DryRun: true}))
}

func testSweepConcurrent(t *testing.T, s db.Store) {
	ctx := context.Background()
	c, d := mustClient(t, s, "c", true), mustClient(t, s, "d", true)
	const leased, expiring = 40, 20
	for i := range leased {
		mustSubmit(t, s, fmt.Sprint("l", i), 0, c.ID)
	}
	claimAt(t, s, c.ID, t0, time.Minute, 1)
	for i := range expiring {
		submitJobFor(t, s, db.NewJob{Name: fmt.Sprint("e", i), ExpiresAt: t0.Add(time.Minute)}, d.ID)
	}
	at := t0.Add(2 * time.Minute)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cs, err := s.Sweep(ctx, db.SweepOptions{At: at, Limit: 3})
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				mu.Lock()
				for _, ch := range cs {
					seen[ch.RunID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != leased+expiring {
		t.Fatalf("%d runs changed, want %d", len(seen), leased+expiring)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("run %d changed %d times", id, n)
		}
	}
}

func testRequeueServer(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	j1 := mustSubmit(t, s, "one", 0, a.ID, b.ID)
	acked := mustSubmit(t, s, "acked", 0, a.ID)
	last := submitJobFor(t, s, db.NewJob{Name: "last", MaxAttempts: 1}, a.ID)
	claimAt(t, s, a.ID, t0, time.Hour, 1)
	claimAt(t, s, b.ID, t0, time.Hour, 2)
	rA, rAcked, rLast, rB := runOf(t, s, j1.ID, a.ID), runOf(t, s, acked.ID, a.ID), runOf(t, s, last.ID, a.ID), runOf(t, s, j1.ID, b.ID)
	must(s.AckRuns(ctx, a.ID, []int64{rAcked.ID}, t0))(t)
	want := []db.Change{change(rA, runstate.Pending, ""), change(rLast, runstate.Failed, db.ReasonMaxAttempts)}
	at := t0.Add(time.Second) // long before the leases end

	before := takeSnapshot(t, s)
	wantChanges(t, "dry run", must(s.RequeueServer(ctx, 1, at, true))(t), want...)
	sameSnapshot(t, "after a dry run", s, before)
	wantChanges(t, "requeue server 1", must(s.RequeueServer(ctx, 1, at, false))(t), want...)
	if r := mustRun(t, s, rA.ID); r.State != runstate.Pending || r.ServerID != 0 || r.Attempts != 1 {
		t.Fatalf("requeued run = %+v", r)
	}
	if r := mustRun(t, s, rLast.ID); r.State != runstate.Failed || r.Reason != db.ReasonMaxAttempts {
		t.Fatalf("run out of attempts = %+v", r)
	}
	if st := runState(t, s, rAcked.ID); st != runstate.Received {
		t.Fatalf("acknowledged run of the dead server = %s, want received", st)
	}
	if r := mustRun(t, s, rB.ID); r.State != runstate.Sent || r.ServerID != 2 {
		t.Fatalf("run of another server = %+v, want sent by server 2", r)
	}
	wantChanges(t, "second requeue", must(s.RequeueServer(ctx, 1, at, false))(t))
	wantChanges(t, "unknown server", must(s.RequeueServer(ctx, 99, at, false))(t))
}

func testCancelJob(t *testing.T, s db.Store) {
	ctx := context.Background()
	names := []string{"p", "s", "r", "n", "f"}
	cl := map[string]db.Client{}
	var ids []int64
	for _, n := range names {
		cl[n] = mustClient(t, s, n, true)
		ids = append(ids, cl[n].ID)
	}
	j := mustSubmit(t, s, "j", 0, ids...)
	other := mustSubmit(t, s, "other", 0, cl["p"].ID)
	for _, n := range names[1:] {
		claimAt(t, s, cl[n].ID, t0, time.Hour, 1)
	}
	for _, n := range names[2:] {
		must(s.AckRuns(ctx, cl[n].ID, []int64{runOf(t, s, j.ID, cl[n].ID).ID}, t0))(t)
	}
	zero := 0
	must(s.ReportRuns(ctx, cl["n"].ID, []db.Report{{RunID: runOf(t, s, j.ID, cl["n"].ID).ID, State: runstate.Running}}, t0))(t)
	must(s.ReportRuns(ctx, cl["f"].ID, []db.Report{{RunID: runOf(t, s, j.ID, cl["f"].ID).ID, State: runstate.Succeeded, ExitCode: &zero}}, t0))(t)
	runs := map[string]db.Run{}
	for _, n := range names {
		runs[n] = runOf(t, s, j.ID, cl[n].ID)
	}
	const reason = "cancelled by alice"
	at := t0.Add(time.Minute)
	got := must(s.CancelJob(ctx, j.ID, at, reason))(t)
	var want []db.Change
	for _, n := range names[:4] {
		want = append(want, change(runs[n], runstate.Cancelled, reason))
	}
	wantChanges(t, "cancel", got, want...)
	for _, n := range names[:4] {
		if r := mustRun(t, s, runs[n].ID); r.State != runstate.Cancelled || r.Reason != reason || !r.FinishedAt.Equal(at) || !r.UpdatedAt.Equal(at) {
			t.Fatalf("cancelled run (was %s) = %+v", runs[n].State, r)
		}
	}
	if r := mustRun(t, s, runs["f"].ID); r.State != runstate.Succeeded || !r.UpdatedAt.Equal(runs["f"].UpdatedAt) {
		t.Fatalf("final run = %+v, want it untouched", r)
	}
	if st := runOf(t, s, other.ID, cl["p"].ID).State; st != runstate.Pending {
		t.Fatalf("run of another job = %s", st)
	}
	wantChanges(t, "second cancel", must(s.CancelJob(ctx, j.ID, at.Add(time.Minute), reason))(t))
	_, err := s.CancelJob(ctx, 987654, at, reason)
	wantErrText(t, "cancel unknown job", err, db.ErrNotFound, "987654")

	// The agent learns of the cancellation: its ack is stale, its report is
	// accepted (it may drop it) without changing the run.
	sr := runs["s"].ID
	res := must(s.AckRuns(ctx, cl["s"].ID, []int64{sr}, at.Add(time.Second)))(t)
	if res.Acknowledged != 0 || !slices.Equal(res.Stale, []int64{sr}) {
		t.Fatalf("ack of a cancelled run = %+v, want it stale", res)
	}
	nr := runs["n"].ID
	rep := must(s.ReportRuns(ctx, cl["n"].ID, []db.Report{{RunID: nr, State: runstate.Succeeded, ExitCode: &zero}}, at.Add(time.Second)))(t)
	if len(rep) != 1 || !rep[0].Accepted || rep[0].Note == "" {
		t.Fatalf("report on a cancelled run = %+v, want accepted with a note", rep)
	}
	if r := mustRun(t, s, nr); r.State != runstate.Cancelled || !r.UpdatedAt.Equal(at) || r.ExitCode != nil {
		t.Fatalf("cancelled run after a report = %+v, want it unchanged", r)
	}
}

func testCancelledRuns(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	// requeued is sent by server 7, which dies: back to pending, but the
	// agent may hold it (its ack may have been lost).
	requeued := mustSubmit(t, s, "requeued", 0, a.ID)
	claimAt(t, s, a.ID, t0, time.Hour, 7)
	j1 := mustSubmit(t, s, "j1", 0, a.ID, b.ID)
	j3 := mustSubmit(t, s, "j3", 0, a.ID)
	kept := mustSubmit(t, s, "kept", 0, a.ID)
	claimAt(t, s, a.ID, t0, time.Hour, 1)
	claimAt(t, s, b.ID, t0, time.Hour, 1)
	if cs := must(s.RequeueServer(ctx, 7, t0, false))(t); len(cs) != 1 {
		t.Fatalf("requeue = %+v, want one run", cs)
	}
	never := mustSubmit(t, s, "never sent", 0, a.ID)
	at1, at3 := t0.Add(time.Minute), t0.Add(3*time.Minute)
	for _, j := range []db.Job{j1, j3, never} {
		must(s.CancelJob(ctx, j.ID, at1, "cancelled by alice"))(t)
	}
	must(s.CancelJob(ctx, requeued.ID, at3, "cancelled by alice"))(t)

	rJ1, rJ3, rReq := runOf(t, s, j1.ID, a.ID).ID, runOf(t, s, j3.ID, a.ID).ID, runOf(t, s, requeued.ID, a.ID).ID
	for _, tc := range []struct {
		client int64
		since  time.Time
		want   []int64
	}{
		{a.ID, time.Time{}, []int64{rJ1, rJ3, rReq}},
		{a.ID, at1, []int64{rJ1, rJ3, rReq}},
		{a.ID, at1.Add(time.Nanosecond), []int64{rReq}},
		{a.ID, at3, []int64{rReq}},
		{a.ID, at3.Add(time.Second), nil},
		{b.ID, time.Time{}, []int64{runOf(t, s, j1.ID, b.ID).ID}},
		{987654, time.Time{}, nil},
	} {
		got := must(s.CancelledRuns(ctx, tc.client, tc.since))(t)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("CancelledRuns(client %d, since %v) = %v, want %v", tc.client, tc.since, got, tc.want)
		}
	}
	if st := runOf(t, s, kept.ID, a.ID).State; st != runstate.Sent {
		t.Fatalf("run of a job not cancelled = %s", st)
	}
}
