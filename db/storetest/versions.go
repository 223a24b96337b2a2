package storetest

// The clients' version (schema version 8): what a daemon's cache of the
// clients' names, statuses, labels and facts trusts. Every change to those
// moves it on; what changes none of them (a client heard from, a
// registration that says nothing new, jobs and runs) leaves it.

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

func testClientsVersion(t *testing.T, s db.Store) {
	ctx := context.Background()
	last := must(s.ClientsVersion(ctx))(t)
	if last < 0 {
		t.Fatalf("a new store has no clients version (%d)", last)
	}
	// moved checks that what ran moved the version on (and never back),
	// or left it.
	seen := map[int64]bool{last: true}
	moved := func(what string, want bool) {
		t.Helper()
		v := must(s.ClientsVersion(ctx))(t)
		switch {
		case want && (v <= last || seen[v]):
			t.Fatalf("%s: clients version %d after %d, want a new, higher one", what, v, last)
		case !want && v != last:
			t.Fatalf("%s: clients version %d after %d, want it unchanged", what, v, last)
		}
		seen[v], last = true, v
	}

	reg := db.ClientRegistration{Fingerprint: "fp-v1", Name: "v1", Hostname: "v1", OS: "linux", Arch: "amd64",
		Version: "1", At: t0, Facts: map[string]string{"os": "linux"}, FactsHash: "h1"}
	c := must(s.RegisterClient(ctx, reg))(t)
	moved("a new client", true)
	reg.At = t0.Add(time.Minute)
	must(s.RegisterClient(ctx, reg))(t)
	moved("registering again with the same name and facts", false)
	reg.Facts = nil
	must(s.RegisterClient(ctx, reg))(t)
	moved("registering again without facts (the stored ones kept)", false)
	reg.Name = "v1-renamed"
	must(s.RegisterClient(ctx, reg))(t)
	moved("a pending client registering under a new name", true)
	reg.Facts, reg.FactsHash = map[string]string{"os": "linux", "role": "web"}, "h2"
	must(s.RegisterClient(ctx, reg))(t)
	moved("new facts", true)

	must(s.SetClientStatus(ctx, c.ID, db.ClientActive))(t)
	moved("a client accepted", true)
	must(s.SetClientStatus(ctx, c.ID, db.ClientActive))(t)
	moved("accepting an active client again", false)
	reg.Name = "v1-again"
	must(s.RegisterClient(ctx, reg))(t)
	moved("an active client registering under another name (it keeps its own)", false)

	other := mustClient(t, s, "v2", true)
	moved("another client, accepted", true)
	must(s.SetClientLabels(ctx, []int64{c.ID, other.ID}, map[string]string{"env": "prod"}, nil))(t)
	moved("labels set", true)
	must(s.SetClientLabels(ctx, []int64{c.ID, other.ID}, map[string]string{"env": "prod"}, nil))(t)
	moved("labels set to what they were", false)
	must(s.SetClientLabels(ctx, []int64{other.ID}, nil, []string{"env"}))(t)
	moved("a label removed", true)
	_, err := s.SetClientLabels(ctx, []int64{c.ID, 999999}, map[string]string{"env": "dev"}, nil)
	wantErr(t, "labels of an unknown client", err, db.ErrNotFound)
	moved("labels refused", false)

	ok(t, s.TouchClients(ctx, map[int64]time.Time{c.ID: t0.Add(time.Hour), other.ID: t0.Add(time.Hour)}))
	moved("clients heard from", false)
	j := mustSubmit(t, s, "job", 0, c.ID, other.ID)
	ds := claim(t, s, c.ID, 1)
	must(s.ReportRuns(ctx, c.ID, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Succeeded, StartedAt: t0, Finished: t0}}, t0))(t)
	must(s.CancelJob(ctx, j.ID, t0, "test"))(t)
	must(s.CreateGroup(ctx, db.KindClientGroup, "g", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "g", db.Member{ClientID: c.ID}))
	moved("jobs, runs and groups", false)

	must(s.SetClientStatus(ctx, other.ID, db.ClientRevoked))(t)
	moved("a client revoked", true)
	_, err = s.DeleteClient(ctx, c.ID)
	wantErr(t, "delete an active client", err, db.ErrConflict)
	moved("a delete refused", false)
	must(s.DeleteClient(ctx, other.ID))(t)
	moved("a client deleted", true)

	// A backup holds the version of its time; restoring it, or resetting,
	// moves the version past every value it had here, never back to one.
	path := filepath.Join(t.TempDir(), "v.db")
	ok(t, s.Backup(ctx, path))
	mustClient(t, s, "v3", true)
	moved("a client added after the backup", true)
	ok(t, s.Restore(ctx, path))
	moved("a restore", true)
	if cs := must(s.ListClients(ctx, db.ClientFilter{}))(t); len(cs) != 1 {
		t.Fatalf("after the restore: %d clients, want 1", len(cs))
	}
	must(s.SetClientStatus(ctx, c.ID, db.ClientRevoked))(t)
	moved("a client revoked after the restore", true)
	ok(t, s.Reset(ctx))
	moved("a reset", true)
	mustClient(t, s, "v4", false)
	moved("a client registered after the reset", true)
	ok(t, s.Reset(ctx))
	moved("a second reset", true)
	ok(t, s.Restore(ctx, path))
	moved("a restore after resets", true)
}

