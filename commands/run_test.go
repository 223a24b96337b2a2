package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// runCase is one command line run against the in-memory fake API.
type runCase struct {
	args    []string
	stdin   string
	replies map[string]func(xmlrpc.Params) any
	// method and params are the last call the fake must have received;
	// an empty method means no call at all.
	method string
	params []any
	code   int
	out    string // the whole standard output, unless contains is set
	// contains lists what standard output (or, with errOut set, standard
	// error) must hold, instead of out.
	contains []string
	errOut   string // a part of standard error
}

func runCases(t *testing.T, cases []runCase) {
	t.Helper()
	fixClock(t, goldenNow)
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			fake := newFakeAPI(c.replies)
			out, errOut, code := runFake(t, fake, c.stdin, c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, c.code, out, errOut)
			}
			if c.method == "" {
				if ms := fake.methods(); len(ms) > 0 {
					t.Errorf("called %v, want no call", ms)
				}
			} else {
				last := fake.last(t)
				if last.Method != c.method || !sameParams(t, last.Params, c.params...) {
					t.Errorf("called %s%v, want %s%v", last.Method, last.Params, c.method, wire(t, c.params...))
				}
			}
			switch {
			case c.contains != nil:
				for _, w := range c.contains {
					if !strings.Contains(out, w) {
						t.Errorf("stdout lacks %q:\n%s", w, out)
					}
				}
			case out != c.out:
				t.Errorf("stdout %q, want %q", out, c.out)
			}
			if c.errOut != "" && !strings.Contains(errOut, c.errOut) {
				t.Errorf("stderr %q lacks %q", errOut, c.errOut)
			}
		})
	}
}

func TestJobRun(t *testing.T) {
	done := goldenJob()
	done.Status, done.Counts = "failed", map[string]int{"succeeded": 1, "failed": 1, "cancelled": 1}
	done.Runs[2].State = "cancelled"
	runCases(t, []runCase{
		{args: []string{"job", "submit", "--target", "web1", "-c", "uptime"},
			replies: map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 1})},
			method:  "job.submit", params: []any{api.SubmitRequest{Script: "uptime", Targets: []string{"web1"}, Groups: []string{},
				Interpreter: "/bin/sh", Permission: "run"}},
			out: "job 9 submitted (1 runs)\n"},
		{args: []string{"job", "submit", "-g", "web", "--script", "-", "--name", "up", "--priority", "5", "--timeout", "1m",
			"--permission", "deploy", "--max-attempts", "2", "--interpreter", "/bin/bash", "-q"}, stdin: "uptime\n",
			replies: map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 3})},
			method:  "job.submit", params: []any{api.SubmitRequest{Script: "uptime\n", Targets: []string{}, Groups: []string{"web"},
				Interpreter: "/bin/bash", Name: "up", Priority: 5, Timeout: 60, Permission: "deploy", MaxAttempts: 2}},
			out: "9\n"},
		{args: []string{"job", "submit", "--target", "web1", "-c", "uptime", "-o", "json"},
			replies: map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 1})},
			method:  "job.submit", params: []any{api.SubmitRequest{Script: "uptime", Targets: []string{"web1"}, Groups: []string{},
				Interpreter: "/bin/sh", Permission: "run"}},
			out: "{\n  \"id\": \"9\",\n  \"runs\": 1\n}\n"},
		// --wait follows the job to its end; a failed run makes exit code 3.
		{args: []string{"job", "submit", "--target", "web1", "-c", "uptime", "--wait", "--wait-interval", "1ms"},
			replies: map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "7", Runs: 3}), "job.get": fixed(done)},
			method:  "job.get", params: []any{"7"}, code: ExitJobFailed,
			contains: []string{"Job 7 \"deploy web\": failed", "exit status 2", "cancelled"}, errOut: "job 7 submitted (3 runs), waiting…"},
		{args: []string{"job", "submit", "-c", "true"}, code: ExitUsage, errOut: "no target"},
		{args: []string{"job", "submit", "--target", "x", "--script", "-"}, stdin: " \n", code: ExitUsage, errOut: "empty"},
		{args: []string{"job", "submit", "--target", "x", "-c", "true", "--timeout", "1500ms"}, code: ExitUsage, errOut: "whole"},
		{args: []string{"job", "submit", "--target", "ghost", "-c", "true"},
			replies: map[string]func(xmlrpc.Params) any{"job.submit": fixed(&xmlrpc.Fault{Code: 404, Message: "no client ghost"})},
			method:  "job.submit", params: []any{api.SubmitRequest{Script: "true", Targets: []string{"ghost"}, Groups: []string{},
				Interpreter: "/bin/sh", Permission: "run"}},
			code: ExitNotFound, errOut: "no client ghost (fault 404)"},

		{args: []string{"job", "list", "--limit", "5", "-q"},
			replies: map[string]func(xmlrpc.Params) any{"job.list": fixed(goldenJobs())},
			method:  "job.list", params: []any{api.JobListRequest{Limit: 5}}, out: "7\n6\n"},
		{args: []string{"job", "list", "-o", "yaml"}, code: ExitUsage, errOut: "yaml"},

		{args: []string{"job", "status", "7"},
			replies: map[string]func(xmlrpc.Params) any{"job.get": fixed(goldenJob())},
			method:  "job.get", params: []any{"7"},
			contains: []string{"Job 7 \"deploy web\": running (submitted by alice, priority 5)", "web2", "exit status 2"}},
		{args: []string{"job", "status", "7", "--watch", "--wait-interval", "1ms"},
			replies: map[string]func(xmlrpc.Params) any{"job.get": fixed(done)},
			method:  "job.get", params: []any{"7"}, code: ExitJobFailed,
			contains: []string{"job 7: 3/3 done, 1 failed, 0 denied, 1 cancelled", "RUN"}},
		{args: []string{"job", "status", "0"}, code: ExitUsage, errOut: "positive"},

		{args: []string{"job", "output", "7", "--client", "web1"},
			replies: map[string]func(xmlrpc.Params) any{"job.output": fixed([]api.Output{{RunID: "21", Client: "web1", State: "succeeded",
				ExitCode: ptr(0), Output: "up 3 days\n"}})},
			method: "job.output", params: []any{"7", "web1"}, out: "up 3 days\n"},
		{args: []string{"job", "output", "7"},
			replies: map[string]func(xmlrpc.Params) any{"job.output": fixed([]api.Output{
				{RunID: "22", Client: "web2", State: "failed", ExitCode: ptr(2), Output: "oops", Truncated: true},
				{RunID: "21", Client: "web1", State: "succeeded", ExitCode: ptr(0), Output: "ok\n"}})},
			method: "job.output", params: []any{"7"},
			out:    "==> web1 (run 21, succeeded, exit 0) <==\nok\n==> web2 (run 22, failed, exit 2) <==\noops\n",
			errOut: "output of run 22 on web2 was truncated"},

		{args: []string{"job", "cancel", "7"},
			replies: map[string]func(xmlrpc.Params) any{"job.cancel": fixed(api.CancelResult{JobID: "7", Cancelled: 2})},
			method:  "job.cancel", params: []any{"7"}, out: "cancelled 2 runs of job 7\n"},
		{args: []string{"job", "cancel", "99"},
			replies: map[string]func(xmlrpc.Params) any{"job.cancel": fixed(&xmlrpc.Fault{Code: 404, Message: "no job 99"})},
			method:  "job.cancel", params: []any{"99"}, code: ExitNotFound, errOut: "no job 99"},
	})
}

