package storetest

// Users, tokens, groups, ACL rules, client deletion and the audit trail
// filters: the data behind access control.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// wantErr fails unless err wraps want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// wantErrText fails unless err wraps want and its text contains every part.
func wantErrText(t *testing.T, what string, err, want error, parts ...string) {
	t.Helper()
	wantErr(t, what, err, want)
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("%s: err = %q, want it to mention %q", what, err, p)
		}
	}
}

// must(f())(t) returns f's value, failing the test on f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func allowRule(sk, s, perm, tk, tg string) db.ACLRule {
	return db.ACLRule{SubjectKind: sk, Subject: s, Permission: perm, TargetKind: tk, Target: tg, Allow: true, Active: true, CreatedBy: "admin"}
}

// clientRule allows a permission on one client, named by id.
func clientRule(sk, s, perm string, clientID int64) db.ACLRule {
	return db.ACLRule{SubjectKind: sk, Subject: s, Permission: perm, TargetKind: db.KindClient, TargetID: clientID, Allow: true, Active: true, CreatedBy: "admin"}
}

func testUserAdmin(t *testing.T, s db.Store) {
	ctx := context.Background()
	alice := must(s.CreateUser(ctx, "alice"))(t)
	if alice.ID == 0 || alice.Name != "alice" || alice.CreatedAt.IsZero() {
		t.Fatalf("CreateUser = %+v", alice)
	}
	_, err := s.CreateUser(ctx, "alice")
	wantErr(t, "duplicate user", err, db.ErrConflict)
	for _, bad := range []string{"", "tab\there", "nl\n", strings.Repeat("x", 201), "bad\xffutf8"} {
		_, err := s.CreateUser(ctx, bad)
		wantErr(t, fmt.Sprintf("user name %q", bad), err, db.ErrInvalid)
	}
	must(s.CreateUser(ctx, strings.Repeat("x", 200)))(t)
	must(s.CreateUser(ctx, "carol"))(t)
	must(s.CreateUser(ctx, "bob"))(t)
	must(s.EnsureUser(ctx, "admin"))(t)

	got := must(s.UserByName(ctx, "alice"))(t)
	if got.ID != alice.ID || !got.CreatedAt.Equal(alice.CreatedAt) {
		t.Fatalf("UserByName = %+v, want %+v", got, alice)
	}
	_, err = s.UserByName(ctx, "nobody")
	wantErrText(t, "unknown user", err, db.ErrNotFound, "nobody")

	users := must(s.ListUsers(ctx))(t)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if want := []string{"admin", "alice", "bob", "carol", strings.Repeat("x", 200)}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ListUsers = %q, want %q", names, want)
	}

	// Tokens: oldest first, revoke once, revoke twice is fine.
	t1 := must(s.CreateToken(ctx, alice.ID, "laptop", []byte{1}))(t)
	t2 := must(s.CreateToken(ctx, alice.ID, "ci", []byte{2}))(t)
	bob := must(s.UserByName(ctx, "bob"))(t)
	bobTok := must(s.CreateToken(ctx, bob.ID, "bob's", []byte{3}))(t)
	toks := must(s.ListTokens(ctx, alice.ID))(t)
	if len(toks) != 2 || toks[0].ID != t1.ID || toks[1].ID != t2.ID || toks[0].Name != "laptop" ||
		toks[0].UserID != alice.ID || toks[0].Revoked || toks[0].CreatedAt.IsZero() {
		t.Fatalf("ListTokens = %+v", toks)
	}
	_, err = s.ListTokens(ctx, 987654)
	wantErr(t, "tokens of unknown user", err, db.ErrNotFound)
	rt := must(s.RevokeToken(ctx, t1.ID))(t)
	if !rt.Revoked || rt.ID != t1.ID || rt.UserID != alice.ID || rt.Name != "laptop" {
		t.Fatalf("RevokeToken = %+v", rt)
	}
	if rt = must(s.RevokeToken(ctx, t1.ID))(t); !rt.Revoked {
		t.Fatalf("second RevokeToken = %+v", rt)
	}
	_, err = s.RevokeToken(ctx, 987654)
	wantErr(t, "revoke unknown token", err, db.ErrNotFound)
	if tok, _, err := s.TokenByID(ctx, t1.ID); err != nil || !tok.Revoked {
		t.Fatalf("TokenByID after revoke = %+v, %v", tok, err)
	}
	toks = must(s.ListTokens(ctx, alice.ID))(t)
	if len(toks) != 2 || !toks[0].Revoked || toks[1].Revoked {
		t.Fatalf("ListTokens after revoke = %+v", toks)
	}

	// Delete: admin refused, unknown, then tokens, memberships and the
	// rules naming the user go with it.
	_, err = s.DeleteUser(ctx, "admin")
	wantErrText(t, "delete admin", err, db.ErrInvalid, "built in")
	_, err = s.DeleteUser(ctx, "nobody")
	wantErr(t, "delete unknown user", err, db.ErrNotFound)
	must(s.CreateGroup(ctx, db.KindUserGroup, "ops", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{User: "alice"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{User: "bob"}))
	r := must(s.AddACLRule(ctx, allowRule(db.KindUser, "alice", "run", db.KindAny, "")))(t)
	bobRule := must(s.AddACLRule(ctx, allowRule(db.KindUser, "bob", "run", db.KindAny, "")))(t)
	gone := must(s.DeleteUser(ctx, "alice"))(t)
	if len(gone) != 1 || gone[0].ID != r.ID || gone[0].Subject != "alice" {
		t.Fatalf("DeleteUser(alice) removed rules %+v, want rule %d", gone, r.ID)
	}
	if rules := must(s.ListACLRules(ctx))(t); len(rules) != 1 || rules[0].ID != bobRule.ID {
		t.Fatalf("rules after deleting alice = %+v, want bob's rule %d only", rules, bobRule.ID)
	}
	must(s.RemoveACLRule(ctx, bobRule.ID))(t)
	_, err = s.UserByName(ctx, "alice")
	wantErr(t, "deleted user", err, db.ErrNotFound)
	for _, id := range []int64{t1.ID, t2.ID} {
		_, _, err := s.TokenByID(ctx, id)
		wantErr(t, "token of deleted user", err, db.ErrNotFound)
	}
	if _, _, err := s.TokenByID(ctx, bobTok.ID); err != nil {
		t.Fatalf("another user's token went too: %v", err)
	}
	g := must(s.Group(ctx, db.KindUserGroup, "ops"))(t)
	if !reflect.DeepEqual(g.Users, []string{"bob"}) {
		t.Fatalf("ops after deleting alice = %q, want [bob]", g.Users)
	}
	// The name is free again.
	must(s.CreateUser(ctx, "alice"))(t)
}

