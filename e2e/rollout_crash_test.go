package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/internal/pgtest"
)

// TestRolloutCrashSQLite: a rollout's limits live in the database, not in
// the daemon (SPEC §10): the server is killed with SIGKILL in the middle
// of a rollout (--max-parallel 2 --max-failures 1, nine agents) and
// restarted on the same data directory and address. The agents come in
// an arranged order, so that each phase tests something:
//
//  1. fail-a, ok-1, ok-2, ok-3: fail-a fails, one failure within the
//     budget of 1; the job goes on.
//  2. ok-4 and ok-5 join with 4 s runs; the server is killed while both
//     run, and restarted.
//  3. fail-b and ok-7 join right after the restart. The window is still
//     full (ok-4 and ok-5 run on, their reports wait in their agents'
//     outboxes): neither may start before one of them has ended. Then
//     fail-b fails: the second failure, after the restart, halts the job.
//  4. ok-6 joins after the halt: its run was skipped, it runs nothing.
//
// The scripts' records show that never more than 2 ran at once, before,
// across and after the crash.
func TestRolloutCrashSQLite(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	addr := freeLoopbackAddr(t)
	srv := startServerAt(t, dataDir, addr)
	names := []string{"fail-a", "ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "fail-b", "ok-7", "ok-6"}
	agents := newFleet(srv, dir, nil, names, map[string][]string{
		"fail-a": {"ROLL_FAIL=1", "ROLL_SLEEP=0.3"},
		"fail-b": {"ROLL_FAIL=1", "ROLL_SLEEP=0.3"},
		"ok-4":   {"ROLL_SLEEP=4"},
		"ok-5":   {"ROLL_SLEEP=4"},
	})
	startFleet(t, srv, agents)
	byName := map[string]*rollAgent{}
	for _, a := range agents {
		byName[a.name] = a
	}
	for _, n := range []string{"ok-4", "ok-5", "fail-b", "ok-7", "ok-6"} {
		byName[n].proc.stop(t)
	}

	spansFile := filepath.Join(dir, "spans.log")
	id := submitJSON(t, srv, append([]string{"--max-parallel", "2", "--max-failures", "1",
		"-c", rolloutScript(spansFile, "1")}, targetArgs(agents)...)...)

	// Phase 1.
	var j api.Job
	eventually(t, 30*time.Second, "the first four runs to end", func() bool {
		j = jobStatus(t, srv, id)
		return countState(j, "succeeded", "failed") == 4
	})
	if r := runOf(t, j, "fail-a"); r.State != "failed" || countState(j, "succeeded") != 3 {
		t.Fatalf("phase 1: runs %+v; want fail-a failed, ok-1..3 succeeded", j.Runs)
	}
	time.Sleep(time.Second) // the keeper's pass: one failure is within the budget
	if j = jobStatus(t, srv, id); j.Halted {
		t.Fatalf("the job halted at its first failure: %q; the budget is 1", j.HaltReason)
	}

	// Phase 2.
	byName["ok-4"].start(t)
	byName["ok-5"].start(t)
	eventually(t, 30*time.Second, "ok-4 and ok-5 to run", func() bool {
		j = jobStatus(t, srv, id)
		return runOf(t, j, "ok-4").State == "running" && runOf(t, j, "ok-5").State == "running"
	})
	time.Sleep(300 * time.Millisecond)
	killNine(t, srv.proc)
	killed := time.Now()
	t.Logf("kill -9 of the server %v after the start; run states %s", killed.Sub(began).Round(time.Millisecond), runStateCounts(t, dataDir))
	srv = startServerAt(t, dataDir, addr)
	restarted := time.Now()
	t.Logf("server back %v after the kill", restarted.Sub(killed).Round(time.Millisecond))

	// Phase 3.
	byName["fail-b"].start(t)
	byName["ok-7"].start(t)
	eventually(t, 30*time.Second, "the job to halt", func() bool {
		j = jobStatus(t, srv, id)
		return j.Halted
	})
	const reason = "failure budget exceeded: 2 of 9 failed"
	if j.HaltReason != reason {
		t.Fatalf("halt_reason %q, want %q", j.HaltReason, reason)
	}

	// Phase 4.
	byName["ok-6"].start(t)
	j = waitRollout(t, srv, id, 30*time.Second)
	time.Sleep(time.Second) // ok-6 polls a few times
	for _, r := range j.Runs {
		want := []string{"succeeded"}
		switch r.Client {
		case "fail-a", "fail-b":
			want = []string{"failed"}
		case "ok-6":
			want = []string{"skipped"}
		case "ok-7": // it may have had its turn before fail-b's, or not
			want = []string{"succeeded", "skipped"}
		}
		if !slices.Contains(want, r.State) {
			t.Errorf("%s's run = %+v; want %v", r.Client, r, want)
		}
		if r.State == "skipped" && (r.Attempts != 0 || r.Reason != "job halted: "+reason) {
			t.Errorf("%s's run = %+v; want skipped (job halted: %s), never sent", r.Client, r, reason)
		}
		if r.State != "skipped" && r.Attempts != 1 {
			t.Errorf("%s's run was handed out %d times, want once", r.Client, r.Attempts)
		}
	}

	spans := jobSpans(readSpans(t, spansFile), id)
	across := 0
	var ran []string
	for _, s := range spans {
		if s.end == 0 {
			t.Fatalf("%s's execution has no end", s.agent)
		}
		if s.start < killed.UnixNano() && s.end > restarted.UnixNano() {
			across++
		}
		ran = append(ran, s.agent)
		if (s.agent == "fail-b" || s.agent == "ok-7") && s.start < restarted.UnixNano() {
			t.Errorf("%s started before the restart", s.agent)
		}
	}
	if across != 2 {
		t.Fatalf("%d runs ran across the crash, want 2 (ok-4 and ok-5): %+v", across, spans)
	}
	if slices.Contains(ran, "ok-6") {
		t.Fatal("ok-6's run was skipped, yet it ran")
	}
	// ok-4 and ok-5 filled the window across the crash: had the restarted
	// server lost count of them, fail-b and ok-7 would have started at
	// once, 4 at a time.
	if n, at := maxOverlap(spans); n > 2 {
		t.Fatalf("%d runs at once at %s; --max-parallel 2", n, at.Format("15:04:05.000000"))
	}
	var audit []api.AuditEntry
	srv.cliJSON(t, &audit, "audit", "list", "--operation", "rollout.halt")
	if len(audit) != 1 || audit[0].Target != "job "+id || !strings.Contains(audit[0].Detail, reason) {
		t.Fatalf("audit list --operation rollout.halt = %+v; want one record of job %s's halt", audit, id)
	}
	t.Logf("ran %v; done in %v", ran, time.Since(began).Round(time.Millisecond))
}

// TestRolloutCrashPostgres: two daemons on one PostgreSQL database share
// a rollout (--max-parallel 2, eight agents, each listing both daemons in
// its own order); once both have handed out runs of it and a few have
// succeeded, one is killed with SIGKILL while runs are out. The window holds on both daemons together and across the
// kill, every run ends succeeded, each executed once, and the survivor
// hands out the rest.
func TestRolloutCrashPostgres(t *testing.T) {
	began := time.Now()
	url := pgtest.Start(t)
	ctx := context.Background()
	pg, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dir := t.TempDir()
	// A short lease: a run the dead daemon sent that no agent
	// acknowledged comes back in seconds, not after the 30 s takeover.
	daemons := startPGCluster(t, url, dir, 2, "", "--lease", "3s", "--rescue-interval", "500ms")
	survivor, victim := daemons[0], daemons[1]
	var st api.ServerStatus
	victim.cliJSON(t, &st, "server", "status")
	if st.ID == "" {
		t.Fatal("server status -o json: no id")
	}
	t.Logf("daemons up %v after the start; the victim is server %s", time.Since(began).Round(time.Millisecond), st.ID)

	agents := newFleet(survivor, dir, nil, fleetNames("pg", 8), nil)
	for i, a := range agents {
		a.servers = []string{daemons[i%2].url, daemons[(i+1)%2].url}
	}
	startFleet(t, survivor, agents)

	spansFile := filepath.Join(dir, "spans.log")
	id := submitJSON(t, survivor, append([]string{"--max-parallel", "2", "-c", rolloutScript(spansFile, "1.5")}, targetArgs(agents)...)...)
	byVictim := fmt.Sprintf("job_id = %s AND server_id = %s", id, st.ID)
	eventually(t, 30*time.Second, "the victim to hand out a run of the job", func() bool {
		return countRuns(t, pg, byVictim) > 0
	})
	eventually(t, 30*time.Second, "the rollout to be under way", func() bool {
		j := jobStatus(t, survivor, id)
		return countState(j, "succeeded") >= 2 && countState(j, outStates...) > 0 && countState(j, "pending") >= 2
	})
	killNine(t, victim.proc)
	killed := time.Now()
	t.Logf("kill -9 of the victim %v after the start; runs: %s", killed.Sub(began).Round(time.Millisecond), pgStateCounts(t, pg))

	j := waitRollout(t, survivor, id, 45*time.Second)
	if j.Status != "succeeded" || countState(j, "succeeded") != 8 {
		t.Fatalf("job = %s, runs %+v; want every run succeeded", j.Status, j.Runs)
	}
	after := 0
	for _, r := range j.Runs {
		if r.SentAt != nil && r.SentAt.After(killed) {
			after++
		}
	}
	if after == 0 {
		t.Fatal("no run was sent after the kill: the rollout did not go on on the survivor")
	}
	spans := jobSpans(readSpans(t, spansFile), id)
	if len(spans) != 8 {
		t.Fatalf("%d executions, want 8: %+v", len(spans), spans)
	}
	n, at := maxOverlap(spans)
	if n > 2 {
		t.Fatalf("%d runs at once at %s; --max-parallel 2 on two daemons", n, at.Format("15:04:05.000000"))
	}
	if n != 2 {
		t.Fatalf("never more than %d run at once; the window of 2 was not used", n)
	}
	t.Logf("runs handed out by the victim: %d; sent after the kill: %d; done in %v",
		countRuns(t, pg, byVictim), after, time.Since(began).Round(time.Millisecond))
}