// TestSubmitTimes checks that --at and --expires are sent as times from now.
func TestSubmitTimes(t *testing.T) {
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "1", Runs: 1})})
	before := time.Now()
	if _, errOut, code := runFake(t, fake, "", "job", "submit", "-t", "web1", "-c", "true", "--at", "10m", "--expires", "2030-01-02T03:04:05Z"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p, err := fake.last(t).Params.Struct(0, "job")
	if err != nil {
		t.Fatal(err)
	}
	at, ok, err := p.Time("not_before")
	if err != nil || !ok || at.Before(before.Add(10*time.Minute).Truncate(time.Second)) || at.After(time.Now().Add(10*time.Minute)) {
		t.Errorf("not_before = %v (%v, %v), want 10m from now", at, ok, err)
	}
	exp, ok, err := p.Time("expires_at")
	if err != nil || !ok || !exp.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("expires_at = %v (%v, %v)", exp, ok, err)
	}
}

func TestClientRun(t *testing.T) {
	runCases(t, []runCase{
		{args: []string{"client", "list"},
			replies: map[string]func(xmlrpc.Params) any{"client.list": fixed(goldenClients())},
			method:  "client.list", params: []any{api.ClientListRequest{}}, contains: []string{"web1", "db1", "LAST SEEN"}},
		{args: []string{"client", "list", "--status", "pending", "-q"},
			replies: map[string]func(xmlrpc.Params) any{"client.list": fixed(goldenClients()[1:])},
			method:  "client.list", params: []any{api.ClientListRequest{Status: "pending"}}, out: "4\n"},
		{args: []string{"client", "accept", "db1", "12"},
			replies: map[string]func(xmlrpc.Params) any{"client.accept": fixed(goldenClients()[1:])},
			method:  "client.accept", params: []any{[]string{"db1", "12"}}, contains: []string{"db1", "pending"}},
		{args: []string{"client", "reject", "db1", "-o", "json"},
			replies: map[string]func(xmlrpc.Params) any{"client.reject": fixed([]api.Client{})},
			method:  "client.reject", params: []any{[]string{"db1"}}, out: "[]\n"},
		{args: []string{"client", "revoke", "web1"},
			replies: map[string]func(xmlrpc.Params) any{"client.revoke": fixed(goldenClients()[:1])},
			method:  "client.revoke", params: []any{[]string{"web1"}}, contains: []string{"web1"}},
		{args: []string{"client", "delete", "web1"},
			replies: map[string]func(xmlrpc.Params) any{"client.delete": fixed(&xmlrpc.Fault{Code: 409, Message: "web1 is active"})},
			method:  "client.delete", params: []any{[]string{"web1"}}, code: ExitConflict, errOut: "web1 is active"},
	})
}

