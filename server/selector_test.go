package server

import (
	"context"
	"slices"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/client/facts"
)

// Facts, labels and selectors over XML-RPC and TLS: an agent's facts are
// stored and their hash comes back in its heartbeat; client.label needs
// its permission and checks keys; client.list and job.submit select by
// labels, facts and name globs.
func TestFactsLabelsSelectors(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	reg := func(ag *client.Client, name, role string) {
		t.Helper()
		mustCall(t, ag, "agent.register", nil, map[string]any{"hostname": name, "os": "linux", "arch": "amd64", "version": "t",
			"facts": map[string]any{"os": "linux", "role": role}})
	}
	web1, _ := h.activeClient(t, admin, "web-1")
	web2, _ := h.activeClient(t, admin, "web-2")
	db1, _ := h.activeClient(t, admin, "db-1")
	reg(web1, "web-1", "web")
	reg(web2, "web-2", "web")
	reg(db1, "db-1", "db")
	var c api.Client
	mustCall(t, admin, "client.get", &c, "web-1")
	if c.Facts["role"] != "web" || c.Labels == nil {
		t.Fatalf("client.get: facts %v labels %v", c.Facts, c.Labels)
	}
	var hb api.Heartbeat
	mustCall(t, web1, "agent.heartbeat", &hb)
	if want := (facts.Facts{"os": "linux", "role": "web"}).Hash(); hb.FactsHash != want {
		t.Fatalf("facts_hash %q, want %q", hb.FactsHash, want)
	}
	wantFaultText(t, web1.Call(ctx, "agent.register", nil, map[string]any{"hostname": "web-1", "os": "linux", "arch": "amd64", "version": "t",
		"facts": map[string]any{"bad key": "x"}}), 400, "facts.facts")

	var cs []api.Client
	mustCall(t, admin, "client.label", &cs, []string{"web-1", "db-1"}, map[string]any{"set": map[string]any{"env": "prod"}})
	if len(cs) != 2 || cs[0].Labels["env"] != "prod" {
		t.Fatalf("client.label: %+v", cs)
	}
	mustCall(t, admin, "client.label", &cs, []string{"web-2"}, map[string]any{"set": map[string]any{"env": "staging"}})
	wantFaultText(t, admin.Call(ctx, "client.label", nil, []string{"web-1"}, map[string]any{"set": map[string]any{"fact.role": "x"}}), 400, "fact")
	wantFaultText(t, admin.Call(ctx, "client.label", nil, []string{"web-1"}, map[string]any{}), 400, "nothing to set or remove")
	bob, _ := h.addUser(t, admin, "bob")
	wantFault(t, bob.Call(ctx, "client.label", nil, []string{"web-1"}, map[string]any{"remove": []string{"env"}}), 403)

	names := func(cs []api.Client) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		sel  []string
		want []string
	}{
		{[]string{"env=prod"}, []string{"db-1", "web-1"}},
		{[]string{"env=prod,fact.role=web"}, []string{"web-1"}},
		{[]string{"fact.role=db", "env=staging"}, []string{"db-1", "web-2"}},
		{[]string{"env notin (prod)"}, []string{"web-2"}},
	} {
		mustCall(t, admin, "client.list", &cs, map[string]any{"selectors": tc.sel})
		if got := names(cs); !slices.Equal(got, tc.want) {
			t.Fatalf("client.list %v = %v, want %v", tc.sel, got, tc.want)
		}
	}
	wantFaultText(t, admin.Call(ctx, "client.list", nil, map[string]any{"selectors": []string{"env in (prod"}}), 400, "position 12: missing ')'")

	var sub api.SubmitResult
	var j api.Job
	runsOf := func(id string) []string {
		mustCall(t, admin, "job.get", &j, id)
		var out []string
		for _, r := range j.Runs {
			out = append(out, r.Client)
		}
		slices.Sort(out)
		return out
	}
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "selectors": []string{"fact.role=web"}})
	if got := runsOf(sub.ID); !slices.Equal(got, []string{"web-1", "web-2"}) || !slices.Contains(j.Targets, "selector:fact.role=web") {
		t.Fatalf("selector job: runs %v targets %v", got, j.Targets)
	}
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web*", "db-1"}})
	if got := runsOf(sub.ID); !slices.Equal(got, []string{"db-1", "web-1", "web-2"}) {
		t.Fatalf("glob job: runs %v", got)
	}
	wantFaultText(t, admin.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"mail*"}}), 409, "matches no active client")
	wantFaultText(t, admin.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "selectors": []string{"fact.role=mail"}}), 409, "match no active client")
	wantFaultText(t, admin.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "selectors": []string{"role="}}), 409, "")
}

// Dynamic groups over XML-RPC: group.create with a selector, its members
// as the selector matches now, job.submit by the group, an ACL rule on a
// label group re-evaluated at dispatch, and a fact group kept out of the
// ACL with the reason.
func TestDynamicGroups(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	w1, _ := h.activeClient(t, admin, "dw-1")
	h.activeClient(t, admin, "dd-1")
	mustCall(t, w1, "agent.register", nil, map[string]any{"hostname": "dw-1", "os": "linux", "arch": "amd64", "version": "t",
		"facts": map[string]any{"os_id": "debian"}})
	mustCall(t, admin, "client.label", nil, []string{"dw-1"}, map[string]any{"set": map[string]any{"tier": "web"}})
	var g api.Group
	mustCall(t, admin, "group.create", &g, "client", "webs", "", "tier=web")
	if g.Selector != "tier=web" {
		t.Fatalf("group.create: %+v", g)
	}
	mustCall(t, admin, "group.get", &g, "client", "webs")
	if !slices.Equal(g.Members, []string{"dw-1"}) {
		t.Fatalf("members now: %+v", g.Members)
	}
	wantFaultText(t, admin.Call(ctx, "group.create", nil, "client", "bad", "", "tier in (web"), 400, "position")
	wantFaultText(t, admin.Call(ctx, "group.add", nil, "client", "webs", []string{"dd-1"}), 400, "dynamic group")
	mustCall(t, admin, "group.create", nil, "client", "debians", "", "fact.os_id=debian")
	wantFaultText(t, admin.Call(ctx, "acl.add", nil, map[string]any{"subject": "*", "permission": "run", "target": "group:debians"}), 400, "claims of the machine")

	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "groups": []string{"debians"}})
	var j api.Job
	mustCall(t, admin, "job.get", &j, sub.ID)
	if len(j.Runs) != 1 || j.Runs[0].Client != "dw-1" {
		t.Fatalf("a job for a fact group: %+v", j.Runs)
	}
	// bob may run only on the label group; the rule follows the label.
	bob, _ := h.addUser(t, admin, "bob")
	addRule(t, admin, "user:bob", "run", "group:webs", "allow")
	mustCall(t, bob, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"dw-1"}})
	mustCall(t, admin, "client.label", nil, []string{"dw-1"}, map[string]any{"remove": []string{"tier"}})
	var docs []string
	mustCall(t, w1, "agent.getJobs", &docs, 10)
	mustCall(t, admin, "job.get", &j, sub.ID)
	if len(docs) != 1 || j.Runs[0].State != "denied" {
		t.Fatalf("after the label went: %d documents, run %s (want only the fact group's job sent, bob's denied)", len(docs), j.Runs[0].State)
	}
}