func testGroups(t *testing.T, s db.Store) {
	ctx := context.Background()
	for _, k := range []string{db.KindUserGroup, db.KindClientGroup} {
		g := must(s.CreateGroup(ctx, k, "all", "everything"))(t)
		if g.ID == 0 || g.Kind != k || g.Name != "all" || g.Note != "everything" || g.CreatedAt.IsZero() {
			t.Fatalf("CreateGroup(%s) = %+v", k, g)
		}
		_, err := s.CreateGroup(ctx, k, "all", "")
		wantErr(t, "duplicate "+k, err, db.ErrConflict)
		for _, bad := range []string{"", "a\x00b", "line\nbreak", "\u0085", strings.Repeat("g", 201)} {
			_, err := s.CreateGroup(ctx, k, bad, "")
			wantErr(t, fmt.Sprintf("%s name %q", k, bad), err, db.ErrInvalid)
		}
		_, err = s.Group(ctx, k, "nope")
		wantErrText(t, "unknown "+k, err, db.ErrNotFound, "nope")
		wantErr(t, "delete unknown "+k, s.DeleteGroup(ctx, k, "nope"), db.ErrNotFound)
	}
	for _, k := range []string{"", "user", "client", "group", "USER-GROUP"} {
		_, err := s.CreateGroup(ctx, k, "x", "")
		wantErr(t, fmt.Sprintf("kind %q", k), err, db.ErrInvalid)
		_, err = s.ListGroups(ctx, k)
		wantErr(t, fmt.Sprintf("list kind %q", k), err, db.ErrInvalid)
		wantErr(t, fmt.Sprintf("add to kind %q", k), s.AddGroupMember(ctx, k, "all", db.Member{User: "x"}), db.ErrInvalid)
	}

	// User groups: users and nested user groups.
	for _, u := range []string{"zed", "amy", "kim"} {
		must(s.CreateUser(ctx, u))(t)
	}
	must(s.CreateGroup(ctx, db.KindUserGroup, "ops", ""))(t)
	must(s.CreateGroup(ctx, db.KindUserGroup, "dev", ""))(t)
	for _, m := range []db.Member{{User: "zed"}, {User: "amy"}, {Group: "ops"}, {Group: "dev"}, {User: "amy"}, {Group: "ops"}} {
		ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "all", m)) // repeats are no-ops
	}
	g := must(s.Group(ctx, db.KindUserGroup, "all"))(t)
	if !reflect.DeepEqual(g.Users, []string{"amy", "zed"}) || !reflect.DeepEqual(g.Children, []string{"dev", "ops"}) ||
		len(g.ClientIDs) != 0 || len(g.MemberNames) != 0 || g.Note != "everything" {
		t.Fatalf("user group all = %+v", g)
	}
	wantErr(t, "client in a user group", s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{ClientID: 1}), db.ErrInvalid)
	wantErr(t, "empty member", s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{}), db.ErrInvalid)
	wantErr(t, "two-field member", s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "kim", Group: "ops"}), db.ErrInvalid)
	wantErrText(t, "unknown user member", s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "ghost"}), db.ErrNotFound, "ghost")
	wantErrText(t, "unknown child group", s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "ghosts"}), db.ErrNotFound, "ghosts")
	wantErrText(t, "unknown group", s.AddGroupMember(ctx, db.KindUserGroup, "ghosts", db.Member{User: "kim"}), db.ErrNotFound, "ghosts")

	// Client groups: clients and nested client groups.
	c2 := mustClient(t, s, "web2", true)
	c1 := mustClient(t, s, "web1", false)
	must(s.CreateGroup(ctx, db.KindClientGroup, "web", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c2.ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c1.ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c1.ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "web"}))
	cg := must(s.Group(ctx, db.KindClientGroup, "web"))(t)
	if !reflect.DeepEqual(cg.ClientIDs, []int64{c2.ID, c1.ID}) || !reflect.DeepEqual(cg.MemberNames, []string{"web2", "web1"}) || len(cg.Users) != 0 {
		t.Fatalf("client group web = %+v (want ids in id order with their names)", cg)
	}
	wantErr(t, "user in a client group", s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{User: "kim"}), db.ErrInvalid)
	wantErrText(t, "unknown client", s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: 424242}), db.ErrNotFound, "424242")
	// Kinds are separate: the user group "ops" is not a client group.
	wantErr(t, "user group nested in a client group", s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "ops"}), db.ErrNotFound)

	// Cycles: self, A⊃B⊃A, and a longer loop.
	wantErr(t, "group in itself", s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "ops"}), db.ErrInvalid)
	wantErr(t, "A⊃B⊃A", s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "all"}), db.ErrInvalid)
	must(s.CreateGroup(ctx, db.KindUserGroup, "sre", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "sre"}))
	wantErr(t, "all⊃ops⊃sre⊃all", s.AddGroupMember(ctx, db.KindUserGroup, "sre", db.Member{Group: "all"}), db.ErrInvalid)
	wantErr(t, "client group in itself", s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{Group: "web"}), db.ErrInvalid)
	wantErr(t, "client A⊃B⊃A", s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{Group: "all"}), db.ErrInvalid)
	// A diamond is not a cycle.
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "sre"}))

	list := must(s.ListGroups(ctx, db.KindUserGroup))(t)
	var names []string
	for _, g := range list {
		names = append(names, g.Name)
		if g.Kind != db.KindUserGroup {
			t.Fatalf("listed %+v as a user group", g)
		}
	}
	if !reflect.DeepEqual(names, []string{"all", "dev", "ops", "sre"}) {
		t.Fatalf("ListGroups = %q", names)
	}
	if !reflect.DeepEqual(list[0].Children, []string{"dev", "ops", "sre"}) || !reflect.DeepEqual(list[2].Children, []string{"sre"}) ||
		!reflect.DeepEqual(list[0].Users, []string{"amy", "zed"}) {
		t.Fatalf("ListGroups members = %+v", list)
	}
	clist := must(s.ListGroups(ctx, db.KindClientGroup))(t)
	if len(clist) != 2 || clist[0].Name != "all" || !reflect.DeepEqual(clist[0].Children, []string{"web"}) ||
		!reflect.DeepEqual(clist[1].ClientIDs, []int64{c2.ID, c1.ID}) {
		t.Fatalf("ListGroups(client) = %+v", clist)
	}

	// Remove: direct memberships only; a second removal is ErrNotFound.
	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "zed"}))
	wantErr(t, "remove twice", s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "zed"}), db.ErrNotFound)
	wantErr(t, "remove non-member", s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "kim"}), db.ErrNotFound)
	wantErr(t, "remove unknown user", s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "ghost"}), db.ErrNotFound)
	wantErr(t, "remove from unknown group", s.RemoveGroupMember(ctx, db.KindUserGroup, "ghosts", db.Member{User: "amy"}), db.ErrNotFound)
	wantErr(t, "remove wrong sort", s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{ClientID: c1.ID}), db.ErrInvalid)
	wantErr(t, "remove grandchild", s.RemoveGroupMember(ctx, db.KindClientGroup, "all", db.Member{ClientID: c1.ID}), db.ErrNotFound)
	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "dev"}))
	ok(t, s.RemoveGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c2.ID}))
	g = must(s.Group(ctx, db.KindUserGroup, "all"))(t)
	if !reflect.DeepEqual(g.Users, []string{"amy"}) || !reflect.DeepEqual(g.Children, []string{"ops", "sre"}) {
		t.Fatalf("all after removals = %+v", g)
	}
	cg = must(s.Group(ctx, db.KindClientGroup, "web"))(t)
	if !reflect.DeepEqual(cg.ClientIDs, []int64{c1.ID}) || !reflect.DeepEqual(cg.MemberNames, []string{"web1"}) {
		t.Fatalf("web after removal = %+v", cg)
	}
	// Removing the nesting lifts the cycle ban.
	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "ops"}))
	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "sre"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "sre", db.Member{Group: "all"}))

	// Delete: refused while a rule names the group (as subject or target),
	// then removes its nesting links both ways.
	ur := must(s.AddACLRule(ctx, allowRule(db.KindUserGroup, "ops", "run", db.KindAny, "")))(t)
	cr := must(s.AddACLRule(ctx, allowRule(db.KindAny, "", "run", db.KindClientGroup, "web")))(t)
	wantErrText(t, "delete user group named by a rule", s.DeleteGroup(ctx, db.KindUserGroup, "ops"), db.ErrConflict, fmt.Sprint("rule ", ur.ID))
	wantErrText(t, "delete client group named by a rule", s.DeleteGroup(ctx, db.KindClientGroup, "web"), db.ErrConflict, fmt.Sprint("rule ", cr.ID))
	// The user-group rule does not protect the client group of the same name, nor the reverse.
	must(s.CreateGroup(ctx, db.KindClientGroup, "ops", ""))(t)
	ok(t, s.DeleteGroup(ctx, db.KindClientGroup, "ops"))
	must(s.RemoveACLRule(ctx, ur.ID))(t)
	must(s.RemoveACLRule(ctx, cr.ID))(t)
	ok(t, s.DeleteGroup(ctx, db.KindUserGroup, "ops"))
	ok(t, s.DeleteGroup(ctx, db.KindClientGroup, "web"))
	if _, err := s.Group(ctx, db.KindUserGroup, "ops"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleted group still there: %v", err)
	}
	if cg := must(s.Group(ctx, db.KindClientGroup, "all"))(t); len(cg.Children) != 0 {
		t.Fatalf("client group all still nests deleted web: %+v", cg)
	}
	ok(t, s.DeleteGroup(ctx, db.KindUserGroup, "all")) // child of sre
	if g := must(s.Group(ctx, db.KindUserGroup, "sre"))(t); len(g.Children) != 0 {
		t.Fatalf("sre still nests deleted all: %+v", g)
	}
	if _, err := s.Client(ctx, c1.ID); err != nil {
		t.Fatalf("deleting a group deleted its client: %v", err)
	}
	if _, err := s.UserByName(ctx, "amy"); err != nil {
		t.Fatalf("deleting a group deleted its user: %v", err)
	}
	// And the name can be used again, empty.
	if g := must(s.CreateGroup(ctx, db.KindUserGroup, "ops", ""))(t); len(g.Users)+len(g.Children) != 0 {
		t.Fatalf("recreated group = %+v", g)
	}
	if g := must(s.Group(ctx, db.KindUserGroup, "ops"))(t); len(g.Users)+len(g.Children) != 0 {
		t.Fatalf("recreated group inherited members: %+v", g)
	}
}

