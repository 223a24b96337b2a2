package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQueuedRunOfLiveAgentIsNotLost (issue 20): one real agent holds a long
// job and, queued behind it, a job whose timeout (2 s) plus the server's
// lost grace (1 s) is much shorter than the long job (6 s). Its loss timer
// used to run from the ack, so the rescuer failed it as lost while it
// waited, and its result, delivered later, was thrown away. The agent now
// names its queued runs in its heartbeats, which renew them: the short job
// runs after the long one and its result is kept.
func TestQueuedRunOfLiveAgentIsNotLost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 6 s job: skipped with -short")
	}
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"), "--lost-grace", "1s", "--rescue-interval", "200ms")
	stateDir := filepath.Join(dir, "agent")
	pollArgs := []string{"client", "poll", "--server", srv.url, "--ca", srv.caFile(),
		"--state-dir", stateDir, "--interval", "200ms", "--name", "lease-agent"}
	agent := start(t, nil, pollArgs...)
	eventually(t, 30*time.Second, "the agent to register", func() bool {
		_, _, code := srv.cli(t, "", "client", "accept", "lease-agent")
		return code == 0
	})
	eventually(t, 30*time.Second, "the agent to poll as an accepted client", func() bool {
		return strings.Contains(agent.log.String(), "registered")
	})
	// Both jobs are submitted while the agent is stopped, so that its next
	// poll takes (and acknowledges) both at once.
	agent.stop(t)
	submit := func(args ...string) string {
		t.Helper()
		var sub struct {
			ID string `json:"id"`
		}
		srv.cliJSON(t, &sub, append([]string{"job", "submit", "--target", "lease-agent"}, args...)...)
		return sub.ID
	}
	long := submit("-c", "sleep 6; echo long", "--priority", "10", "--timeout", "60s")
	short := submit("-c", "echo short", "--timeout", "2s")
	agent = start(t, nil, pollArgs...)

	var sj job
	eventually(t, 30*time.Second, "the short job to be queued behind the long one", func() bool {
		srv.cliJSON(t, &sj, "job", "status", short)
		return len(sj.Runs) == 1 && sj.Runs[0].State != "pending" && sj.Runs[0].State != "sent"
	})
	if sj.Runs[0].State != "received" {
		t.Fatalf("short job's run = %+v, want received (waiting behind the long job)", sj.Runs[0])
	}
	lj := waitFinal(t, srv, long)
	sj = waitFinal(t, srv, short)
	if lj.Runs[0].State != "succeeded" {
		t.Fatalf("long job = %+v", lj)
	}
	if r := sj.Runs[0]; r.State != "succeeded" || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Fatalf("short job = %+v, want succeeded: it waited in a live agent's queue, it was not lost", sj)
	}
	if out, _, code := srv.cli(t, "", "job", "output", short); code != 0 || out != "short\n" {
		t.Fatalf("short job's output = %q (exit %d), want \"short\\n\"", out, code)
	}
	if l := agent.log.String(); strings.Contains(l, "declared lost") {
		t.Fatalf("the agent was told a run was lost:\n%s", l)
	}
}
