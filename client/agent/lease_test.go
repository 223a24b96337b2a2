package agent

import (
	"context"
	"github.com/scirectl/scirectl/internal/testtool"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/jobxml"
)

// A run waiting behind a long job is named in the heartbeats while the long
// job runs, often enough for its short timeout (every third of it, at least
// a second): the server renews it and does not declare it lost.
func TestAgentRenewsQueuedRunsWhileAJobRuns(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.addJob(jobxml.Job{ID: 1, Run: 301, Priority: 10, Script: "sleep 4"})
	f.addJob(jobxml.Job{ID: 2, Run: 302, Priority: 0, Script: "echo short", Timeout: 3 * time.Second})
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	st, ok := f.final(302)
	if !ok || st.State != jobxml.StateSucceeded {
		t.Fatalf("run 302 = %+v", st)
	}
	started := f.reportsOf(301)[0].Started
	var naming []time.Time
	for _, b := range f.heartbeats() {
		if slices.Contains(b.held, 302) {
			if !slices.Contains(b.held, 301) && b.at.Before(started.Add(4*time.Second)) {
				t.Errorf("heartbeat during run 301 names %v, not the running run", b.held)
			}
			naming = append(naming, b.at)
		}
	}
	if len(naming) < 3 {
		t.Fatalf("%d heartbeats named the waiting run 302 during the 4 s job, want at least 3", len(naming))
	}
	last := started
	for _, at := range append(naming, st.Started) {
		if gap := at.Sub(last); gap > 1500*time.Millisecond { // the timeout (3 s) / 3, and some slack
			t.Fatalf("run 302 went %v without a heartbeat naming it (heartbeats at %v, job started %v)", gap, naming, started)
		}
		last = at
	}
}

// Held runs the heartbeat answers lost are treated like cancelled ones: the
// running one is stopped, the queued one dropped unrun, nothing final is
// reported for either, and done.log says "lost".
func TestAgentDropsRunsDeclaredLost(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	pidFile, ran := filepath.Join(tmp, "pid"), filepath.Join(tmp, "ran")
	f.addJob(jobxml.Job{ID: 1, Run: 401, Priority: 10, Script: pidScript(pidFile)})
	f.addJob(jobxml.Job{ID: 2, Run: 402, Priority: 5, Script: "echo B >> " + ran})
	f.addJob(jobxml.Job{ID: 3, Run: 403, Priority: 0, Script: "echo C >> " + ran})
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
	f.mu.Lock()
	f.lostIDs = map[int64]bool{401: true, 402: true}
	f.mu.Unlock()

	eventually(t, "run 403 to be reported", func() bool { _, ok := f.final(403); return ok })
	testtool.WaitGone(t, pid)
	if b, _ := os.ReadFile(ran); string(b) != "C\n" {
		t.Fatalf("ran %q, want only C: the lost queued run must never start", b)
	}
	for _, run := range []int64{401, 402} {
		for _, st := range f.reportsOf(run) {
			if st.State != jobxml.StateRunning {
				t.Fatalf("lost run %d reported %+v", run, st)
			}
		}
	}
	eventually(t, "done.log to record runs 401-403", func() bool {
		lines := doneLines(t, f.stateDir)
		return slices.Contains(lines, "401_lost") && slices.Contains(lines, "402_lost") && slices.Contains(lines, "403")
	})
}

// A server older than the held runs refuses the param (fault 400): the
// agent heartbeats without it from then on, and works as before.
func TestAgentHeldRunsOlderServer(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.oldBeat = true
	f.addJob(jobxml.Job{ID: 1, Run: 501, Priority: 10, Script: "sleep 2"})
	f.addJob(jobxml.Job{ID: 2, Run: 502, Script: "true", Timeout: 3 * time.Second})
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	for _, run := range []int64{501, 502} {
		if st, ok := f.final(run); !ok || st.State != jobxml.StateSucceeded {
			t.Fatalf("run %d = %+v", run, st)
		}
	}
	named, bare := 0, 0
	for _, b := range f.heartbeats() {
		if len(b.held) > 0 {
			named++
		} else {
			bare++
		}
	}
	if named > 2 || bare < 2 {
		t.Fatalf("heartbeats: %d named held runs, %d did not; want the agent to stop naming them after the refusal", named, bare)
	}
}
