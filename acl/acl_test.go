package acl

import (
	"context"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/db"
)

func rule(id int64, sk, s, perm, tk, t string, allow bool) db.ACLRule {
	return db.ACLRule{ID: id, SubjectKind: sk, Subject: s, Permission: perm, TargetKind: tk, Target: t, Allow: allow, Active: true}
}

// naming makes a client rule name the client with that id.
func naming(r db.ACLRule, clientID int64) db.ACLRule {
	r.TargetID = clientID
	return r
}

func TestCheck(t *testing.T) {
	web := Client{ID: 1, Name: "web1"}
	dbc := Client{ID: 2, Name: "db1"}
	data := db.PolicyData{
		Rules: []db.ACLRule{
			rule(1, db.KindUserGroup, "ops", "run", db.KindClientGroup, "all", true),
			rule(2, db.KindUserGroup, "interns", "*", db.KindClientGroup, "databases", false),
			naming(rule(3, db.KindUser, "bob", "reboot", db.KindClient, "web1", true), 1),
			naming(rule(4, db.KindAny, "", "*", db.KindClient, "db1", false), 2),
			{ID: 5, SubjectKind: db.KindUser, Subject: "carol", Permission: "run", TargetKind: db.KindAny, Allow: true, Active: false},
			rule(6, db.KindUser, "admin", "wipe", db.KindAny, "", false),
		},
		UserGroupUsers:    map[string][]string{"ops": {"alice"}, "interns": {"ivan"}},
		UserGroupChildren: map[string][]string{"ops": {"interns"}}, // interns are ops too
		ClientGroupIDs:    map[string][]int64{"web": {1}, "databases": {2}},
		ClientGroupChild:  map[string][]string{"all": {"web", "databases"}},
	}
	p := New(data)
	cases := []struct {
		user, perm string
		c          Client
		allow      bool
		rule       int64
	}{
		{"alice", "run", web, true, 1},     // via group ops, nested client group
		{"alice", "run", dbc, false, 4},    // wildcard deny on db1 wins over allow
		{"ivan", "run", web, true, 1},      // member of child group interns ⇒ member of ops
		{"ivan", "run", dbc, false, 2},     // deny through the nested group wins
		{"bob", "reboot", web, true, 3},    // user rule on client by name
		{"bob", "run", web, false, 0},      // no rule ⇒ deny
		{"carol", "run", web, false, 0},    // inactive rule ignored
		{"admin", "run", dbc, true, 0},     // wildcard deny does not bind admin
		{"admin", "wipe", web, false, 6},   // a deny naming admin does
		{"alice", "reboot", web, false, 0}, // permission must match
		{`'; drop`, "run", web, false, 0},
	}
	for _, tc := range cases {
		d := p.Check(tc.user, tc.perm, tc.c)
		var got int64
		if d.Rule != nil {
			got = d.Rule.ID
		}
		if d.Allowed != tc.allow || got != tc.rule {
			t.Errorf("Check(%s, %s, %s) = allowed %v by rule %d (%s); want %v by rule %d", tc.user, tc.perm, tc.c.Name, d.Allowed, got, d.Reason, tc.allow, tc.rule)
		}
		if d.Rule != nil && !strings.Contains(d.Reason, "rule") {
			t.Errorf("reason %q does not name the rule", d.Reason)
		}
	}
}

func TestGroupCycleTerminates(t *testing.T) {
	p := New(db.PolicyData{
		Rules:             []db.ACLRule{rule(1, db.KindUserGroup, "b", "run", db.KindAny, "", true)},
		UserGroupUsers:    map[string][]string{"a": {"u"}},
		UserGroupChildren: map[string][]string{"a": {"b"}, "b": {"a"}},
	})
	if !p.Check("u", "run", Client{ID: 1}).Allowed {
		t.Fatal("member of a (child of b) not allowed by b's rule")
	}
}