func testACLRules(t *testing.T, s db.Store) {
	ctx := context.Background()
	must(s.CreateUser(ctx, "alice"))(t)
	pending := mustClient(t, s, "not-accepted-yet", false)
	web := mustClient(t, s, "web17", true)
	must(s.CreateGroup(ctx, db.KindUserGroup, "ops", ""))(t)
	must(s.CreateGroup(ctx, db.KindClientGroup, "web", ""))(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

	valid := []db.ACLRule{
		{SubjectKind: db.KindUser, Subject: "alice", Permission: "run", TargetKind: db.KindClient, TargetID: pending.ID, Allow: true, Active: true, Note: "n", CreatedBy: "admin", CreatedAt: at},
		{SubjectKind: db.KindUserGroup, Subject: "ops", Permission: "*", TargetKind: db.KindClientGroup, Target: "web", Allow: false, Active: true, CreatedBy: "bob"},
		{SubjectKind: db.KindAny, Permission: "reboot", TargetKind: db.KindAny, Allow: true, Active: false},
		// The target's name is the store's to fill in: whatever the caller
		// wrote there is not what the rule names.
		{SubjectKind: db.KindUser, Subject: "alice", Permission: "run", TargetKind: db.KindClient, Target: "17", TargetID: web.ID, Allow: true, Active: true},
	}
	before := time.Now().Add(-time.Second)
	var added []db.ACLRule
	for i, r := range valid {
		got := must(s.AddACLRule(ctx, r))(t)
		if got.ID == 0 || (i > 0 && got.ID <= added[i-1].ID) {
			t.Fatalf("rule %d id = %d", i, got.ID)
		}
		want := r
		want.ID = got.ID
		switch r.TargetID {
		case pending.ID:
			want.Target = pending.Name
		case web.ID:
			want.Target = web.Name
		}
		if r.CreatedAt.IsZero() {
			if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || got.CreatedAt.Location() != time.UTC {
				t.Fatalf("rule %d CreatedAt = %v, want now in UTC", i, got.CreatedAt)
			}
			want.CreatedAt = got.CreatedAt
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("AddACLRule = %+v, want %+v", got, want)
		}
		added = append(added, got)
	}
	sameRules := func(what string, got []db.ACLRule, want []db.ACLRule) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s = %+v, want %+v", what, got, want)
		}
		for i := range got {
			w := want[i]
			if !got[i].CreatedAt.Equal(w.CreatedAt) {
				t.Fatalf("%s[%d].CreatedAt = %v, want %v", what, i, got[i].CreatedAt, w.CreatedAt)
			}
			g := got[i]
			g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
			if !reflect.DeepEqual(g, w) {
				t.Fatalf("%s[%d] = %+v, want %+v", what, i, g, w)
			}
		}
	}
	sameRules("ListACLRules", must(s.ListACLRules(ctx))(t), added)
	sameRules("Policy().Rules", must(s.Policy(ctx))(t).Rules, added)

	base := valid[0]
	base.CreatedAt = time.Time{}
	invalid := []struct {
		what   string
		edit   func(r *db.ACLRule)
		want   error
		naming string
	}{
		{"subject kind", func(r *db.ACLRule) { r.SubjectKind = "group" }, db.ErrInvalid, "subject kind"},
		{"empty subject kind", func(r *db.ACLRule) { r.SubjectKind = "" }, db.ErrInvalid, "subject kind"},
		{"client as subject", func(r *db.ACLRule) { r.SubjectKind = db.KindClient }, db.ErrInvalid, "subject kind"},
		{"empty subject", func(r *db.ACLRule) { r.Subject = "" }, db.ErrInvalid, "subject"},
		{"subject with *", func(r *db.ACLRule) { r.SubjectKind = db.KindAny }, db.ErrInvalid, "subject"},
		{"target kind", func(r *db.ACLRule) { r.TargetKind = "host" }, db.ErrInvalid, "target kind"},
		{"user as target", func(r *db.ACLRule) { r.TargetKind = db.KindUserGroup }, db.ErrInvalid, "target kind"},
		{"no target client id", func(r *db.ACLRule) { r.TargetID = 0 }, db.ErrInvalid, "target client"},
		{"client named by name only", func(r *db.ACLRule) { r.TargetID, r.Target = 0, "web17" }, db.ErrInvalid, "target client"},
		{"unknown target client", func(r *db.ACLRule) { r.TargetID = 987654 }, db.ErrNotFound, "987654"},
		{"client id with a group target", func(r *db.ACLRule) { r.TargetKind, r.Target = db.KindClientGroup, "web" }, db.ErrInvalid, "target"},
		{"empty group target", func(r *db.ACLRule) { r.TargetKind, r.Target, r.TargetID = db.KindClientGroup, "", 0 }, db.ErrInvalid, "target"},
		{"target with *", func(r *db.ACLRule) { r.TargetKind = db.KindAny }, db.ErrInvalid, "target"},
		{"control char in target", func(r *db.ACLRule) { r.Target = "web\n1" }, db.ErrInvalid, "target"},
		{"empty permission", func(r *db.ACLRule) { r.Permission = "" }, db.ErrInvalid, "permission"},
		{"space in permission", func(r *db.ACLRule) { r.Permission = "run job" }, db.ErrInvalid, "permission"},
		{"tab in permission", func(r *db.ACLRule) { r.Permission = "run\t" }, db.ErrInvalid, "permission"},
		{"long permission", func(r *db.ACLRule) { r.Permission = strings.Repeat("p", 101) }, db.ErrInvalid, "permission"},
		{"unknown subject user", func(r *db.ACLRule) { r.Subject = "mallory" }, db.ErrNotFound, "mallory"},
		{"unknown subject group", func(r *db.ACLRule) { r.SubjectKind, r.Subject = db.KindUserGroup, "ghosts" }, db.ErrNotFound, "ghosts"},
		{"user named as group", func(r *db.ACLRule) { r.SubjectKind = db.KindUserGroup }, db.ErrNotFound, "alice"},
		{"unknown target group", func(r *db.ACLRule) { r.TargetKind, r.Target, r.TargetID = db.KindClientGroup, "dbs", 0 }, db.ErrNotFound, "dbs"},
		{"user group as target group", func(r *db.ACLRule) { r.TargetKind, r.Target, r.TargetID = db.KindClientGroup, "ops", 0 }, db.ErrNotFound, "ops"},
	}
	for _, tc := range invalid {
		r := base
		tc.edit(&r)
		_, err := s.AddACLRule(ctx, r)
		wantErrText(t, tc.what, err, tc.want, tc.naming)
	}
	r := base
	r.Permission = strings.Repeat("p", 100)
	long := must(s.AddACLRule(ctx, r))(t)
	must(s.RemoveACLRule(ctx, long.ID))(t)
	sameRules("rules after refused adds", must(s.ListACLRules(ctx))(t), added)

	// Active switch, both ways, returns the rule as it now is.
	off := must(s.SetACLRuleActive(ctx, added[0].ID, false))(t)
	if off.Active || off.ID != added[0].ID || off.Subject != "alice" || !off.CreatedAt.Equal(at) || off.CreatedBy != "admin" {
		t.Fatalf("SetACLRuleActive(false) = %+v", off)
	}
	if off = must(s.SetACLRuleActive(ctx, added[0].ID, false))(t); off.Active {
		t.Fatalf("repeated SetACLRuleActive(false) = %+v", off)
	}
	on := must(s.SetACLRuleActive(ctx, added[2].ID, true))(t)
	if !on.Active || on.Permission != "reboot" {
		t.Fatalf("SetACLRuleActive(true) = %+v", on)
	}
	_, err := s.SetACLRuleActive(ctx, 987654, true)
	wantErr(t, "activate unknown rule", err, db.ErrNotFound)
	added[0].Active, added[2].Active = false, true
	sameRules("rules after switching", must(s.ListACLRules(ctx))(t), added)

	// Remove returns the rule as it was.
	gone := must(s.RemoveACLRule(ctx, added[1].ID))(t)
	if gone.ID != added[1].ID || gone.Subject != "ops" || gone.Target != "web" || gone.Allow || gone.CreatedBy != "bob" {
		t.Fatalf("RemoveACLRule = %+v", gone)
	}
	_, err = s.RemoveACLRule(ctx, added[1].ID)
	wantErr(t, "remove twice", err, db.ErrNotFound)
	sameRules("rules after removal", must(s.ListACLRules(ctx))(t), []db.ACLRule{added[0], added[2], added[3]})
	// With the rule gone, its groups can be deleted.
	ok(t, s.DeleteGroup(ctx, db.KindUserGroup, "ops"))
	ok(t, s.DeleteGroup(ctx, db.KindClientGroup, "web"))
}

