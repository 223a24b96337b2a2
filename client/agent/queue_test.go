package agent

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/jobxml"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore(t *testing.T) *store {
	t.Helper()
	s, err := openStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func jobDoc(t *testing.T, j jobxml.Job) []byte {
	t.Helper()
	if j.Interpreter == "" {
		j.Interpreter = "/bin/sh"
	}
	if j.Permission == "" {
		j.Permission = "run"
	}
	if j.Name == "" {
		j.Name = "test"
	}
	if j.SubmittedBy == "" {
		j.SubmittedBy = "alice"
	}
	if j.Attempt == 0 {
		j.Attempt = 1
	}
	b, err := jobxml.EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readStatus(t *testing.T, path string) jobxml.Status {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := jobxml.DecodeStatuses(b)
	if err != nil || len(sts) != 1 {
		t.Fatalf("%s: %v (%d statuses)", path, err, len(sts))
	}
	return sts[0]
}

func TestQueueDurableWrite(t *testing.T) {
	s := newStore(t)
	doc := jobDoc(t, jobxml.Job{ID: 1, Run: 10, Script: "echo hi"})
	if err := s.enqueue(10, doc); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.dir, "queue", "10.xml")
	b, err := os.ReadFile(p)
	if err != nil || string(b) != string(doc) {
		t.Fatalf("queue file: %v, content %q", err, b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("queue file mode %v, want 0600", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Join(s.dir, "queue"))
	if len(ents) != 1 {
		t.Fatalf("queue dir holds %d entries, want only the job (no temp files)", len(ents))
	}
	if !s.queued(10) || !s.known(10) || s.queued(11) || s.known(11) {
		t.Fatal("queued/known wrong")
	}
}

func TestQueueOrder(t *testing.T) {
	s := newStore(t)
	type jr struct {
		id, run int64
		prio    int
	}
	for _, x := range []jr{{5, 50, 0}, {3, 30, 0}, {7, 70, 9}, {1, 10, -2}, {6, 60, 9}, {3, 31, 0}} {
		if err := s.enqueue(x.run, jobDoc(t, jobxml.Job{ID: x.id, Run: x.run, Priority: x.prio, Script: "true"})); err != nil {
			t.Fatal(err)
		}
	}
	// A stray file and a crash's temp file are not jobs.
	os.WriteFile(filepath.Join(s.dir, "queue", "README"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(s.dir, "queue", ".99.xml.tmp123"), []byte("x"), 0o600)
	jobs, bad, err := s.listQueue()
	if err != nil || len(bad) != 0 {
		t.Fatal(err, bad)
	}
	var runs []int64
	for _, j := range jobs {
		runs = append(runs, j.Run)
	}
	// Priority 9 first (job 6 before job 7: older), then priority 0 by job id, then -2.
	if want := []int64{60, 70, 30, 31, 50, 10}; !slices.Equal(runs, want) {
		t.Fatalf("order %v, want %v", runs, want)
	}
}

func TestQueueBadDocument(t *testing.T) {
	s := newStore(t)
	os.WriteFile(filepath.Join(s.dir, "queue", "12.xml"), []byte("<job>garbage"), 0o600)
	s.enqueue(13, jobDoc(t, jobxml.Job{ID: 1, Run: 14, Script: "true"})) // file named for another run
	jobs, bad, err := s.listQueue()
	if err != nil || len(jobs) != 0 || len(bad) != 2 || bad[0].run != 12 || bad[1].run != 13 {
		t.Fatalf("jobs %v bad %v err %v", jobs, bad, err)
	}
}

func TestOpenStoreRemovesTempFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "outbox"), 0o700)
	tmp := filepath.Join(dir, "outbox", ".5.xml.tmp4242")
	os.WriteFile(tmp, []byte("half"), 0o600)
	if _, err := openStore(dir, quiet); err != nil {
		t.Fatal(err)
	}
	if exists(tmp) {
		t.Fatal("temp file of a crashed write survived")
	}
	for _, d := range []string{"queue", "running", "outbox", "rejected", "work"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v", d, err)
		}
	}
}

func TestReportsReplaceRunning(t *testing.T) {
	s := newStore(t)
	start := time.Now().UTC().Truncate(time.Second)
	if err := s.putReport(jobxml.Status{Run: 7, State: jobxml.StateRunning, Started: start}); err != nil {
		t.Fatal(err)
	}
	if s.finished(7) || s.outboxLen() != 1 {
		t.Fatal("a running report counts as finished")
	}
	zero := 0
	if err := s.putReport(jobxml.Status{Run: 7, State: jobxml.StateSucceeded, Exit: &zero, Started: start, Finished: start, Output: "ok\n"}); err != nil {
		t.Fatal(err)
	}
	reps, err := s.outbox()
	if err != nil || len(reps) != 1 || reps[0].running || reps[0].State != jobxml.StateSucceeded || reps[0].Output != "ok\n" {
		t.Fatalf("outbox %+v %v: want only the final report", reps, err)
	}
	if !s.finished(7) || !s.known(7) {
		t.Fatal("finished run not known")
	}
	if err := s.delivered(reps[0]); err != nil {
		t.Fatal(err)
	}
	if s.outboxLen() != 0 || !s.known(7) {
		t.Fatal("a delivered run must leave the outbox and stay known (done-log)")
	}
	// The done-log survives a restart.
	s2, err := openStore(s.dir, quiet)
	if err != nil || !s2.known(7) || s2.known(8) {
		t.Fatalf("after reopen: known(7)=%v known(8)=%v err %v", s2.known(7), s2.known(8), err)
	}
}

