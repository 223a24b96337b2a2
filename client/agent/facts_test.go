package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
)

// writeFactsD writes the files of the state directory's facts.d: name to
// content, executable when the content starts with "#!".
func writeFactsD(t *testing.T, stateDir string, files map[string]string) {
	t.Helper()
	dir := filepath.Join(stateDir, "facts.d")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		// Written aside and renamed: an executable being written cannot be
		// run (ETXTBSY), and a collection never sees half a file.
		tmp := filepath.Join(stateDir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// logTo makes the test agent log to a buffer, debug level included.
func (a *testAgent) logTo() *testtool.SyncBuffer {
	buf := &testtool.SyncBuffer{}
	a.cfg.Log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return buf
}

func countCalls(f *fakeServer, method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method {
			n++
		}
	}
	return n
}

// The first agent.register carries the machine's facts: the built-in ones,
// those of facts.d (files and executables) and --fact. A heartbeat naming
// the hash of those facts sends nothing more.
func TestAgentSendsFactsAtRegistration(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	writeFactsD(t, f.stateDir, map[string]string{
		"10-site.facts": "# the rack\nrack=r12\nrole=db\n",
		"probe":         "#!/bin/sh\necho gpu=none\n",
	})
	// Jobs that take a moment: heartbeats come while the agent works, and
	// each must find the facts it sent (no second register).
	for i := range 8 {
		f.addJob(jobxml.Job{ID: int64(i + 1), Run: int64(601 + i), Script: "sleep 0.1"})
	}
	a := newTestAgent(t, f)
	a.cfg.Facts = []string{"role=web", "example.com/zone=eu-1"}
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	regs, stored := f.registered()
	if len(regs) != 1 || regs[0] == nil {
		t.Fatalf("registers %v, want one, with the facts", regs)
	}
	want := map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH, "agent_version": "test",
		"rack": "r12", "gpu": "none", "role": "web", "example.com/zone": "eu-1"}
	for k, v := range want {
		if regs[0][k] != v {
			t.Errorf("fact %s = %q, want %q (facts %v)", k, regs[0][k], v, regs[0])
		}
	}
	for _, k := range []string{"hostname", "cpus"} {
		if regs[0][k] == "" {
			t.Errorf("no fact %s (facts %v)", k, regs[0])
		}
	}
	if len(stored) != len(regs[0]) {
		t.Errorf("stored %v", stored)
	}
	if n := len(f.heartbeats()); n < 2 {
		t.Fatalf("%d heartbeats, want some answering the same facts_hash", n)
	}
	for _, run := range []int64{601, 602} {
		if st, ok := f.final(run); !ok || st.State != jobxml.StateSucceeded {
			t.Fatalf("run %d = %+v", run, st)
		}
	}
}

// A heartbeat answering another facts_hash than the agent's (here: the
// server did not keep the facts) makes the agent register again with its
// facts; a server whose heartbeats keep answering another hash gets them
// once more, not at every heartbeat.
func TestAgentSendsFactsAgainWhenServerHoldsOthers(t *testing.T) {
	t.Parallel()
	t.Run("lost", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
		f.dropFacts = 1
		a := newTestAgent(t, f)
		a.cfg.Facts = []string{"role=web"}
		if err := a.run(t); err != nil {
			t.Fatal(err)
		}
		regs, stored := f.registered()
		if len(regs) != 2 || regs[0] == nil || regs[1] == nil {
			t.Fatalf("registers %v, want two with the facts", regs)
		}
		if stored["role"] != "web" || len(stored) != len(regs[0]) {
			t.Fatalf("stored facts %v", stored)
		}
	})
	t.Run("persistent", func(t *testing.T) {
		t.Parallel()
		f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
		other := strings.Repeat("0", 64)
		f.beatHash = &other
		// Jobs that take a moment, so that several heartbeats come while
		// the agent works (the rate limit is seen only from the third).
		for i := range 12 {
			f.addJob(jobxml.Job{ID: int64(i + 1), Run: int64(611 + i), Script: "sleep 0.1"})
		}
		a := newTestAgent(t, f)
		log := a.logTo()
		if err := a.run(t); err != nil {
			t.Fatal(err)
		}
		regs, _ := f.registered()
		if beats := len(f.heartbeats()); len(regs) != 2 || beats < 3 {
			t.Fatalf("%d registers for %d heartbeats answering another hash, want 2 (%v)", len(regs), beats, regs)
		}
		if n := strings.Count(log.String(), "the server still holds other facts"); n != 1 {
			t.Fatalf("warned %d times, want once:\n%s", n, log)
		}
	})
}

