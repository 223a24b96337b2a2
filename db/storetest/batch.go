package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// testBatchReports drives the batch paths drivers take for speed (one
// statement for many runs) through the cases where they must fall back:
// outputs that round-trip exactly, mixed running and final reports, a
// document naming one run twice (applied in order), a bad state among
// good ones, and acks mixing new, repeated and stale runs.
func testBatchReports(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	for i := 0; i < 6; i++ {
		mustSubmit(t, s, "j", 0, c.ID)
	}
	ds := claim(t, s, c.ID, 6)
	if len(ds) != 6 {
		t.Fatalf("claimed %d runs, want 6", len(ds))
	}
	id := func(i int) int64 { return ds[i].Run.ID }
	// Ack: four new ones, then two new plus two repeats plus a pending run (stale).
	if res, err := s.AckRuns(ctx, c.ID, []int64{id(0), id(1), id(2), id(3)}, t0); err != nil || res.Acknowledged != 4 {
		t.Fatalf("ack = %+v, %v", res, err)
	}
	p := mustSubmit(t, s, "pend", 0, c.ID)
	pr, _ := s.Runs(ctx, p.ID)
	res, err := s.AckRuns(ctx, c.ID, []int64{id(4), id(0), id(5), id(1), pr[0].ID}, t0)
	if err != nil || res.Acknowledged != 4 || len(res.Stale) != 1 || res.Stale[0] != pr[0].ID {
		t.Fatalf("mixed ack = %+v, %v", res, err)
	}
	for i := 0; i < 6; i++ {
		if st := runState(t, s, id(i)); st != runstate.Received {
			t.Fatalf("run %d after ack: %s", i, st)
		}
	}
	tricky := "quote \" backslash \\ tab\tnewline\n cr\r amp & lt < gt > apos ' \u2028 \u00e9 \U0001F600 \\u0041 end"
	zero, minus := 0, -1
	t1 := t0.Add(time.Second)
	reps := []db.Report{
		{RunID: id(0), State: runstate.Succeeded, ExitCode: &zero, StartedAt: t0, Finished: t1, Output: tricky},
		{RunID: id(1), State: runstate.Running, StartedAt: t0},
		{RunID: id(2), State: runstate.Failed, ExitCode: &minus, Reason: "killed", Output: "", Truncated: true},
		{RunID: id(3), State: runstate.State("bogus")},
	}
	out, err := s.ReportRuns(ctx, c.ID, reps, t1)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 || !out[0].Accepted || !out[1].Accepted || !out[2].Accepted || out[3].Accepted || out[3].Note == "" {
		t.Fatalf("mixed report results = %+v", out)
	}
	for i, r := range out {
		if r.RunID != reps[i].RunID {
			t.Fatalf("result %d is for run %d, want %d (results must keep the reports' order)", i, r.RunID, reps[i].RunID)
		}
	}
	r0, _ := s.Run(ctx, id(0))
	if r0.State != runstate.Succeeded || r0.Output != tricky || r0.ExitCode == nil || *r0.ExitCode != 0 ||
		!r0.StartedAt.Equal(t0) || !r0.FinishedAt.Equal(t1) {
		t.Fatalf("succeeded run = %+v\noutput %q\nwant   %q", r0, r0.Output, tricky)
	}
	r1, _ := s.Run(ctx, id(1))
	if r1.State != runstate.Running || !r1.StartedAt.Equal(t0) {
		t.Fatalf("running run = %+v", r1)
	}
	r2, _ := s.Run(ctx, id(2))
	if r2.State != runstate.Failed || r2.ExitCode == nil || *r2.ExitCode != -1 || !r2.OutputTruncated || r2.Reason != "killed" ||
		!r2.FinishedAt.Equal(t1) {
		t.Fatalf("failed run = %+v", r2)
	}
	if st := runState(t, s, id(3)); st != runstate.Received {
		t.Fatalf("run with a bogus report moved: %s", st)
	}
	// One run twice in one document: running, then succeeded, in order.
	out, err = s.ReportRuns(ctx, c.ID, []db.Report{
		{RunID: id(4), State: runstate.Running, StartedAt: t0},
		{RunID: id(4), State: runstate.Succeeded, ExitCode: &zero, Finished: t1, Output: "twice"},
		{RunID: id(5), State: runstate.Succeeded, ExitCode: &zero},
	}, t1)
	if err != nil || !out[0].Accepted || out[0].Note != "" || !out[1].Accepted || out[1].Note != "" || !out[2].Accepted {
		t.Fatalf("report naming a run twice = %+v, %v", out, err)
	}
	r4, _ := s.Run(ctx, id(4))
	if r4.State != runstate.Succeeded || r4.Output != "twice" || !r4.StartedAt.Equal(t0) {
		t.Fatalf("run reported twice = %+v", r4)
	}
	// A batch repeating final reports and finishing the running one.
	out, err = s.ReportRuns(ctx, c.ID, []db.Report{
		{RunID: id(0), State: runstate.Succeeded, ExitCode: &zero, Output: tricky},
		{RunID: id(1), State: runstate.Succeeded, ExitCode: &zero, Finished: t1},
		{RunID: id(2), State: runstate.Succeeded, ExitCode: &zero},
	}, t1.Add(time.Minute))
	if err != nil || !out[0].Accepted || out[0].Note == "" || !out[1].Accepted || out[1].Note != "" || !out[2].Accepted || out[2].Note == "" {
		t.Fatalf("repeat batch = %+v, %v", out, err)
	}
	if st := runState(t, s, id(2)); st != runstate.Failed {
		t.Fatalf("first final state lost: %s", st)
	}
	r1, _ = s.Run(ctx, id(1))
	if r1.State != runstate.Succeeded || !r1.StartedAt.Equal(t0) || !r1.FinishedAt.Equal(t1) {
		t.Fatalf("running run finished = %+v", r1)
	}
}
