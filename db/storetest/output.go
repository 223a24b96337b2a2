package storetest

// Live output (docs/protocol.md, "Output"): chunks stored contiguously,
// resends recognised, the bound keeping both ends, readers following from
// an offset, and a cancelled run's output kept.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runoutput"
	"github.com/scirectl/scirectl/runstate"
)

// markerRx finds the marker lines of a follower's reads, with the newline
// put before one that follows other output.
var markerRx = regexp.MustCompile(`\n?\[\.\.\. (\d+) bytes omitted \.\.\.\]\n`)

// outputOf is run id's output as RunOutputs reads it (since: -1 for all).
func outputOf(t *testing.T, s db.Store, jobID, runID, since int64, max int) db.Run {
	t.Helper()
	var m map[int64]int64
	if since >= 0 {
		m = map[int64]int64{runID: since}
	}
	for _, r := range must(s.RunOutputs(context.Background(), jobID, m, max))(t) {
		if r.ID == runID {
			return r
		}
	}
	t.Fatalf("job %d has no run %d", jobID, runID)
	return db.Run{}
}

// streamingRun is a running run of a new job for a new client.
func streamingRun(t *testing.T, s db.Store, name string) (client int64, d db.Dispatch) {
	t.Helper()
	c := mustClient(t, s, name, true)
	mustSubmit(t, s, name, 0, c.ID)
	ds := claimOne(t, s, c.ID)
	if len(ds) != 1 {
		t.Fatalf("claim: %+v", ds)
	}
	res := must(s.ReportRuns(context.Background(), c.ID, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Running}}, t0))(t)
	if !res[0].Accepted {
		t.Fatalf("start: %+v", res)
	}
	return c.ID, ds[0]
}

func testOutputAppend(t *testing.T, s db.Store) {
	ctx := context.Background()
	c, d := streamingRun(t, s, "o1")
	run := d.Run.ID
	app := func(chunks ...db.OutputChunk) []db.ChunkResult {
		t.Helper()
		return must(s.AppendOutput(ctx, c, chunks, 1<<20))(t)
	}
	res := app(db.OutputChunk{RunID: run, Offset: 0, Data: "hello "}, db.OutputChunk{RunID: run, Offset: 6, Data: "wörld\n"})
	if !res[0].Accepted || res[0].Offset != 6 || !res[1].Accepted || res[1].Offset != 13 {
		t.Fatalf("append: %+v", res)
	}
	// A resend is accepted and not stored twice; an overlap stores its new
	// part; a chunk past the end is not stored and says where to resume.
	res = app(db.OutputChunk{RunID: run, Offset: 6, Data: "wörld\n"},
		db.OutputChunk{RunID: run, Offset: 13, Data: "a"}, db.OutputChunk{RunID: run, Offset: 13, Data: "ab"},
		db.OutputChunk{RunID: run, Offset: 20, Data: "lost"})
	if !res[0].Accepted || res[0].Offset != 13 || !res[1].Accepted || res[1].Offset != 14 || !res[2].Accepted || res[2].Offset != 15 ||
		res[3].Accepted || res[3].Offset != 15 || res[3].Stop {
		t.Fatalf("resend, overlap, gap: %+v", res)
	}
	r := outputOf(t, s, d.Job.ID, run, -1, 1<<20)
	if r.Output != "hello wörld\nab" || r.OutputSize != 15 || r.OutputTruncated || r.State != runstate.Running {
		t.Fatalf("live output %q size %d", r.Output, r.OutputSize)
	}
	if got := outputOf(t, s, d.Job.ID, run, 6, 1<<20); got.Output != "wörld\nab" || got.OutputSize != 15 {
		t.Fatalf("since 6: %q %d", got.Output, got.OutputSize)
	}
	if got := outputOf(t, s, d.Job.ID, run, 15, 1<<20); got.Output != "" {
		t.Fatalf("since the end: %q", got.Output)
	}
	// Another client's run, an unknown run: the call fails, nothing stored.
	other := mustClient(t, s, "o2", true)
	_, err := s.AppendOutput(ctx, other.ID, []db.OutputChunk{{RunID: run, Offset: 15, Data: "x"}}, 1<<20)
	wantErr(t, "another client's run", err, db.ErrConflict)
	_, err = s.AppendOutput(ctx, c, []db.OutputChunk{{RunID: run, Offset: 15, Data: "x"}, {RunID: 999999, Offset: 0, Data: "y"}}, 1<<20)
	wantErr(t, "unknown run", err, db.ErrNotFound)
	if got := outputOf(t, s, d.Job.ID, run, -1, 1<<20); got.OutputSize != 15 {
		t.Fatalf("a failed call stored output: %d", got.OutputSize)
	}
	// The final report's output is the run's; chunks after it stop.
	code := 0
	must(s.ReportRuns(ctx, c, []db.Report{{RunID: run, State: runstate.Succeeded, ExitCode: &code, Output: "hello wörld\nabc\n"}}, t0))(t)
	if got := outputOf(t, s, d.Job.ID, run, -1, 1<<20); got.Output != "hello wörld\nabc\n" || got.OutputSize != 17 {
		t.Fatalf("final output %q size %d", got.Output, got.OutputSize)
	}
	if got := outputOf(t, s, d.Job.ID, run, 13, 1<<20); got.Output != "abc\n" {
		t.Fatalf("final since 13: %q", got.Output)
	}
	if res := app(db.OutputChunk{RunID: run, Offset: 15, Data: "late"}); !res[0].Stop || res[0].Accepted {
		t.Fatalf("chunk of a final run: %+v", res)
	}
	// A pending run takes no chunks.
	mustSubmit(t, s, "later", 0, c)
	var pending int64
	for _, j := range must(s.ListJobs(ctx, db.JobFilter{}))(t) {
		if j.Name == "later" {
			pending = runOf(t, s, j.ID, c).ID
		}
	}
	if res := app(db.OutputChunk{RunID: pending, Offset: 0, Data: "x"}); !res[0].Stop {
		t.Fatalf("chunk of a pending run: %+v", res)
	}
}

