package e2e

import (
	"github.com/scirectl/scirectl/db/sqlite"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDBMaintenanceCLI backs up, restores and resets the database of a
// running server with the real binary, as an operator's shell would.
func TestDBMaintenanceCLI(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	userNames := func() []string {
		t.Helper()
		var us []struct{ Name string }
		srv.cliJSON(t, &us, "user", "list")
		var names []string
		for _, u := range us {
			names = append(names, u.Name)
		}
		slices.Sort(names)
		return names
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, errOut, code := srv.cli(t, "", args...)
		if code != 0 {
			t.Fatalf("scirectl %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	aliceTok := strings.TrimSpace(mustCLI("user", "add", "alice"))
	backup := filepath.Join(t.TempDir(), "scire-backup.db")
	var b struct {
		Path  string
		Bytes int64
	}
	srv.cliJSON(t, &b, "db", "backup", backup)
	if b.Path != backup || b.Bytes <= 0 {
		t.Fatalf("db backup -o json = %+v", b)
	}
	if _, errOut, code := srv.cli(t, "", "db", "backup", backup); code != 16 || !strings.Contains(errOut, "exists") {
		t.Fatalf("db backup over an existing file: exit %d, %q; want 16", code, errOut)
	}

	mustCLI("user", "delete", "alice")
	if got := userNames(); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("users after delete = %v", got)
	}
	if out := mustCLI("db", "restore", backup); !strings.Contains(out, "restored the database from "+backup) {
		t.Fatalf("db restore said %q", out)
	}
	if got := userNames(); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("users after restore = %v, want alice back", got)
	}
	// alice's token came back with her.
	if _, errOut, code := srv.cli(t, "", "user", "token", "list", "--token", aliceTok); code != 0 {
		t.Fatalf("alice's token after restore: exit %d, %s", code, errOut)
	}

	if _, errOut, code := srv.cli(t, "", "db", "reset"); code != 2 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("db reset without --yes: exit %d, %q; want 2", code, errOut)
	}
	oldToken := srv.token(t)
	if out := mustCLI("db", "reset", "--yes"); !strings.Contains(out, "reset the database") {
		t.Fatalf("db reset said %q", out)
	}
	if srv.token(t) == oldToken {
		t.Fatal("db reset kept the old admin token")
	}
	if fi, err := os.Stat(filepath.Join(srv.dataDir, "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token after reset: %v, %v", fi, err)
	}
	if got := userNames(); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("users after reset = %v, want only admin", got)
	}
	if out := mustCLI("job", "list"); !strings.Contains(out, "ID") {
		t.Fatalf("job list after reset = %q", out)
	}
	if _, _, code := srv.cli(t, "", "user", "token", "list", "--token", aliceTok); code != 11 {
		t.Fatalf("alice's token after reset: exit %d, want 11", code)
	}
	var audit []struct{ Actor, Operation, Outcome string }
	srv.cliJSON(t, &audit, "audit", "list", "--operation", "db.*")
	if len(audit) == 0 || audit[0].Operation != "db.reset" || audit[0].Actor != "admin" || audit[0].Outcome != "ok" {
		t.Fatalf("audit after reset = %+v", audit)
	}
	var v struct{ Version, Latest int }
	srv.cliJSON(t, &v, "db", "migrate")
	if v.Version != sqlite.SchemaVersion || v.Latest != sqlite.SchemaVersion {
		t.Fatalf("db migrate = %+v", v)
	}

	// --offline refuses while the server runs (it holds the database's
	// lock), then works once it stopped.
	if _, errOut, code := srv.cli(t, "", "db", "restore", "--offline", backup); code != 16 || !strings.Contains(errOut, "scirectl serve (pid ") {
		t.Fatalf("db restore --offline while serving: exit %d, %q; want 16", code, errOut)
	}
	srv.stop(t)
	out, errOut, code := srv.cli(t, "", "db", "restore", "--offline", "--force", backup)
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("db restore --offline --force after stop: exit %d, %q %q", code, out, errOut)
	}
	srv = startServer(t, srv.dataDir)
	if got := userNames(); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("users after an offline restore and a restart = %v", got)
	}
}
