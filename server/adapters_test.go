package server

import (
	"context"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
)

// The handlers of users, groups, the ACL and the audit trail are adapters
// over the service: its refusals reach the caller with the fault code and
// the text the handlers sent when they checked their arguments themselves,
// and the audit trail records them as those faults.
func TestServiceRefusalsKeepTheirFaults(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	h.addUser(t, admin, "bob")
	want := func(err error, code int, text string) {
		t.Helper()
		f, ok := api.AsFault(err)
		if !ok || f.Code != code || f.Message != text {
			t.Errorf("err = %v, want fault %d %q", err, code, text)
		}
	}
	rule := func(subject, perm, target string) error {
		return admin.Call(ctx, "acl.add", nil, map[string]any{"subject": subject, "permission": perm, "target": target})
	}
	want(rule("user: bob", "run", "*"), 400, `subject: " bob" has leading or trailing space`)
	want(rule("bob", "", "*"), 400, "acl.add: permission: required")
	want(rule("bob", "acl.write", "web1"), 400, `acl.add: permission: "acl.write" is an admin permission: it acts on the server, so its target must be "*"`)
	want(rule("bob", "run", "client:web9"), 404, `no client with id, fingerprint or name "web9"`)
	want(admin.Call(ctx, "acl.add", nil, map[string]any{"subject": "bob", "permission": "run", "target": "*", "action": "maybe"}), 400,
		`acl.add: action: "maybe" is neither allow nor deny`)
	want(admin.Call(ctx, "user.add", nil, "42"), 400, `user: "42" is all digits, which reads as an id: use a name with a letter in it`)
	want(admin.Call(ctx, "user.token.create", nil, "", " laptop"), 400, `token name: " laptop" has leading or trailing space`)
	want(admin.Call(ctx, "group.create", nil, "client", ""), 400, "name: empty")
	want(admin.Call(ctx, "group.add", nil, "client", "nope", []string{"web9"}), 404, `no client with id, fingerprint or name "web9"`)
	want(admin.Call(ctx, "audit.list", nil, map[string]any{"outcome": "maybe"}), 400, `audit.list: outcome: "maybe" is not ok, error, denied or blacklisted`)
	want(admin.Call(ctx, "audit.list", nil, map[string]any{"limit": 0}), 400, "audit.list: limit: 0 is outside 1..10000")

	// Another user's tokens and decisions: refused by the daemon's
	// authorization, with the method's name, and recorded as denials.
	wantFault(t, alice.Call(ctx, "user.token.create", nil, "bob"), 403)
	wantFault(t, alice.Call(ctx, "user.token.list", nil, "bob"), 403)
	wantFault(t, alice.Call(ctx, "acl.check", nil, "bob", "run", "*"), 403)
	var d api.ACLDecision
	mustCall(t, alice, "acl.check", &d, "alice", "run", "*")
	if d.Allowed || d.Target != "*" {
		t.Errorf("alice's own check = %+v", d)
	}
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"actor": "alice", "outcome": "denied"})
	if len(es) != 3 || es[0].Name != "acl.check" || es[1].Name != "user.token.list" || es[2].Name != "user.token.create" {
		t.Fatalf("alice's denials = %+v", es)
	}

	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "acl.add", "outcome": "error"})
	if len(es) != 5 {
		t.Fatalf("acl.add refusals in the audit trail = %+v, want 5", es)
	}
	for _, e := range es {
		if !strings.HasSuffix(e.Detail, " (fault 400)") && !strings.HasSuffix(e.Detail, " (fault 404)") {
			t.Errorf("audit detail %q does not record the fault", e.Detail)
		}
	}
	if es[len(es)-1].Detail != `subject: " bob" has leading or trailing space (fault 400)` {
		t.Errorf("first acl.add refusal recorded as %q", es[len(es)-1].Detail)
	}
}