// TestClientLabelRun checks client label: the call's params, what it
// prints, and the usage errors that reach no server.
func TestClientLabelRun(t *testing.T) {
	labelled := goldenClients()
	labelled[1].Labels = map[string]string{"env": "prod", "tier": "web"}
	replies := map[string]func(xmlrpc.Params) any{"client.label": fixed(labelled)}
	runCases(t, []runCase{
		{args: []string{"client", "label", "web1", "db1", "env=prod", "tier=web"}, replies: replies,
			method: "client.label", params: []any{[]string{"web1", "db1"}, api.LabelRequest{Set: map[string]string{"env": "prod", "tier": "web"}}},
			out: "ID  NAME  LABELS\n1   web1  env=prod,example.com/team=sre,tier=web\n4   db1   env=prod,tier=web\n"},
		{args: []string{"client", "label", "web1", "tier-", "example.com/team-", "--no-headers"},
			replies: map[string]func(xmlrpc.Params) any{"client.label": fixed([]api.Client{{ID: "1", Name: "web1", Labels: map[string]string{"env": "prod"}}})},
			method:  "client.label", params: []any{[]string{"web1"}, api.LabelRequest{Remove: []string{"tier", "example.com/team"}}},
			out: "1  web1  env=prod\n"},
		{args: []string{"client", "label", "web1", "env=staging", "owner-"},
			replies: map[string]func(xmlrpc.Params) any{"client.label": fixed([]api.Client{{ID: "1", Name: "web1"}})},
			method:  "client.label", params: []any{[]string{"web1"}, api.LabelRequest{Set: map[string]string{"env": "staging"}, Remove: []string{"owner"}}},
			out: "ID  NAME  LABELS\n1   web1  -\n"},
		{args: []string{"client", "label", "web1", "db1", "env=prod", "-o", "json"}, replies: replies,
			method: "client.label", params: []any{[]string{"web1", "db1"}, api.LabelRequest{Set: map[string]string{"env": "prod"}}},
			contains: []string{`"labels": {` + "\n" + `      "env": "prod",` + "\n" + `      "tier": "web"` + "\n    }", `"facts": {`}},
		{args: []string{"client", "label", "web1", "env=prod"},
			replies: map[string]func(xmlrpc.Params) any{"client.label": fixed(&xmlrpc.Fault{Code: 403, Message: "needs client.label"})},
			method:  "client.label", params: []any{[]string{"web1"}, api.LabelRequest{Set: map[string]string{"env": "prod"}}},
			code: ExitForbidden, errOut: "needs client.label"},

		// Usage errors name the argument and reach no server.
		{args: []string{"client", "label", "web1", "fact.os=linux"}, replies: replies, code: ExitUsage,
			errOut: `argument "fact.os=linux": label key "fact.os": keys beginning with "fact." name facts, not labels`},
		{args: []string{"client", "label", "web1", "a/b/c=x"}, replies: replies, code: ExitUsage, errOut: `argument "a/b/c=x": label key "a/b/c"`},
		{args: []string{"client", "label", "web1", "tier=web,db"}, replies: replies, code: ExitUsage,
			errOut: `argument "tier=web,db": label value "web,db": invalid character ','`},
		{args: []string{"client", "label", "web1", "=prod"}, replies: replies, code: ExitUsage, errOut: `argument "=prod": label key is empty`},
		{args: []string{"client", "label", "web1", "fact.os-"}, replies: replies, code: ExitUsage, errOut: `argument "fact.os-": label key "fact.os"`},
		{args: []string{"client", "label", "web1"}, replies: replies, code: ExitUsage, errOut: "no label change"},
		{args: []string{"client", "label", "env=prod"}, replies: replies, code: ExitUsage, errOut: "no client"},
		{args: []string{"client", "label"}, replies: replies, code: ExitUsage, errOut: "no client"},
		{args: []string{"client", "label", "web1", "env=prod", "web2"}, replies: replies, code: ExitUsage,
			errOut: `argument "web2": the clients come first`},
		{args: []string{"client", "label", "web1", "env=prod", "env-"}, replies: replies, code: ExitUsage,
			errOut: `argument "env-": label "env" is both set and removed`},
		{args: []string{"client", "label", "web1", "env-", "env=prod"}, replies: replies, code: ExitUsage,
			errOut: `argument "env=prod": label "env" is both set and removed`},
		{args: []string{"client", "label", "web1", "env=prod", "env=dev"}, replies: replies, code: ExitUsage,
			errOut: `argument "env=dev": label "env" is already set by "env=prod"`},
	})
}

