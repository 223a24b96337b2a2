package storetest

// Rollouts (docs/protocol.md, "Rollouts"): the max-parallel window, the
// failure budget and the halt, canaries, pause and resume, and the wake-up
// of daemon-mode clients — enforced by the store, so the same on every
// driver and on every daemon.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// fleet registers n active clients named prefix1..prefixN.
func fleet(t *testing.T, s db.Store, prefix string, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = mustClient(t, s, fmt.Sprintf("%s%d", prefix, i+1), true).ID
	}
	return ids
}

// rolloutJob submits a job with spec for clients, in their order.
func rolloutJob(t *testing.T, s db.Store, spec rollout.Spec, clients []int64) db.Job {
	t.Helper()
	return submitJobFor(t, s, db.NewJob{Rollout: spec, Timeout: time.Minute}, clients...)
}

// claimOne claims at most one run for a client at t0.
func claimOne(t *testing.T, s db.Store, clientID int64) []db.Dispatch {
	t.Helper()
	return must(s.ClaimRuns(context.Background(), db.Claim{ClientID: clientID, Max: 1, At: t0, Lease: time.Minute, ServerID: 1}))(t)
}

// finish reports a run of clientID as final.
func finish(t *testing.T, s db.Store, clientID, runID int64, st runstate.State) {
	t.Helper()
	code := 0
	if st == runstate.Failed {
		code = 1
	}
	res := must(s.ReportRuns(context.Background(), clientID, []db.Report{{RunID: runID, State: st, ExitCode: &code}}, t0))(t)
	if len(res) != 1 || !res[0].Accepted {
		t.Fatalf("report %s of run %d: %+v", st, runID, res)
	}
}

// countsOf counts a job's runs in each state.
func countsOf(t *testing.T, s db.Store, jobID int64) map[runstate.State]int {
	t.Helper()
	return must(s.Job(context.Background(), jobID))(t).Counts
}

func testRolloutWindow(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "w", 6)
	j := rolloutJob(t, s, rollout.Spec{MaxParallel: 2}, cs)
	if got := must(s.Job(ctx, j.ID))(t); got.Rollout.MaxParallel != 2 || got.Rollout.Budgeted || got.Rollout.Threshold() != 100 || got.Paused || got.Halted() {
		t.Fatalf("stored rollout: %+v paused %v halted %v", got.Rollout, got.Paused, got.Halted())
	}
	var out []db.Dispatch
	for _, c := range cs {
		out = append(out, claimOne(t, s, c)...)
	}
	if len(out) != 2 || out[0].Run.ClientID != cs[0] || out[1].Run.ClientID != cs[1] {
		t.Fatalf("window of 2: claims handed out %d runs: %+v", len(out), out)
	}
	// A client whose rollout run waits still gets its other work: the
	// held run does not hide it, though it comes first.
	plain := mustSubmit(t, s, "plain", -5, cs[2])
	if ds := claimOne(t, s, cs[2]); len(ds) != 1 || ds[0].Job.ID != plain.ID {
		t.Fatalf("client with a held rollout run: got %+v, want the plain job's run", ds)
	}
	// Ack and start do not free a slot; a final report does.
	if _, err := s.AckRuns(ctx, cs[0], []int64{out[0].Run.ID}, t0); err != nil {
		t.Fatal(err)
	}
	if ds := claimOne(t, s, cs[3]); len(ds) != 0 {
		t.Fatalf("received run freed a slot: %+v", ds)
	}
	finish(t, s, cs[0], out[0].Run.ID, runstate.Succeeded)
	if ds := claimOne(t, s, cs[3]); len(ds) != 1 || ds[0].Job.ID != j.ID {
		t.Fatalf("after a run finished: got %+v, want the next run", ds)
	}
	// An expired lease frees a slot: the run goes back to pending.
	requeued := 0
	for _, ch := range sweepAt(t, s, db.SweepOptions{At: t0.Add(2 * time.Minute)}) {
		if ch.JobID == j.ID && ch.To == runstate.Pending {
			requeued++
		}
	}
	if requeued != 2 {
		t.Fatalf("sweep requeued %d runs of the rollout, want 2", requeued)
	}
	c := countsOf(t, s, j.ID)
	if c[runstate.Pending] != 5 || c[runstate.Succeeded] != 1 {
		t.Fatalf("after the lease sweep: %v", c)
	}
	got := 0
	for _, c := range cs[1:] {
		got += len(claimOne(t, s, c))
	}
	if got != 2 {
		t.Fatalf("after the slots freed: %d runs handed out, want 2", got)
	}
}