func testDeleteClient(t *testing.T, s db.Store) {
	ctx := context.Background()
	busy := mustClient(t, s, "busy", true)
	idle := mustClient(t, s, "idle", false)
	must(s.CreateGroup(ctx, db.KindClientGroup, "fleet", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "fleet", db.Member{ClientID: busy.ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "fleet", db.Member{ClientID: idle.ID}))
	rule := clientRule(db.KindAny, "", "run", idle.ID)
	rule.Allow = false
	rule = must(s.AddACLRule(ctx, rule))(t)
	busyRule := must(s.AddACLRule(ctx, clientRule(db.KindAny, "", "run", busy.ID)))(t)
	anyRule := must(s.AddACLRule(ctx, allowRule(db.KindAny, "", "run", db.KindAny, "")))(t)
	groupRule := must(s.AddACLRule(ctx, allowRule(db.KindAny, "", "run", db.KindClientGroup, "fleet")))(t)

	_, err := s.DeleteClient(ctx, 987654)
	wantErr(t, "delete unknown client", err, db.ErrNotFound)
	_, err = s.DeleteClient(ctx, busy.ID)
	wantErrText(t, "delete active client", err, db.ErrConflict, "revoke")

	// A run in flight (sent, then received, then running) holds the client.
	j := mustSubmit(t, s, "long", 0, busy.ID)
	ds := claim(t, s, busy.ID, 1)
	must(s.SetClientStatus(ctx, busy.ID, db.ClientRevoked))(t)
	_, err = s.DeleteClient(ctx, busy.ID)
	wantErr(t, "delete client with a sent run", err, db.ErrConflict)
	must(s.AckRuns(ctx, busy.ID, []int64{ds[0].Run.ID}, t0))(t)
	_, err = s.DeleteClient(ctx, busy.ID)
	wantErr(t, "delete client with a received run", err, db.ErrConflict)
	must(s.ReportRuns(ctx, busy.ID, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Running, StartedAt: t0}}, t0))(t)
	_, err = s.DeleteClient(ctx, busy.ID)
	wantErr(t, "delete client with a running run", err, db.ErrConflict)
	zero := 0
	must(s.ReportRuns(ctx, busy.ID, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Succeeded, ExitCode: &zero, Finished: t0}}, t0))(t)
	if rules := must(s.ListACLRules(ctx))(t); len(rules) != 4 {
		t.Fatalf("refused deletes removed rules: %+v", rules)
	}
	if gone := must(s.DeleteClient(ctx, busy.ID))(t); len(gone) != 1 || gone[0].ID != busyRule.ID || gone[0].TargetID != busy.ID || gone[0].Target != "busy" {
		t.Fatalf("DeleteClient(busy) removed rules %+v, want rule %d", gone, busyRule.ID)
	}
	if _, err := s.Client(ctx, busy.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("deleted client: err = %v", err)
	}
	if _, err := s.Run(ctx, ds[0].Run.ID); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("run of deleted client: err = %v", err)
	}
	if _, err := s.Job(ctx, j.ID); err != nil {
		t.Fatalf("the job of a deleted client's run: %v", err)
	}

	// Pending runs do not hold a client that is not active.
	p := mustSubmit(t, s, "queued", 0, idle.ID)
	if gone := must(s.DeleteClient(ctx, idle.ID))(t); len(gone) != 1 || gone[0].ID != rule.ID || gone[0].Allow {
		t.Fatalf("DeleteClient(idle) removed rules %+v, want rule %d", gone, rule.ID)
	}
	if runs := must(s.Runs(ctx, p.ID))(t); len(runs) != 0 {
		t.Fatalf("runs of deleted client = %+v", runs)
	}
	g := must(s.Group(ctx, db.KindClientGroup, "fleet"))(t)
	if len(g.ClientIDs) != 0 {
		t.Fatalf("group still holds deleted clients: %+v", g)
	}
	pd := must(s.Policy(ctx))(t)
	if len(pd.ClientGroupIDs["fleet"]) != 0 {
		t.Fatalf("policy still puts deleted clients in fleet: %+v", pd.ClientGroupIDs)
	}
	// The rules naming the clients went with them, in the same
	// transaction; the others stay.
	rules := must(s.ListACLRules(ctx))(t)
	if len(rules) != 2 || rules[0].ID != anyRule.ID || rules[1].ID != groupRule.ID {
		t.Fatalf("rules after deleting the clients = %+v, want rules %d and %d", rules, anyRule.ID, groupRule.ID)
	}
	if pd := must(s.Policy(ctx))(t); len(pd.Rules) != 2 {
		t.Fatalf("policy rules after deleting the clients = %+v", pd.Rules)
	}
	// The same certificate registers afresh, as a new pending client with
	// a new id, named by no rule.
	again := mustClient(t, s, "idle", false)
	if again.ID == idle.ID || again.ID == busy.ID || again.Status != db.ClientPending {
		t.Fatalf("re-registered deleted client = %+v", again)
	}
}

