package storetest

// Events: each change of a job, a run, a client and each tick is one
// event, in the order of the changes, written with them; readers never
// miss one, whatever commits in parallel.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// eventLine renders an event for comparison: type job run client detail.
func eventLine(e db.Event, names map[int64]string) string {
	parts := []string{e.Type}
	if e.JobID != 0 {
		parts = append(parts, names[e.JobID])
	}
	if e.Client != "" {
		parts = append(parts, e.Client)
	}
	if e.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit=%d", *e.ExitCode))
	}
	if e.Detail != "" {
		parts = append(parts, e.Detail)
	}
	if e.Schedule != "" {
		parts = append(parts, "schedule="+e.Schedule)
	}
	return strings.Join(parts, " ")
}

func testEvents(t *testing.T, s db.Store) {
	ctx := context.Background()
	if id := must(s.LastEventID(ctx))(t); id != 0 {
		t.Fatalf("last event of an empty store: %d", id)
	}
	a := mustClient(t, s, "a", true)
	b := mustClient(t, s, "b", false)
	must(s.SetClientStatus(ctx, b.ID, db.ClientActive))(t)
	j := mustSubmit(t, s, "j", 0, a.ID, b.ID)
	names := map[int64]string{j.ID: "j"}
	claim(t, s, a.ID, 1)
	ra := runOf(t, s, j.ID, a.ID)
	must(s.AckRuns(ctx, a.ID, []int64{ra.ID}, t0))(t)
	must(s.ReportRuns(ctx, a.ID, []db.Report{{RunID: ra.ID, State: runstate.Running}}, t0))(t)
	three := 3
	must(s.ReportRuns(ctx, a.ID, []db.Report{{RunID: ra.ID, State: runstate.Failed, ExitCode: &three}}, t0.Add(time.Second)))(t)
	must(s.CancelJob(ctx, j.ID, t0.Add(2*time.Second), "cancelled by alice"))(t)
	must(s.SetClientStatus(ctx, a.ID, db.ClientRevoked))(t)
	sc := must(s.CreateSchedule(ctx, newSchedule("every")))(t)
	k, _ := mustFire(t, s, db.NewTick{ScheduleID: sc.ID, Tick: t0.Add(2 * time.Second), At: t0, Outcome: db.TickFired, By: "alice"}, b)
	names[k.ID] = "k"

	evs := must(s.Events(ctx, db.EventFilter{Limit: 1000}))(t)
	var got []string
	for i, e := range evs {
		got = append(got, eventLine(e, names))
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", e.ID, evs[i-1].ID)
		}
		if e.At.IsZero() {
			t.Fatalf("event without a time: %+v", e)
		}
	}
	want := []string{
		"client.registered a", "client.accepted a", "client.registered b", "client.accepted b",
		"job.submitted j", "run.sent j a", "run.received j a", "run.running j a", "run.failed j a exit=3",
		"run.cancelled j b cancelled by alice", "job.finished j", "client.revoked a",
		"job.submitted k", "schedule.tick k fired schedule=every",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if evs[5].RunID != ra.ID || evs[5].ClientID != a.ID || !evs[8].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("run event %+v / %+v", evs[5], evs[8])
	}
	last := must(s.LastEventID(ctx))(t)
	if last != evs[len(evs)-1].ID {
		t.Fatalf("last event id %d, want %d", last, evs[len(evs)-1].ID)
	}
	// Filters: after an id, by type globs, the tail, the limit.
	after := must(s.Events(ctx, db.EventFilter{After: evs[10].ID}))(t)
	if len(after) != 3 || after[0].ID != evs[11].ID {
		t.Fatalf("after %d: %+v", evs[10].ID, after)
	}
	runs := must(s.Events(ctx, db.EventFilter{Types: []string{"run.*", "job.fin?shed"}}))(t)
	if len(runs) != 6 || runs[5].Type != "job.finished" {
		t.Fatalf("run.* and job.fin?shed: %+v", runs)
	}
	if lit := must(s.Events(ctx, db.EventFilter{Types: []string{"run_sent"}}))(t); len(lit) != 0 {
		t.Fatalf("_ is not a wildcard: %+v", lit)
	}
	tail := must(s.Events(ctx, db.EventFilter{Tail: 2, Types: []string{"job.*"}}))(t)
	if len(tail) != 2 || tail[0].Type != "job.finished" || tail[1].Type != "job.submitted" || tail[1].JobID != k.ID {
		t.Fatalf("tail: %+v", tail)
	}
	if l := must(s.Events(ctx, db.EventFilter{Limit: 3}))(t); len(l) != 3 || l[0].ID != evs[0].ID {
		t.Fatalf("limit: %+v", l)
	}
	// A halt is an event; a change that changes nothing is none.
	c := fleet(t, s, "h", 2)
	h := rolloutJob(t, s, rollout.Spec{MaxParallel: 1, Budgeted: true}, c)
	names[h.ID] = "h"
	ds := claimOne(t, s, c[0])
	finish(t, s, c[0], ds[0].Run.ID, runstate.Failed)
	must(s.EnforceRollouts(ctx, db.RolloutScope{JobIDs: []int64{h.ID}}, t0))(t)
	must(s.CancelJob(ctx, h.ID, t0, "again"))(t)
	var tailTypes []string
	for _, e := range must(s.Events(ctx, db.EventFilter{After: last}))(t) {
		tailTypes = append(tailTypes, eventLine(e, names))
	}
	wantTail := "client.registered h1|client.accepted h1|client.registered h2|client.accepted h2|job.submitted h|run.sent h h1|" +
		"run.failed h h1 exit=1|job.halted h failure budget exceeded: 1 of 2 failed|run.skipped h h2 job halted: failure budget exceeded: 1 of 2 failed|job.finished h"
	if strings.Join(tailTypes, "|") != wantTail {
		t.Fatalf("halt events:\n%s\nwant\n%s", strings.Join(tailTypes, "|"), wantTail)
	}
}

