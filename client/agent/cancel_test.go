package agent

import (
	"context"
	"github.com/scirectl/scirectl/internal/testtool"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/jobxml"
)

// pidScript writes the shell's pid to file (atomically) and then sleeps.
func pidScript(file string) string {
	return "echo $$ > " + file + ".tmp; mv " + file + ".tmp " + file + "; sleep 100"
}

// readPid waits for a pid file written by pidScript.
func readPid(t *testing.T, file string) int {
	t.Helper()
	var pid int
	eventually(t, "the script to start", func() bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// doneLines returns done.log's lines.
func doneLines(t *testing.T, stateDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, doneLog))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

func (f *fakeServer) reportsOf(run int64) []jobxml.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports[run])
}

// A cancel in agent.heartbeat's answer, arriving while a job runs (through
// keepAlive): the running job's process group is stopped and it is
// reported failed, reason cancelled, with the output it wrote; a queued
// cancelled job is dropped and never started; an id the agent does not hold
// is ignored; the agent goes on with the rest.
func TestAgentCancelRunningAndQueued(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	pidFile, ran := filepath.Join(tmp, "pid"), filepath.Join(tmp, "ran")
	f.addJob(jobxml.Job{ID: 1, Run: 201, Priority: 10, Script: "echo partial; printf 'no newline'; " + pidScript(pidFile)})
	f.addJob(jobxml.Job{ID: 2, Run: 202, Priority: 5, Script: "echo B >> " + ran})
	f.addJob(jobxml.Job{ID: 3, Run: 203, Priority: 0, Script: "echo C >> " + ran})
	a := newTestAgent(t, f)
	a.cfg.Once = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, a.cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	}()

	pid := readPid(t, pidFile)
	eventually(t, "runs 202 and 203 queued", func() bool {
		return exists(filepath.Join(f.stateDir, "queue", "202.xml")) && exists(filepath.Join(f.stateDir, "queue", "203.xml"))
	})
	f.mu.Lock()
	f.cancelIDs = []string{"999999", "201", "202"}
	f.mu.Unlock()

	// The next keepAlive heartbeat (every 5s while a job runs) brings it.
	eventually(t, "run 203 to be reported", func() bool { _, ok := f.final(203); return ok })
	testtool.WaitGone(t, pid)
	if b, _ := os.ReadFile(ran); string(b) != "C\n" {
		t.Fatalf("ran %q, want only C: the cancelled queued run B must never start", b)
	}
	eventually(t, "run 201 to be reported", func() bool { _, ok := f.final(201); return ok })
	if st, _ := f.final(201); st.State != jobxml.StateFailed || st.Reason != ReasonCancelled || st.Exit != nil ||
		st.Output != "partial\nno newline" || st.Truncated {
		t.Fatalf("cancelled run 201 reported %+v, want failed, cancelled, with its output", st)
	}
	if len(f.reportsOf(202)) != 0 {
		t.Fatalf("run 202 was started: %+v", f.reportsOf(202))
	}
	// The agent writes done.log once the server has answered the report,
	// a moment after the fake server recorded it.
	var lines []string
	eventually(t, "done.log to record runs 201-203", func() bool {
		lines = doneLines(t, f.stateDir)
		for _, want := range []string{"201_cancelled", "202_cancelled", "203"} {
			if !slices.Contains(lines, want) {
				return false
			}
		}
		return true
	})
	if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "999999") }) {
		t.Fatalf("done.log %q records the unknown run", lines)
	}
	eventually(t, "the state dirs to empty", func() bool {
		for _, d := range []string{"queue", "running", "outbox", "work"} {
			if es, _ := os.ReadDir(filepath.Join(f.stateDir, d)); len(es) > 0 {
				return false
			}
		}
		return true
	})
	for _, d := range []string{"queue", "running", "outbox", "work"} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
	// The server keeps listing the ids; nothing more happens.
	time.Sleep(300 * time.Millisecond)
	if got := doneLines(t, f.stateDir); len(got) != len(lines) {
		t.Fatalf("done.log grew from %q to %q", lines, got)
	}
}

