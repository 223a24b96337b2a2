package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runoutput"
)

type testAgent struct {
	cfg Config
	out *testtool.SyncBuffer
}

func newTestAgent(t *testing.T, f *fakeServer) *testAgent {
	out := &testtool.SyncBuffer{}
	return &testAgent{out: out, cfg: Config{Servers: []string{f.url()}, StateDir: f.stateDir, CAFile: f.caFile,
		Name: "test-agent", Interval: 50 * time.Millisecond, Once: true, Version: "test", Log: quiet, Out: out}}
}

func (a *testAgent) run(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Run(ctx, a.cfg)
}

func dirEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s not empty: %v", dir, names)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAgentPendingOnce(t *testing.T) {
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.status = "pending"
	a := newTestAgent(t, f)
	err := a.run(t)
	fp, ferr := Fingerprint(f.stateDir)
	if ferr != nil {
		t.Fatal(ferr)
	}
	if !errors.Is(err, ErrNotAccepted) || !strings.Contains(err.Error(), fp) || !strings.Contains(err.Error(), "pending") {
		t.Fatalf("Run = %v, want ErrNotAccepted naming the fingerprint and the status", err)
	}
	if out := a.out.String(); !strings.Contains(out, "waiting for acceptance: fingerprint "+fp) ||
		!strings.Contains(out, "scirectl client accept "+fp) {
		t.Fatalf("Out = %q", out)
	}
	if f.fingerprint != fp {
		t.Fatalf("server saw %s, Fingerprint says %s", f.fingerprint, fp)
	}
}

func TestAgentRunsQueueInOrderOnce(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	order := filepath.Join(tmp, "order")
	app := func(name string) string { return "echo " + name + " >> " + order + "; " }
	f.addJob(jobxml.Job{ID: 1, Run: 11, Priority: 0, Script: app("A") + `echo "run=$SCIRE_RUN_ID job=$SCIRE_JOB_ID"`})
	f.addJob(jobxml.Job{ID: 2, Run: 12, Priority: 5, Script: app("B") + "echo out; echo err >&2; exit 3"})
	f.addJob(jobxml.Job{ID: 3, Run: 13, Priority: 0, Script: app("C") + "head -c 5000 /dev/zero | tr '\\0' y"})
	f.addJob(jobxml.Job{ID: 4, Run: 14, Priority: 1, Timeout: time.Second, Script: app("D") + "sleep 100"})
	f.rawDocs = []string{`<job version="1" id="9" run="99"><name>cut short`}
	a := newTestAgent(t, f)
	a.cfg.OutputLimit = 1000
	if err := a.run(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, _ := os.ReadFile(order)
	if string(got) != "B\nD\nA\nC\n" {
		t.Fatalf("ran in order %q, want B (prio 5), D (prio 1), A, C (prio 0, oldest first)", got)
	}
	check := func(run int64, state jobxml.State, exit *int, reason, output string, truncated bool) {
		t.Helper()
		st, ok := f.final(run)
		if !ok {
			t.Fatalf("run %d: no final report (%+v)", run, f.reports[run])
		}
		if st.State != state || ptr(st.Exit) != ptr(exit) || st.Reason != reason || st.Truncated != truncated ||
			(output != "*" && st.Output != output) {
			t.Fatalf("run %d: report %+v", run, st)
		}
	}
	zero, three := 0, 3
	check(11, jobxml.StateSucceeded, &zero, "", "run=11 job=1\n", false)
	check(12, jobxml.StateFailed, &three, "", "out\nerr\n", false)
	check(13, jobxml.StateSucceeded, &zero, "", runoutput.Bound(strings.Repeat("y", 5000), 1000).String(), true)
	check(14, jobxml.StateFailed, nil, ReasonTimeout, "", false)
	check(99, jobxml.StateFailed, nil, ReasonBadDocument, "*", false)
	if len(f.ackedNoFile) != 0 {
		t.Fatalf("runs %v were acknowledged before being queued", f.ackedNoFile)
	}
	for _, run := range []int64{11, 12, 13, 14} {
		if f.acks[run] == 0 {
			t.Fatalf("run %d never acknowledged", run)
		}
	}
	for _, d := range []string{"queue", "running", "outbox", "work"} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
	// A second cron run finds nothing and exits cleanly, without rerunning.
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if got2, _ := os.ReadFile(order); string(got2) != string(got) {
		t.Fatalf("second run ran jobs again: %q", got2)
	}
}

func TestAgentRedeliveredRunIsNotRerun(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	count := filepath.Join(tmp, "count")
	job := jobxml.Job{ID: 1, Run: 21, Script: "echo x >> " + count}
	f.addJob(job)
	f.failAck = 1 // the ack is lost
	a := newTestAgent(t, f)
	err := a.run(t)
	if err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("cron run with a failed ack: %v, want an error saying reports are kept", err)
	}
	// The job ran anyway (it was queued durably), its report waits on disk.
	if b, _ := os.ReadFile(count); string(b) != "x\n" {
		t.Fatalf("count = %q", b)
	}
	if !exists(filepath.Join(f.stateDir, "outbox", "21.xml")) {
		t.Fatal("report not kept in the outbox")
	}
	// The lease expires: the server hands the run out again.
	job.Attempt = 2
	f.addJob(job)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(count); string(b) != "x\n" {
		t.Fatalf("re-delivered run ran again: count = %q", b)
	}
	if st, ok := f.final(21); !ok || st.State != jobxml.StateSucceeded {
		t.Fatalf("report: %+v", f.reports[21])
	}
	if f.acks[21] == 0 {
		t.Fatal("re-delivered run was not re-acknowledged")
	}

	// The same while the run still waits in the queue: a re-delivery does
	// not make a second copy.
	s, _ := openStore(f.stateDir, quiet)
	if err := s.enqueue(22, jobDoc(t, jobxml.Job{ID: 2, Run: 22, Script: "echo y >> " + count})); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.sent[22] = true
	f.mu.Unlock()
	f.addJob(jobxml.Job{ID: 2, Run: 22, Attempt: 2, Script: "echo y >> " + count})
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(count); string(b) != "x\ny\n" {
		t.Fatalf("count = %q, want the queued run once", b)
	}
}