// testEventsBatch: the batch paths of dispatch — a claim of several runs,
// an acknowledgement that repeats some ids, set-based reports — write
// each run's events once, and each job's end once, after its last run's.
func testEventsBatch(t *testing.T, s db.Store) {
	ctx := context.Background()
	a := mustClient(t, s, "a", true)
	b := mustClient(t, s, "b", true)
	var jobs []db.Job
	names := map[int64]string{}
	for i := range 6 {
		j := mustSubmit(t, s, fmt.Sprint("j", i), 0, a.ID, b.ID)
		jobs = append(jobs, j)
		names[j.ID] = j.Name
	}
	last := must(s.LastEventID(ctx))(t)
	ds := claim(t, s, a.ID, 6)
	ids := make([]int64, len(ds))
	for i, d := range ds {
		ids[i] = d.Run.ID
	}
	// Half acknowledged, then all of them: the second call moves the rest
	// and counts the first half again.
	must(s.AckRuns(ctx, a.ID, ids[:3], t0))(t)
	if r := must(s.AckRuns(ctx, a.ID, ids, t0.Add(time.Second)))(t); r.Acknowledged != 6 {
		t.Fatalf("second ack: %+v", r)
	}
	zero := 0
	reps := make([]db.Report, len(ids))
	for i, id := range ids {
		reps[i] = db.Report{RunID: id, State: runstate.Succeeded, ExitCode: &zero}
	}
	must(s.ReportRuns(ctx, a.ID, reps, t0.Add(2*time.Second)))(t)
	// b's runs: claimed and finished in one call each, two jobs' runs by
	// the one-run statements.
	dsb := claim(t, s, b.ID, 6)
	for _, d := range dsb[:2] {
		must(s.AckRuns(ctx, b.ID, []int64{d.Run.ID}, t0))(t)
		must(s.ReportRuns(ctx, b.ID, []db.Report{{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &zero}}, t0))(t)
	}
	var rest []db.Report
	var restIDs []int64
	for _, d := range dsb[2:] {
		restIDs = append(restIDs, d.Run.ID)
		rest = append(rest, db.Report{RunID: d.Run.ID, State: runstate.Failed, ExitCode: &zero})
	}
	must(s.AckRuns(ctx, b.ID, restIDs, t0))(t)
	must(s.ReportRuns(ctx, b.ID, rest, t0))(t)

	count := map[string]int{}
	finishedAfter := map[int64]bool{} // job → its job.finished came after both its runs ended
	ended := map[int64]int{}
	for _, e := range must(s.Events(ctx, db.EventFilter{After: last, Limit: 1000}))(t) {
		count[eventLine(e, names)]++
		switch e.Type {
		case "run.succeeded", "run.failed":
			ended[e.JobID]++
		case "job.finished":
			finishedAfter[e.JobID] = ended[e.JobID] == 2
		}
	}
	for _, j := range jobs {
		for _, c := range []string{"a", "b"} {
			for _, typ := range []string{"run.sent", "run.received"} {
				if n := count[typ+" "+j.Name+" "+c]; n != 1 {
					t.Errorf("%s %s %s: %d events, want 1", typ, j.Name, c, n)
				}
			}
		}
		if n := count["run.succeeded "+j.Name+" a exit=0"]; n != 1 {
			t.Errorf("run.succeeded %s a: %d events, want 1", j.Name, n)
		}
		if n := count["job.finished "+j.Name]; n != 1 || !finishedAfter[j.ID] {
			t.Errorf("job.finished %s: %d events, after its runs' ends: %v", j.Name, n, finishedAfter[j.ID])
		}
	}
	if t.Failed() {
		t.Logf("events: %v", count)
	}

	// Reading from anywhere: an event in the middle of a batch (SQLite
	// writes a batch's events in one row), to anywhere, the tail.
	all := must(s.Events(ctx, db.EventFilter{After: last, Limit: 1000}))(t)
	for i := range all {
		if i > 0 && all[i].ID != all[i-1].ID+1 {
			t.Fatalf("ids not dense: %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	sameAs := func(what string, got, want []db.Event) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] && !(got[i].ID == want[i].ID && eventLine(got[i], names) == eventLine(want[i], names)) {
				t.Fatalf("%s: event %d is %+v, want %+v", what, i, got[i], want[i])
			}
		}
	}
	for _, at := range []int{0, 2, 4, len(all) - 2} {
		sameAs(fmt.Sprint("after ", at), must(s.Events(ctx, db.EventFilter{After: all[at].ID, Limit: 1000}))(t), all[at+1:])
		sameAs(fmt.Sprint("limit 2 after ", at), must(s.Events(ctx, db.EventFilter{After: all[at].ID, Limit: 2}))(t), all[at+1:min(at+3, len(all))])
		sameAs(fmt.Sprint("until ", at), must(s.Events(ctx, db.EventFilter{After: last, Until: all[at].ID}))(t), all[:at+1])
	}
	sameAs("tail 3", must(s.Events(ctx, db.EventFilter{Tail: 3}))(t), all[len(all)-3:])
	sameAs("tail 9 of run.sent", must(s.Events(ctx, db.EventFilter{Tail: 9, Types: []string{"run.sent"}}))(t), filterType(all, "run.sent")[3:])
	if id := must(s.LastEventID(ctx))(t); id != all[len(all)-1].ID {
		t.Fatalf("last event id %d, want %d", id, all[len(all)-1].ID)
	}

	// A lease that expires requeues its run (run.requeued); sent again,
	// it runs and fails (a report of one run: the triggers' path).
	c := mustClient(t, s, "c", true)
	r := submitJobFor(t, s, db.NewJob{Name: "r", MaxAttempts: 2}, c.ID)
	names[r.ID] = "r"
	mark := must(s.LastEventID(ctx))(t)
	claimAt(t, s, c.ID, t0, time.Minute, 1)
	sweepAt(t, s, db.SweepOptions{At: t0.Add(61 * time.Second)})
	ds2 := claimAt(t, s, c.ID, t0.Add(62*time.Second), time.Minute, 1)
	must(s.ReportRuns(ctx, c.ID, []db.Report{{RunID: ds2[0].Run.ID, State: runstate.Running}}, t0.Add(63*time.Second)))(t)
	one := 1
	must(s.ReportRuns(ctx, c.ID, []db.Report{{RunID: ds2[0].Run.ID, State: runstate.Failed, ExitCode: &one, Reason: "exit 1"}}, t0.Add(64*time.Second)))(t)
	var lines []string
	for _, e := range must(s.Events(ctx, db.EventFilter{After: mark}))(t) {
		lines = append(lines, eventLine(e, names))
	}
	want := "run.sent r c|run.requeued r c|run.sent r c|run.running r c|run.failed r c exit=1 exit 1|job.finished r"
	if got := strings.Join(lines, "|"); got != want {
		t.Fatalf("requeue events:\n%s\nwant\n%s", got, want)
	}
}