// ListClientTraits holds what ListClients does of every client, with the
// current version; ListClients keeps the clients of a list of ids.
func testClientTraits(t *testing.T, s db.Store) {
	ctx := context.Background()
	v, ts := must2(s.ListClientTraits(ctx))(t)
	if v != must(s.ClientsVersion(ctx))(t) || len(ts) != 0 {
		t.Fatalf("empty store: version %d, traits %+v", v, ts)
	}
	a := mustClient(t, s, "a", true)
	b := must(s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-b", Name: "b", At: t0,
		Facts: map[string]string{"os": "linux", "quote": `say "hi"\n`, "html": "<&>", "utf": "日本"}}))(t)
	c := mustClient(t, s, "c", false)
	must(s.SetClientLabels(ctx, []int64{a.ID, b.ID}, map[string]string{"env": "prod"}, nil))(t)
	v, ts = must2(s.ListClientTraits(ctx))(t)
	if v != must(s.ClientsVersion(ctx))(t) {
		t.Fatalf("traits of version %d, the version is %d", v, must(s.ClientsVersion(ctx))(t))
	}
	all := must(s.ListClients(ctx, db.ClientFilter{}))(t)
	if len(ts) != len(all) {
		t.Fatalf("%d traits, %d clients", len(ts), len(all))
	}
	for i, c := range all {
		want := db.ClientTraits{ID: c.ID, Name: c.Name, Status: c.Status, Labels: c.Labels, Facts: c.Facts}
		if !reflect.DeepEqual(ts[i], want) {
			t.Fatalf("traits %d = %+v, want %+v", i, ts[i], want)
		}
	}
	if ts[1].Facts["quote"] != `say "hi"\n` || ts[1].Facts["html"] != "<&>" || ts[0].Labels["env"] != "prod" || ts[2].Labels == nil {
		t.Fatalf("traits = %+v", ts)
	}

	ids := func(f db.ClientFilter) []int64 {
		t.Helper()
		var out []int64
		for _, c := range must(s.ListClients(ctx, f))(t) {
			out = append(out, c.ID)
		}
		return out
	}
	for _, tc := range []struct {
		f    db.ClientFilter
		want []int64
	}{
		{db.ClientFilter{IDs: []int64{c.ID, a.ID, 999999, a.ID}}, []int64{a.ID, c.ID}},
		{db.ClientFilter{IDs: []int64{c.ID, a.ID, b.ID}, Status: db.ClientActive}, []int64{a.ID}},
		{db.ClientFilter{IDs: []int64{}}, nil},
		{db.ClientFilter{}, []int64{a.ID, b.ID, c.ID}},
	} {
		if got := ids(tc.f); !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("ListClients(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func must2[T, U any](a T, b U, err error) func(t *testing.T) (T, U) {
	return func(t *testing.T) (T, U) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}