func TestAgentRecoversAfterCrash(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil { // first start: identity, nothing to do
		t.Fatal(err)
	}
	// Lay out what a kill -9 leaves: run 31 had started, 32 was queued,
	// 33 had finished but its report was not sent.
	s, _ := openStore(f.stateDir, quiet)
	ran := filepath.Join(tmp, "ran")
	for _, run := range []int64{31, 32, 33} {
		s.enqueue(run, jobDoc(t, jobxml.Job{ID: run, Run: run, Script: "echo " + strconv.FormatInt(run, 10) + " >> " + ran}))
		f.sent[run] = true
	}
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	s.markRunning(31, started)
	seven := 7
	s.markRunning(33, started)
	s.putReport(jobxml.Status{Run: 33, State: jobxml.StateFailed, Exit: &seven, Started: started, Finished: started, Output: "seven"})

	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ran); string(b) != "32\n" {
		t.Fatalf("ran %q, want only 32 (31 was interrupted, 33 had finished)", b)
	}
	if st, ok := f.final(31); !ok || st.State != jobxml.StateFailed || st.Reason != ReasonInterrupted || st.Exit != nil {
		t.Fatalf("run 31: %+v", f.reports[31])
	}
	if st, ok := f.final(33); !ok || st.Exit == nil || *st.Exit != 7 || st.Output != "seven" {
		t.Fatalf("run 33: %+v", f.reports[33])
	}
	if st, ok := f.final(32); !ok || st.State != jobxml.StateSucceeded {
		t.Fatalf("run 32: %+v", f.reports[32])
	}
	for _, d := range []string{"queue", "running", "outbox"} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
}

func TestAgentDropsStaleRuns(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	ran := filepath.Join(tmp, "ran")
	f.addJob(jobxml.Job{ID: 1, Run: 41, Script: "echo 41 >> " + ran})
	f.addJob(jobxml.Job{ID: 2, Run: 42, Script: "echo 42 >> " + ran})
	f.stale[41] = true
	if err := newTestAgent(t, f).run(t); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(ran); string(b) != "42\n" {
		t.Fatalf("ran %q, want only 42", b)
	}
	if len(f.reports[41]) != 0 {
		t.Fatalf("stale run reported: %+v", f.reports[41])
	}
	dirEmpty(t, filepath.Join(f.stateDir, "queue"))
}

func TestAgentKeepsReportsUntilDelivered(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	f.addJob(jobxml.Job{ID: 1, Run: 51, Script: "echo hello"})
	f.failReport = -1
	a := newTestAgent(t, f)
	err := a.run(t)
	if err == nil || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("Run with reports refused: %v", err)
	}
	if !exists(filepath.Join(f.stateDir, "outbox", "51.xml")) {
		t.Fatal("report lost")
	}
	f.mu.Lock()
	f.failReport = 0
	f.mu.Unlock()
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if st, ok := f.final(51); !ok || st.Output != "hello\n" {
		t.Fatalf("report: %+v", f.reports[51])
	}
	dirEmpty(t, filepath.Join(f.stateDir, "outbox"))
}