func TestCacheInvalidate(t *testing.T) {
	loads := 0
	c := &Cache{Load: func(context.Context) (db.PolicyData, error) { loads++; return db.PolicyData{}, nil }}
	for i := 0; i < 3; i++ {
		if _, err := c.Policy(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	c.Invalidate()
	c.Policy(context.Background())
	if loads != 2 {
		t.Fatalf("loads = %d, want 2 (one, then one after Invalidate)", loads)
	}
}

// Admin permissions act on the server: only rules targeting "*" grant or
// refuse them, so a rule on one client cannot make someone an ACL editor.
func TestCheckServer(t *testing.T) {
	p := New(db.PolicyData{
		Rules: []db.ACLRule{
			naming(rule(1, db.KindUser, "alice", "acl.write", db.KindClient, "web1", true), 1),
			rule(2, db.KindUserGroup, "auditors", "audit.read", db.KindAny, "", true),
			rule(3, db.KindUser, "admin", "user.write", db.KindAny, "", false),
			rule(4, db.KindAny, "", "client.delete", db.KindAny, "", false),
			rule(5, db.KindUser, "bob", "*", db.KindAny, "", true),
		},
		UserGroupUsers: map[string][]string{"auditors": {"carol"}},
	})
	cases := []struct {
		user, perm string
		allow      bool
		rule       int64
	}{
		{"alice", "acl.write", false, 0}, // rule 1 targets a client, not the server
		{"carol", "audit.read", true, 2},
		{"carol", "acl.read", false, 0},
		{"admin", "user.write", false, 3},   // a deny naming admin binds it
		{"admin", "client.delete", true, 0}, // a wildcard deny does not
		{"bob", "client.delete", false, 4},  // deny wins over bob's allow-all
		{"bob", "group.write", true, 5},
	}
	for _, tc := range cases {
		d := p.CheckServer(tc.user, tc.perm)
		var got int64
		if d.Rule != nil {
			got = d.Rule.ID
		}
		if d.Allowed != tc.allow || got != tc.rule {
			t.Errorf("CheckServer(%s, %s) = %v by rule %d (%s); want %v by rule %d", tc.user, tc.perm, d.Allowed, got, d.Reason, tc.allow, tc.rule)
		}
	}
	if d := p.CheckServer("alice", "acl.write"); !strings.Contains(d.Reason, "on the server") {
		t.Errorf("reason %q does not say where", d.Reason)
	}
}

// Admin permissions and job permissions are separate namespaces: a rule
// granting an admin permission on "*" never authorises a job asking for
// it (not even admin's), and a job permission is never checked on the
// server; "*" in a rule still spans both, by the target it names.
func TestNamespacesKeepAdminAndJobPermissionsApart(t *testing.T) {
	ns := NewNamespaces([]string{"audit.read", "acl.write"}, []string{"audit", "acl", "client"})
	c := &Cache{Namespaces: ns, Load: func(context.Context) (db.PolicyData, error) {
		return db.PolicyData{Rules: []db.ACLRule{
			rule(1, db.KindUser, "bob", "audit.read", db.KindAny, "", true),
			rule(2, db.KindUserGroup, "ops", "acl.write", db.KindAny, "", true),
			rule(3, db.KindUser, "bob", "deploy", db.KindAny, "", true),
			rule(4, db.KindUser, "carol", "*", db.KindAny, "", true),
		}, UserGroupUsers: map[string][]string{"ops": {"bob"}}}, nil
	}}
	p, err := c.Policy(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	web := Client{ID: 1, Name: "web1"}
	for _, tc := range []struct {
		user, perm string
	}{{"bob", "audit.read"}, {"bob", "acl.write"}, {"admin", "audit.read"}, {"carol", "client.reboot"}, {"carol", "*"}} {
		if d := p.Check(tc.user, tc.perm, web); d.Allowed || !strings.Contains(d.Reason, "job") {
			t.Errorf("Check(%s, %s) = %+v, want denied naming the namespace", tc.user, tc.perm, d)
		}
	}
	if d := p.CheckServer("bob", "deploy"); d.Allowed || !strings.Contains(d.Reason, "not an admin permission") {
		t.Errorf("CheckServer(bob, deploy) = %+v, want denied", d)
	}
	for _, tc := range []struct {
		user, perm string
		server     bool
	}{{"bob", "audit.read", true}, {"bob", "acl.write", true}, {"bob", "deploy", false}, {"carol", "acl.write", true}, {"carol", "run", false}} {
		var d Decision
		if tc.server {
			d = p.CheckServer(tc.user, tc.perm)
		} else {
			d = p.Check(tc.user, tc.perm, web)
		}
		if !d.Allowed {
			t.Errorf("%s %s: %+v, want allowed", tc.user, tc.perm, d)
		}
	}
	if err := ns.CheckRulePermission("audit.read", false); err == nil {
		t.Error("a client-targeted rule naming an admin permission was accepted")
	}
	if err := ns.CheckRulePermission("client.reboot", true); err == nil {
		t.Error("a rule naming a reserved name that is no admin permission was accepted")
	}
	for _, ok := range []struct {
		perm string
		any  bool
	}{{"*", false}, {"*", true}, {"run", false}, {"run", true}, {"acl.write", true}} {
		if err := ns.CheckRulePermission(ok.perm, ok.any); err != nil {
			t.Errorf("CheckRulePermission(%s, %v) = %v", ok.perm, ok.any, err)
		}
	}
	if NewNamespaces(nil, nil).Reserved("acl.write") || (Namespaces{}).CheckJobPermission("audit.read") != nil {
		t.Error("the zero Namespaces reserves names")
	}
}

// A rule naming a client matches that client's id and nothing else: not a
// later client carrying its name, nor one whose name is its id.
func TestClientRulesMatchByIDOnly(t *testing.T) {
	p := New(db.PolicyData{Rules: []db.ACLRule{
		naming(rule(1, db.KindUser, "bob", "run", db.KindClient, "web1", true), 3),
		rule(2, db.KindUser, "bob", "reboot", db.KindClient, "web1", true), // schema 2 could not resolve it
	}})
	for _, tc := range []struct {
		c     Client
		allow bool
	}{
		{Client{ID: 3, Name: "web1"}, true},
		{Client{ID: 3, Name: "renamed"}, true},
		{Client{ID: 4, Name: "web1"}, false}, // a successor with the same name
		{Client{ID: 5, Name: "3"}, false},    // a name that reads as the id
	} {
		if d := p.Check("bob", "run", tc.c); d.Allowed != tc.allow {
			t.Errorf("Check(bob, run, %+v) = %v (%s), want %v", tc.c, d.Allowed, d.Reason, tc.allow)
		}
		if d := p.Check("bob", "reboot", tc.c); d.Allowed {
			t.Errorf("a client rule without a client id matched %+v: %s", tc.c, d.Reason)
		}
	}
}

// A dynamic client group's members are the clients its selector matches by
// their labels, at each check, through nesting too; a selector naming a
// fact never admits a client (the store keeps such groups out of rules).
func TestDynamicGroupMembership(t *testing.T) {
	p := New(db.PolicyData{
		Rules: []db.ACLRule{
			{ID: 1, SubjectKind: db.KindUser, Subject: "bob", Permission: "run", TargetKind: db.KindClientGroup, Target: "all", Allow: true, Active: true},
			{ID: 2, SubjectKind: db.KindUser, Subject: "eve", Permission: "run", TargetKind: db.KindClientGroup, Target: "debian", Allow: true, Active: true},
		},
		ClientGroupChild: map[string][]string{"all": {"web"}},
		ClientGroupSel:   map[string]string{"web": "tier=web", "debian": "fact.os_id=debian"},
	})
	web := Client{ID: 1, Name: "w1", Labels: map[string]string{"tier": "web"}}
	db1 := Client{ID: 2, Name: "d1", Labels: map[string]string{"tier": "db"}}
	if d := p.Check("bob", "run", web); !d.Allowed || d.Rule == nil || d.Rule.ID != 1 {
		t.Fatalf("labelled client through the nested dynamic group: %+v", d)
	}
	if d := p.Check("bob", "run", db1); d.Allowed {
		t.Fatalf("a client the selector does not match: %+v", d)
	}
	if d := p.Check("eve", "run", Client{ID: 3, Name: "x", Labels: map[string]string{"os_id": "debian"}}); d.Allowed {
		t.Fatalf("a fact group admitted a client: %+v", d)
	}
}