// Many claimers at once (several connections of one store, as several
// daemons): the window holds at every moment.
func testRolloutWindowConcurrent(t *testing.T, s db.Store) {
	ctx := context.Background()
	const clients, window = 24, 3
	cs := fleet(t, s, "cw", clients)
	j := rolloutJob(t, s, rollout.Spec{MaxParallel: window}, cs)
	var out, peak atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for _, c := range cs {
		wg.Go(func() {
			for range 400 {
				ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c, Max: 1, At: t0, Lease: time.Hour, ServerID: c % 2})
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				// Counted after the claim committed, uncounted before
				// the report: never more than the store has out.
				n := out.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				// Long enough for the others' claims to come in meanwhile,
				// on a loaded machine too (the peak must reach 2).
				time.Sleep(20 * time.Millisecond)
				out.Add(-1)
				code := 0
				if _, err := s.ReportRuns(ctx, c, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Succeeded, ExitCode: &code}}, t0); err != nil {
					errs <- err
				}
				return
			}
			errs <- fmt.Errorf("client %d never got its run", c)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := peak.Load(); p > window || p < 2 {
		t.Fatalf("peak runs out %d, window %d", p, window)
	}
	if c := countsOf(t, s, j.ID); c[runstate.Succeeded] != clients {
		t.Fatalf("counts %v", c)
	}
}

func testRolloutBudget(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "b", 6)
	j := rolloutJob(t, s, rollout.Spec{MaxParallel: 3, Budgeted: true, MaxFailures: 1}, cs)
	var out []db.Dispatch
	for _, c := range cs[:3] {
		out = append(out, claimOne(t, s, c)...)
	}
	if len(out) != 3 {
		t.Fatalf("%d runs out", len(out))
	}
	finish(t, s, cs[0], out[0].Run.ID, runstate.Failed)
	if halts := must(s.EnforceRollouts(ctx, db.RolloutScope{JobIDs: []int64{j.ID}}, t0))(t); len(halts) != 0 {
		t.Fatalf("one failure within a budget of 1 halted: %+v", halts)
	}
	finish(t, s, cs[1], out[1].Run.ID, runstate.Failed)
	// Over budget: no claim sends another run, halted or not yet.
	if ds := claimOne(t, s, cs[3]); len(ds) != 0 {
		t.Fatalf("over budget, a claim sent %+v", ds)
	}
	halts := must(s.EnforceRollouts(ctx, db.RolloutScope{RunIDs: []int64{out[1].Run.ID}}, t0))(t)
	want := "failure budget exceeded: 2 of 6 failed"
	if len(halts) != 1 || halts[0].JobID != j.ID || halts[0].Reason != want || halts[0].Skipped != 3 {
		t.Fatalf("halts %+v, want job %d: %q, 3 skipped", halts, j.ID, want)
	}
	if again := must(s.EnforceRollouts(ctx, db.RolloutScope{}, t0))(t); len(again) != 0 {
		t.Fatalf("halted twice: %+v", again)
	}
	got := must(s.Job(ctx, j.ID))(t)
	if !got.Halted() || got.HaltReason != want {
		t.Fatalf("job halted %v %q", got.Halted(), got.HaltReason)
	}
	c := got.Counts
	if c[runstate.Skipped] != 3 || c[runstate.Failed] != 2 || c[runstate.Sent] != 1 {
		t.Fatalf("counts %v", c)
	}
	for _, r := range must(s.Runs(ctx, j.ID))(t) {
		if r.State == runstate.Skipped && (r.Reason != db.ReasonHaltedPrefix+want || r.FinishedAt.IsZero()) {
			t.Fatalf("skipped run %+v", r)
		}
	}
	// The run already out finishes and counts.
	finish(t, s, cs[2], out[2].Run.ID, runstate.Succeeded)
	if st := must(s.Job(ctx, j.ID))(t).Status(); st != "failed" {
		t.Fatalf("status %s", st)
	}
	ops := must(s.ListOperations(ctx, db.AuditFilter{Name: "rollout.halt"}))(t)
	if len(ops) != 1 || ops[0].Target != fmt.Sprintf("job %d", j.ID) || !strings.Contains(ops[0].Detail, want) {
		t.Fatalf("audit %+v", ops)
	}
	// A budget of 0 halts at the first failure; no budget never halts.
	zero := rolloutJob(t, s, rollout.Spec{Budgeted: true}, cs[:2])
	none := rolloutJob(t, s, rollout.Spec{MaxParallel: 1}, cs[:2])
	d0, d1 := claimOne(t, s, cs[0]), claimOne(t, s, cs[1])
	if len(d0) != 1 || len(d1) != 1 || d0[0].Job.ID != zero.ID || d1[0].Job.ID != zero.ID {
		t.Fatalf("claims %+v %+v", d0, d1)
	}
	finish(t, s, cs[0], d0[0].Run.ID, runstate.Failed)
	e := claimOne(t, s, cs[0])
	if len(e) != 1 || e[0].Job.ID != none.ID {
		t.Fatalf("claim %+v", e)
	}
	finish(t, s, cs[0], e[0].Run.ID, runstate.Failed)
	wantHalt(t, s, db.RolloutScope{}, zero.ID, "failure budget exceeded: 1 of 2 failed", 0)
}

