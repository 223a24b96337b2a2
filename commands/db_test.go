package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/scirectl/scirectl/db/sqlite"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/server"
)

func TestDBUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cases := [][]string{
		{"db", "reset"},
		{"db", "reset", "--offline", "--data-dir", dir},
		{"db", "reset", "--yes", "extra"},
		{"db", "backup"},
		{"db", "backup", "a.db", "b.db"},
		{"db", "restore"},
		{"db", "migrate", "now"},
		{"db", "backup", "a.db", "--force"},
		{"db", "backup", "a.db", "--db", "sqlite:///tmp/x.db"},
		{"db", "backup", "a.db", "--offline", "-o", "xml"},
	}
	for _, args := range cases {
		_, errOut, code := run(t, "", args...)
		if code != ExitUsage {
			t.Errorf("scirectl %s: exit %d (%s), want %d", strings.Join(args, " "), code, strings.TrimSpace(errOut), ExitUsage)
		}
	}
	_, errOut, _ := run(t, "", "db", "reset")
	if !strings.Contains(errOut, "--yes") || !strings.Contains(errOut, "deletes every job") || !strings.Contains(errOut, "db backup") {
		t.Errorf("db reset without --yes says %q", errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("usage errors touched the data dir: %v", entries)
	}
}

// newDataDir makes a server data directory (as a first `serve` would)
// holding a user alice and a client, and returns it.
func newDataDir(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := server.New(ctx, server.Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // the database and its lock
	st := s.Store()
	if _, err := st.CreateUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-web1", Name: "web1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withStore opens a data directory's database for a check or a change.
func withStore(t *testing.T, dir string, fn func(db.Store)) {
	t.Helper()
	s, err := db.Open(context.Background(), "sqlite://"+filepath.Join(dir, "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn(s)
}

func users(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	withStore(t, dir, func(s db.Store) {
		us, err := s.ListUsers(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			names = append(names, u.Name)
		}
	})
	slices.Sort(names)
	return names
}

// adminTokenWorks checks the data dir's admin.token against its database.
func adminTokenWorks(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	withStore(t, dir, func(s db.Store) {
		if u, err := datadir.VerifyToken(context.Background(), s, string(b)); err != nil || u.Name != "admin" {
			t.Fatalf("admin.token does not verify: %v, %v", u, err)
		}
	})
}

func TestDBOffline(t *testing.T) {
	ctx := context.Background()
	dir := newDataDir(t)
	off := []string{"--offline", "--data-dir", dir}
	bdir := t.TempDir()
	backup := filepath.Join(bdir, "backup.db")

	out, errOut, code := run(t, "", append([]string{"db", "backup", backup, "-o", "json"}, off...)...)
	if code != 0 {
		t.Fatalf("db backup --offline: exit %d, %s", code, errOut)
	}
	var b api.DBBackup
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.Path != backup || b.Bytes <= 0 {
		t.Fatalf("db backup -o json = %q (%v)", out, err)
	}
	// The backup is a database scirectl opens as is.
	peek := filepath.Join(bdir, "peek.db")
	if data, err := os.ReadFile(backup); err != nil || os.WriteFile(peek, data, 0o600) != nil {
		t.Fatal("copy backup")
	}
	withPeek, err := db.Open(ctx, "sqlite://"+peek)
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	if _, err := withPeek.UserByName(ctx, "alice"); err != nil {
		t.Fatalf("alice in the backup: %v", err)
	}
	withPeek.Close()

	_, errOut, code = run(t, "", append([]string{"db", "backup", backup}, off...)...)
	if code != ExitConflict || !strings.Contains(errOut, "exists") {
		t.Fatalf("backup over an existing file: exit %d, %q; want %d", code, errOut, ExitConflict)
	}
	// A relative FILE is relative to the working directory.
	t.Chdir(bdir)
	out, errOut, code = run(t, "", append([]string{"db", "backup", "relative.db"}, off...)...)
	if code != 0 || !strings.Contains(out, filepath.Join(bdir, "relative.db")) {
		t.Fatalf("backup to a relative path: exit %d, %q %q", code, out, errOut)
	}

	// Change the data, then restore.
	withStore(t, dir, func(s db.Store) {
		if _, err := s.DeleteUser(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
	})
	for _, bad := range []struct {
		file string
		code int
	}{{filepath.Join(bdir, "missing.db"), ExitNotFound}, {writeJunk(t, bdir), ExitBadRequest}} {
		_, errOut, code := run(t, "", append([]string{"db", "restore", bad.file}, off...)...)
		if code != bad.code || !strings.Contains(errOut, bad.file) {
			t.Fatalf("restore %s: exit %d, %q; want %d", bad.file, code, errOut, bad.code)
		}
	}
	if got := users(t, dir); !slices.Equal(got, []string{"admin", "bob"}) {
		t.Fatalf("a refused restore changed the users: %v", got)
	}
	out, errOut, code = run(t, "", append([]string{"db", "restore", backup}, off...)...)
	if code != 0 || !strings.Contains(out, "restored the database from "+backup) {
		t.Fatalf("db restore --offline: exit %d, %q %q", code, out, errOut)
	}
	if got := users(t, dir); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("users after restore = %v", got)
	}
	adminTokenWorks(t, dir)

	// A server that beat a moment ago stops --offline, unless --force.
	withStore(t, dir, func(s db.Store) {
		if _, err := s.RegisterServer(ctx, db.ServerInfo{Address: "10.0.0.7:7443", Hostname: "db-host", StartedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	})
	tok, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	for _, args := range [][]string{{"db", "reset", "--yes"}, {"db", "restore", backup}, {"db", "backup", filepath.Join(bdir, "b2.db")}, {"db", "migrate"}} {
		_, errOut, code = run(t, "", append(args, off...)...)
		if code != ExitConflict || !strings.Contains(errOut, "10.0.0.7:7443") || !strings.Contains(errOut, "--force") {
			t.Fatalf("%v while a server is live: exit %d, %q; want %d naming it", args, code, errOut, ExitConflict)
		}
	}
	if got := users(t, dir); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("a refused reset changed the users: %v", got)
	}
	out, errOut, code = run(t, "", append([]string{"db", "reset", "--yes", "--force", "-o", "json"}, off...)...)
	if code != 0 || !strings.Contains(errOut, "--force") {
		t.Fatalf("db reset --offline --force: exit %d, %q %q", code, out, errOut)
	}
	var r api.DBReset
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.SchemaVersion != sqlite.SchemaVersion || r.AdminTokenFile != filepath.Join(dir, "admin.token") {
		t.Fatalf("db reset -o json = %q (%v)", out, err)
	}
	if got := users(t, dir); !slices.Equal(got, []string{"admin"}) {
		t.Fatalf("users after reset = %v", got)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "admin.token")); string(now) == string(tok) {
		t.Fatal("reset kept the old admin token")
	}
	adminTokenWorks(t, dir)
	withStore(t, dir, func(s db.Store) {
		if cs, _ := s.ListClients(ctx, db.ClientFilter{}); len(cs) != 0 {
			t.Fatalf("clients after reset: %+v", cs)
		}
		if _, err := s.CreateUser(ctx, "carol"); err != nil {
			t.Fatalf("add a user after reset: %v", err)
		}
	})

	out, errOut, code = run(t, "", append([]string{"db", "migrate"}, off...)...)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("schema version %d, latest %d: up to date", sqlite.SchemaVersion, sqlite.SchemaVersion)) {
		t.Fatalf("db migrate --offline: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = run(t, "", append([]string{"db", "migrate", "-o", "json"}, off...)...)
	var m struct{ Version, Latest, Before int }
	if err := json.Unmarshal([]byte(out), &m); err != nil || code != 0 || m.Version != sqlite.SchemaVersion || m.Latest != sqlite.SchemaVersion || m.Before != sqlite.SchemaVersion {
		t.Fatalf("db migrate -o json = %q (%v)", out, err)
	}

	// No database: nothing to back up, reset or migrate, and none is made.
	empty := filepath.Join(t.TempDir(), "nothing")
	for _, args := range [][]string{{"db", "backup", filepath.Join(bdir, "b3.db")}, {"db", "reset", "--yes"}, {"db", "migrate"}} {
		_, errOut, code = run(t, "", append(args, "--offline", "--data-dir", empty)...)
		if code != ExitNotFound || !strings.Contains(errOut, "no database") {
			t.Fatalf("%v on a missing data dir: exit %d, %q", args, code, errOut)
		}
	}
	if _, err := os.Stat(empty); err == nil {
		t.Fatal("an --offline command created a data directory")
	}
}

func writeJunk(t *testing.T, dir string) string {
	p := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(p, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDBThroughServer(t *testing.T) {
	dir, conn := startServer(t)
	backup := filepath.Join(t.TempDir(), "b.db")

	out, errOut, code := run(t, "", append([]string{"db", "backup", backup}, conn...)...)
	if code != 0 || !strings.Contains(out, "backed up the database to "+backup) {
		t.Fatalf("db backup: exit %d, %q %q", code, out, errOut)
	}
	_, errOut, code = run(t, "", append([]string{"db", "backup", backup}, conn...)...)
	if code != ExitConflict {
		t.Fatalf("db backup over a file: exit %d, %q", code, errOut)
	}
	out, errOut, code = run(t, "", append([]string{"db", "migrate", "-o", "json"}, conn...)...)
	var v api.DBVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v != (api.DBVersion{Version: sqlite.SchemaVersion, Latest: sqlite.SchemaVersion}) {
		t.Fatalf("db migrate -o json: exit %d, %q %q", code, out, errOut)
	}
	// The server holds the database's lock: --offline refuses, even with
	// --force, naming it, and so does recover (but not a dry run).
	holder := fmt.Sprintf("scirectl serve (pid %d) holds %s", os.Getpid(), filepath.Join(dir, "scire.db"))
	for _, args := range [][]string{
		{"db", "reset", "--yes", "--offline", "--data-dir", dir},
		{"db", "restore", "--offline", "--force", "--data-dir", dir, backup},
		{"db", "migrate", "--offline", "--force", "--data-dir", dir},
		{"db", "backup", "--offline", "--data-dir", dir, backup + ".2"},
		{"recover", "--data-dir", dir},
	} {
		_, errOut, code = run(t, "", args...)
		if code != ExitConflict || !strings.Contains(errOut, holder) {
			t.Fatalf("%v while serving: exit %d, %q; want %d naming %q", args, code, errOut, ExitConflict, holder)
		}
	}
	if _, errOut, code = run(t, "", "recover", "--dry-run", "--data-dir", dir); code != 0 {
		t.Fatalf("recover --dry-run while serving: exit %d, %q", code, errOut)
	}
	out, errOut, code = run(t, "", append([]string{"db", "reset", "--yes"}, conn...)...)
	if code != 0 || !strings.Contains(out, "reset the database") {
		t.Fatalf("db reset: exit %d, %q %q", code, out, errOut)
	}
	out, errOut, code = run(t, "", append([]string{"db", "restore", backup}, conn...)...)
	if code != 0 || !strings.Contains(out, "restored the database from "+backup) || !strings.Contains(out, "new one is in") {
		t.Fatalf("db restore after a reset: exit %d, %q %q", code, out, errOut)
	}
	if _, _, code := run(t, "", append([]string{"job", "list"}, conn...)...); code != 0 {
		t.Fatalf("job list with the renewed admin token: exit %d", code)
	}
}
