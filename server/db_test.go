package server

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/scirectl/scirectl/db/sqlite"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/gate"
)

func userNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	var us []api.User
	mustCall(t, c, "user.list", &us)
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	slices.Sort(names)
	return names
}

func jobCount(t *testing.T, c *client.Client) int {
	t.Helper()
	var js []api.Job
	mustCall(t, c, "job.list", &js)
	return len(js)
}

func TestDBBackupRestore(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	h.activeClient(t, admin, "web1")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}})
	addRule(t, admin, "alice", "job.read", "*", "allow")

	dir := t.TempDir()
	path := filepath.Join(dir, "scire.backup")
	var b api.DBBackup
	mustCall(t, admin, "db.backup", &b, path)
	if b.Path != path || b.Bytes <= 0 || b.DurationMS < 0 {
		t.Fatalf("db.backup = %+v", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != b.Bytes || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want %d bytes, mode 0600", fi, err, b.Bytes)
	}
	wantFault(t, admin.Call(ctx, "db.backup", nil, path), 409)
	wantFault(t, admin.Call(ctx, "db.backup", nil, "relative.db"), 400)
	wantFault(t, admin.Call(ctx, "db.backup", nil, filepath.Join(dir, "no", "such", "dir.db")), 404)
	wantFault(t, admin.Call(ctx, "db.backup", nil), 400)

	// Change things after the backup.
	_, bobTok := h.addUser(t, admin, "bob")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "false", "targets": []string{"web1"}})
	var rules []api.ACLRule
	mustCall(t, admin, "acl.list", &rules)
	mustCall(t, admin, "acl.remove", nil, rules[0].ID)
	mustCall(t, admin, "user.delete", nil, "alice")
	if got := userNames(t, admin); !slices.Equal(got, []string{"admin", "bob"}) {
		t.Fatalf("users before restore = %v", got)
	}

	// Bad restores change nothing.
	wantFault(t, admin.Call(ctx, "db.restore", nil, "scire.backup"), 400)
	wantFault(t, admin.Call(ctx, "db.restore", nil, filepath.Join(dir, "missing.db")), 404)
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFault(t, admin.Call(ctx, "db.restore", nil, junk), 400)
	other := filepath.Join(dir, "other-version.db")
	mustCall(t, admin, "db.backup", nil, other)
	setSchemaVersion(t, other, 42)
	err := admin.Call(ctx, "db.restore", nil, other)
	wantFault(t, err, 400)
	if !strings.Contains(err.Error(), fmt.Sprintf("backup has schema version 42, this server has %d", sqlite.SchemaVersion)) {
		t.Fatalf("restore of another version: %v", err)
	}
	if got := userNames(t, admin); !slices.Equal(got, []string{"admin", "bob"}) || jobCount(t, admin) != 2 {
		t.Fatalf("a refused restore changed the data: users %v", got)
	}

	var r api.DBRestore
	mustCall(t, admin, "db.restore", &r, path)
	if r.Path != path || r.SchemaVersion != sqlite.SchemaVersion || r.AdminTokenRenewed || r.AdminTokenFile != h.paths.AdminToken() {
		t.Fatalf("db.restore = %+v", r)
	}
	// Data as at the backup; the admin token (known to the backup) still
	// works, alice's old token too, and bob's, made later, no longer.
	if got := userNames(t, admin); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("users after restore = %v", got)
	}
	if n := jobCount(t, admin); n != 1 {
		t.Fatalf("%d jobs after restore, want 1", n)
	}
	mustCall(t, admin, "acl.list", &rules)
	if len(rules) != 1 || rules[0].Subject != "user:alice" {
		t.Fatalf("rules after restore = %+v", rules)
	}
	// The ACL cache was dropped: alice's restored rule is in force at once.
	mustCall(t, alice, "job.list", nil)
	wantFault(t, h.as(t, bobTok).Call(ctx, "job.list", nil), 401)

	var audit []api.AuditEntry
	mustCall(t, admin, "audit.list", &audit, map[string]any{"operation": "db.*"})
	if len(audit) == 0 || audit[0].Name != "db.restore" || audit[0].Actor != "admin" || audit[0].Target != path || audit[0].Outcome != "ok" {
		t.Fatalf("audit after restore = %+v", audit)
	}
	// This daemon is registered in the restored servers table and beats.
	if !h.serverRegistered(t) {
		t.Fatal("the server is not in the restored servers table")
	}

	// A restore over a database that does not know the admin token (here:
	// after a reset, which made a new one) rewrites the token file.
	mustCall(t, admin, "db.reset", nil, "reset")
	admin = h.operator(t)
	mustCall(t, admin, "db.restore", &r, path)
	if !r.AdminTokenRenewed {
		t.Fatalf("db.restore after a reset = %+v, want the admin token renewed", r)
	}
	admin = h.operator(t)
	if got := userNames(t, admin); !slices.Equal(got, []string{"admin", "alice"}) {
		t.Fatalf("users after the second restore = %v", got)
	}
}

// serverRegistered reports whether the running daemon's row is in the
// servers table with a fresh heartbeat.
func (h *harness) serverRegistered(t *testing.T) bool {
	t.Helper()
	servers, err := h.srv.store.ListServers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID == h.srv.serverID() && time.Since(s.HeartbeatAt) < time.Minute {
			return true
		}
	}
	return false
}

// setSchemaVersion makes a backup look as if another version made it.
func setSchemaVersion(t *testing.T, path string, v int) {
	t.Helper()
	d, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(`UPDATE schema_migrations SET version = ?`, v); err != nil {
		t.Fatal(err)
	}
}