// wantHalt enforces the rollouts of scope and fails unless that halts
// job jobID, alone, for reason, skipping skipped runs.
func wantHalt(t *testing.T, s db.Store, scope db.RolloutScope, jobID int64, reason string, skipped int) {
	t.Helper()
	halts := must(s.EnforceRollouts(context.Background(), scope, t0))(t)
	if len(halts) != 1 || halts[0].JobID != jobID || halts[0].Reason != reason || halts[0].Skipped != skipped {
		t.Fatalf("halts %+v, want job %d halted (%q, %d skipped)", halts, jobID, reason, skipped)
	}
}

func testRolloutCanary(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "k", 4)
	j := rolloutJob(t, s, rollout.Spec{Canary: 1}, cs)
	if got := must(s.Job(ctx, j.ID))(t); got.CanaryPhase != rollout.CanaryRunning {
		t.Fatalf("phase %q", got.CanaryPhase)
	}
	if ds := claimOne(t, s, cs[1]); len(ds) != 0 {
		t.Fatalf("a non-canary went before the canary: %+v", ds)
	}
	can := claimOne(t, s, cs[0])
	if len(can) != 1 || !can[0].Run.Canary {
		t.Fatalf("canary claim %+v", can)
	}
	if ds := claimOne(t, s, cs[1]); len(ds) != 0 {
		t.Fatalf("a non-canary went while the canary ran: %+v", ds)
	}
	finish(t, s, cs[0], can[0].Run.ID, runstate.Succeeded)
	if got := must(s.Job(ctx, j.ID))(t); got.CanaryPhase != rollout.CanaryPassed {
		t.Fatalf("phase %q", got.CanaryPhase)
	}
	for _, c := range cs[1:] {
		if ds := claimOne(t, s, c); len(ds) != 1 || ds[0].Run.Canary {
			t.Fatalf("after the canary: %+v", ds)
		}
	}

	// A failing canary halts the job; nothing else ever runs.
	bad := rolloutJob(t, s, rollout.Spec{Canary: 1}, cs)
	can = claimOne(t, s, cs[0])
	finish(t, s, cs[0], can[0].Run.ID, runstate.Failed)
	if ds := claimOne(t, s, cs[2]); len(ds) != 0 {
		t.Fatalf("after a failed canary a claim sent %+v", ds)
	}
	wantHalt(t, s, db.RolloutScope{JobIDs: []int64{bad.ID}}, bad.ID, "canary k1 failed", 3)
	if got := must(s.Job(ctx, bad.ID))(t); got.CanaryPhase != rollout.CanaryFailed || got.Counts[runstate.Skipped] != 3 {
		t.Fatalf("job %+v", got)
	}

	// A canary the ACL refuses halts the job too.
	denied := rolloutJob(t, s, rollout.Spec{Canary: 1, MaxParallel: 2}, cs)
	ds := must(s.ClaimRuns(ctx, db.Claim{ClientID: cs[0], Max: 5, At: t0, Lease: time.Minute,
		Decide: func(j db.Job, _ int64) (bool, string) { return j.ID != denied.ID, "no rule allows it" }}))(t)
	if len(ds) != 0 {
		t.Fatalf("denied canary claim sent %+v", ds)
	}
	wantHalt(t, s, db.RolloutScope{}, denied.ID, "canary k1 denied", 3)
}

