package server

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runstate"
)

// wantFaultText is wantFault that also wants the fault's text to hold each
// of parts (the field it names, the reason).
func wantFaultText(t *testing.T, err error, code int, parts ...string) {
	t.Helper()
	wantFault(t, err, code)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("fault %q does not say %q", err, p)
		}
	}
}

// Every admin permission the server checks — read from the operation
// registry, so a new operation adds its row — is refused as a job's
// permission, even to a user whom a rule grants it on "*" (directly or
// through a user group), alone and in a multicall batch; and a job whose
// stored permission is one of them is denied at dispatch, admin's included.
func TestAdminPermissionNeverAuthorisesAJob(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	ag, agentID := h.activeClient(t, admin, "web1")
	bob, _ := h.addUser(t, admin, "bob")
	mustCall(t, admin, "group.create", nil, "user", "auditors")
	mustCall(t, admin, "group.add", nil, "user", "auditors", []string{"bob"})

	perms := h.srv.AdminPermissions()
	for _, want := range []string{PermACLWrite, PermAuditRead, PermClientAccept, PermDBAdmin, PermJobRead, PermUserWrite, PermBlacklistWrite, PermServerRead} {
		if !strings.Contains(" "+strings.Join(perms, " ")+" ", " "+want+" ") {
			t.Fatalf("AdminPermissions %v lacks %s", perms, want)
		}
	}
	for i, perm := range perms {
		subject := "user:bob"
		if i%2 == 1 {
			subject = "group:auditors"
		}
		addRule(t, admin, subject, perm, "*", "allow")
		job := map[string]any{"script": "id", "targets": []string{"web1"}, "permission": perm}
		wantFaultText(t, bob.Call(ctx, "job.submit", nil, job), 400, "permission", perm, "admin permission")
		wantFaultText(t, admin.Call(ctx, "job.submit", nil, job), 400, "permission")
		// In a multicall, consecutive job.submit calls are one batch: each
		// is refused on its own, and a valid one beside them is not.
		calls := []*client.Call{
			{Method: "job.submit", Args: []any{job}},
			{Method: "job.submit", Args: []any{job}},
		}
		if err := bob.Multicall(ctx, calls...); err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			wantFaultText(t, c.Err, 400, "permission")
		}
	}
	// Names in an admin area that the server does not check, and "*", are
	// not job permissions either.
	for _, perm := range []string{"*", "client.reboot", "acl.anything", "job.submit"} {
		wantFaultText(t, admin.Call(ctx, "job.submit", nil, map[string]any{"script": "id", "targets": []string{"web1"}, "permission": perm}), 400, "permission")
	}
	var jobs []api.Job
	mustCall(t, admin, "job.list", &jobs)
	if len(jobs) != 0 {
		t.Fatalf("refused submissions stored %d jobs", len(jobs))
	}

	// A job stored with an admin permission (by an older server) is denied
	// at dispatch, even though bob holds the permission on "*".
	stored, err := h.srv.store.SubmitJob(ctx, db.NewJob{Name: "legacy", Script: "id", Interpreter: "/bin/sh", Permission: PermAuditRead,
		SubmittedBy: "bob", CreatedAt: time.Now().UTC(), ClientIDs: []int64{mustID(t, agentID)}, Targets: []string{"web1"}})
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	if err := ag.Call(ctx, "agent.getJobs", &docs, 10); err != nil || len(docs) != 0 {
		t.Fatalf("getJobs = %d docs, %v; want none", len(docs), err)
	}
	runs, err := h.srv.store.Runs(ctx, stored.ID)
	if err != nil || len(runs) != 1 || runs[0].State != runstate.Denied || !strings.Contains(runs[0].Reason, "admin permission") {
		t.Fatalf("legacy run = %+v, %v; want denied as an admin permission", runs, err)
	}
}