func TestAgentWaitsForAcceptanceThenWorks(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	f.status = "pending"
	f.addJob(jobxml.Job{ID: 1, Run: 61, Script: "echo accepted"})
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
	eventually(t, "two registrations while pending", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return strings.Count(strings.Join(f.calls, " "), "agent.register") >= 2
	})
	if n := strings.Count(a.out.String(), "waiting for acceptance"); n != 1 {
		t.Fatalf("pending message printed %d times, want once: %q", n, a.out.String())
	}
	f.mu.Lock()
	f.status = "active"
	f.mu.Unlock()
	eventually(t, "the job to be reported", func() bool { _, ok := f.final(61); return ok })
	if st, _ := f.final(61); st.Output != "accepted\n" {
		t.Fatalf("report %+v", st)
	}
	// Revoked later: every call gets 402, the agent goes back to waiting.
	f.mu.Lock()
	f.status = "revoked"
	f.mu.Unlock()
	eventually(t, "the revoked message", func() bool { return strings.Contains(a.out.String(), "revoked") })
}

func TestAgentGracefulStopInterruptsJob(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	pidFile := filepath.Join(tmp, "pid")
	f.addJob(jobxml.Job{ID: 1, Run: 71, Script: "echo $$; echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile + "; sleep 100"})
	a := newTestAgent(t, f)
	a.cfg.Once = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, a.cfg) }()
	eventually(t, "the running report", func() bool { return f.sawState(71, jobxml.StateRunning) })
	// The script has printed its pid once the file exists: stop only then,
	// so the output to check is there.
	eventually(t, "the script to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil on cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	st, ok := f.final(71)
	if !ok {
		// Not delivered at stop: it must then be on disk.
		b, err := os.ReadFile(filepath.Join(f.stateDir, "outbox", "71.xml"))
		if err != nil {
			t.Fatal("interrupted run neither reported nor in the outbox")
		}
		sts, _ := jobxml.DecodeStatuses(b)
		st = sts[0]
	}
	if st.State != jobxml.StateFailed || st.Reason != ReasonInterrupted || st.Exit != nil {
		t.Fatalf("report %+v", st)
	}
	pid, err := strconv.Atoi(strings.SplitN(st.Output, "\n", 2)[0])
	if err != nil {
		t.Fatalf("output %q", st.Output)
	}
	testtool.WaitGone(t, pid)
	dirEmpty(t, filepath.Join(f.stateDir, "running"))
	dirEmpty(t, filepath.Join(f.stateDir, "queue"))
}

func TestAgentConfigErrors(t *testing.T) {
	ctx := context.Background()
	if err := Run(ctx, Config{StateDir: t.TempDir()}); err == nil {
		t.Fatal("no servers: no error")
	}
	if err := Run(ctx, Config{Servers: []string{"https://x/RPC2"}}); err == nil {
		t.Fatal("no state dir: no error")
	}
	err := Run(ctx, Config{Servers: []string{"https://127.0.0.1:1/RPC2"}, StateDir: t.TempDir(), Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("first start without CA: %v", err)
	}
}

func TestAgentUnreachableServerOnce(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	// A job acknowledged earlier, then the server goes away.
	s, _ := openStore(f.stateDir, quiet)
	ran := filepath.Join(tmp, "ran")
	s.enqueue(81, jobDoc(t, jobxml.Job{ID: 1, Run: 81, Script: "echo 81 > " + ran}))
	f.srv.Close()
	err := a.run(t)
	if err == nil || errors.Is(err, ErrNotAccepted) {
		t.Fatalf("Run with the server down: %v", err)
	}
	if b, _ := os.ReadFile(ran); string(b) != "81\n" {
		t.Fatalf("the queued job did not run while the server was down: %q", b)
	}
	if !exists(filepath.Join(f.stateDir, "outbox", "81.xml")) {
		t.Fatal("its report is not kept")
	}
}

func TestAgentSetsAsideReportRefusedForGood(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	f.addJob(jobxml.Job{ID: 1, Run: 91, Script: "echo fine"})
	f.addJob(jobxml.Job{ID: 2, Run: 92, Script: "echo POISON"})
	f.addJob(jobxml.Job{ID: 3, Run: 93, Script: "echo also fine"})
	f.poison = "POISON"
	f.failReport = -1 // first everything is kept in the outbox...
	a := newTestAgent(t, f)
	if err := a.run(t); err == nil {
		t.Fatal("no error with the server refusing reports")
	}
	f.mu.Lock()
	f.failReport = 0 // ...then delivered as one batch, which the poison fails
	f.mu.Unlock()
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	for _, run := range []int64{91, 93} {
		if _, ok := f.final(run); !ok {
			t.Fatalf("run %d: good report held up by a bad one", run)
		}
	}
	if !exists(filepath.Join(f.stateDir, "rejected", "92.xml")) {
		t.Fatal("refused report not set aside in rejected/")
	}
	dirEmpty(t, filepath.Join(f.stateDir, "outbox"))
}
