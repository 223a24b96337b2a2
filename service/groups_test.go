package service_test

import (
	"context"
	"errors"
	"testing"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

func TestCreateAndListGroups(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	if _, err := s.CreateGroup(ctx, db.KindUserGroup, "ops", "the on-call"); err != nil {
		t.Fatal(err)
	}
	web, err := s.CreateGroup(ctx, db.KindClientGroup, "web", "")
	if err != nil || web.Name != "web" || web.Kind != db.KindClientGroup {
		t.Fatalf("CreateGroup(client web) = %+v, %v", web, err)
	}
	// The kinds have separate names.
	if _, err := s.CreateGroup(ctx, db.KindClientGroup, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateGroup(ctx, db.KindUserGroup, "ops", ""); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("a second user group ops: %v, want a conflict", err)
	}
	_, err = s.CreateGroup(ctx, "team", "x", "")
	wantKind(t, err, service.ErrInvalid, `kind: "team" is neither`)
	_, err = s.CreateGroup(ctx, db.KindUserGroup, "7", "")
	wantKind(t, err, service.ErrInvalid, `name: "7" is all digits`)
	_, err = s.CreateGroup(ctx, db.KindUserGroup, "", "")
	wantKind(t, err, service.ErrInvalid, "name: empty")

	all, err := s.Groups(ctx, "")
	if err != nil || len(all) != 3 || all[0].Kind != db.KindClientGroup || all[2].Kind != db.KindUserGroup {
		t.Fatalf("Groups() = %+v, %v; want the two client groups, then the user group", all, err)
	}
	users, err := s.Groups(ctx, db.KindUserGroup)
	if err != nil || len(users) != 1 || users[0].Note != "the on-call" {
		t.Fatalf("Groups(user) = %+v, %v", users, err)
	}
	if _, err := s.Group(ctx, db.KindUserGroup, "nope"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("Group(nope): %v, want not found", err)
	}
}

// Members go in in order, up to the first failure; nested groups expand
// into their active clients, each once.
func TestGroupMembersAndTheirClients(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	a := register(t, s, fp(0), "a", db.ClientActive)
	b := register(t, s, fp(1), "b", db.ClientActive)
	register(t, s, fp(2), "pending", db.ClientPending)
	for _, g := range []string{"web", "all"} {
		if _, err := s.CreateGroup(ctx, db.KindClientGroup, g, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddGroupMembers(ctx, db.KindClientGroup, "web", []string{"a", "client:" + fp(2), "ghost", "b"})
	wantKind(t, err, service.ErrNotFound, `no client with id, fingerprint or name "ghost"`)
	if _, err := s.Policy.Policy(ctx); err != nil || *loads != 2 {
		t.Fatalf("policy loaded %d times, want 2: a partial change drops the snapshot too (%v)", *loads, err)
	}
	g, err := s.AddGroupMembers(ctx, db.KindClientGroup, "all", []string{"group:web", b.Fingerprint, "a"})
	if err != nil || len(g.ClientIDs) != 2 || len(g.Children) != 1 || g.Children[0] != "web" {
		t.Fatalf("AddGroupMembers(all) = %+v, %v", g, err)
	}
	if _, err := s.AddGroupMembers(ctx, db.KindClientGroup, "web", []string{"group:all"}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("nesting all in web (a cycle): %v, want invalid", err)
	}
	cs, err := s.GroupClients(ctx, []string{"all", "web"})
	if err != nil || len(cs) != 2 || cs[0].ID+cs[1].ID != a.ID+b.ID || cs[0].ID == cs[1].ID {
		t.Fatalf("GroupClients(all, web) = %+v, %v; want a and b (the active ones, once each)", cs, err)
	}
	_, err = s.GroupClients(ctx, []string{"web", "nope"})
	wantKind(t, err, service.ErrNotFound, `no client group "nope"`)

	g, err = s.RemoveGroupMembers(ctx, db.KindClientGroup, "web", []string{"pending"})
	if err != nil || len(g.ClientIDs) != 1 || g.ClientIDs[0] != a.ID {
		t.Fatalf("RemoveGroupMembers(web, pending) = %+v, %v", g, err)
	}
	if _, err := s.RemoveGroupMembers(ctx, db.KindClientGroup, "web", []string{"b"}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("removing b, not in web: %v, want not found", err)
	}
	addUser(t, s, "alice")
	if _, err := s.CreateGroup(ctx, db.KindUserGroup, "ops", ""); err != nil {
		t.Fatal(err)
	}
	if g, err := s.AddGroupMembers(ctx, db.KindUserGroup, "ops", []string{"user:alice"}); err != nil || len(g.Users) != 1 || g.Users[0] != "alice" {
		t.Fatalf("AddGroupMembers(ops, alice) = %+v, %v", g, err)
	}
	_, err = s.AddGroupMembers(ctx, "team", "ops", []string{"alice"})
	wantKind(t, err, service.ErrInvalid, `kind: "team"`)
}

// A group named by a rule stays until the rule goes; a deleted group is
// returned as it was.
func TestDeleteGroupNamedByARule(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	addUser(t, s, "alice")
	if _, err := s.CreateGroup(ctx, db.KindClientGroup, "web", "front"); err != nil {
		t.Fatal(err)
	}
	r, err := s.Store.AddACLRule(ctx, db.ACLRule{SubjectKind: db.KindUser, Subject: "alice", Permission: "run",
		TargetKind: db.KindClientGroup, Target: "web", Allow: true, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteGroup(ctx, db.KindClientGroup, "web"); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("deleting web while rule %d names it: %v, want a conflict", r.ID, err)
	}
	if _, err := s.Store.RemoveACLRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	g, err := s.DeleteGroup(ctx, db.KindClientGroup, "web")
	if err != nil || g.Name != "web" || g.Note != "front" {
		t.Fatalf("DeleteGroup(web) = %+v, %v", g, err)
	}
	if _, err := s.DeleteGroup(ctx, db.KindClientGroup, "web"); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("deleting web twice: %v, want not found", err)
	}
}
