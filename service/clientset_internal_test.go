package service

import (
	"maps"
	"reflect"
	"testing"

	"github.com/scirectl/scirectl/db"
)

// A set keeps equal label sets once, and never takes two different ones
// for the same, whatever bytes they hold; every member reads as stored.
func TestClientSetSharesEqualLabels(t *testing.T) {
	traits := []db.ClientTraits{
		{ID: 1, Name: "a", Status: db.ClientActive, Labels: map[string]string{"env": "prod", "tier": "web"}, Facts: map[string]string{"os": "linux"}},
		{ID: 2, Name: "b", Status: db.ClientActive, Labels: map[string]string{"tier": "web", "env": "prod"}, Facts: map[string]string{"os": "linux"}},
		{ID: 3, Name: "c", Status: db.ClientPending, Labels: map[string]string{"env": "prod\x00tier", "": "web"}, Facts: map[string]string{}},
		{ID: 4, Name: "d", Status: db.ClientPending, Labels: map[string]string{"env": "prod:3"}, Facts: map[string]string{}},
		{ID: 5, Name: "e", Status: db.ClientRevoked, Labels: map[string]string{"env": "prod"}, Facts: map[string]string{}},
		{ID: 6, Name: "f", Status: db.ClientActive, Labels: map[string]string{}, Facts: map[string]string{}},
	}
	set := newClientSet(7, traits)
	if set.version != 7 || len(set.members) != len(traits) {
		t.Fatalf("set = %+v", set)
	}
	same := func(a, b map[string]string) bool { return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer() }
	for i, m := range set.members {
		c := traits[i]
		if m.id != c.ID || m.name != c.Name || m.status != c.Status || !maps.Equal(m.labels, c.Labels) || !maps.Equal(m.facts, c.Facts) {
			t.Fatalf("member %d = %+v, want %+v", i, m, c)
		}
		for j, o := range set.members[:i] {
			if eq := maps.Equal(m.labels, o.labels); eq != same(m.labels, o.labels) {
				t.Fatalf("members %d and %d: labels equal %v, one map %v", j, i, eq, !eq)
			}
		}
	}
	if !same(set.members[0].labels, set.members[1].labels) {
		t.Fatal("equal labels are two maps")
	}
}
