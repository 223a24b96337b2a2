package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestAccessControlCLI drives users, groups, the ACL and the audit trail
// from the real binary, as an operator's shell script would.
func TestAccessControlCLI(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))

	// user add prints the token alone on stdout, so it can be captured.
	tok, errOut, code := srv.cli(t, "", "user", "add", "alice")
	tok = strings.TrimSpace(tok)
	if code != 0 || !strings.HasPrefix(tok, "scire_") || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("user add: exit %d, %q, %q", code, tok, errOut)
	}
	asAlice := func(args ...string) (string, string, int) {
		return srv.cli(t, "", append(args, "--token", tok)...)
	}
	if _, errOut, code := asAlice("user", "list"); code != 13 || !strings.Contains(errOut, "user.read") {
		t.Fatalf("alice user list without a rule: exit %d, %q; want 13", code, errOut)
	}
	for _, args := range [][]string{
		{"group", "create", "user", "readers"},
		{"group", "add", "user", "readers", "alice"},
		{"acl", "add", "group:readers", "user.read", "*", "--note", "people who may list users"},
	} {
		if _, errOut, code := srv.cli(t, "", args...); code != 0 {
			t.Fatalf("scirectl %v: exit %d: %s", args, code, errOut)
		}
	}
	out, errOut, code := asAlice("user", "list")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "readers") {
		t.Fatalf("alice user list with a rule: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = srv.cli(t, "", "acl", "check", "alice", "user.read", "*")
	if code != 0 || !strings.Contains(out, "ALLOWED") || !strings.Contains(out, "people who may list users") {
		t.Fatalf("acl check allowed: exit %d, %q", code, out)
	}
	out, _, code = srv.cli(t, "", "acl", "check", "alice", "acl.write", "*")
	if code != 3 || !strings.Contains(out, "DENIED") {
		t.Fatalf("acl check denied: exit %d, %q; want 3", code, out)
	}
	var rules []struct {
		ID, Subject, Permission, Target, Action string
	}
	srv.cliJSON(t, &rules, "acl", "list")
	if len(rules) != 1 || rules[0].Subject != "group:readers" || rules[0].Action != "allow" {
		t.Fatalf("acl list = %+v", rules)
	}
	if _, errOut, code := srv.cli(t, "", "group", "delete", "user", "readers"); code != 16 || !strings.Contains(errOut, "rule") {
		t.Fatalf("deleting a group a rule names: exit %d, %q; want 16", code, errOut)
	}
	var audit []struct {
		Actor, Operation, Outcome string
	}
	srv.cliJSON(t, &audit, "audit", "list", "--outcome", "denied")
	if len(audit) != 1 || audit[0].Actor != "alice" || audit[0].Operation != "user.list" {
		t.Fatalf("audit of denials = %+v", audit)
	}
	// Alice revokes her own token; it stops working at once.
	var toks []struct{ ID string }
	out, errOut, code = asAlice("user", "token", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"user": "alice"`) {
		t.Fatalf("token list: exit %d, %q %q", code, out, errOut)
	}
	srv.cliJSON(t, &toks, "user", "token", "list", "alice")
	if len(toks) != 1 {
		t.Fatalf("alice has %d tokens, want 1", len(toks))
	}
	if _, errOut, code := asAlice("user", "token", "revoke", toks[0].ID); code != 0 {
		t.Fatalf("revoke own token: exit %d, %s", code, errOut)
	}
	if _, _, code := asAlice("user", "list"); code != 11 {
		t.Fatalf("revoked token: exit %d, want 11", code)
	}
}