func filterType(evs []db.Event, typ string) []db.Event {
	var out []db.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// testEventsConcurrent: jobs submitted and finished from many connections
// at once while a reader follows by id: the reader sees each event once,
// none missing, even where transactions commit out of the order of their
// inserts (PostgreSQL).
func testEventsConcurrent(t *testing.T, s db.Store) {
	ctx := context.Background()
	cs := fleet(t, s, "ev", 8)
	start := must(s.LastEventID(ctx))(t)
	const perWriter = 15
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	done := make(chan struct{})
	for _, c := range cs {
		wg.Go(func() {
			for range perWriter {
				if _, err := s.SubmitJob(ctx, db.NewJob{Name: "ev", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
					ClientIDs: []int64{c}, CreatedAt: t0}); err != nil {
					errs <- err
					return
				}
				ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c, Max: 1, At: t0, Lease: time.Minute, ServerID: 1})
				if err != nil || len(ds) != 1 {
					errs <- fmt.Errorf("claim: %v, %d runs", err, len(ds))
					return
				}
				zero := 0
				if _, err := s.ReportRuns(ctx, c, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Succeeded, ExitCode: &zero}}, t0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	counts := map[string]int{}
	after := start
	read := func() {
		evs, err := s.Events(ctx, db.EventFilter{After: after, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if seen[e.ID] {
				t.Fatalf("event %d read twice", e.ID)
			}
			seen[e.ID] = true
			counts[e.Type]++
			after = e.ID
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		read()
	}
	read()
	read()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := len(cs) * perWriter
	for _, typ := range []string{"job.submitted", "run.sent", "run.succeeded", "job.finished"} {
		if counts[typ] != n {
			t.Errorf("%s: read %d, want %d (all: %v)", typ, counts[typ], n, counts)
		}
	}
	if all := must(s.Events(ctx, db.EventFilter{After: start, Limit: 10000}))(t); len(all) != len(seen) {
		t.Fatalf("the follower read %d events, the store has %d", len(seen), len(all))
	}
}
