package server

import (
	"context"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/db"
)

// as returns a client calling with token (empty: none).
func (h *harness) as(t *testing.T, token string) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// addUser creates a user through the API and returns a client holding
// its first token, and the token.
func (h *harness) addUser(t *testing.T, admin *client.Client, name string) (*client.Client, string) {
	t.Helper()
	var tok api.NewToken
	if err := admin.Call(context.Background(), "user.add", &tok, name); err != nil {
		t.Fatalf("user.add %q: %v", name, err)
	}
	if tok.User != name || !strings.HasPrefix(tok.Token, "scire_") {
		t.Fatalf("user.add %q = %+v", name, tok)
	}
	return h.as(t, tok.Token), tok.Token
}

// activeClient registers and accepts an agent named name.
func (h *harness) activeClient(t *testing.T, admin *client.Client, name string) (*client.Client, string) {
	t.Helper()
	ag, fp := h.agentClient(t)
	id := register(t, ag, name)
	if err := admin.Call(context.Background(), "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	return ag, id
}

func mustCall(t *testing.T, c *client.Client, method string, reply any, args ...any) {
	t.Helper()
	if err := c.Call(context.Background(), method, reply, args...); err != nil {
		t.Fatalf("%s%v: %v", method, args, err)
	}
}

func addRule(t *testing.T, admin *client.Client, subject, perm, target, action string) string {
	t.Helper()
	var r api.ACLRule
	mustCall(t, admin, "acl.add", &r, map[string]any{"subject": subject, "permission": perm, "target": target, "action": action})
	return r.ID
}

func TestAuthenticationFaults(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	_, tok := h.addUser(t, admin, "alice")

	wantFault(t, h.as(t, "").Call(ctx, "job.list", nil), 401)
	wantFault(t, h.as(t, "scire_1_00ff").Call(ctx, "job.list", nil), 401)
	wantFault(t, h.as(t, "not-a-token").Call(ctx, "job.list", nil), 401)
	// A forged secret on a real token id is refused like any other.
	id, _, _ := strings.Cut(strings.TrimPrefix(tok, "scire_"), "_")
	wantFault(t, h.as(t, "scire_"+id+"_"+strings.Repeat("0", 64)).Call(ctx, "job.list", nil), 401)

	alice := h.as(t, tok)
	mustCall(t, alice, "job.list", nil)
	mustCall(t, admin, "user.token.revoke", nil, id)
	wantFault(t, alice.Call(ctx, "job.list", nil), 401)

	// An agent certificate is no operator credential, nor a token an agent's.
	ag, _ := h.agentClient(t)
	wantFault(t, ag.Call(ctx, "job.list", nil), 401)
	wantFault(t, admin.Call(ctx, "agent.getJobs", nil, 1), 401)
}

func TestClientsNotActiveCanOnlyRegister(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	for _, to := range []string{"", "client.reject", "client.revoke"} {
		ag, fp := h.agentClient(t)
		register(t, ag, "m")
		switch to {
		case "client.reject":
			mustCall(t, admin, "client.reject", nil, []string{fp})
		case "client.revoke":
			mustCall(t, admin, "client.accept", nil, []string{fp})
			mustCall(t, admin, "client.revoke", nil, []string{fp})
		}
		for _, m := range []string{"agent.getJobs", "agent.heartbeat", "agent.ackJobs", "agent.reportStatus"} {
			var args []any
			switch m {
			case "agent.getJobs":
				args = []any{1}
			case "agent.ackJobs":
				args = []any{[]string{"1"}}
			case "agent.reportStatus":
				args = []any{`<status run="1" state="running"/>`}
			}
			if err := ag.Call(ctx, m, nil, args...); api.FaultCode(err) != 402 {
				t.Errorf("%s by a client after %q: %v, want fault 402", m, to, err)
			}
		}
		// agent.register stays open to it, and changes nothing.
		var res struct {
			Status string `xmlrpc:"status"`
		}
		mustCall(t, ag, "agent.register", &res, map[string]any{"hostname": "m"})
		if want := map[string]string{"": "pending", "client.reject": "rejected", "client.revoke": "revoked"}[to]; res.Status != want {
			t.Errorf("register after %q: status %q, want %q", to, res.Status, want)
		}
	}
	// Deleting: active clients first need revoking.
	_, id := h.activeClient(t, admin, "old")
	wantFault(t, admin.Call(ctx, "client.delete", nil, []string{id}), 409)
	mustCall(t, admin, "client.revoke", nil, []string{id})
	mustCall(t, admin, "client.delete", nil, []string{id})
	wantFault(t, admin.Call(ctx, "client.get", nil, id), 404)
}

func TestAdminAPIIsGovernedByTheACL(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	ag, fp := h.agentClient(t)
	register(t, ag, "web1")

	// No rule: alice may do nothing of the admin API.
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"client.accept", []any{[]string{fp}}},
		{"client.list", nil},
		{"acl.add", []any{map[string]any{"subject": "user:alice", "permission": "*", "target": "*"}}},
		{"user.add", []any{"mallory"}},
		{"group.create", []any{"client", "web"}},
		{"audit.list", nil},
		{"user.token.create", []any{"admin"}},
	} {
		if err := alice.Call(ctx, c.method, nil, c.args...); api.FaultCode(err) != 403 {
			t.Errorf("alice %s: %v, want fault 403", c.method, err)
		}
	}
	// Her own tokens need no permission.
	var tok api.NewToken
	mustCall(t, alice, "user.token.create", &tok, "", "laptop")
	if tok.User != "alice" || tok.Name != "laptop" {
		t.Fatalf("own token = %+v", tok)
	}

	// Granted through a user group nested in another: alice ∈ juniors ⊂ ops.
	mustCall(t, admin, "group.create", nil, "user", "ops")
	mustCall(t, admin, "group.create", nil, "user", "juniors")
	mustCall(t, admin, "group.add", nil, "user", "juniors", []string{"alice"})
	mustCall(t, admin, "group.add", nil, "user", "ops", []string{"group:juniors"})
	addRule(t, admin, "group:ops", "client.accept", "*", "allow")
	addRule(t, admin, "group:ops", "client.read", "*", "allow")
	var cs []api.Client
	mustCall(t, alice, "client.accept", &cs, []string{fp})
	if len(cs) != 1 || cs[0].Status != "active" {
		t.Fatalf("accept = %+v", cs)
	}
	// A deny naming her group wins over the allow.
	deny := addRule(t, admin, "group:juniors", "client.read", "*", "deny")
	wantFault(t, alice.Call(ctx, "client.list", nil), 403)
	mustCall(t, admin, "acl.setActive", nil, deny, false)
	mustCall(t, alice, "client.list", nil)

	// A rule on a client cannot grant an admin permission: it is refused
	// when written (it could never apply), and grants nothing.
	wantFault(t, admin.Call(ctx, "acl.add", nil, map[string]any{"subject": "user:alice", "permission": "acl.write", "target": "client:web1"}), 400)
	wantFault(t, alice.Call(ctx, "acl.add", nil, map[string]any{"subject": "*", "permission": "*", "target": "*"}), 403)

	// Refusals are in the audit trail, with the rule or the reason.
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"actor": "alice", "outcome": "denied"})
	if len(es) < 8 {
		t.Fatalf("audit has %d denials by alice, want ≥ 8: %+v", len(es), es)
	}
	found := false
	for _, e := range es {
		if e.Name == "client.list" && strings.Contains(e.Detail, "rule "+deny) {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit entry names deny rule %s: %+v", deny, es)
	}
	// And the admin's own changes are recorded with their outcome.
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "acl.*", "actor": "admin"})
	if len(es) < 4 || es[0].Actor != "admin" || es[0].Outcome != "error" || es[1].Outcome != "ok" { // the refused client-targeted acl.write, then the rest
		t.Fatalf("acl.* audit = %+v", es)
	}
	if want := "action=allow permission=client.read subject=group:ops target=*"; !strings.Contains(strings.Join(auditTargets(es), "\n"), want) {
		t.Errorf("audit targets %q do not describe the rule as %q", auditTargets(es), want)
	}
}

