package storetest

// Facts and labels (docs/protocol.md, "Facts, labels, selectors"): the
// facts an agent sends replace the stored ones, none sent keeps them;
// labels are set and removed together, all or nothing.

import (
	"context"
	"reflect"
	"testing"

	"github.com/scirectl/scirectl/db"
)

func testFactsAndLabels(t *testing.T, s db.Store) {
	ctx := context.Background()
	reg := db.ClientRegistration{Fingerprint: "fp-facts", Name: "f1", At: t0,
		Facts: map[string]string{"os": "linux", "role": "web"}, FactsHash: "h1"}
	c := must(s.RegisterClient(ctx, reg))(t)
	if !reflect.DeepEqual(c.Facts, reg.Facts) || c.FactsHash != "h1" || c.Labels == nil || len(c.Labels) != 0 {
		t.Fatalf("registered: facts %v hash %q labels %v", c.Facts, c.FactsHash, c.Labels)
	}
	// An agent that sends no facts keeps the stored ones.
	reg.Facts, reg.FactsHash = nil, ""
	if c = must(s.RegisterClient(ctx, reg))(t); c.Facts["role"] != "web" || c.FactsHash != "h1" {
		t.Fatalf("facts not sent: %v %q", c.Facts, c.FactsHash)
	}
	reg.Facts, reg.FactsHash = map[string]string{"os": "linux", "role": "db"}, "h2"
	if c = must(s.RegisterClient(ctx, reg))(t); !reflect.DeepEqual(c.Facts, reg.Facts) || c.FactsHash != "h2" {
		t.Fatalf("facts replaced: %v %q", c.Facts, c.FactsHash)
	}
	other := mustClient(t, s, "f2", true)
	got := must(s.SetClientLabels(ctx, []int64{c.ID, other.ID}, map[string]string{"env": "prod", "tier": "web"}, nil))(t)
	if len(got) != 2 || got[0].Labels["env"] != "prod" || got[1].Labels["tier"] != "web" {
		t.Fatalf("set labels: %+v", got)
	}
	got = must(s.SetClientLabels(ctx, []int64{c.ID}, map[string]string{"env": "staging"}, []string{"tier", "absent"}))(t)
	if !reflect.DeepEqual(got[0].Labels, map[string]string{"env": "staging"}) {
		t.Fatalf("set and remove: %v", got[0].Labels)
	}
	// An unknown client: nothing changes, for the others either.
	_, err := s.SetClientLabels(ctx, []int64{other.ID, 999999}, map[string]string{"env": "dev"}, nil)
	wantErr(t, "unknown client", err, db.ErrNotFound)
	if o := must(s.Client(ctx, other.ID))(t); o.Labels["env"] != "prod" {
		t.Fatalf("a failed call changed labels: %v", o.Labels)
	}
	var seen bool
	for _, cl := range must(s.ListClients(ctx, db.ClientFilter{}))(t) {
		if cl.ID == c.ID {
			seen = cl.Labels["env"] == "staging" && cl.Facts["role"] == "db"
		}
	}
	if !seen {
		t.Fatal("list clients lacks facts or labels")
	}
	// Registering again keeps the labels.
	if c = must(s.RegisterClient(ctx, reg))(t); c.Labels["env"] != "staging" {
		t.Fatalf("register dropped labels: %v", c.Labels)
	}
}