// A job permission, granted on "*" directly or through a group, never
// grants an admin action; acl.check says why.
func TestJobPermissionNeverGrantsAdmin(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	bob, _ := h.addUser(t, admin, "bob")
	mustCall(t, admin, "group.create", nil, "user", "deployers")
	mustCall(t, admin, "group.add", nil, "user", "deployers", []string{"bob"})
	addRule(t, admin, "user:bob", "deploy", "*", "allow")
	addRule(t, admin, "group:deployers", "run", "*", "allow")

	mustCall(t, bob, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}, "permission": "deploy"})
	wantFault(t, bob.Call(ctx, "acl.add", nil, map[string]any{"subject": "user:bob", "permission": "*", "target": "*"}), 403)
	wantFault(t, bob.Call(ctx, "client.list", nil), 403)
	wantFault(t, bob.Call(ctx, "audit.list", nil), 403)
	wantFault(t, bob.Call(ctx, "user.token.create", nil, "admin"), 403)
	var d api.ACLDecision
	mustCall(t, bob, "acl.check", &d, "bob", "deploy", "*")
	if !d.Allowed || !strings.Contains(d.Reason, "allowed by rule") {
		t.Fatalf("acl.check bob deploy * = %+v, want allowed on every client", d)
	}
	mustCall(t, bob, "acl.check", &d, "bob", "reboot", "*")
	if d.Allowed || !strings.Contains(d.Reason, "on every client") {
		t.Fatalf("acl.check bob reboot * = %+v, want denied on every client", d)
	}
	mustCall(t, bob, "acl.check", &d, "bob", "audit.read", "web1")
	if d.Allowed || !strings.Contains(d.Reason, "admin permission") {
		t.Fatalf("acl.check bob audit.read web1 = %+v, want denied as an admin permission", d)
	}
	mustCall(t, bob, "acl.check", &d, "bob", "deploy", "web1")
	if !d.Allowed {
		t.Fatalf("acl.check bob deploy web1 = %+v, want allowed", d)
	}
	// A rule that could never apply is refused when written.
	for _, r := range []map[string]any{
		{"subject": "user:bob", "permission": "audit.read", "target": "client:web1"},
		{"subject": "user:bob", "permission": "client.reboot", "target": "*"},
	} {
		wantFaultText(t, admin.Call(ctx, "acl.add", nil, r), 400, "permission")
	}
}

// User-group membership is the ACL: changing it needs acl.write. Client
// groups keep group.write.
func TestUserGroupWritesNeedACLWrite(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	carol, _ := h.addUser(t, admin, "carol")
	dave, _ := h.addUser(t, admin, "dave")
	mustCall(t, admin, "group.create", nil, "user", "ops")
	addRule(t, admin, "group:ops", "user.write", "*", "allow")
	addRule(t, admin, "user:carol", "group.write", "*", "allow")
	addRule(t, admin, "user:dave", "acl.write", "*", "allow")

	// group.write: client groups yes, user groups no — no joining ops.
	mustCall(t, carol, "group.create", nil, "client", "web")
	mustCall(t, carol, "group.add", nil, "client", "web", []string{"web1"})
	wantFault(t, carol.Call(ctx, "group.add", nil, "user", "ops", []string{"carol"}), 403)
	wantFault(t, carol.Call(ctx, "group.create", nil, "user", "mine"), 403)
	wantFault(t, carol.Call(ctx, "user.token.create", nil, "admin"), 403)
	var g api.Group
	mustCall(t, admin, "group.get", &g, "user", "ops")
	if len(g.Members) != 0 {
		t.Fatalf("ops members = %v after a refused join", g.Members)
	}
	// acl.write: user groups yes (it could write any rule anyway).
	mustCall(t, dave, "group.create", nil, "user", "oncall")
	mustCall(t, dave, "group.add", nil, "user", "oncall", []string{"dave"})
	mustCall(t, dave, "group.remove", nil, "user", "oncall", []string{"dave"})
	mustCall(t, dave, "group.delete", nil, "user", "oncall")
	wantFault(t, dave.Call(ctx, "group.create", nil, "client", "db"), 403)

	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"actor": "carol", "outcome": "denied"})
	if len(es) < 2 || !strings.Contains(es[len(es)-1].Detail, "acl.write") {
		t.Fatalf("carol's refusals = %+v, want them audited naming acl.write", es)
	}
}

// An agent reports only runs it was sent: a pending run it never received
// (held by not_before here) cannot be reported running or final (409), and
// the refused document changes nothing.
func TestAgentCannotReportARunNeverSent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"},
		"not_before": time.Now().UTC().Add(time.Hour)})
	var j api.Job
	mustCall(t, admin, "job.get", &j, sub.ID)
	runID := mustID(t, j.Runs[0].ID)
	zero := 0
	for _, st := range []jobxml.Status{
		{Run: runID, State: jobxml.StateSucceeded, Exit: &zero, Finished: time.Now().UTC()},
		{Run: runID, State: jobxml.StateRunning, Started: time.Now().UTC()},
	} {
		doc, err := jobxml.EncodeStatuses([]jobxml.Status{st})
		if err != nil {
			t.Fatal(err)
		}
		wantFaultText(t, ag.Call(ctx, "agent.reportStatus", nil, string(doc)), 409, "never sent")
	}
	r, err := h.srv.store.Run(ctx, runID)
	if err != nil || r.State != runstate.Pending {
		t.Fatalf("run after forged reports = %+v, %v; want pending", r, err)
	}
}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return id
}