// An older server refuses agent.register's facts member (fault 400 naming
// it): the agent registers without it, says so once, never sends facts
// again, and works as before.
func TestAgentOlderServerRefusesFacts(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.oldRegister = true
	for i := range 6 { // jobs that take a moment: heartbeats come meanwhile
		f.addJob(jobxml.Job{ID: int64(i + 1), Run: int64(621 + i), Script: "sleep 0.1"})
	}
	a := newTestAgent(t, f)
	log := a.logTo()
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if st, ok := f.final(int64(621 + i)); !ok || st.State != jobxml.StateSucceeded {
			t.Fatalf("run %d = %+v", 621+i, st)
		}
	}
	regs, _ := f.registered()
	if n := countCalls(f, "agent.register"); n != 2 || len(regs) != 1 || regs[0] != nil {
		t.Fatalf("%d agent.register calls, accepted ones with facts %v; want the refused one, then one without", n, regs)
	}
	if n := len(f.heartbeats()); n < 2 {
		t.Fatalf("%d heartbeats, want some answering no facts_hash", n)
	}
	if n := strings.Count(log.String(), "does not take the machine's facts"); n != 1 {
		t.Fatalf("said %d times that the server takes no facts, want once:\n%s", n, log)
	}
	if !strings.Contains(log.String(), "level=INFO msg=\"the server does not take") {
		t.Fatalf("not at info level:\n%s", log)
	}
}

// A failing facts.d executable is a warning naming it: its facts are left
// out, the others sent, and the agent works.
func TestAgentFailingFactsExecutable(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	writeFactsD(t, f.stateDir, map[string]string{
		"broken":     "#!/bin/sh\necho half=done\necho oops >&2\nexit 3\n",
		"site.facts": "rack=r7\n",
	})
	f.addJob(jobxml.Job{ID: 1, Run: 631, Script: "echo ran"})
	a := newTestAgent(t, f)
	log := a.logTo()
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	if st, ok := f.final(631); !ok || st.State != jobxml.StateSucceeded {
		t.Fatalf("run = %+v", st)
	}
	regs, _ := f.registered()
	if len(regs) != 1 || regs[0]["rack"] != "r7" || regs[0]["os"] != runtime.GOOS {
		t.Fatalf("registers %v", regs)
	}
	if _, ok := regs[0]["half"]; ok {
		t.Fatalf("a failing executable's facts were sent: %v", regs[0])
	}
	var warned bool
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "problem with the machine's facts") &&
			strings.Contains(l, filepath.Join("facts.d", "broken")) {
			warned = true
		}
	}
	if !warned {
		t.Fatalf("no warning naming the executable:\n%s", log)
	}
}

// setFactsEvery makes the facts be collected again every d for one test,
// which must not be parallel.
func setFactsEvery(t *testing.T, d time.Duration) {
	old := factsEvery
	factsEvery = d
	t.Cleanup(func() { factsEvery = old })
}

// Facts that change on the machine are collected again and sent, without
// a heartbeat to tell (here they fail); a collection that a slow facts.d
// executable holds up does not hold up the polls.
func TestAgentSendsChangedFacts(t *testing.T) {
	setFactsEvery(t, 100*time.Millisecond)
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.failBeat = -1
	// The probe waits while .hold exists (up to its time limit), saying so
	// with .waiting: names beginning with '.' are not read as facts.
	writeFactsD(t, f.stateDir, map[string]string{
		"site.facts": "rack=r1\n",
		"probe":      "#!/bin/sh\nwhile [ -e .hold ]; do touch .waiting; sleep 0.05; done\nrm -f .waiting\necho probe=ok\n",
	})
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
	machine := func() map[string]string { _, m := f.registered(); return m }
	eventually(t, "the facts", func() bool { return machine()["rack"] == "r1" && machine()["probe"] == "ok" })

	writeFactsD(t, f.stateDir, map[string]string{"site.facts": "rack=r2\n"})
	eventually(t, "the changed facts", func() bool { return machine()["rack"] == "r2" })
	regs, _ := f.registered()
	if regs[len(regs)-1]["probe"] != "ok" {
		t.Fatalf("last facts sent %v", regs[len(regs)-1])
	}

	factsD := filepath.Join(f.stateDir, "facts.d")
	if err := os.WriteFile(filepath.Join(factsD, ".hold"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a collection held up", func() bool { return exists(filepath.Join(factsD, ".waiting")) })
	held, polls := time.Now(), len(f.requestsSoFar())
	eventually(t, "polls while a collection is held up", func() bool { return len(f.requestsSoFar()) >= polls+3 })
	if waited := time.Since(held); waited > 5*time.Second {
		t.Fatalf("three polls took %v while a collection was held up", waited)
	}
	if err := os.Remove(filepath.Join(factsD, ".hold")); err != nil {
		t.Fatal(err)
	}
	if regs, _ := f.registered(); len(regs) != 2 {
		t.Fatalf("%d registers for one change of the facts, want 2 (%v)", len(regs), regs)
	}
}