// TestClientSelectorRun checks client list --selector and client show.
func TestClientSelectorRun(t *testing.T) {
	list := map[string]func(xmlrpc.Params) any{"client.list": fixed(goldenClients()[:1])}
	// An older server sends neither facts nor labels: -o json still has
	// both objects.
	old := map[string]func(xmlrpc.Params) any{"client.get": fixed(map[string]any{"id": "9", "name": "old1", "status": "active",
		"fingerprint": "ff", "os": "linux", "arch": "amd64", "mode": "poll", "registered_at": goldenNow})}
	runCases(t, []runCase{
		{args: []string{"client", "list", "--selector", "env=prod,fact.os_id=debian", "--selector", "tier in (web, cache)", "-q"}, replies: list,
			method: "client.list", params: []any{api.ClientListRequest{Selectors: []string{"env=prod,fact.os_id=debian", "tier in (web, cache)"}}},
			out: "1\n"},
		{args: []string{"client", "list", "--status", "active", "--selector", "!env"}, replies: list,
			method: "client.list", params: []any{api.ClientListRequest{Status: "active", Selectors: []string{"!env"}}},
			contains: []string{"web1"}},
		{args: []string{"client", "list", "--selector", "env in (prod"}, replies: list, code: ExitUsage,
			errOut: "--selector \"env in (prod\": position 12: missing ')'\n  env in (prod\n             ^\n"},
		{args: []string{"client", "list", "--selector", "env=prod", "--selector", "env prod"}, replies: list, code: ExitUsage,
			errOut: "--selector \"env prod\": position 5: expected an operator"},
		{args: []string{"client", "list", "--selector", ""}, replies: list, code: ExitUsage, errOut: `--selector "": position 1: empty selector`},

		{args: []string{"client", "show", "web1"}, replies: map[string]func(xmlrpc.Params) any{"client.get": fixed(goldenClients()[0])},
			method: "client.get", params: []any{"web1"},
			contains: []string{"Client 1 \"web1\": active\n", "\nLABEL             VALUE\nenv               prod\n", "\nFACT           VALUE\nagent_version  1.4.0\n"}},
		{args: []string{"client", "show", "old1"}, replies: old, method: "client.get", params: []any{"old1"},
			contains: []string{"labels:      none\nfacts:       none\n"}},
		{args: []string{"client", "show", "old1", "-o", "json"}, replies: old, method: "client.get", params: []any{"old1"},
			contains: []string{`"facts": {}`, `"labels": {}`}},
		{args: []string{"client", "show", "ghost"},
			replies: map[string]func(xmlrpc.Params) any{"client.get": fixed(&xmlrpc.Fault{Code: 404, Message: "no client ghost"})},
			method:  "client.get", params: []any{"ghost"}, code: ExitNotFound, errOut: "no client ghost"},
		{args: []string{"client", "show"}, code: ExitUsage},
	})
}

// TestJobSubmitSelectorRun checks that --selector and glob targets reach
// job.submit as given, and that a bad selector reaches no server.
func TestJobSubmitSelectorRun(t *testing.T) {
	submitted := map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 4})}
	req := func(targets, groups, sels []string) api.SubmitRequest {
		return api.SubmitRequest{Script: "uptime", Targets: targets, Groups: groups, Selectors: sels, Interpreter: "/bin/sh", Permission: "run"}
	}
	runCases(t, []runCase{
		{args: []string{"job", "submit", "--selector", "env=prod,fact.os_id=debian", "-c", "uptime"}, replies: submitted,
			method: "job.submit", params: []any{req([]string{}, []string{}, []string{"env=prod,fact.os_id=debian"})},
			out: "job 9 submitted (4 runs)\n"},
		{args: []string{"job", "submit", "--selector", "tier=web", "--selector", "tier=cache", "-t", "db1", "-g", "edge", "-c", "uptime"},
			replies: submitted, method: "job.submit",
			params: []any{req([]string{"db1"}, []string{"edge"}, []string{"tier=web", "tier=cache"})}, out: "job 9 submitted (4 runs)\n"},
		{args: []string{"job", "submit", "--target", "web*", "-t", "db?", "-c", "uptime"}, replies: submitted,
			method: "job.submit", params: []any{req([]string{"web*", "db?"}, []string{}, nil)}, out: "job 9 submitted (4 runs)\n"},
		{args: []string{"job", "submit", "--selector", "env in ()", "-c", "uptime"}, replies: submitted, code: ExitUsage,
			errOut: "--selector \"env in ()\": position 9: empty value list\n  env in ()\n          ^\n"},
		{args: []string{"job", "submit", "--selector", "", "-c", "uptime"}, replies: submitted, code: ExitUsage, errOut: "empty selector"},
		{args: []string{"job", "submit", "-c", "uptime"}, replies: submitted, code: ExitUsage, errOut: "--selector SEL"},
	})
}

