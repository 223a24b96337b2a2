package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// adminNamespaces reserves the ACL's own permissions, as the daemon's
// registry does with all of its own.
var adminNamespaces = acl.NewNamespaces([]string{"acl.read", "acl.write"}, []string{"acl"})

// A client target is resolved when the rule is added: the rule names the
// client's id from then on.
func TestAddRule(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	s.Namespaces = adminNamespaces
	web := register(t, s, fp(0), "web1", db.ClientPending)
	addUser(t, s, "alice")
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	off := false
	r, err := s.AddRule(ctx, service.NewRule{Subject: "user:alice", Permission: "run", Target: "client:web1", Action: "deny",
		Note: "not yet", Active: &off, CreatedBy: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	want := db.ACLRule{ID: r.ID, SubjectKind: db.KindUser, Subject: "alice", Permission: "run", TargetKind: db.KindClient, Target: "web1",
		TargetID: web.ID, Allow: false, Active: false, Note: "not yet", CreatedBy: "admin", CreatedAt: r.CreatedAt}
	if r != want {
		t.Fatalf("AddRule = %+v,\nwant %+v", r, want)
	}
	if _, err := s.Policy.Policy(ctx); err != nil || *loads != 2 {
		t.Fatalf("policy loaded %d times, want 2: the add did not drop the snapshot (%v)", *loads, err)
	}
	r, err = s.AddRule(ctx, service.NewRule{Subject: "*", Permission: "acl.read", Target: "*"})
	if err != nil || r.SubjectKind != db.KindAny || r.TargetKind != db.KindAny || !r.Allow || !r.Active {
		t.Fatalf("AddRule(* acl.read *) = %+v, %v; want an active allow for anyone on the server", r, err)
	}
	rules, err := s.Rules(ctx)
	if err != nil || len(rules) != 2 {
		t.Fatalf("Rules = %+v, %v", rules, err)
	}
}

// Each refusal names the field at fault. Those of the rule's own fields
// take the operation's name in front (not Whole); name checks and client
// lookups read whole.
func TestAddRuleRefusals(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.Namespaces = adminNamespaces
	register(t, s, fp(0), "web1", db.ClientActive)
	register(t, s, fp(1), "twin", db.ClientPending)
	register(t, s, fp(2), "twin", db.ClientPending)
	ok := service.NewRule{Subject: "alice", Permission: "run", Target: "web1"}
	with := func(f func(*service.NewRule)) service.NewRule { r := ok; f(&r); return r }
	for _, c := range []struct {
		rule  service.NewRule
		kind  error
		text  string
		whole bool
	}{
		{with(func(r *service.NewRule) { r.Subject = "" }), service.ErrInvalid, "subject: required", false},
		{with(func(r *service.NewRule) { r.Subject = "user: alice" }), service.ErrInvalid, `subject: " alice" has leading or trailing space`, true},
		{with(func(r *service.NewRule) { r.Permission = "" }), service.ErrInvalid, "permission: required", false},
		{with(func(r *service.NewRule) { r.Permission = "run it" }), service.ErrInvalid, `permission: "run it" must be 1..100 characters without spaces`, false},
		{with(func(r *service.NewRule) { r.Target = "" }), service.ErrInvalid, "target: required", false},
		{with(func(r *service.NewRule) { r.Target = "group:" }), service.ErrInvalid, "target: empty", true},
		{with(func(r *service.NewRule) { r.Permission = "acl.write" }), service.ErrInvalid, `permission: "acl.write" is an admin permission`, false},
		{with(func(r *service.NewRule) { r.Permission = "acl.everything"; r.Target = "*" }), service.ErrInvalid, `permission: "acl.everything" is not an admin permission`, false},
		{with(func(r *service.NewRule) { r.Target = "client:web9" }), service.ErrNotFound, `no client with id, fingerprint or name "web9"`, true},
		{with(func(r *service.NewRule) { r.Target = "twin" }), service.ErrConflict, `2 clients are named "twin"`, true},
		{with(func(r *service.NewRule) { r.Action = "maybe" }), service.ErrInvalid, `action: "maybe" is neither allow nor deny`, false},
	} {
		_, err := s.AddRule(ctx, c.rule)
		wantKind(t, err, c.kind, c.text)
		var e *service.Error
		if errors.As(err, &e); e.Whole != c.whole {
			t.Errorf("%q: Whole = %v, want %v", e.Msg, e.Whole, c.whole)
		}
	}
	// What the store refuses: a subject that is no user.
	if _, err := s.AddRule(ctx, ok); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("a rule for alice, who does not exist: %v, want not found", err)
	}
	if rules, _ := s.Rules(ctx); len(rules) != 0 {
		t.Fatalf("rules after the refusals: %+v", rules)
	}
}

func TestRemoveAndSwitchRules(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	addUser(t, s, "alice")
	r, err := s.AddRule(ctx, service.NewRule{Subject: "alice", Permission: "run", Target: "*"})
	if err != nil {
		t.Fatal(err)
	}
	for i, active := range []bool{false, true} {
		if _, err := s.Policy.Policy(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.SetRuleActive(ctx, r.ID, active)
		if err != nil || got.Active != active || *loads != i+1 {
			t.Fatalf("SetRuleActive(%v) = %+v, %v (policy loaded %d times)", active, got, err, *loads)
		}
	}
	gone, err := s.RemoveRule(ctx, r.ID)
	if err != nil || gone.ID != r.ID {
		t.Fatalf("RemoveRule = %+v, %v", gone, err)
	}
	if _, err := s.RemoveRule(ctx, r.ID); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("removing rule %d twice: %v, want not found", r.ID, err)
	}
	if _, err := s.SetRuleActive(ctx, r.ID, true); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("switching a removed rule: %v, want not found", err)
	}
}