func testRolloutPause(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "p", 2)
	j := mustSubmit(t, s, "plain", 0, cs...)
	if changed, err := s.PauseJob(ctx, j.ID, true); err != nil || !changed {
		t.Fatalf("pause: %v %v", changed, err)
	}
	if changed, err := s.PauseJob(ctx, j.ID, true); err != nil || changed {
		t.Fatalf("pause again: %v %v", changed, err)
	}
	if !must(s.Job(ctx, j.ID))(t).Paused {
		t.Fatal("job not paused")
	}
	// A paused job hands out nothing, and hides nothing behind it.
	other := mustSubmit(t, s, "other", -1, cs[0])
	if ds := claimOne(t, s, cs[0]); len(ds) != 1 || ds[0].Job.ID != other.ID {
		t.Fatalf("claim with a paused job: %+v", ds)
	}
	if ds := claimOne(t, s, cs[1]); len(ds) != 0 {
		t.Fatalf("paused job handed out %+v", ds)
	}
	if changed, err := s.PauseJob(ctx, j.ID, false); err != nil || !changed {
		t.Fatalf("resume: %v %v", changed, err)
	}
	if ds := claimOne(t, s, cs[1]); len(ds) != 1 || ds[0].Job.ID != j.ID {
		t.Fatalf("after resume: %+v", ds)
	}
	// A paused rollout: the window's slots stay free until resumed.
	r := rolloutJob(t, s, rollout.Spec{MaxParallel: 1}, cs)
	must(s.PauseJob(ctx, r.ID, true))(t)
	if ds := claimOne(t, s, cs[1]); len(ds) != 0 {
		t.Fatalf("paused rollout handed out %+v", ds)
	}
	// Cancelling a paused job works.
	if ch := must(s.CancelJob(ctx, r.ID, t0, "cancelled by admin"))(t); len(ch) != 2 {
		t.Fatalf("cancel: %+v", ch)
	}
	// Nothing left to hand out: pausing is a conflict; unknown jobs are not found.
	if _, err := s.PauseJob(ctx, r.ID, true); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("pause of a finished job: %v", err)
	}
	if _, err := s.PauseJob(ctx, 999999, true); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("pause of an unknown job: %v", err)
	}
}

// A run of a halted job that comes back to pending (its lease expired)
// is skipped, not sent again.
func testRolloutHaltedRequeue(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "h", 4)
	j := rolloutJob(t, s, rollout.Spec{Budgeted: true, MaxFailures: 0}, cs)
	a, b := claimOne(t, s, cs[0]), claimOne(t, s, cs[1])
	finish(t, s, cs[0], a[0].Run.ID, runstate.Failed)
	if h := must(s.EnforceRollouts(ctx, db.RolloutScope{}, t0))(t); len(h) != 1 || h[0].Skipped != 2 {
		t.Fatalf("halts %+v", h)
	}
	sweepAt(t, s, db.SweepOptions{At: t0.Add(2 * time.Minute)}) // b's lease expires
	if r := mustRun(t, s, b[0].Run.ID); r.State != runstate.Pending {
		t.Fatalf("requeued run is %s", r.State)
	}
	if ds := claimOne(t, s, cs[1]); len(ds) != 0 {
		t.Fatalf("halted job's requeued run was sent again: %+v", ds)
	}
	if r := mustRun(t, s, b[0].Run.ID); r.State != runstate.Skipped || !strings.HasPrefix(r.Reason, db.ReasonHaltedPrefix) {
		t.Fatalf("requeued run of a halted job: %s %q", r.State, r.Reason)
	}
	if c := countsOf(t, s, j.ID); c[runstate.Skipped] != 3 || c[runstate.Failed] != 1 {
		t.Fatalf("counts %v", c)
	}
}

