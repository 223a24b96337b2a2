package storetest

// Dynamic client groups: a selector instead of members; one that selects
// by facts is kept out of the ACL and of other groups.

import (
	"context"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/db"
)

func testDynamicGroups(t *testing.T, s db.Store) {
	ctx := context.Background()
	web := must(s.CreateDynamicGroup(ctx, "web", "by label", "tier=web", false))(t)
	if web.Selector != "tier=web" || web.ByFacts {
		t.Fatalf("created %+v", web)
	}
	must(s.CreateDynamicGroup(ctx, "debian", "by fact", "fact.os_id=debian", true))(t)
	if _, err := s.CreateDynamicGroup(ctx, "empty", "", "", false); err == nil {
		t.Fatal("a dynamic group without a selector")
	}
	if g := must(s.Group(ctx, db.KindClientGroup, "debian"))(t); g.Selector != "fact.os_id=debian" || !g.ByFacts {
		t.Fatalf("read back %+v", g)
	}
	c := mustClient(t, s, "dyn1", true)
	// No members or children of its own.
	err := s.AddGroupMember(ctx, db.KindClientGroup, "web", db.Member{ClientID: c.ID})
	wantErr(t, "member of a dynamic group", err, db.ErrInvalid)
	must(s.CreateGroup(ctx, db.KindClientGroup, "all", ""))(t)
	// A label group nests; a fact group does not, nor is it named by a rule.
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "web"}))
	err = s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "debian"})
	wantErr(t, "nesting a fact group", err, db.ErrInvalid)
	if err == nil || !strings.Contains(err.Error(), "claims of the machine") {
		t.Fatalf("the reason: %v", err)
	}
	must(s.CreateUser(ctx, "bob"))(t)
	_, err = s.AddACLRule(ctx, allowRule(db.KindUser, "bob", "run", db.KindClientGroup, "debian"))
	wantErr(t, "a rule naming a fact group", err, db.ErrInvalid)
	must(s.AddACLRule(ctx, allowRule(db.KindUser, "bob", "run", db.KindClientGroup, "web")))(t)
	pd := must(s.Policy(ctx))(t)
	if pd.ClientGroupSel["web"] != "tier=web" || pd.ClientGroupSel["debian"] != "fact.os_id=debian" || len(pd.ClientGroupChild["all"]) != 1 {
		t.Fatalf("policy: %+v / %+v", pd.ClientGroupSel, pd.ClientGroupChild)
	}
	if gs := must(s.ListGroups(ctx, db.KindClientGroup))(t); len(gs) != 3 || gs[2].Selector != "tier=web" {
		t.Fatalf("list: %+v", gs)
	}
}