func TestDBReset(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	_, aliceTok := h.addUser(t, admin, "alice")
	h.activeClient(t, admin, "web1")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}})
	mustCall(t, admin, "group.create", nil, "user", "ops")

	for _, args := range [][]any{nil, {""}, {"yes"}, {"RESET"}, {true}} {
		err := admin.Call(ctx, "db.reset", nil, args...)
		wantFault(t, err, 400)
		if len(args) == 1 && args[0] != true && !strings.Contains(err.Error(), `pass "reset"`) {
			t.Fatalf("db.reset %v: %v", args, err)
		}
	}
	if jobCount(t, admin) != 1 || !slices.Equal(userNames(t, admin), []string{"admin", "alice"}) {
		t.Fatal("a refused reset changed the data")
	}

	var res api.DBReset
	mustCall(t, admin, "db.reset", &res, "reset")
	if res.SchemaVersion != sqlite.SchemaVersion || res.AdminTokenFile != h.paths.AdminToken() {
		t.Fatalf("db.reset = %+v", res)
	}
	// Every token went: the old admin token and alice's are refused; the
	// admin token file holds a fresh one.
	wantFault(t, admin.Call(ctx, "job.list", nil), 401)
	wantFault(t, h.as(t, aliceTok).Call(ctx, "job.list", nil), 401)
	admin = h.operator(t)
	if n := jobCount(t, admin); n != 0 {
		t.Fatalf("%d jobs after reset", n)
	}
	var cs []api.Client
	mustCall(t, admin, "client.list", &cs)
	var gs []api.Group
	mustCall(t, admin, "group.list", &gs, "user")
	if len(cs) != 0 || len(gs) != 0 || !slices.Equal(userNames(t, admin), []string{"admin"}) {
		t.Fatalf("after reset: clients %+v, groups %+v, users %v", cs, gs, userNames(t, admin))
	}
	// The audit trail starts with who reset it.
	var audit []api.AuditEntry
	mustCall(t, admin, "audit.list", &audit)
	if len(audit) != 1 || audit[0].Name != "db.reset" || audit[0].Actor != "admin" || audit[0].Outcome != "ok" ||
		audit[0].ServerID != itoa(h.srv.serverID()) {
		t.Fatalf("audit after reset = %+v", audit)
	}
	if !h.serverRegistered(t) {
		t.Fatal("the server did not register again after the reset")
	}
	// The store works: a new user, a new client, a job.
	carol, _ := h.addUser(t, admin, "carol")
	addRule(t, admin, "carol", "job.read", "*", "allow")
	mustCall(t, carol, "job.list", nil)
	h.activeClient(t, admin, "web2")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web2"}})
	if n := jobCount(t, admin); n != 1 {
		t.Fatalf("%d jobs after submitting on the reset database", n)
	}
}

func TestDBOperationsNeedDBAdmin(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	bob, _ := h.addUser(t, admin, "bob")
	dir := t.TempDir()
	path := filepath.Join(dir, "b.db")
	mustCall(t, admin, "db.backup", nil, path)

	for _, call := range [][]any{{"db.backup", filepath.Join(dir, "bob.db")}, {"db.restore", path}, {"db.reset", "reset"}, {"db.migrate"}} {
		err := bob.Call(ctx, call[0].(string), nil, call[1:]...)
		wantFault(t, err, 403)
	}
	if _, err := os.Stat(filepath.Join(dir, "bob.db")); err == nil {
		t.Fatal("a refused backup wrote a file")
	}
	if !slices.Equal(userNames(t, admin), []string{"admin", "bob"}) {
		t.Fatal("a refused reset or restore changed the data")
	}
	addRule(t, admin, "bob", PermDBAdmin, "*", "allow")
	var v api.DBVersion
	mustCall(t, bob, "db.migrate", &v)
	if v != (api.DBVersion{Version: sqlite.SchemaVersion, Latest: sqlite.SchemaVersion}) {
		t.Fatalf("db.migrate = %+v", v)
	}
	if perms := h.srv.AdminPermissions(); !slices.Contains(perms, PermDBAdmin) || !slices.IsSorted(perms) {
		t.Fatalf("AdminPermissions = %v", perms)
	}
}

func TestDBOperationsAreModifiers(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	var cs []api.OpClass
	mustCall(t, admin, "ops.classes", &cs)
	n := 0
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "db.") {
			n++
			if c.Class != "modifier" || c.DefaultClass != "modifier" || c.Permission != PermDBAdmin {
				t.Errorf("%s = %+v, want a modifier needing %s", c.Name, c, PermDBAdmin)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d db.* operations, want 4", n)
	}

	// A backup waits for a running reader and then runs alone: a reader
	// arriving meanwhile queues behind it.
	reader, err := h.srv.gate.Enter(ctx, gate.Request{Name: "test.read", Class: gate.NonModifier, User: "test"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.db")
	backupDone := make(chan error, 1)
	go func() { backupDone <- admin.Call(ctx, "db.backup", nil, path) }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ops := h.opsNow(t)
		if len(ops) == 2 && ops[1].Name == "db.backup" && ops[1].State == "waiting" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("db.backup is not waiting behind a reader: %+v", ops)
		}
	}
	noWait, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: mustToken(t, h), NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	wantFault(t, noWait.Call(ctx, "job.list", nil), 423)
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the backup ran while a reader held the gate")
	}
	reader.Release()
	if err := <-backupDone; err != nil {
		t.Fatal(err)
	}
	mustCall(t, noWait, "job.list", nil)
}
