package storetest

// Retention: old final jobs deleted in batches, jobs deleted by id, old
// audit records, the space given back, the lock of one cleaner at a time.

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

const day = 24 * time.Hour

// jobAt submits a job created at created for clients.
func jobAt(t *testing.T, s db.Store, name string, created time.Time, clients ...int64) db.Job {
	t.Helper()
	return must(s.SubmitJob(context.Background(), db.NewJob{Name: name, Interpreter: "/bin/sh", Script: "true",
		SubmittedBy: "admin", ClientIDs: clients, CreatedAt: created}))(t)
}

// endAt has clientID claim its pending runs at `at` and report each of
// them in state st (running, or a final state) at `at`.
func endAt(t *testing.T, s db.Store, clientID int64, at time.Time, st runstate.State) []db.Dispatch {
	t.Helper()
	ds := claimAt(t, s, clientID, at, time.Hour, 1)
	for _, d := range ds {
		code := 0
		res := must(s.ReportRuns(context.Background(), clientID, []db.Report{{RunID: d.Run.ID, State: st, ExitCode: &code,
			StartedAt: at, Finished: at}}, at))(t)
		if !res[0].Accepted {
			t.Fatalf("report %s of run %d: %+v", st, d.Run.ID, res)
		}
	}
	return ds
}

// pruneAll runs PruneJobs batch after batch until one examines fewer than
// limit jobs, and returns the sums and each batch's result.
func pruneAll(t *testing.T, s db.Store, before time.Time, limit int, dryRun bool) (db.PruneResult, []db.PruneResult) {
	t.Helper()
	var sum db.PruneResult
	var batches []db.PruneResult
	for {
		r := must(s.PruneJobs(context.Background(), db.PruneOptions{Before: before, Limit: limit, After: sum.Next, DryRun: dryRun}))(t)
		sum.Add(r)
		batches = append(batches, r)
		if r.Examined < limit {
			return sum, batches
		}
		if len(batches) > 100 {
			t.Fatal("PruneJobs never ends")
		}
	}
}

