package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBlacklistCLI blacklists job.submit with the real binary: the CLI
// gets fault 405 as exit code 15, SIGHUP reloads a hand-edited file, and
// --offline edits the file while the server is down.
func TestBlacklistCLI(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dataDir)
	run := func(wantCode int, stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := srv.cli(t, stdin, args...)
		if code != wantCode {
			t.Fatalf("scirectl %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
		}
		return out + errOut
	}
	run(0, "", "blacklist", "add", "job.submit")
	if out := run(15, "", "job", "submit", "--target", "nobody", "-c", "true"); !strings.Contains(out, "job.submit is blacklisted") {
		t.Fatalf("blacklisted submit said %q", out)
	}
	run(3, "", "blacklist", "check", "job.submit")
	if out := run(2, "", "blacklist", "add", "blacklist.*"); !strings.Contains(out, "--force") {
		t.Fatalf("self-lockout without --force said %q", out)
	}
	run(0, "", "blacklist", "remove", "job.submit")
	run(14, "", "job", "submit", "--target", "nobody", "-c", "true") // through the gate, to the unknown client

	// A hand edit, then SIGHUP.
	if err := os.WriteFile(filepath.Join(dataDir, "blacklist"), []byte("# frozen for the audit\njob.*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, 10*time.Second, "SIGHUP reload", func() bool {
		_, _, code := srv.cli(t, "", "job", "list")
		return code == 15
	})

	// Server down: --offline edits the file, the next start obeys it.
	srv.stop(t)
	run(0, "", "blacklist", "remove", "--offline", "job.*")
	run(0, "", "blacklist", "add", "--offline", "client.list")
	if out := run(3, "", "blacklist", "check", "--offline", "client.list"); !strings.Contains(out, "line") {
		t.Fatalf("offline check said %q", out)
	}
	srv2 := startServer(t, dataDir)
	if _, _, code := srv2.cli(t, "", "client", "list"); code != 15 {
		t.Fatalf("client list after an offline blacklist edit: exit %d, want 15", code)
	}
	if _, errOut, code := srv2.cli(t, "", "job", "list"); code != 0 {
		t.Fatalf("job list: exit %d: %s", code, errOut)
	}
}

// A malformed blacklist stops serve at start, naming file, line and column.
func TestMalformedBlacklistStopsServe(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "blacklist"), []byte("[job.submit,\n 'db.rest'].\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, nil, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			t.Fatal("serve started with a malformed blacklist")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on a malformed blacklist")
	}
	want := filepath.Join(dataDir, "blacklist") + ":2:2: unknown operation"
	if out := p.log.String(); !strings.Contains(out, want) {
		t.Fatalf("serve said %q; want it to contain %q", out, want)
	}
}