func TestACLRun(t *testing.T) {
	rule := api.ACLRule{ID: "5", Subject: "*", Permission: "run", Target: "client:db1", Action: "deny", Active: true, Note: "frozen",
		CreatedBy: "admin", CreatedAt: goldenNow.Add(-time.Hour)}
	rules := map[string]func(xmlrpc.Params) any{"acl.list": fixed([]api.ACLRule{rule}), "acl.add": fixed(rule), "acl.remove": fixed(rule),
		"acl.setActive": fixed(rule)}
	runCases(t, []runCase{
		{args: []string{"acl", "list", "-q"}, replies: rules, method: "acl.list", out: "5\n"},
		{args: []string{"acl", "add", "--deny", "*", "run", "client:db1", "--note", "frozen"}, replies: rules,
			method: "acl.add", params: []any{api.ACLAddRequest{Subject: "*", Permission: "run", Target: "client:db1", Action: "deny",
				Note: "frozen", Active: true}},
			out: "rule 5: deny * run on client:db1\n"},
		{args: []string{"acl", "add", "group:ops", "run", "group:web", "--inactive"}, replies: rules,
			method: "acl.add", params: []any{api.ACLAddRequest{Subject: "group:ops", Permission: "run", Target: "group:web", Action: "allow"}},
			out: "rule 5: deny * run on client:db1\n"},
		{args: []string{"acl", "remove", "5"}, replies: rules, method: "acl.remove", params: []any{"5"},
			out: "removed rule 5: deny * run on client:db1\n"},
		{args: []string{"acl", "disable", "5"}, replies: rules, method: "acl.setActive", params: []any{"5", false},
			contains: []string{"ACTION", "deny", "frozen", "1h ago"}},
		{args: []string{"acl", "enable", "5"}, replies: rules, method: "acl.setActive", params: []any{"5", true},
			contains: []string{"deny"}},
		{args: []string{"acl", "check", "alice", "run", "web1"},
			replies: map[string]func(xmlrpc.Params) any{"acl.check": fixed(api.ACLDecision{User: "alice", Permission: "run", Target: "web1",
				Allowed: true, RuleID: "2", Reason: "allowed by rule 2"})},
			method: "acl.check", params: []any{"alice", "run", "web1"}, out: "ALLOWED: alice \"run\" on web1\nallowed by rule 2\n"},
		{args: []string{"acl", "check", "bob", "run", "db1"},
			replies: map[string]func(xmlrpc.Params) any{"acl.check": fixed(api.ACLDecision{User: "bob", Permission: "run", Target: "db1",
				Reason: "no rule allows it"})},
			method: "acl.check", params: []any{"bob", "run", "db1"}, code: ExitJobFailed, out: "DENIED: bob \"run\" on db1\nno rule allows it\n"},
	})
}

func TestUserRun(t *testing.T) {
	tok := api.NewToken{ID: "3", User: "alice", Name: "token", Token: "s3cret"}
	runCases(t, []runCase{
		{args: []string{"user", "add", "alice"}, replies: map[string]func(xmlrpc.Params) any{"user.add": fixed(tok)},
			method: "user.add", params: []any{"alice", api.UserAddRequest{}}, out: "s3cret\n",
			errOut: "token 3 (\"token\") for alice; it is shown only this once"},
		{args: []string{"user", "add", "bot", "--no-token", "--token-name", "ci"},
			replies: map[string]func(xmlrpc.Params) any{"user.add": fixed(api.NewToken{User: "bot"})},
			method:  "user.add", params: []any{"bot", api.UserAddRequest{TokenName: "ci", NoToken: true}}, out: "user bot added, without a token\n"},
		{args: []string{"user", "list"},
			replies: map[string]func(xmlrpc.Params) any{"user.list": fixed([]api.User{{Name: "alice", Tokens: 2, Groups: []string{"ops"},
				CreatedAt: goldenNow.Add(-time.Hour)}})},
			method: "user.list", contains: []string{"NAME", "alice", "2", "ops", "1h ago"}},
		{args: []string{"user", "delete", "alice"}, replies: map[string]func(xmlrpc.Params) any{"user.delete": fixed(api.User{Name: "alice"})},
			method: "user.delete", params: []any{"alice"}, out: "deleted user alice\n"},
		{args: []string{"user", "token", "create", "--name", "laptop"},
			replies: map[string]func(xmlrpc.Params) any{"user.token.create": fixed(tok)},
			method:  "user.token.create", params: []any{"", "laptop"}, out: "s3cret\n"},
		{args: []string{"user", "token", "list", "alice", "-q"},
			replies: map[string]func(xmlrpc.Params) any{"user.token.list": fixed([]api.Token{{ID: "3"}, {ID: "4", Revoked: true}})},
			method:  "user.token.list", params: []any{"alice"}, out: "3\n4\n"},
		{args: []string{"user", "token", "list"},
			replies: map[string]func(xmlrpc.Params) any{"user.token.list": fixed([]api.Token{{ID: "4", User: "admin", Name: "t", Revoked: true}})},
			method:  "user.token.list", contains: []string{"revoked"}},
		{args: []string{"user", "token", "revoke", "7"},
			replies: map[string]func(xmlrpc.Params) any{"user.token.revoke": fixed(api.Token{ID: "7", User: "alice", Name: "laptop"})},
			method:  "user.token.revoke", params: []any{"7"}, out: "revoked token 7 (\"laptop\") of alice\n"},
	})
}

func TestGroupRun(t *testing.T) {
	web := api.Group{Kind: "client", Name: "web", Note: "front ends", Members: []string{"web1", "web2"}, Groups: []string{"edge"},
		CreatedAt: goldenNow.Add(-time.Hour)}
	replies := map[string]func(xmlrpc.Params) any{"group.create": fixed(web), "group.delete": fixed(web), "group.get": fixed(web),
		"group.list": fixed([]api.Group{web}), "group.add": fixed(web), "group.remove": fixed(web)}
	runCases(t, []runCase{
		{args: []string{"group", "create", "client", "web", "--note", "front ends"}, replies: replies,
			method: "group.create", params: []any{"client", "web", "front ends"}, out: "created client group web\n"},
		{args: []string{"group", "create", "machine", "web"}, replies: replies, code: ExitUsage, errOut: "want client or user"},
		{args: []string{"group", "delete", "client", "web"}, replies: replies,
			method: "group.delete", params: []any{"client", "web"}, out: "deleted client group web\n"},
		{args: []string{"group", "list"}, replies: replies, method: "group.list",
			contains: []string{"KIND", "web1,web2", "edge", "front ends"}},
		{args: []string{"group", "list", "client", "-q"}, replies: replies, method: "group.list", params: []any{"client"}, out: "web\n"},
		{args: []string{"group", "show", "client", "web", "-o", "json"}, replies: replies, method: "group.get", params: []any{"client", "web"},
			contains: []string{`"members": [`, `"web1"`}},
		{args: []string{"group", "add", "client", "web", "web3", "group:edge"}, replies: replies,
			method: "group.add", params: []any{"client", "web", []string{"web3", "group:edge"}}, contains: []string{"web"}},
		{args: []string{"group", "remove", "user", "ops", "alice"}, replies: replies,
			method: "group.remove", params: []any{"user", "ops", []string{"alice"}}, contains: []string{"web"}},
	})
}