func storedJobs(t *testing.T, s db.Store) []int64 {
	t.Helper()
	var ids []int64
	for _, j := range must(s.ListJobs(context.Background(), db.JobFilter{Limit: 1000}))(t) {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	return ids
}

// What PruneJobs deletes and what it keeps: jobs whose runs are all final
// and ended before the cutoff go, with their runs, their streamed output
// and a tick's link; jobs with a run not final (of any age), jobs created
// before the cutoff whose last run ended after it, and recent jobs stay.
// A dry run counts the same and changes nothing; batches resume from
// their cursor, jobs created at the same instant included.
func testPruneJobs(t *testing.T, s db.Store) {
	ctx := context.Background()
	cutoff := t0.Add(-90 * day)
	old, older, recent := t0.Add(-200*day), t0.Add(-300*day), t0.Add(-day)
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	idle := mustClient(t, s, "idle", true) // never claims

	var gone, kept []int64
	done := jobAt(t, s, "done", old, a.ID)
	doneRuns := endAt(t, s, a.ID, old, runstate.Succeeded)
	mixed := jobAt(t, s, "mixed", old, a.ID, b.ID)
	endAt(t, s, a.ID, old, runstate.Succeeded)
	endAt(t, s, b.ID, old.Add(time.Hour), runstate.Failed)
	cancelled := jobAt(t, s, "never sent", older, idle.ID)
	must(s.CancelJob(ctx, cancelled.ID, older, "cancelled by admin"))(t)
	// A run cancelled while it streamed keeps its chunks, until it goes.
	stream := jobAt(t, s, "stream", old, b.ID)
	streamRun := endAt(t, s, b.ID, old, runstate.Running)[0].Run
	must(s.AppendOutput(ctx, b.ID, []db.OutputChunk{{RunID: streamRun.ID, Offset: 0, Data: "partial\n"}}, 1<<20))(t)
	must(s.CancelJob(ctx, stream.ID, old, "cancelled by admin"))(t)
	// A schedule's tick that made an old job keeps its place, without it.
	sc := must(s.CreateSchedule(ctx, newSchedule("nightly")))(t)
	tj := tickJob(a, "tick")
	tj.CreatedAt = old
	ticked, fired := must2(s.FireTick(ctx, db.NewTick{ScheduleID: sc.ID, Tick: old, At: old, Outcome: db.TickFired, By: "alice"},
		tj, tickAudit("nightly")))(t)
	if !fired {
		t.Fatal("tick not fired")
	}
	endAt(t, s, a.ID, old, runstate.Succeeded)
	// A job whose only client was deleted has no run left: its creation
	// is its age.
	lone := mustClient(t, s, "lone", true)
	orphan := jobAt(t, s, "orphan", old, lone.ID)
	must(s.SetClientStatus(ctx, lone.ID, db.ClientRevoked))(t)
	must(s.DeleteClient(ctx, lone.ID))(t)
	gone = append(gone, done.ID, mixed.ID, cancelled.ID, stream.ID, ticked.ID, orphan.ID)

	pending := jobAt(t, s, "pending", older, idle.ID)
	running := jobAt(t, s, "running", old, b.ID)
	endAt(t, s, b.ID, old, runstate.Running)
	lateEnd := jobAt(t, s, "late end", old, a.ID)
	endAt(t, s, a.ID, recent, runstate.Succeeded)
	young := jobAt(t, s, "young", recent, a.ID)
	endAt(t, s, a.ID, recent, runstate.Succeeded)
	kept = append(kept, pending.ID, running.ID, lateEnd.ID, young.ID)
	slices.Sort(gone)
	slices.Sort(kept)

	// The dry run counts what would go and changes nothing.
	before := takeSnapshot(t, s)
	dry, _ := pruneAll(t, s, cutoff, 4, true)
	if dry.Jobs != 6 || dry.Runs != 6 || dry.Examined != 9 {
		t.Fatalf("dry run: %+v, want 6 jobs, 6 runs, 9 examined", dry)
	}
	sameSnapshot(t, "dry run", s, before)

	// Batches of 2: nine candidates (created before the cutoff), five
	// batches, the last one short.
	sum, batches := pruneAll(t, s, cutoff, 2, false)
	if sum.Jobs != 6 || sum.Runs != 6 || sum.Examined != 9 || len(batches) != 5 {
		t.Fatalf("prune: %+v in %d batches, want 6 jobs, 6 runs, 9 examined in 5", sum, len(batches))
	}
	for _, r := range batches {
		if r.Jobs > 2 || r.Examined > 2 {
			t.Fatalf("a batch of 2 did %+v", r)
		}
	}
	if got := storedJobs(t, s); !slices.Equal(got, kept) {
		t.Fatalf("jobs left %v, want %v (deleted should be %v)", got, kept, gone)
	}
	for _, id := range gone {
		if _, err := s.Job(ctx, id); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("job %d: %v, want ErrNotFound", id, err)
		}
		if _, err := s.RunOutputs(ctx, id, nil, 1<<20); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("output of job %d: %v, want ErrNotFound", id, err)
		}
	}
	for _, r := range append(doneRuns, db.Dispatch{Run: streamRun}) {
		if _, err := s.Run(ctx, r.Run.ID); !errors.Is(err, db.ErrNotFound) {
			t.Errorf("run %d: %v, want ErrNotFound", r.Run.ID, err)
		}
	}
	ticks := must(s.ScheduleTicks(ctx, sc.ID, db.TickFilter{}))(t)
	if len(ticks) != 1 || ticks[0].JobID != 0 || !ticks[0].Tick.Equal(old) {
		t.Fatalf("ticks after the prune: %+v, want the tick without its job", ticks)
	}
	// The kept jobs are whole.
	if runs := must(s.Runs(ctx, running.ID))(t); len(runs) != 1 || runs[0].State != runstate.Running {
		t.Fatalf("running job's runs: %+v", runs)
	}
	// Nothing more to do; a later cutoff takes the late one too.
	if again, _ := pruneAll(t, s, cutoff, 2, false); again.Jobs != 0 || again.Runs != 0 {
		t.Fatalf("second prune: %+v", again)
	}
	if later, _ := pruneAll(t, s, t0, 500, false); later.Jobs != 2 || later.Runs != 2 {
		t.Fatalf("prune before %s: %+v, want the late and the young job", t0, later)
	}
	if got := storedJobs(t, s); !slices.Equal(got, []int64{pending.ID, running.ID}) {
		t.Fatalf("jobs left %v, want only the unfinished ones", got)
	}

	if _, err := s.PruneJobs(ctx, db.PruneOptions{}); !errors.Is(err, db.ErrInvalid) {
		t.Fatalf("no cutoff: %v, want ErrInvalid", err)
	}
}

