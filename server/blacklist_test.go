package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
)

func writeBlacklist(t *testing.T, dataDir, body string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "blacklist"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBlacklist(t *testing.T) {
	ctx := context.Background()
	h := newHarnessConfig(t, func(c *Config) {
		writeBlacklist(t, c.DataDir, "% RefactorErl's form\n['job.submit', acl.*].\n")
	})
	admin := h.operator(t)

	// Refused for everyone, admin included, with 405 naming the operation
	// and the entry; logged and audited.
	err := admin.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"x"}})
	var f *api.Fault
	if !asFault(err, &f) || f.Code != 405 || !strings.Contains(f.Message, "job.submit") || !strings.Contains(f.Message, ":2:") {
		t.Fatalf("blacklisted job.submit: %v; want fault 405 naming it and line 2", err)
	}
	wantFault(t, admin.Call(ctx, "acl.list", nil), 405)
	mustCall(t, admin, "job.list", nil)
	if !strings.Contains(h.log.String(), "operation blacklisted") {
		t.Error("the refusal is not logged")
	}
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"outcome": "blacklisted"})
	if len(es) != 2 || es[0].Name != "acl.list" || es[1].Name != "job.submit" || es[0].Actor != "admin" {
		t.Fatalf("audit of blacklisted calls = %+v", es)
	}

	var list []api.BlacklistEntry
	mustCall(t, admin, "blacklist.list", &list)
	if len(list) != 2 || list[1].Pattern != "acl.*" || len(list[1].Matches) < 5 || list[0].Line != 2 {
		t.Fatalf("blacklist.list = %+v", list)
	}
	var chk api.BlacklistCheck
	mustCall(t, admin, "blacklist.check", &chk, "acl.add")
	if !chk.Blacklisted || chk.Pattern != "acl.*" {
		t.Fatalf("blacklist.check acl.add = %+v", chk)
	}
	wantFault(t, admin.Call(ctx, "blacklist.check", nil, "acl.nope"), 404)

	// Edits through the server rewrite the file and apply at once.
	mustCall(t, admin, "blacklist.remove", &list, []string{"job.submit"})
	wantFault(t, admin.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"x"}}), 404) // through, to the unknown target
	wantFault(t, admin.Call(ctx, "blacklist.remove", nil, []string{"job.submit"}), 404)
	wantFault(t, admin.Call(ctx, "blacklist.add", nil, []string{"job.sumbit"}), 400)
	mustCall(t, admin, "blacklist.add", &list, []string{"user.*"})
	wantFault(t, admin.Call(ctx, "user.list", nil), 405)
	data, _ := os.ReadFile(h.paths.Blacklist())
	if !strings.Contains(string(data), "user.*") || strings.Contains(string(data), "job.submit") {
		t.Fatalf("file after edits:\n%s", data)
	}
	// Blacklisting blacklist.remove itself needs force.
	err = admin.Call(ctx, "blacklist.add", nil, []string{"blacklist.*"})
	if !asFault(err, &f) || f.Code != 400 || !strings.Contains(f.Message, "force") {
		t.Fatalf("self-lockout without force: %v", err)
	}
	mustCall(t, admin, "blacklist.add", nil, []string{"blacklist.remove"}, true)
	wantFault(t, admin.Call(ctx, "blacklist.remove", nil, []string{"blacklist.remove"}), 405)

	// A reload (SIGHUP) of a broken file keeps the list in force.
	writeBlacklist(t, h.paths.Dir, "job.list\nno.such.op\n")
	if err := h.srv.LoadBlacklist(); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Fatalf("reload of a bad file: %v", err)
	}
	mustCall(t, admin, "job.list", nil)
	wantFault(t, admin.Call(ctx, "user.list", nil), 405)
	writeBlacklist(t, h.paths.Dir, "job.list\n")
	if err := h.srv.LoadBlacklist(); err != nil {
		t.Fatal(err)
	}
	wantFault(t, admin.Call(ctx, "job.list", nil), 405)
	mustCall(t, admin, "user.list", nil)
}

func asFault(err error, f **api.Fault) bool { return errors.As(err, f) }

// A malformed blacklist, or one naming no operation, stops the start with
// the file, line, column and reason.
func TestMalformedBlacklistStopsStart(t *testing.T) {
	for body, want := range map[string]string{
		"[job.submit, db.reset":     "blacklist:1:",
		"job.submit\njob.sumbit\n":  "blacklist:2:1: unknown operation \"job.sumbit\"",
		"[job.submit, {a, b}].\n":   "blacklist:1:14:",
		"job.submit extra # two\n":  "blacklist:1:",
		"['job.submit' 'acl.add'].": "blacklist:1:",
	} {
		dir := filepath.Join(t.TempDir(), "data")
		writeBlacklist(t, dir, body)
		_, err := New(context.Background(), Config{DataDir: dir, Log: slog.New(slog.DiscardHandler)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("blacklist %q: err = %v, want %q", body, err, want)
		}
	}
}