func TestACLAtSubmitAndAtDispatch(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	web1, _ := h.activeClient(t, admin, "web1")
	_, _ = h.activeClient(t, admin, "db1")
	mustCall(t, admin, "group.create", nil, "client", "web")
	mustCall(t, admin, "group.create", nil, "client", "all")
	mustCall(t, admin, "group.add", nil, "client", "web", []string{"web1"})
	mustCall(t, admin, "group.add", nil, "client", "all", []string{"group:web", "db1"})

	// No rule: refused at submit with 403, nothing stored.
	wantFault(t, alice.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}}), 403)
	var jobs []api.Job
	mustCall(t, admin, "job.list", &jobs)
	if len(jobs) != 0 {
		t.Fatalf("a refused submit stored %d jobs", len(jobs))
	}
	// Allowed on the nested group "all"; denied on db1 by a deny rule.
	allow := addRule(t, admin, "user:alice", "run", "group:all", "allow")
	addRule(t, admin, "*", "run", "client:db1", "deny")
	var sub api.SubmitResult
	mustCall(t, alice, "job.submit", &sub, map[string]any{"script": "true", "groups": []string{"all"}})
	if sub.Runs != 2 {
		t.Fatalf("submit to group all made %d runs, want 2", sub.Runs)
	}
	// Between submit and dispatch the allow goes away: web1's run is denied
	// at dispatch and never sent.
	mustCall(t, admin, "acl.remove", nil, allow)
	var docs []string
	mustCall(t, web1, "agent.getJobs", &docs, 10)
	if len(docs) != 0 {
		t.Fatalf("web1 got %d jobs after the rule was removed", len(docs))
	}
	var job api.Job
	mustCall(t, alice, "job.get", &job, sub.ID) // her own job: no job.read needed
	for _, r := range job.Runs {
		if r.Client == "web1" && (r.State != "denied" || !strings.Contains(r.Reason, "no rule")) {
			t.Errorf("web1 run = %+v, want denied", r)
		}
	}
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "dispatch", "outcome": "denied"})
	if len(es) == 0 {
		t.Error("the denial at dispatch is not in the audit trail")
	}
	// Without job.read alice sees only her own jobs.
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}})
	mustCall(t, alice, "job.list", &jobs)
	if len(jobs) != 1 || jobs[0].ID != sub.ID {
		t.Fatalf("alice's job.list = %+v", jobs)
	}
	wantFault(t, alice.Call(ctx, "job.list", nil, map[string]any{"submitted_by": "admin"}), 403)
	wantFault(t, alice.Call(ctx, "job.get", nil, jobs[0].ID+"0"), 404)

	// acl.check explains, naming the rule.
	var d api.ACLDecision
	mustCall(t, admin, "acl.check", &d, "alice", "run", "db1")
	if d.Allowed || d.RuleID == "" || !strings.Contains(d.Reason, "rule "+d.RuleID) {
		t.Fatalf("acl.check = %+v", d)
	}
}