// DeleteJobs deletes the jobs named, whatever their age, all or none:
// an unknown id or a job with a run not final refuses the lot.
func testDeleteJobs(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, idle := mustClient(t, s, "a", true), mustClient(t, s, "idle", true)
	one := jobAt(t, s, "one", t0, a.ID)
	endAt(t, s, a.ID, t0, runstate.Succeeded)
	two := jobAt(t, s, "two", t0, a.ID, idle.ID)
	endAt(t, s, a.ID, t0, runstate.Failed)
	must(s.CancelJob(ctx, two.ID, t0, "cancelled by admin"))(t)
	pend := jobAt(t, s, "pending", t0, idle.ID)
	all := []int64{one.ID, two.ID, pend.ID}

	_, err := s.DeleteJobs(ctx, []int64{one.ID, 999999})
	wantErrText(t, "unknown job", err, db.ErrNotFound, "999999")
	_, err = s.DeleteJobs(ctx, []int64{one.ID, pend.ID})
	wantErrText(t, "job with a pending run", err, db.ErrConflict, "job "+strconv.FormatInt(pend.ID, 10), "1 run not final")
	if got := storedJobs(t, s); !slices.Equal(got, all) {
		t.Fatalf("after refusals: jobs %v, want %v", got, all)
	}

	res := must(s.DeleteJobs(ctx, []int64{two.ID, one.ID, two.ID}))(t)
	if res.Jobs != 2 || res.Runs != 3 {
		t.Fatalf("delete: %+v, want 2 jobs and 3 runs", res)
	}
	if got := storedJobs(t, s); !slices.Equal(got, []int64{pend.ID}) {
		t.Fatalf("jobs left %v", got)
	}
	if res := must(s.DeleteJobs(ctx, nil))(t); res.Jobs != 0 {
		t.Fatalf("delete nothing: %+v", res)
	}
	must(s.CancelJob(ctx, pend.ID, t0, "cancelled by admin"))(t)
	if res := must(s.DeleteJobs(ctx, []int64{pend.ID}))(t); res.Jobs != 1 || res.Runs != 1 {
		t.Fatalf("delete once cancelled: %+v", res)
	}
	_, err = s.DeleteJobs(ctx, []int64{pend.ID})
	wantErr(t, "deleted twice", err, db.ErrNotFound)
}

// PruneOperations deletes the oldest audit records before a time, at most
// limit at a time.
func testPruneOperations(t *testing.T, s db.Store) {
	ctx := context.Background()
	for i, at := range []time.Time{t0.Add(-401 * day), t0.Add(-500 * day), t0.Add(-500 * day), t0.Add(-450 * day),
		t0.Add(-399 * day), t0} {
		ok(t, s.RecordOperation(ctx, db.AuditEntry{At: at, Actor: "admin", Name: "job.cancel", Target: strconv.Itoa(i), Outcome: "ok"}))
	}
	cutoff := t0.Add(-400 * day)
	for i, want := range []int{2, 2, 0} {
		if n := must(s.PruneOperations(ctx, cutoff, 2))(t); n != want {
			t.Fatalf("prune %d: %d deleted, want %d", i+1, n, want)
		}
	}
	left := must(s.ListOperations(ctx, db.AuditFilter{}))(t)
	if len(left) != 2 || left[0].Target != "5" || left[1].Target != "4" {
		t.Fatalf("audit records left: %+v, want the two recent ones", left)
	}
	_, err := s.PruneOperations(ctx, cutoff, 0)
	wantErr(t, "limit 0", err, db.ErrInvalid)
}