func TestAuditRun(t *testing.T) {
	replies := map[string]func(xmlrpc.Params) any{"audit.list": fixed([]api.AuditEntry{{ID: "11", At: goldenNow.Add(-time.Minute),
		Actor: "alice", Name: "acl.add", Outcome: "denied", Detail: "needs acl.write"}})}
	runCases(t, []runCase{
		{args: []string{"audit", "list"}, replies: replies, method: "audit.list", params: []any{api.AuditListRequest{Limit: 100}},
			contains: []string{"OPERATION", "alice", "acl.add", "denied", "needs acl.write", "1m ago"}},
		{args: []string{"audit", "list", "--actor", "alice", "--operation", "acl.*", "--outcome", "denied", "--limit", "5", "--before", "20", "-q"},
			replies: replies, method: "audit.list",
			params: []any{api.AuditListRequest{Limit: 5, Actor: "alice", Operation: "acl.*", Outcome: "denied", Before: "20"}}, out: "11\n"},
		{args: []string{"audit", "list", "--limit", "0"}, code: ExitUsage, errOut: "--limit"},
	})
}

func TestBlacklistRun(t *testing.T) {
	es := []api.BlacklistEntry{{Pattern: "job.*", Line: 2, Matches: []string{"job.cancel", "job.submit"}}}
	replies := map[string]func(xmlrpc.Params) any{"blacklist.list": fixed(es), "blacklist.add": fixed(es), "blacklist.remove": fixed([]api.BlacklistEntry{}),
		"blacklist.check": func(p xmlrpc.Params) any {
			op, _ := p.String(0, "operation")
			if strings.HasPrefix(op, "job.") {
				return api.BlacklistCheck{Operation: op, Blacklisted: true, Pattern: "job.*", Line: 2}
			}
			return api.BlacklistCheck{Operation: op}
		}}
	runCases(t, []runCase{
		{args: []string{"blacklist", "list"}, replies: replies, method: "blacklist.list", contains: []string{"PATTERN", "job.*", "job.cancel,job.submit"}},
		{args: []string{"blacklist", "add", "job.*"}, replies: replies, method: "blacklist.add", params: []any{[]string{"job.*"}, false},
			contains: []string{"job.*"}},
		{args: []string{"blacklist", "add", "blacklist.*"}, replies: replies, code: ExitUsage, errOut: "--force"},
		{args: []string{"blacklist", "add", "blacklist.*", "--force"}, replies: replies, method: "blacklist.add",
			params: []any{[]string{"blacklist.*"}, true}, contains: []string{"job.*"}, errOut: "warning"},
		{args: []string{"blacklist", "remove", "job.*", "-o", "json"}, replies: replies, method: "blacklist.remove",
			params: []any{[]string{"job.*"}}, out: "[]\n"},
		{args: []string{"blacklist", "check", "job.submit"}, replies: replies, method: "blacklist.check", params: []any{"job.submit"},
			code: ExitJobFailed, out: "job.submit is blacklisted by \"job.*\" (line 2)\n"},
		{args: []string{"blacklist", "check", "acl.add"}, replies: replies, method: "blacklist.check", params: []any{"acl.add"},
			out: "acl.add is not blacklisted\n"},
	})
}

func TestOpsRun(t *testing.T) {
	op := api.Op{ID: "42", Name: "db.backup", Class: "modifier", User: "admin", Since: goldenNow.Add(-time.Minute), State: "running"}
	runCases(t, []runCase{
		{args: []string{"ops", "list"}, replies: map[string]func(xmlrpc.Params) any{"ops.list": fixed([]api.Op{op})},
			method: "ops.list", contains: []string{"OPERATION", "db.backup", "modifier", "running", "admin", "1m ago"}},
		{args: []string{"ops", "list", "-q"}, replies: map[string]func(xmlrpc.Params) any{"ops.list": fixed([]api.Op{op})},
			method: "ops.list", out: "42\n"},
		{args: []string{"ops", "cancel", "42"}, replies: map[string]func(xmlrpc.Params) any{"ops.cancel": fixed(op)},
			method: "ops.cancel", params: []any{"42"}, out: "cancelled running db.backup (op 42) of admin\n"},
		{args: []string{"ops", "classes"}, replies: map[string]func(xmlrpc.Params) any{"ops.classes": fixed([]api.OpClass{
			{Name: "job.list", Class: "modifier", DefaultClass: "non-modifier"}, {Name: "acl.add", Class: "modifier", DefaultClass: "modifier", Permission: "acl.write"}})},
			method: "ops.classes", contains: []string{"OVERRIDES", "non-modifier", "acl.write"}},
		{args: []string{"ops", "list", "--no-wait"}, replies: map[string]func(xmlrpc.Params) any{"ops.list": fixed(&xmlrpc.Fault{Code: 423, Message: "busy"})},
			method: "ops.list", code: ExitBusy, errOut: "busy"},
	})
}