// Check explains a decision: on a client, on every client, or (an admin
// permission) on the server; another user's needs acl.read.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.Namespaces = adminNamespaces
	s.Policy.Namespaces = adminNamespaces
	web := register(t, s, fp(0), "web1", db.ClientActive)
	alice, bob := addUser(t, s, "alice"), addUser(t, s, "bob")
	allow, err := s.AddRule(ctx, service.NewRule{Subject: "alice", Permission: "run", Target: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRule(ctx, service.NewRule{Subject: "bob", Permission: "acl.read", Target: "*"}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Check(ctx, alice, "alice", "run", "client:"+web.Fingerprint)
	if err != nil || !d.Allowed || d.Rule == nil || d.Rule.ID != allow.ID || d.Target != "web1 (client 1)" || d.User != "alice" || d.Permission != "run" {
		t.Fatalf("Check(alice run web1) = %+v, %v", d, err)
	}
	if d, err := s.Check(ctx, alice, "alice", "run", ""); err != nil || d.Allowed || d.Target != "*" {
		t.Fatalf("Check(alice run on every client) = %+v, %v; want denied: one client only", d, err)
	}
	if d, err := s.Check(ctx, alice, "bob", "acl.read", "*"); err != nil || !d.Allowed {
		t.Fatalf("Check(bob acl.read), no Authorizer = %+v, %v", d, err)
	}
	_, err = s.Check(ctx, alice, "alice", "run", "web9")
	wantKind(t, err, service.ErrNotFound, `"web9"`)
	if _, err := s.Check(ctx, alice, "nobody", "run", "*"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("checking nobody: %v, want not found", err)
	}

	f := &forbid{}
	s.Authz = f
	_, err = s.Check(ctx, alice, "bob", "run", "*")
	wantKind(t, err, service.ErrForbidden, "needs acl.read")
	if d, err := s.Check(ctx, bob, "bob", "acl.read", "*"); err != nil || !d.Allowed || len(f.asked) != 1 {
		t.Fatalf("Check(own) = %+v, %v; asked %v", d, err, f.asked)
	}

	// Without the daemon's cache, the ACL is read from the store.
	s.Policy = nil
	if d, err := s.Check(ctx, alice, "alice", "run", "web1"); err != nil || !d.Allowed {
		t.Fatalf("Check without a cache = %+v, %v", d, err)
	}
}