// TryLock: one holder of a name at a time; other names are free; a
// release lets the next one in, and a second release does nothing.
// ReclaimSpace answers (SQLite frees pages; PostgreSQL has nothing to do).
func testTryLock(t *testing.T, s db.Store) {
	ctx := context.Background()
	release := must(s.TryLock(ctx, "cleaner"))(t)
	_, err := s.TryLock(ctx, "cleaner")
	wantErr(t, "second holder", err, db.ErrConflict)
	other := must(s.TryLock(ctx, "other"))(t)
	release()
	release()
	again := must(s.TryLock(ctx, "cleaner"))(t)
	again()
	other()

	if _, left, err := s.ReclaimSpace(ctx, 100); err != nil || left < 0 {
		t.Fatalf("ReclaimSpace: %d left, %v", left, err)
	}
}

// PruneEvents deletes the oldest events before a time, at most limit at a
// time, and the others stay readable; PruneIdempotencyKeys deletes the
// keys past their window, and a key deleted names no job any more.
func testPruneEventsAndKeys(t *testing.T, s db.Store) {
	ctx := context.Background()
	old := mustClient(t, s, "ev-old", true) // client.registered, client.accepted: now
	mustSubmit(t, s, "recent", 0, old.ID)   // job.submitted at t0
	oldJob := must(s.SubmitJob(ctx, db.NewJob{Name: "old", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{old.ID}, CreatedAt: t0.Add(-100 * day)}))(t) // job.submitted at t0-100d
	all := must(s.Events(ctx, db.EventFilter{Limit: 100}))(t)
	if len(all) != 4 {
		t.Fatalf("%d events, want 4", len(all))
	}
	if n := must(s.PruneEvents(ctx, t0.Add(-90*day), 10))(t); n != 1 {
		t.Fatalf("pruned %d events, want the one of 100 days ago", n)
	}
	left := must(s.Events(ctx, db.EventFilter{Limit: 100}))(t)
	if len(left) != 3 || slices.ContainsFunc(left, func(e db.Event) bool { return e.JobID == oldJob.ID }) {
		t.Fatalf("events left: %+v", left)
	}
	_, err := s.PruneEvents(ctx, t0, 0)
	wantErr(t, "limit 0", err, db.ErrInvalid)

	keyed := db.NewJob{Name: "k", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "alice", ClientIDs: []int64{old.ID}, IdempotencyKey: "nightly"}
	keyed.CreatedAt = t0.Add(-2 * db.IdempotencyWindow)
	first := must(s.SubmitJob(ctx, keyed))(t)
	keyed.IdempotencyKey, keyed.CreatedAt = "fresh", t0
	fresh := must(s.SubmitJob(ctx, keyed))(t)
	if n := must(s.PruneIdempotencyKeys(ctx, t0.Add(-db.IdempotencyWindow), 10))(t); n != 1 {
		t.Fatalf("pruned %d keys, want 1", n)
	}
	keyed.IdempotencyKey, keyed.CreatedAt = "fresh", t0.Add(time.Hour)
	if j := must(s.SubmitJob(ctx, keyed))(t); !j.Duplicate || j.ID != fresh.ID {
		t.Fatalf("the live key lost its job: %+v", j)
	}
	keyed.IdempotencyKey = "nightly"
	if j := must(s.SubmitJob(ctx, keyed))(t); j.Duplicate || j.ID == first.ID {
		t.Fatalf("a pruned key still names job %d: %+v", first.ID, j)
	}
}