func TestServerRun(t *testing.T) {
	runCases(t, []runCase{
		{args: []string{"server", "list"}, replies: map[string]func(xmlrpc.Params) any{"server.list": fixed([]api.ServerInfo{
			{ID: "1", Address: "10.0.0.1:7443", Hostname: "a", Version: "1.4.0", StartedAt: goldenNow.Add(-time.Hour),
				HeartbeatAt: goldenNow.Add(-5 * time.Second), Alive: true},
			{ID: "2", Address: "10.0.0.2:7443", StartedAt: goldenNow.Add(-2 * time.Hour)}})},
			method: "server.list", contains: []string{"HEARTBEAT", "alive", "dead", "5s ago"}},
		{args: []string{"server", "list", "-q"}, replies: map[string]func(xmlrpc.Params) any{"server.list": fixed([]api.ServerInfo{{ID: "1"}})},
			method: "server.list", out: "1\n"},
		{args: []string{"server", "status"}, replies: map[string]func(xmlrpc.Params) any{"server.status": fixed(api.ServerStatus{
			ID: "1", Address: "127.0.0.1:7443", Version: "1.4.0", GoVersion: "go1.24", StartedAt: goldenNow.Add(-time.Hour),
			Database: "sqlite:///d/scire.db", SchemaVersion: 9, Gate: api.GateStats{RunningReaders: 2, Admitted: 10}})},
			method: "server.status",
			out: "server 1 at 127.0.0.1:7443, up 1h (version 1.4.0, go1.24)\ndatabase sqlite:///d/scire.db, schema version 9\n" +
				"gate: 2 readers running, modifier running: false, 0 waiting; since start 10 admitted, 0 waited, 0 busy, 0 cancelled\n"},
	})
}

