package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/runstate"
)

type client struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	Status      string `json:"status"`
}

type run struct {
	ID       string `json:"id"`
	Client   string `json:"client"`
	State    string `json:"state"`
	ExitCode *int   `json:"exit_code"`
	Attempts int    `json:"attempts"`
}

type job struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Runs   []run  `json:"runs"`
}

// TestWalkingSkeleton: serve → agent → job → result, with real processes.
func TestWalkingSkeleton(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))

	// First start made the data directory, with the secrets private.
	for _, f := range []string{"admin.token", "tls/ca.key", "tls/server.key", "scire.db"} {
		fi, err := os.Stat(filepath.Join(srv.dataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}

	agent := start(t, nil, "client", "poll", "--server", srv.url, "--ca", srv.caFile(),
		"--state-dir", filepath.Join(dir, "agent"), "--interval", "200ms", "--name", "e2e-agent")

	var pending client
	eventually(t, 30*time.Second, "the agent to register as pending", func() bool {
		var cs []client
		srv.cliJSON(t, &cs, "client", "list")
		for _, c := range cs {
			if c.Name == "e2e-agent" && c.Status == "pending" {
				pending = c
				return true
			}
		}
		return false
	})
	eventually(t, 10*time.Second, "the agent to print its fingerprint", func() bool {
		return strings.Contains(agent.log.String(), pending.Fingerprint)
	})

	// A pending client gets no work; a job for it is refused with 409 (exit 16).
	if _, errOut, code := srv.cli(t, "", "job", "submit", "--target", "e2e-agent", "-c", "true"); code != 16 {
		t.Fatalf("submit to a pending client: exit %d (%s), want 16", code, errOut)
	}

	if out, errOut, code := srv.cli(t, "", "client", "accept", "e2e-agent"); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("client accept: exit %d: %s%s", code, out, errOut)
	}

	var sub struct {
		ID string `json:"id"`
	}
	srv.cliJSON(t, &sub, "job", "submit", "--target", "e2e-agent", "-c", "echo hello; exit 3", "--timeout", "30s")
	if sub.ID == "" {
		t.Fatal("job submit -o json gave no id")
	}
	j := waitFinal(t, srv, sub.ID)
	if len(j.Runs) != 1 {
		t.Fatalf("job has %d runs, want 1", len(j.Runs))
	}
	r := j.Runs[0]
	if r.State != "failed" || r.ExitCode == nil || *r.ExitCode != 3 || r.Client != "e2e-agent" || r.Attempts != 1 || j.Status != "failed" {
		t.Fatalf("run = %+v (job %s), want failed with exit code 3 after 1 attempt", r, j.Status)
	}
	if out, _, code := srv.cli(t, "", "job", "output", sub.ID); code != 0 || out != "hello\n" {
		t.Fatalf("job output = %q (exit %d), want \"hello\\n\"", out, code)
	}

	// A second job, from standard input, followed with --wait: exit code 0.
	out, errOut, code := srv.cli(t, "printf 'ok\\n'\n", "job", "submit", "--target", "e2e-agent", "--script", "-", "--wait", "--wait-interval", "100ms")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("job submit --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	// --wait reports a failed run with exit code 3.
	if _, _, code := srv.cli(t, "", "job", "submit", "--target", "e2e-agent", "-c", "false", "--wait", "--wait-interval", "100ms"); code != 3 {
		t.Fatalf("job submit --wait of a failing job: exit %d, want 3", code)
	}

	var jobs []job
	srv.cliJSON(t, &jobs, "job", "list")
	if len(jobs) != 3 || jobs[1].Status != "succeeded" {
		t.Fatalf("job list = %+v", jobs)
	}

	// Graceful stop of both, then a restart reuses the data directory.
	agent.stop(t)
	srv.stop(t)
	if !strings.Contains(srv.log.String(), "stopped") {
		t.Fatalf("server did not log a clean stop:\n%s", srv.log.String())
	}
	srv2 := startServer(t, srv.dataDir)
	srv2.cliJSON(t, &jobs, "job", "list")
	if len(jobs) != 3 {
		t.Fatalf("after restart: %d jobs, want 3", len(jobs))
	}
	// The token must never reach the logs.
	if tok := srv2.token(t); strings.Contains(srv.log.String()+srv2.log.String(), tok[len(tok)-20:]) {
		t.Fatal("the admin token appears in the server log")
	}
}

func waitFinal(t *testing.T, srv *testServer, id string) job {
	t.Helper()
	var j job
	eventually(t, 60*time.Second, "job "+id+" to finish", func() bool {
		srv.cliJSON(t, &j, "job", "status", id)
		for _, r := range j.Runs {
			if !runstate.State(r.State).Final() {
				return false
			}
		}
		return len(j.Runs) > 0
	})
	return j
}

// TestCLIErrors: usage errors and faults map to their exit codes.
func TestCLIErrors(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"job", "status", "abc"}, 2, "positive number"},
		{[]string{"job", "status", "999"}, 14, "not found"},
		{[]string{"job", "submit", "-c", "true"}, 2, "no target"},
		{[]string{"job", "submit", "--target", "nobody", "-c", "true"}, 14, "nobody"},
		{[]string{"job", "list", "--token", "scire_1_wrong"}, 11, "invalid"},
		{[]string{"job", "list", "-o", "yaml"}, 2, "table or json"},
		{[]string{"nosuchcommand"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		_, errOut, code := srv.cli(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("scirectl %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