// A 5 MiB stream under a 1 MiB bound keeps exactly its first and last
// halves with the marker, and a follower reading it chunk by chunk sees
// the same head, a marker for what was dropped, and the same tail.
func testOutputBound(t *testing.T, s db.Store) {
	ctx := context.Background()
	const max = 1 << 20
	c, d := streamingRun(t, s, "big")
	var whole strings.Builder
	for i := 0; whole.Len() < 5<<20; i++ {
		fmt.Fprintf(&whole, "line %07d of a long log\n", i)
	}
	stream := whole.String()
	followed := strings.Builder{}
	var seen int64
	for off := 0; off < len(stream); off += 64 << 10 {
		end := min(off+64<<10, len(stream))
		res := must(s.AppendOutput(ctx, c, []db.OutputChunk{{RunID: d.Run.ID, Offset: int64(off), Data: stream[off:end]}}, max))(t)
		if !res[0].Accepted || res[0].Offset != int64(end) {
			t.Fatalf("chunk at %d: %+v", off, res)
		}
		if off%(1<<20) == 0 { // a follower reading now and then
			r := outputOf(t, s, d.Job.ID, d.Run.ID, seen, max)
			followed.WriteString(r.Output)
			seen = r.OutputSize
		}
	}
	r := outputOf(t, s, d.Job.ID, d.Run.ID, seen, max)
	followed.WriteString(r.Output)
	want := runoutput.Bound(stream, max)
	got := outputOf(t, s, d.Job.ID, d.Run.ID, -1, max)
	if got.Output != want.String() || got.OutputOmitted != want.Omitted || !got.OutputTruncated || got.OutputSize != int64(len(stream)) {
		t.Fatalf("bounded live output: %d bytes, omitted %d (want %d bytes, omitted %d)", len(got.Output), got.OutputOmitted, len(want.String()), want.Omitted)
	}
	// What the follower read is pieces of the stream, in order, and
	// markers that account for every byte between them.
	f := followed.String()
	kept, omitted, pos := 0, 0, 0
	for _, m := range markerRx.FindAllStringSubmatchIndex(f, -1) {
		piece := f[pos:m[0]]
		if !strings.HasPrefix(stream[kept+omitted:], piece) {
			t.Fatalf("the follower's piece at %d is not the stream's bytes there", kept+omitted)
		}
		n := 0
		fmt.Sscan(f[m[2]:m[3]], &n)
		kept, omitted, pos = kept+len(piece), omitted+n, m[1]
	}
	if rest := f[pos:]; stream[kept+omitted:] != rest || omitted == 0 || !strings.HasPrefix(f, stream[:max/2]) {
		t.Fatalf("the follower read %d bytes and %d omitted of %d", kept+len(rest), omitted, len(stream))
	}
	// The final report (bounded by the agent the same way) replaces it.
	code := 0
	must(s.ReportRuns(ctx, c, []db.Report{{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &code, Output: want.String(), Truncated: true}}, t0))(t)
	fin := outputOf(t, s, d.Job.ID, d.Run.ID, -1, max)
	if fin.Output != want.String() || fin.OutputOmitted != want.Omitted || fin.OutputSize != int64(len(stream)) || !fin.OutputTruncated {
		t.Fatalf("final: %d bytes, omitted %d, size %d", len(fin.Output), fin.OutputOmitted, fin.OutputSize)
	}
}