func testAccessLiteralNames(t *testing.T, s db.Store) {
	ctx := context.Background()
	names := []string{
		`it's "quoted"`, `100%`, `a_b`, `ünïcødé ☃ 日本`, `x'); DROP TABLE users;--`,
		`x"); DROP TABLE user_groups;--`, `back\slash`, `*`, `[a-z]`, ` leading space`,
	}
	for i, n := range names {
		u := must(s.CreateUser(ctx, n))(t)
		if got := must(s.UserByName(ctx, n))(t); got.ID != u.ID || got.Name != n {
			t.Fatalf("user %q came back as %+v", n, got)
		}
		c := mustClient(t, s, fmt.Sprint("lit-client-", i), false)
		for _, k := range []string{db.KindUserGroup, db.KindClientGroup} {
			must(s.CreateGroup(ctx, k, n, n))(t)
			if g := must(s.Group(ctx, k, n))(t); g.Name != n || g.Note != n {
				t.Fatalf("%s %q came back as %+v", k, n, g)
			}
		}
		ok(t, s.AddGroupMember(ctx, db.KindUserGroup, n, db.Member{User: n}))
		ok(t, s.AddGroupMember(ctx, db.KindClientGroup, n, db.Member{ClientID: c.ID}))
		for _, r := range []db.ACLRule{
			clientRule(db.KindUser, n, n, c.ID),
			allowRule(db.KindUserGroup, n, "run", db.KindClientGroup, n),
		} {
			if strings.ContainsAny(r.Permission, " ") {
				r.Permission = "run"
			}
			got := must(s.AddACLRule(ctx, r))(t)
			if got.Subject != n || (got.TargetKind == db.KindClientGroup && got.Target != n) || (got.TargetKind == db.KindClient && (got.Target != c.Name || got.TargetID != c.ID)) {
				t.Fatalf("rule naming %q = %+v", n, got)
			}
		}
	}
	// Lookups by pattern-like names find nothing they were not given.
	for _, probe := range []string{"%", "100", "a%", "axb", "_", "it's", "%DROP%", "ÜNÏCØDÉ ☃ 日本", "x", "a", "leading space"} {
		if _, err := s.UserByName(ctx, probe); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("UserByName(%q): err = %v, want ErrNotFound", probe, err)
		}
		for _, k := range []string{db.KindUserGroup, db.KindClientGroup} {
			if _, err := s.Group(ctx, k, probe); !errors.Is(err, db.ErrNotFound) {
				t.Fatalf("Group(%s, %q): err = %v, want ErrNotFound", k, probe, err)
			}
		}
		_, err := s.DeleteUser(ctx, probe)
		wantErr(t, "delete user "+probe, err, db.ErrNotFound)
		wantErr(t, "delete group "+probe, s.DeleteGroup(ctx, db.KindUserGroup, probe), db.ErrNotFound)
	}
	users := must(s.ListUsers(ctx))(t)
	if len(users) != len(names) {
		t.Fatalf("%d users, want %d (a table dropped or a name matched as a pattern?)", len(users), len(names))
	}
	for _, k := range []string{db.KindUserGroup, db.KindClientGroup} {
		gs := must(s.ListGroups(ctx, k))(t)
		if len(gs) != len(names) {
			t.Fatalf("%d %ss, want %d", len(gs), k, len(names))
		}
		for _, g := range gs {
			if len(g.Users)+len(g.ClientIDs) != 1 || (k == db.KindUserGroup && g.Users[0] != g.Name) {
				t.Fatalf("%s %q members = %+v", k, g.Name, g)
			}
		}
	}
	pd := must(s.Policy(ctx))(t)
	for _, n := range names {
		if !reflect.DeepEqual(pd.UserGroupUsers[n], []string{n}) || len(pd.ClientGroupIDs[n]) != 1 {
			t.Fatalf("policy for %q: users %q, clients %v", n, pd.UserGroupUsers[n], pd.ClientGroupIDs[n])
		}
	}
	// Deleting a user named "%" -like leaves the others, and their rules:
	// only the rule whose subject is the user 100% goes with it.
	before := must(s.ListACLRules(ctx))(t)
	gone := must(s.DeleteUser(ctx, "100%"))(t)
	if len(gone) != 1 || gone[0].SubjectKind != db.KindUser || gone[0].Subject != "100%" {
		t.Fatalf("deleting user 100%% removed rules %+v", gone)
	}
	if after := must(s.ListACLRules(ctx))(t); len(after) != len(before)-1 {
		t.Fatalf("deleting user 100%% left %d rules of %d", len(after), len(before))
	}
	if users := must(s.ListUsers(ctx))(t); len(users) != len(names)-1 {
		t.Fatalf("deleting 100%% left %d users, want %d", len(users), len(names)-1)
	}
	if _, err := s.UserByName(ctx, "a_b"); err != nil {
		t.Fatalf("a_b after deleting 100%%: %v", err)
	}
}