// Names are data: quotes, %, unicode and SQL fragments are stored and
// matched literally, and a % does not act as a wildcard anywhere.
func TestLiteralNames(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	names := []string{`o'brien`, `100%`, `%`, `名前`, `x"); DROP TABLE users;--`, `a_b`}
	for _, n := range names {
		h.addUser(t, admin, n)
		mustCall(t, admin, "group.create", nil, "user", n)
		mustCall(t, admin, "group.add", nil, "user", n, []string{n})
	}
	var users []api.User
	mustCall(t, admin, "user.list", &users)
	got := map[string][]string{}
	for _, u := range users {
		got[u.Name] = u.Groups
	}
	for _, n := range names {
		if g := got[n]; len(g) != 1 || g[0] != n {
			t.Errorf("user %q: groups %v, want [%q]", n, g, n)
		}
	}
	if len(users) != len(names)+1 {
		t.Errorf("%d users, want %d", len(users), len(names)+1)
	}
	var g api.Group
	mustCall(t, admin, "group.get", &g, "user", "%")
	if len(g.Members) != 1 || g.Members[0] != "%" {
		t.Errorf("group %% = %+v", g)
	}
	wantFault(t, admin.Call(ctx, "group.get", nil, "user", "a%"), 404)
	wantFault(t, admin.Call(ctx, "user.add", nil, "bad\x7fname"), 400)
}

// A token never reaches the log, whatever happens to the request.
func TestTokensNeverLogged(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	_, tok := h.addUser(t, admin, "alice")
	alice := h.as(t, tok)
	alice.Call(ctx, "client.list", nil)          // 403
	alice.Call(ctx, "no.such.method", nil)       // 404
	h.as(t, tok+"x").Call(ctx, "job.list", nil)  // 401
	mustCall(t, admin, "user.token.create", nil) // a new token in a reply
	admTok, err := readToken(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.log.String()
	for _, secret := range []string{tok, admTok, tok[len(tok)-64:], admTok[len(admTok)-64:]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a token is in the server log")
		}
	}
	if !strings.Contains(logs, "method=client.list") {
		t.Fatal("the log does not have the requests at all; the test proves nothing")
	}
	// Nor in the audit trail.
	ops, err := h.srv.store.ListOperations(ctx, db.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if strings.Contains(o.Target+o.Detail+o.Outcome, tok[len(tok)-64:]) {
			t.Fatalf("a token is in the audit trail: %+v", o)
		}
	}
}

func auditTargets(es []api.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Target
	}
	return out
}
