package server

import (
	"context"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
)

// A deleted client's rules never pass to a machine registered after it:
// not by its id (ids are never reused), not by its name (rules name a
// client by id, resolved when written), and the rules go with the client,
// which the audit record of the delete says.
func TestDeletedClientsRulesNeverPassToANewMachine(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	h.activeClient(t, admin, "web1")
	h.activeClient(t, admin, "web2")
	_, id3 := h.activeClient(t, admin, "web3") // the newest client
	byID := addRule(t, admin, "user:alice", "run", "client:"+id3, "allow")
	byName := addRule(t, admin, "user:alice", "reboot", "client:web3", "allow")
	other := addRule(t, admin, "user:alice", "run", "client:web1", "allow")

	// Written rules name the client by id, shown with its name.
	var rules []api.ACLRule
	mustCall(t, admin, "acl.list", &rules)
	for _, r := range rules {
		if (r.ID == byID || r.ID == byName) && (r.Target != "client:web3" || r.TargetID != id3) {
			t.Fatalf("rule naming web3 = %+v, want target client:web3 with target_id %s", r, id3)
		}
	}
	mustCall(t, alice, "job.submit", nil, map[string]any{"script": "true", "targets": []string{id3}}) // allowed, by rule

	mustCall(t, admin, "client.revoke", nil, []string{id3})
	mustCall(t, admin, "client.delete", nil, []string{id3})

	// A new machine, same host name: a new id, and neither rule.
	_, newID := h.activeClient(t, admin, "web3")
	if newID == id3 {
		t.Fatalf("the new machine got the deleted client's id %s", id3)
	}
	for _, perm := range []string{"run", "reboot"} {
		wantFault(t, alice.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "permission": perm, "targets": []string{newID}}), 403)
		var d api.ACLDecision
		mustCall(t, admin, "acl.check", &d, "alice", perm, newID)
		if d.Allowed {
			t.Fatalf("acl.check alice %s on the new web3 = %+v, want denied", perm, d)
		}
	}
	mustCall(t, admin, "acl.list", &rules)
	if len(rules) != 1 || rules[0].ID != other {
		t.Fatalf("rules after deleting web3 = %+v, want only rule %s", rules, other)
	}

	// The audit record of the delete names the rules that went.
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "client.delete"})
	if len(es) != 1 || es[0].Outcome != "ok" ||
		!strings.Contains(es[0].Detail, "rule "+byID+" (allow user:alice run on client:web3 #"+id3+")") ||
		!strings.Contains(es[0].Detail, "rule "+byName+" (allow user:alice reboot on client:web3 #"+id3+")") {
		t.Fatalf("audit of client.delete = %+v, want it to name rules %s and %s", es, byID, byName)
	}
}

// A rule names a registered client; a name nobody carries is not found,
// rather than waiting for whichever machine takes that name first.
func TestRuleTargetsAreResolvedWhenWritten(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.addUser(t, admin, "alice")
	err := admin.Call(ctx, "acl.add", nil, map[string]any{"subject": "user:alice", "permission": "run", "target": "client:not-yet"})
	wantFault(t, err, 404)
	ag, fp := h.agentClient(t)
	id := register(t, ag, "not-yet") // pending clients can be named
	var r api.ACLRule
	mustCall(t, admin, "acl.add", &r, map[string]any{"subject": "user:alice", "permission": "run", "target": "client:" + fp})
	if r.Target != "client:not-yet" || r.TargetID != id {
		t.Fatalf("rule added by fingerprint = %+v, want client:not-yet with target_id %s", r, id)
	}
}

// Deleting a user takes the rules naming it along, so a user created later
// under the same name inherits none of them; the audit says which went.
func TestDeletedUsersRulesNeverPassToANewUser(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.addUser(t, admin, "alice")
	h.activeClient(t, admin, "web1")
	rule := addRule(t, admin, "user:alice", "run", "*", "allow")
	mustCall(t, admin, "user.delete", nil, "alice")
	alice, _ := h.addUser(t, admin, "alice")
	wantFault(t, alice.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}}), 403)
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "user.delete"})
	if len(es) != 1 || !strings.Contains(es[0].Detail, "rule "+rule+" (allow user:alice run on *)") {
		t.Fatalf("audit of user.delete = %+v, want it to name rule %s", es, rule)
	}
}

// Names that read as ids or fingerprints are refused, naming the field.
func TestNamesThatReadAsIdentitiesAreRefused(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	fp := strings.Repeat("0a", 32)
	for _, tc := range []struct {
		facts map[string]any
		field string
	}{
		{map[string]any{"hostname": "12345"}, "facts.hostname"},
		{map[string]any{"hostname": "web", "name": "7"}, "facts.name"},
		{map[string]any{"hostname": "web", "name": fp}, "facts.name"},
		{map[string]any{"hostname": "web", "name": "tab\there"}, "facts.name"},
		{map[string]any{"hostname": " web"}, "facts.hostname"},
		{map[string]any{"hostname": "*"}, "facts.hostname"},
	} {
		ag, _ := h.agentClient(t)
		tc.facts["os"], tc.facts["arch"], tc.facts["version"] = "linux", "amd64", "t"
		err := ag.Call(ctx, "agent.register", nil, tc.facts)
		wantFault(t, err, 400)
		if !strings.Contains(err.Error(), tc.field) {
			t.Fatalf("agent.register %v: %v, want it to name %s", tc.facts, err, tc.field)
		}
	}
	for _, name := range []string{"42", fp} {
		err := admin.Call(ctx, "user.add", nil, name)
		wantFault(t, err, 400)
		if !strings.Contains(err.Error(), "user") {
			t.Fatalf("user.add %q: %v, want it to name the field", name, err)
		}
		for _, kind := range []string{"client", "user"} {
			err := admin.Call(ctx, "group.create", nil, kind, name)
			wantFault(t, err, 400)
			if !strings.Contains(err.Error(), "name") {
				t.Fatalf("group.create %s %q: %v, want it to name the field", kind, name, err)
			}
		}
	}
	var cs []api.Client
	mustCall(t, admin, "client.list", &cs)
	if len(cs) != 0 {
		t.Fatalf("refused registrations stored clients: %+v", cs)
	}
}