// A cancel arriving as the answer to the "running" report
// (agent.reportStatus's cancelled flag): the job is stopped and reported
// cancelled, with its output; a final report of a run cancelled meanwhile
// counts as answered.
func TestAgentCancelViaReport(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil { // first start: identity
		t.Fatal(err)
	}
	pidFile := filepath.Join(tmp, "pid")
	f.addJob(jobxml.Job{ID: 1, Run: 211, Script: pidScript(pidFile)})
	f.addJob(jobxml.Job{ID: 2, Run: 212, Script: "echo fine"})
	// Run 213 finished before a crash; its report still waits in the outbox,
	// and the operator has cancelled it since.
	s, _ := openStore(f.stateDir, quiet)
	now := time.Now().UTC().Truncate(time.Second)
	zero := 0
	if err := s.putReport(jobxml.Status{Run: 213, State: jobxml.StateSucceeded, Exit: &zero, Started: now, Finished: now}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.sent[213] = true
	f.cancelled[211], f.cancelled[213] = true, true
	// Answer the "running" report of 211 only once the script runs, so
	// that there is a process to stop.
	f.beforeReport = func(doc string) {
		if strings.Contains(doc, `run="211"`) && strings.Contains(doc, `state="running"`) {
			for deadline := time.Now().Add(30 * time.Second); !exists(pidFile) && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	f.mu.Unlock()

	start := time.Now()
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Once run took %v", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	testtool.WaitGone(t, pid)
	if rs := f.reportsOf(211); len(rs) != 2 || rs[0].State != jobxml.StateRunning ||
		rs[1].State != jobxml.StateFailed || rs[1].Reason != ReasonCancelled {
		t.Fatalf("run 211 reported %+v, want its running report, then failed, cancelled", rs)
	}
	if st, ok := f.final(212); !ok || st.State != jobxml.StateSucceeded {
		t.Fatalf("run 212: %+v", f.reportsOf(212))
	}
	lines := doneLines(t, f.stateDir)
	for _, want := range []string{"211_cancelled", "212", "213_cancelled"} {
		if !slices.Contains(lines, want) {
			t.Fatalf("done.log %q lacks %q", lines, want)
		}
	}
	for _, d := range []string{"queue", "running", "outbox", "work"} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
}

// A run queued before a restart and cancelled meanwhile is dropped at the
// first heartbeat, before anything runs.
func TestAgentCancelQueuedAtStart(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	s, _ := openStore(f.stateDir, quiet)
	ran := filepath.Join(tmp, "ran")
	for _, run := range []int64{221, 222} {
		if err := s.enqueue(run, jobDoc(t, jobxml.Job{ID: run, Run: run, Script: "echo " + strconv.FormatInt(run, 10) + " >> " + ran})); err != nil {
			t.Fatal(err)
		}
		f.sent[run] = true
	}
	f.cancelIDs = []string{"221", "12345"}
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ran); string(b) != "222\n" {
		t.Fatalf("ran %q, want only 222", b)
	}
	if len(f.reportsOf(221)) != 0 {
		t.Fatalf("cancelled run reported: %+v", f.reportsOf(221))
	}
	if lines := doneLines(t, f.stateDir); !slices.Contains(lines, "221_cancelled") {
		t.Fatalf("done.log %q", lines)
	}
	// done.log is read back with its notes: the run stays known.
	s2, err := openStore(f.stateDir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.known(221) || s2.doneNote[221] != noteCancel {
		t.Fatalf("after reload: known %v, note %q", s2.known(221), s2.doneNote[221])
	}
	dirEmpty(t, filepath.Join(f.stateDir, "queue"))
}

// stopOnClose: SIGTERM first; a script that ignores it is killed with its
// whole group cancelGrace later.
func TestExecStopTermThenKill(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script string
		minTook      time.Duration
	}{
		{"term", `sh -c 'sleep 100 & echo $!; sleep 100'`, 0},
		{"kill", `trap '' TERM; sh -c 'trap "" TERM; sleep 100 & echo $!; while :; do sleep 0.1; done'`, cancelGrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stop := make(chan struct{})
			go func() { time.Sleep(300 * time.Millisecond); close(stop) }()
			start := time.Now()
			r := sh(t, tc.script, func(c *command) { c.Stop = stop })
			took := time.Since(start)
			if r.State != jobxml.StateFailed || r.Reason != ReasonCancelled || r.Exit != nil {
				t.Fatalf("result %+v", r)
			}
			if took < tc.minTook || took > tc.minTook+10*time.Second {
				t.Fatalf("took %v, want about %v", took, tc.minTook)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(r.Output, "\n", 2)[0]))
			if err != nil {
				t.Fatalf("output %q", r.Output)
			}
			testtool.WaitGone(t, pid)
		})
	}
}
