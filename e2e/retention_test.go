package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRetentionCommands runs job delete and job prune with the real
// binary against a server whose retention comes from server.yaml and a
// flag (the flag wins): finished jobs go, a job not final stays and is
// named, and both are in the audit trail.
func TestRetentionCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "server.yaml"), []byte("retain: 30d\nretain_audit: 500d\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, data, "--retain-audit", "off")
	if !strings.Contains(srv.log.String(), `msg=retention keep="jobs 30d, audit records for ever"`) {
		t.Fatalf("no retention line in the server's log:\n%s", srv.log.String())
	}
	start(t, nil, "client", "poll", "--server", srv.url, "--ca", srv.caFile(),
		"--state-dir", filepath.Join(dir, "agent"), "--interval", "200ms", "--name", "e2e-ret")
	eventually(t, 30*time.Second, "the agent to register", func() bool {
		_, _, code := srv.cli(t, "", "client", "accept", "e2e-ret")
		return code == 0
	})
	var ids []string
	for range 3 {
		var sub struct {
			ID string `json:"id"`
		}
		srv.cliJSON(t, &sub, "job", "submit", "--target", "e2e-ret", "-c", "echo kept for a while", "--wait", "--wait-interval", "100ms")
		ids = append(ids, sub.ID)
	}
	var later struct {
		ID string `json:"id"`
	}
	srv.cliJSON(t, &later, "job", "submit", "--target", "e2e-ret", "-c", "true", "--at", "+1h")

	if out, errOut, code := srv.cli(t, "", "job", "delete", ids[0]); code != 0 || out != "deleted 1 job (1 run): "+ids[0]+"\n" {
		t.Fatalf("job delete: exit %d: %q %s", code, out, errOut)
	}
	if _, errOut, code := srv.cli(t, "", "job", "delete", ids[1], later.ID); code != 16 || !strings.Contains(errOut, "job "+later.ID+" has 1 run not final") {
		t.Fatalf("job delete with a pending job: exit %d: %s", code, errOut)
	}
	if _, _, code := srv.cli(t, "", "job", "delete", "987654321"); code != 14 {
		t.Fatalf("job delete of an unknown job: exit %d, want 14", code)
	}
	var pr struct {
		Jobs   int  `json:"jobs"`
		Runs   int  `json:"runs"`
		DryRun bool `json:"dry_run"`
	}
	srv.cliJSON(t, &pr, "job", "prune", "--older-than", "1h")
	if pr.Jobs != 0 {
		t.Fatalf("prune 1h: %+v, want nothing", pr)
	}
	if out, _, code := srv.cli(t, "", "job", "prune", "--older-than", "0s", "--dry-run"); code != 0 || !strings.HasPrefix(out, "would delete 2 jobs (2 runs)") {
		t.Fatalf("dry run: exit %d: %q", code, out)
	}
	srv.cliJSON(t, &pr, "job", "prune", "--older-than", "0s")
	if pr.Jobs != 2 || pr.Runs != 2 || pr.DryRun {
		t.Fatalf("prune: %+v", pr)
	}
	var jobs []job
	srv.cliJSON(t, &jobs, "job", "list")
	if len(jobs) != 1 || jobs[0].ID != later.ID {
		t.Fatalf("jobs left: %+v, want only %s", jobs, later.ID)
	}
	if _, errOut, code := srv.cli(t, "", "job", "prune", "--older-than", "soon"); code != 2 || !strings.Contains(errOut, "--older-than") {
		t.Fatalf("bad --older-than: exit %d: %s", code, errOut)
	}
	out, _, _ := srv.cli(t, "", "audit", "list", "--operation", "job.*", "-o", "json")
	for _, want := range []string{`"operation": "job.delete"`, `"operation": "job.prune"`, `"detail": "deleted 2 jobs, 2 runs"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit list lacks %s:\n%s", want, out)
		}
	}
}

// A bad retention on the command line stops serve at once, naming the flag.
func TestServeRetentionFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--retain", "soon").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `invalid argument "soon" for "--retain"`) {
		t.Fatalf("serve --retain soon: %v\n%s", err, out)
	}
}

// TestRetentionPython drives job.delete and job.prune from Python's
// xmlrpc.client (testdata/retention.py).
func TestRetentionPython(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	pythonCommand(t, srv, "retention.py", []string{"testdata/retention.py"})
}