// A run cancelled while it streams keeps what it streamed, and then the
// output its agent reports with the final status it sends after stopping it.
func testOutputCancelled(t *testing.T, s db.Store) {
	ctx := context.Background()
	c, d := streamingRun(t, s, "cx")
	must(s.AppendOutput(ctx, c, []db.OutputChunk{{RunID: d.Run.ID, Offset: 0, Data: "step 1\n"}}, 1<<20))(t)
	must(s.CancelJob(ctx, d.Job.ID, t0.Add(time.Second), "cancelled by admin"))(t)
	if r := outputOf(t, s, d.Job.ID, d.Run.ID, -1, 1<<20); r.State != runstate.Cancelled || r.Output != "step 1\n" {
		t.Fatalf("cancelled run: %s %q", r.State, r.Output)
	}
	// Chunks the agent had not sent yet still arrive, until its report.
	res := must(s.AppendOutput(ctx, c, []db.OutputChunk{{RunID: d.Run.ID, Offset: 7, Data: "step 2\n"}}, 1<<20))(t)
	if !res[0].Accepted || res[0].Stop {
		t.Fatalf("chunk after the cancel: %+v", res)
	}
	rep := must(s.ReportRuns(ctx, c, []db.Report{{RunID: d.Run.ID, State: runstate.Failed, Reason: "cancelled", Output: "step 1\nstep 2\nstep 3\n"}}, t0))(t)
	if !rep[0].Accepted {
		t.Fatalf("report of the cancelled run: %+v", rep)
	}
	r := outputOf(t, s, d.Job.ID, d.Run.ID, -1, 1<<20)
	if r.State != runstate.Cancelled || r.Output != "step 1\nstep 2\nstep 3\n" {
		t.Fatalf("after the report: %s %q", r.State, r.Output)
	}
	// A second report does not overwrite it.
	must(s.ReportRuns(ctx, c, []db.Report{{RunID: d.Run.ID, State: runstate.Failed, Output: "other"}}, t0))(t)
	if r := outputOf(t, s, d.Job.ID, d.Run.ID, -1, 1<<20); r.Output != "step 1\nstep 2\nstep 3\n" {
		t.Fatalf("overwritten: %q", r.Output)
	}
	if res := must(s.AppendOutput(ctx, c, []db.OutputChunk{{RunID: d.Run.ID, Offset: 14, Data: "x"}}, 1<<20))(t); !res[0].Stop {
		t.Fatalf("chunk after the output was kept: %+v", res)
	}
	if _, err := s.RunOutputs(ctx, 999999, nil, 1<<20); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}
