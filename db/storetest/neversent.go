package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// testReportNeverSent: an agent reports only runs it was sent. A run still pending and never sent (attempts 0) is refused with
// ErrConflict, and the whole call changes nothing — on the set-based path
// (several reports) and the one-by-one path alike. A run sent once whose
// lease expired (pending, attempts 1) is still its client's to report.
func testReportNeverSent(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	for _, name := range []string{"a", "b", "c", "d"} {
		mustSubmit(t, s, name, 10, c.ID)
	}
	held := claim(t, s, c.ID, 4)
	if len(held) != 4 {
		t.Fatalf("claimed %d runs, want 4", len(held))
	}
	never := runOf(t, s, mustSubmit(t, s, "never", 0, c.ID).ID, c.ID)
	if never.State != runstate.Pending || never.Attempts != 0 {
		t.Fatalf("run = %+v, want pending and never sent", never)
	}
	zero := 0
	var reports []db.Report
	for _, d := range held {
		reports = append(reports, db.Report{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &zero})
	}
	for _, rs := range [][]db.Report{
		{{RunID: never.ID, State: runstate.Succeeded, ExitCode: &zero}},
		{{RunID: never.ID, State: runstate.Running}},
		{{RunID: never.ID, State: runstate.Failed, ExitCode: &zero}},
		append(append([]db.Report{}, reports...), db.Report{RunID: never.ID, State: runstate.Succeeded, ExitCode: &zero}),
		{{RunID: held[0].Run.ID, State: runstate.Running}, {RunID: never.ID, State: runstate.Running}, {RunID: held[0].Run.ID, State: runstate.Succeeded, ExitCode: &zero}},
	} {
		if _, err := s.ReportRuns(ctx, c.ID, rs, t0); !errors.Is(err, db.ErrConflict) {
			t.Fatalf("report of %d runs, one never sent: err = %v, want ErrConflict", len(rs), err)
		}
		if st := runState(t, s, never.ID); st != runstate.Pending {
			t.Fatalf("never-sent run is %s after a refused report", st)
		}
		for _, d := range held {
			if st := runState(t, s, d.Run.ID); st != runstate.Sent {
				t.Fatalf("run %d is %s after a refused report, want sent: the refusal changed something", d.Run.ID, st)
			}
		}
	}
	// An ack moves nothing but sent runs: a never-sent one is stale (drop it).
	if ack, err := s.AckRuns(ctx, c.ID, []int64{never.ID}, t0); err != nil || ack.Acknowledged != 0 || len(ack.Stale) != 1 {
		t.Fatalf("ack of a never-sent run = %+v, %v; want it stale", ack, err)
	}
	if st := runState(t, s, never.ID); st != runstate.Pending {
		t.Fatalf("ack of a never-sent run made it %s", st)
	}
	// The reports of the runs that were sent are accepted.
	res, err := s.ReportRuns(ctx, c.ID, reports, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Accepted || r.Note != "" {
			t.Fatalf("report %d = %+v, want accepted", i, r)
		}
	}
	// A run sent once whose lease expired went back to pending: its
	// client may still report it (the work was done).
	again := mustSubmit(t, s, "again", 0, c.ID)
	claimAt(t, s, c.ID, t0, time.Minute, 1)
	sweepAt(t, s, db.SweepOptions{At: t0.Add(2 * time.Minute)})
	r := runOf(t, s, again.ID, c.ID)
	if r.State != runstate.Pending || r.Attempts != 1 {
		t.Fatalf("requeued run = %+v, want pending after one attempt", r)
	}
	res, err = s.ReportRuns(ctx, c.ID, []db.Report{{RunID: r.ID, State: runstate.Succeeded, ExitCode: &zero}}, t0.Add(3*time.Minute))
	if err != nil || !res[0].Accepted {
		t.Fatalf("report of a requeued run = %+v, %v; want accepted", res, err)
	}
	if st := runState(t, s, r.ID); st != runstate.Succeeded {
		t.Fatalf("requeued run reported succeeded is %s", st)
	}
}