func TestJobRolloutRun(t *testing.T) {
	submitted := map[string]func(xmlrpc.Params) any{"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 10})}
	req := func(r api.SubmitRequest) api.SubmitRequest {
		r.Script, r.Targets, r.Groups, r.Interpreter, r.Permission = "apt-get -y upgrade", []string{}, []string{"web"}, "/bin/sh", "run"
		return r
	}
	submit := func(flags ...string) []string {
		return append([]string{"job", "submit", "-g", "web", "-c", "apt-get -y upgrade"}, flags...)
	}
	pause := func(paused, changed bool) map[string]func(xmlrpc.Params) any {
		res := fixed(api.PauseResult{JobID: "7", Paused: paused, Changed: changed})
		return map[string]func(xmlrpc.Params) any{"job.pause": res, "job.resume": res}
	}
	rerun := map[string]func(xmlrpc.Params) any{"job.rerun": fixed(api.SubmitResult{ID: "12", Runs: 2, RerunOf: "7"})}
	// A rerun that halted: one run failed, the budget was 0, the other
	// was skipped.
	halted := api.Job{ID: "12", Name: "x", Status: "failed", CreatedAt: goldenNow, Counts: map[string]int{"failed": 1, "skipped": 1},
		MaxFailures: ptr(0), SuccessThreshold: 100, Halted: true, HaltReason: "failure budget exceeded: 1 of 2 failed", RerunOf: "7"}
	rerunWait := map[string]func(xmlrpc.Params) any{"job.rerun": rerun["job.rerun"], "job.get": fixed(halted)}
	runCases(t, []runCase{
		// The rollout flags go to the server in the form it reads.
		{args: submit("--max-parallel", "10%", "--max-failures", "2", "--canary", "1", "--success-threshold", "90%"), replies: submitted,
			method: "job.submit", params: []any{req(api.SubmitRequest{MaxParallel: "10%", MaxFailures: "2", Canary: 1, SuccessThreshold: "90%"})},
			out: "job 9 submitted (10 runs)\n"},
		{args: submit("--max-parallel", " 5", "--max-failures", "0", "--success-threshold", "75"), replies: submitted,
			method: "job.submit", params: []any{req(api.SubmitRequest{MaxParallel: "5", MaxFailures: "0", SuccessThreshold: "75%"})},
			out: "job 9 submitted (10 runs)\n"},
		// Bad values are usage errors that name the flag, and reach no server.
		{args: submit("--max-parallel", "ten"), replies: submitted, code: ExitUsage, errOut: `--max-parallel: "ten" is not a number`},
		{args: submit("--max-parallel=-1"), replies: submitted, code: ExitUsage, errOut: "--max-parallel: \"-1\" is negative"},
		{args: submit("--max-failures", "150%"), replies: submitted, code: ExitUsage, errOut: "--max-failures: \"150%\" is more than 100%"},
		{args: submit("--max-failures", "2x"), replies: submitted, code: ExitUsage, errOut: "--max-failures"},
		{args: submit("--canary=-1"), replies: submitted, code: ExitUsage, errOut: "--canary: -1 is negative"},
		{args: submit("--success-threshold", "0%"), replies: submitted, code: ExitUsage, errOut: "--success-threshold: \"0%\" is not a percentage"},
		{args: submit("--success-threshold", "101%"), replies: submitted, code: ExitUsage, errOut: "--success-threshold"},

		{args: []string{"job", "pause", "7"}, replies: pause(true, true), method: "job.pause", params: []any{"7"}, out: "job 7 paused\n"},
		{args: []string{"job", "pause", "7"}, replies: pause(true, false), method: "job.pause", params: []any{"7"},
			out: "job 7 was already paused\n"},
		{args: []string{"job", "resume", "7"}, replies: pause(false, true), method: "job.resume", params: []any{"7"}, out: "job 7 resumed\n"},
		{args: []string{"job", "resume", "7"}, replies: pause(false, false), method: "job.resume", params: []any{"7"},
			out: "job 7 was not paused\n"},
		{args: []string{"job", "pause", "7", "-o", "json"}, replies: pause(true, false), method: "job.pause", params: []any{"7"},
			out: "{\n  \"job_id\": \"7\",\n  \"paused\": true,\n  \"changed\": false\n}\n"},
		{args: []string{"job", "pause", "x"}, replies: pause(true, true), code: ExitUsage, errOut: "JOB-ID \"x\": want a positive number"},
		{args: []string{"job", "resume", "99"},
			replies: map[string]func(xmlrpc.Params) any{"job.resume": fixed(&xmlrpc.Fault{Code: 404, Message: "no job 99"})},
			method:  "job.resume", params: []any{"99"}, code: ExitNotFound, errOut: "no job 99"},

		{args: []string{"job", "rerun", "7"}, replies: rerun, method: "job.rerun", params: []any{"7", api.RerunRequest{}},
			out: "job 12 submitted (2 runs, a rerun of job 7)\n"},
		{args: []string{"job", "rerun", "7", "--failed", "-q"}, replies: rerun, method: "job.rerun",
			params: []any{"7", api.RerunRequest{Failed: true}}, out: "12\n"},
		{args: []string{"job", "rerun", "7", "--failed", "-o", "json"}, replies: rerun, method: "job.rerun",
			params: []any{"7", api.RerunRequest{Failed: true}}, out: "{\n  \"id\": \"12\",\n  \"runs\": 2,\n  \"rerun_of\": \"7\"\n}\n"},
		// --wait follows the new job as job submit --wait does: the progress
		// says the job halted, the runs are printed, skipped exits 5 unless
		// a run failed (3).
		{args: []string{"job", "rerun", "7", "--failed", "--wait", "--wait-interval", "1ms"}, replies: rerunWait,
			method: "job.get", params: []any{"12"}, code: ExitJobFailed,
			contains: []string{"halted:    failure budget exceeded: 1 of 2 failed", "rerun of:  7"},
			errOut:   "job 12 submitted (2 runs, a rerun of job 7), waiting…\njob 12: 2/2 done, 1/0 failures, 0 denied, 1 skipped, halted (failure budget exceeded: 1 of 2 failed), "},
		{args: []string{"job", "rerun", "7", "-q", "--wait", "--wait-interval", "1ms"}, replies: rerunWait,
			method: "job.get", params: []any{"12"}, code: ExitJobFailed, out: "12\n"},
		{args: []string{"job", "rerun", "7", "--wait-timeout", "1m"}, replies: rerun, code: ExitUsage, errOut: "--wait-timeout only applies with --wait"},
	})
}

// TestWaitRolloutOutcomes checks the exit code of --wait for a rollout:
// skipped runs count as cancelled ones (5), and a job whose success
// threshold is met exits 0 though some runs failed.
func TestWaitRolloutOutcomes(t *testing.T) {
	fixClock(t, goldenNow)
	for _, c := range []struct {
		counts    map[string]int
		threshold int
		want      int
	}{
		{map[string]int{"succeeded": 4, "skipped": 6}, 100, ExitJobGaveUp},
		{map[string]int{"succeeded": 9, "failed": 1}, 90, ExitOK},
		{map[string]int{"succeeded": 8, "failed": 1, "skipped": 1}, 90, ExitJobFailed},
		{map[string]int{"succeeded": 8, "skipped": 2}, 80, ExitOK},
	} {
		j := api.Job{ID: "9", Name: "x", Status: "failed", CreatedAt: goldenNow, Counts: c.counts, SuccessThreshold: c.threshold}
		fake := newFakeAPI(map[string]func(xmlrpc.Params) any{
			"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 10}), "job.get": fixed(j)})
		args := []string{"job", "submit", "-g", "web", "-c", "true", "--wait", "--wait-interval", "1ms"}
		if c.threshold < 100 {
			args = append(args, "--success-threshold", fmt.Sprintf("%d%%", c.threshold))
		}
		out, errOut, code := runFake(t, fake, "", args...)
		if code != c.want {
			t.Errorf("%v, threshold %d%%: exit %d, want %d\n%s%s", c.counts, c.threshold, code, c.want, out, errOut)
		}
	}
}