func testOperationFilters(t *testing.T, s db.Store) {
	ctx := context.Background()
	ops := []struct{ name, outcome string }{
		{"acl.add", "ok"},                                   // 0
		{"acl.remove", "fault 423: busy"},                   // 1
		{"aclx.list", "ok"},                                 // 2
		{"ACL.add", "ok"},                                   // 3
		{"aclXadd", "ok"},                                   // 4
		{"job.submit", "ok"},                                // 5
		{"acl.list", "fault 405: blacklisted"},              // 6
		{"acl", "ok"},                                       // 7
		{"job.submit", "fault 403: denied by rule 3 (ops)"}, // 8
		{"100%.x", "ok"},                                    // 9
		{"100a.x", "ok"},                                    // 10
		{"user.create", "OK"},                               // 11: not "ok"
		{"acl.add", ""},                                     // 12: empty outcome is not ok either
		{"ünï.x", "ok"},                                     // 13
		{"ü.x", "ok"},                                       // 14
		{"acl.add", "ok"},                                   // 15
		{"acl.ädd", "ok"},                                   // 16
		{"job.submit", "ok"},                                // 17
		{"acl._", "ok"},                                     // 18
		{"acl%", "ok"},                                      // 19
		{"acl.%", "ok"},                                     // 20
		{"x'); DROP TABLE operations;--", "ok"},             // 21
		{"acl.add", "ok"},                                   // 22
		{"db.reset", "error"},                               // 23
		{"job.submit", "denied"},                            // 24
	}
	for i, o := range ops {
		ok(t, s.RecordOperation(ctx, db.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Actor: "alice", Name: o.name, Outcome: o.outcome, Target: fmt.Sprint(i)}))
	}
	list := func(f db.AuditFilter) []string {
		t.Helper()
		got := must(s.ListOperations(ctx, f))(t)
		var out []string
		for i, o := range got {
			if i > 0 && got[i-1].ID <= o.ID {
				t.Fatalf("ListOperations(%+v) not newest first: %+v", f, got)
			}
			out = append(out, o.Target)
		}
		return out
	}
	cases := []struct {
		f    db.AuditFilter
		want string
	}{
		{db.AuditFilter{Name: "acl.add"}, "22 15 12 0"},
		{db.AuditFilter{Name: "acl.*"}, "22 20 18 16 15 12 6 1 0"},
		{db.AuditFilter{Name: "acl*"}, "22 20 19 18 16 15 12 7 6 4 2 1 0"},
		{db.AuditFilter{Name: "100%.*"}, "9"},
		{db.AuditFilter{Name: "ü*"}, "14 13"},
		{db.AuditFilter{Name: "ünï.*"}, "13"},
		{db.AuditFilter{Name: "acl.%"}, "20"},
		{db.AuditFilter{Name: "%"}, ""},
		{db.AuditFilter{Name: "x'); DROP TABLE operations;--"}, "21"},
		{db.AuditFilter{Name: "job.submit", Outcome: "ok"}, "17 5"},
		{db.AuditFilter{Name: "job.submit", Outcome: "error"}, "24 8"},
		{db.AuditFilter{Outcome: "error"}, "24 23 12 11 8 6 1"},
		{db.AuditFilter{Outcome: "denied"}, "24"}, // other outcomes match exactly
		{db.AuditFilter{Outcome: "fault"}, ""},    // not as a prefix
		{db.AuditFilter{Outcome: "%"}, ""},        // nor as a pattern
		{db.AuditFilter{Outcome: "OK"}, "11"},
		{db.AuditFilter{Name: "acl.*", Outcome: "error"}, "12 6 1"},
		{db.AuditFilter{Since: t0.Add(20 * time.Second)}, "24 23 22 21 20"},
		{db.AuditFilter{Name: "acl.add", Since: t0.Add(12 * time.Second)}, "22 15 12"},
		{db.AuditFilter{Actor: "bob"}, ""},
		{db.AuditFilter{Actor: "alice", Name: "acl.*", Limit: 2}, "22 20"},
		{db.AuditFilter{Name: "acl.*", Limit: 3, BeforeID: 0}, "22 20 18"},
	}
	for _, tc := range cases {
		want := strings.Fields(tc.want)
		got := list(tc.f)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("ListOperations(%+v) = %q, want %q", tc.f, got, want)
		}
	}

	// Paging: pages of 5 cover everything once, newest first.
	all := must(s.ListOperations(ctx, db.AuditFilter{Limit: 1000}))(t)
	if len(all) != len(ops) {
		t.Fatalf("%d operations, want %d", len(all), len(ops))
	}
	var paged []db.AuditEntry
	before := int64(0)
	for pages := 0; ; pages++ {
		if pages > len(ops) {
			t.Fatal("paging does not end")
		}
		page := must(s.ListOperations(ctx, db.AuditFilter{Limit: 5, BeforeID: before}))(t)
		if len(page) == 0 {
			break
		}
		if len(page) > 5 {
			t.Fatalf("page of %d, limit 5", len(page))
		}
		paged = append(paged, page...)
		before = page[len(page)-1].ID
	}
	if !reflect.DeepEqual(paged, all) {
		t.Fatalf("paged = %+v\nall = %+v", paged, all)
	}
	// Paging composes with the filters.
	first := must(s.ListOperations(ctx, db.AuditFilter{Name: "acl.*", Limit: 2}))(t)
	next := must(s.ListOperations(ctx, db.AuditFilter{Name: "acl.*", Limit: 2, BeforeID: first[1].ID}))(t)
	if len(next) != 2 || next[0].Target != "18" || next[1].Target != "16" {
		t.Fatalf("second page of acl.* = %+v", next)
	}
}