func testRolloutWake(t *testing.T, s db.Store) {
	ctx := context.Background()
	var cs []int64
	for i := range 5 {
		c := must(s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprint("fp-d", i), Name: fmt.Sprint("d", i),
			Mode: db.ModeDaemon, CallbackURL: "https://127.0.0.1:1/", At: t0}))(t)
		must(s.SetClientStatus(ctx, c.ID, db.ClientActive))(t)
		cs = append(cs, c.ID)
	}
	poll := mustClient(t, s, "poller", true)
	j := rolloutJob(t, s, rollout.Spec{MaxParallel: 2, Canary: 1}, append([]int64{cs[0]}, append(cs[1:], poll.ID)...))
	if got := must(s.RolloutWake(ctx, nil))(t); fmt.Sprint(got) != fmt.Sprint(cs[:1]) {
		t.Fatalf("canary phase: wake %v, want the canary %v", got, cs[:1])
	}
	can := claimOne(t, s, cs[0])
	if got := must(s.RolloutWake(ctx, nil))(t); len(got) != 0 {
		t.Fatalf("canary out: wake %v", got)
	}
	finish(t, s, cs[0], can[0].Run.ID, runstate.Succeeded)
	if got := must(s.RolloutWake(ctx, []int64{j.ID}))(t); fmt.Sprint(got) != fmt.Sprint(cs[1:3]) {
		t.Fatalf("two free slots: wake %v, want %v", got, cs[1:3])
	}
	claimOne(t, s, cs[1])
	claimOne(t, s, cs[2])
	if got := must(s.RolloutWake(ctx, nil))(t); len(got) != 0 {
		t.Fatalf("window full: wake %v", got)
	}
	must(s.PauseJob(ctx, j.ID, true))(t)
	plain := mustSubmit(t, s, "plain", 0, cs[3], cs[4], poll.ID)
	must(s.PauseJob(ctx, plain.ID, true))(t)
	if got := must(s.RolloutWake(ctx, []int64{j.ID, plain.ID}))(t); len(got) != 0 {
		t.Fatalf("paused: wake %v", got)
	}
	must(s.PauseJob(ctx, plain.ID, false))(t)
	if got := must(s.RolloutWake(ctx, []int64{plain.ID}))(t); fmt.Sprint(got) != fmt.Sprint(cs[3:5]) {
		t.Fatalf("resumed plain job: wake %v, want its daemon-mode clients %v", got, cs[3:5])
	}
}

// runFirstFails claims each client's one pending run and reports it
// succeeded, but the first client's failed.
func runFirstFails(t *testing.T, s db.Store, cs []int64) {
	t.Helper()
	for i, c := range cs {
		d := claimOne(t, s, c)
		st := runstate.Succeeded
		if i == 0 {
			st = runstate.Failed
		}
		finish(t, s, c, d[0].Run.ID, st)
	}
}

func testRolloutThreshold(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "t", 4)
	j := submitJobFor(t, s, db.NewJob{Rollout: rollout.Spec{SuccessThreshold: 75}}, cs...)
	if j.Rollout.Gated() {
		t.Fatal("a threshold alone gates dispatch")
	}
	runFirstFails(t, s, cs)
	got := must(s.Job(ctx, j.ID))(t)
	if got.Rollout.SuccessThreshold != 75 || got.Status() != "succeeded" {
		t.Fatalf("3 of 4 with a 75%% threshold: %s (threshold %d)", got.Status(), got.Rollout.SuccessThreshold)
	}
	strict := mustSubmit(t, s, "strict", 0, cs...)
	runFirstFails(t, s, cs)
	if st := must(s.Job(ctx, strict.ID))(t).Status(); st != "failed" {
		t.Fatalf("3 of 4 without a threshold: %s", st)
	}
	rerun := submitJobFor(t, s, db.NewJob{RerunOf: strict.ID}, cs[0])
	if got := must(s.Job(ctx, rerun.ID))(t); got.RerunOf != strict.ID || rerun.RerunOf != strict.ID {
		t.Fatalf("rerun_of %d / %d, want %d", got.RerunOf, rerun.RerunOf, strict.ID)
	}
}