func TestOutboxSetsAsideUndecodable(t *testing.T) {
	s := newStore(t)
	os.WriteFile(filepath.Join(s.dir, "outbox", "9.xml"), []byte("not xml"), 0o600)
	reps, err := s.outbox()
	if err != nil || len(reps) != 0 {
		t.Fatal(reps, err)
	}
	if !exists(filepath.Join(s.dir, "rejected", "9.xml")) || s.outboxLen() != 0 {
		t.Fatal("undecodable outbox file was not moved to rejected/")
	}
}

func TestDoneLogCompaction(t *testing.T) {
	s := newStore(t)
	for i := int64(1); i <= 2*doneKeep+5; i++ {
		if err := s.appendDone(i); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, "done.log"))
	lines := strings.Count(string(b), "\n")
	if lines > 2*doneKeep || lines < doneKeep {
		t.Fatalf("done.log has %d lines, want between %d and %d", lines, doneKeep, 2*doneKeep)
	}
	// A torn last line from a crash mid-append is ignored.
	f, _ := os.OpenFile(filepath.Join(s.dir, "done.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("99999")
	f.Close()
	s2, err := openStore(s.dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.known(2*doneKeep+5) || s2.known(1) {
		t.Fatal("compaction kept the wrong ids")
	}
}

// crashState lays out files as a crash at some step would leave them.
type crashState struct {
	queue, marker, running, final, done bool
}

func TestRecoverRuns(t *testing.T) {
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		state crashState
		// after recovery
		interrupted bool // a failed/interrupted final report was written
		keepQueue   bool
	}{
		{"killed before start", crashState{queue: true}, false, true},
		{"killed right after the marker", crashState{queue: true, marker: true}, true, false},
		{"killed while running", crashState{queue: true, marker: true, running: true}, true, false},
		{"killed after the final report", crashState{queue: true, marker: true, final: true}, false, false},
		{"killed after removing the marker", crashState{queue: true, final: true}, false, false},
		{"killed after delivery, before cleanup", crashState{queue: true, marker: true, done: true}, false, false},
		{"queue file of a delivered run", crashState{queue: true, done: true}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			const run = 42
			if tc.state.queue {
				s.enqueue(run, jobDoc(t, jobxml.Job{ID: 4, Run: run, Script: "echo must-not-run"}))
			}
			if tc.state.marker {
				s.markRunning(run, started)
				os.MkdirAll(s.workPath(run), 0o700)
				os.WriteFile(filepath.Join(s.workPath(run), "script-1"), []byte("x"), 0o700)
			}
			if tc.state.running {
				s.putReport(jobxml.Status{Run: run, State: jobxml.StateRunning, Started: started})
			}
			code := 0
			if tc.state.final {
				s.putReport(jobxml.Status{Run: run, State: jobxml.StateSucceeded, Exit: &code, Started: started, Finished: started, Output: "done"})
			}
			if tc.state.done {
				s.appendDone(run)
			}
			s, err := openStore(s.dir, quiet) // a restart
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.recoverRuns(started.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if tc.interrupted != (len(got) == 1 && got[0] == run) {
				t.Fatalf("interrupted runs %v", got)
			}
			if exists(s.markerPath(run)) || exists(s.workPath(run)) || exists(s.startPath(run)) {
				t.Fatal("marker, work dir or running report left behind")
			}
			if s.queued(run) != tc.keepQueue {
				t.Fatalf("queued = %v, want %v", s.queued(run), tc.keepQueue)
			}
			switch {
			case tc.interrupted:
				st := readStatus(t, s.finalPath(run))
				if st.State != jobxml.StateFailed || st.Reason != ReasonInterrupted || st.Exit != nil || !st.Started.Equal(started) {
					t.Fatalf("report %+v, want failed/interrupted started at %v", st, started)
				}
			case tc.state.final:
				if st := readStatus(t, s.finalPath(run)); st.State != jobxml.StateSucceeded {
					t.Fatalf("the finished run's report was replaced: %+v", st)
				}
			default:
				if s.finished(run) {
					t.Fatal("unexpected report")
				}
			}
			// Whatever happened, the run is not handed to execution twice:
			// either it is still queued (never started) or it is known.
			jobs, _, _ := s.listQueue()
			if len(jobs) > 0 && !tc.keepQueue {
				t.Fatal("a started run would run again")
			}
			if !s.known(run) {
				t.Fatal("run not known after recovery: a re-delivery would run it again")
			}
			// Recovery is idempotent (a crash during recovery).
			if again, err := s.recoverRuns(time.Now()); err != nil || len(again) != 0 {
				t.Fatalf("second recovery: %v %v", again, err)
			}
		})
	}
}