func testPolicyNesting(t *testing.T, s db.Store) {
	ctx := context.Background()
	must(s.CreateUser(ctx, "ivan"))(t)
	must(s.CreateUser(ctx, "olga"))(t)
	for _, g := range []string{"ops", "interns"} {
		must(s.CreateGroup(ctx, db.KindUserGroup, g, ""))(t)
	}
	for _, g := range []string{"all", "web"} {
		must(s.CreateGroup(ctx, db.KindClientGroup, g, ""))(t)
	}
	web1 := mustClient(t, s, "web1", true)
	db1 := mustClient(t, s, "db1", true)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "interns", db.Member{User: "ivan"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{User: "olga"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "interns"}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: web1.ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "web"}))
	rule := must(s.AddACLRule(ctx, allowRule(db.KindUserGroup, "ops", "run", db.KindClientGroup, "all")))(t)

	check := func(step, user string, c db.Client, want bool) {
		t.Helper()
		pd := must(s.Policy(ctx))(t)
		d := acl.New(pd).Check(user, "run", acl.Client{ID: c.ID, Name: c.Name})
		if d.Allowed != want {
			t.Fatalf("%s: %s run on %s allowed = %v (%s), want %v", step, user, c.Name, d.Allowed, d.Reason, want)
		}
		if want && (d.Rule == nil || d.Rule.ID != rule.ID || d.Rule.CreatedBy != "admin" || d.Rule.CreatedAt.IsZero()) {
			t.Fatalf("%s: decided by %+v, want rule %d with its creator and time", step, d.Rule, rule.ID)
		}
	}
	check("nested both ways", "ivan", web1, true)
	check("direct member", "olga", web1, true)
	check("client outside the group", "ivan", db1, false)

	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "interns"}))
	check("interns no longer in ops", "ivan", web1, false)
	check("olga unaffected", "olga", web1, true)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "interns"}))
	check("interns back in ops", "ivan", web1, true)

	ok(t, s.RemoveGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "web"}))
	check("web no longer in all", "olga", web1, false)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{ClientID: db1.ID}))
	check("db1 added directly", "ivan", db1, true)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "web"}))
	check("web back in all", "ivan", web1, true)

	// Deeper nesting: a new layer between ops and interns.
	must(s.CreateGroup(ctx, db.KindUserGroup, "staff", ""))(t)
	ok(t, s.RemoveGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "interns"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "staff", db.Member{Group: "interns"}))
	check("interns under staff only", "ivan", web1, false)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{Group: "staff"}))
	check("ops ⊃ staff ⊃ interns", "ivan", web1, true)

	must(s.SetACLRuleActive(ctx, rule.ID, false))(t)
	check("rule switched off", "ivan", web1, false)
	must(s.SetACLRuleActive(ctx, rule.ID, true))(t)
	check("rule switched on", "ivan", web1, true)
	must(s.RemoveACLRule(ctx, rule.ID))(t)
	check("rule removed", "ivan", web1, false)
}
