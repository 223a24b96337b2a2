package commands

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// parse builds a verb with a runF that keeps its options, runs the command
// line args through cobra and returns the options the flags and arguments
// made. No call may reach the API.
func parse[O any](t *testing.T, build func(*Factory, func(*O) error) *cobra.Command, args ...string) *O {
	t.Helper()
	api := newFakeAPI(nil)
	var got *O
	cmd := build(api.factory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}), func(o *O) error {
		got = o
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%s %q: %v", cmd.Name(), args, err)
	}
	if got == nil {
		t.Fatalf("%s %q: runF was not called", cmd.Name(), args)
	}
	if ms := api.methods(); len(ms) > 0 {
		t.Errorf("%s %q: runF was given, yet %v reached the API", cmd.Name(), args, ms)
	}
	return got
}

// check compares one option with what it should be.
func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func TestJobFlags(t *testing.T) {
	s := parse(t, NewJobSubmitCmd, "--target", "web1,web2", "-t", "db1", "-g", "web", "-c", "uptime", "--interpreter", "/bin/bash",
		"--name", "up", "--priority", "5", "--timeout", "10m", "--permission", "deploy", "--max-attempts", "3", "--at", "10m",
		"--expires", "2026-11-22T10:00:00Z", "--wait", "--wait-interval", "2s", "--wait-timeout", "1m", "-q", "-o", "json",
		"--server", "h:1", "--token", "tok", "--no-wait")
	check(t, "Targets", s.Targets, []string{"web1", "web2", "db1"})
	check(t, "Groups", s.Groups, []string{"web"})
	check(t, "Command", s.Command, "uptime")
	check(t, "Interpreter", s.Interpreter, "/bin/bash")
	check(t, "Name", s.Name, "up")
	check(t, "Priority", s.Priority, 5)
	check(t, "Timeout", s.Timeout, 10*time.Minute)
	check(t, "Permission", s.Permission, "deploy")
	check(t, "MaxAttempts", s.MaxAttempts, 3)
	check(t, "At", s.At, "10m")
	check(t, "Expires", s.Expires, "2026-11-22T10:00:00Z")
	check(t, "Wait", s.Wait, true)
	check(t, "watch", []time.Duration{s.watch.Interval, s.watch.Timeout}, []time.Duration{2 * time.Second, time.Minute})
	check(t, "out", []any{s.out.Quiet, s.out.Format}, []any{true, "json"})
	check(t, "conn", []any{s.conn.Server, s.conn.Token, s.conn.NoWait}, []any{"h:1", "tok", true})

	s = parse(t, NewJobSubmitCmd, "--target", "web1", "--script", "-")
	check(t, "defaults", []any{s.ScriptFile, s.Interpreter, s.Permission, s.Priority, s.Timeout, s.MaxAttempts, s.Wait, s.out.Format},
		[]any{"-", "/bin/sh", "run", 0, time.Duration(0), 0, false, "table"})
	check(t, "rollout defaults", []any{s.MaxParallel, s.MaxFailures, s.Canary, s.SuccessThreshold}, []any{"", "", 0, ""})

	// --selector is repeatable and keeps each value whole, commas and
	// all; --target passes a glob through untouched.
	s = parse(t, NewJobSubmitCmd, "--selector", "env=prod,fact.os_id=debian", "--selector", "tier in (web,cache)",
		"--target", "web*", "-c", "true")
	check(t, "Selectors", s.Selectors, []string{"env=prod,fact.os_id=debian", "tier in (web,cache)"})
	check(t, "glob Targets", s.Targets, []string{"web*"})
	check(t, "no --selector", parse(t, NewJobSubmitCmd, "-t", "web1", "-c", "true").Selectors, []string(nil))

	s = parse(t, NewJobSubmitCmd, "-g", "web", "-c", "apt-get -y upgrade", "--max-parallel", "10%", "--max-failures", "2",
		"--canary", "1", "--success-threshold", "90%")
	check(t, "rollout", []any{s.MaxParallel, s.MaxFailures, s.Canary, s.SuccessThreshold}, []any{"10%", "2", 1, "90%"})

	l := parse(t, NewJobListCmd, "--limit", "10", "-o", "wide", "--no-headers")
	check(t, "list", []any{l.Limit, l.out.Format, l.out.NoHeaders}, []any{10, "wide", true})
	check(t, "list default limit", parse(t, NewJobListCmd).Limit, 100)

	st := parse(t, NewJobStatusCmd, "42", "--watch", "--wait-interval", "3s")
	check(t, "status", []any{st.JobID, st.Watch, st.watch.Interval}, []any{"42", true, 3 * time.Second})

	o := parse(t, NewJobOutputCmd, "42", "--client", "web1")
	check(t, "output", []any{o.JobID, o.Client, o.Follow, o.Collapse}, []any{"42", "web1", false, false})
	o = parse(t, NewJobOutputCmd, "42", "-f", "-o", "json")
	check(t, "output -f", []any{o.Follow, o.Collapse, o.out.Format}, []any{true, false, "json"})
	o = parse(t, NewJobOutputCmd, "42", "--follow", "--client", "web2")
	check(t, "output --follow --client", []any{o.Follow, o.Client}, []any{true, "web2"})
	check(t, "output --collapse", parse(t, NewJobOutputCmd, "42", "--collapse").Collapse, true)

	c := parse(t, NewJobCancelCmd, "42", "-o", "json")
	check(t, "cancel", []any{c.JobID, c.out.Format}, []any{"42", "json"})

	p := parse(t, NewJobPauseCmd, "42", "-o", "json")
	check(t, "pause", []any{p.JobID, p.Pause, p.out.Format}, []any{"42", true, "json"})
	p = parse(t, NewJobResumeCmd, "42")
	check(t, "resume", []any{p.JobID, p.Pause}, []any{"42", false})

	r := parse(t, NewJobRerunCmd, "42", "--failed", "--wait", "--wait-interval", "2s", "--wait-timeout", "1m", "-q")
	check(t, "rerun", []any{r.JobID, r.Failed, r.Wait, r.watch.Interval, r.watch.Timeout, r.out.Quiet},
		[]any{"42", true, true, 2 * time.Second, time.Minute, true})
	r = parse(t, NewJobRerunCmd, "42")
	check(t, "rerun defaults", []any{r.Failed, r.Wait, r.out.Quiet}, []any{false, false, false})
}

func TestClientFlags(t *testing.T) {
	l := parse(t, NewClientListCmd, "--status", "pending", "-q")
	check(t, "list", []any{l.Status, l.out.Quiet, l.Selectors}, []any{"pending", true, []string(nil)})
	l = parse(t, NewClientListCmd, "--selector", "env=prod,tier=web", "--selector", "!env")
	check(t, "list --selector", l.Selectors, []string{"env=prod,tier=web", "!env"})
	check(t, "show", parse(t, NewClientShowCmd, "web1", "-o", "json").Client, "web1")

	// client label: the clients, then KEY=VALUE to set and KEY- to remove.
	lb := parse(t, NewClientLabelCmd, "web-01", "web-02", "12", "env=prod", "tier=web", "example.com/team=sre", "empty=", "owner-", "rack-", "owner-")
	check(t, "label clients", lb.Clients, []string{"web-01", "web-02", "12"})
	check(t, "label set", lb.Set, map[string]string{"env": "prod", "tier": "web", "example.com/team": "sre", "empty": ""})
	check(t, "label remove", lb.Remove, []string{"owner", "rack"})
	lb = parse(t, NewClientLabelCmd, "web-01", "tier-")
	check(t, "label remove only", []any{lb.Clients, lb.Set, lb.Remove}, []any{[]string{"web-01"}, map[string]string(nil), []string{"tier"}})
	lb = parse(t, NewClientLabelCmd, "web1", "env=prod", "env=prod")
	check(t, "label set twice alike", lb.Set, map[string]string{"env": "prod"})
	for use, method := range map[string]string{"accept": "client.accept", "reject": "client.reject", "revoke": "client.revoke", "delete": "client.delete"} {
		s := parse(t, func(f *Factory, runF func(*ClientStatusOptions) error) *cobra.Command {
			return newClientStatusCmd(f, runF, use, method, "", "")
		}, "web1", "12")
		check(t, use, []any{s.Method, s.Clients}, []any{method, []string{"web1", "12"}})
	}
}

func TestACLFlags(t *testing.T) {
	a := parse(t, newACLAddCmd, "--deny", "user:intern", "*", "group:db", "--note", "frozen", "--inactive")
	check(t, "add", []any{a.Subject, a.Permission, a.Target, a.Deny, a.Inactive, a.Note},
		[]any{"user:intern", "*", "group:db", true, true, "frozen"})
	a = parse(t, newACLAddCmd, "group:ops", "run", "group:web")
	check(t, "add defaults", []any{a.Deny, a.Inactive, a.Note}, []any{false, false, ""})
	check(t, "list -q", parse(t, newACLListCmd, "-q").out.Quiet, true)
	check(t, "remove", parse(t, newACLRemoveCmd, "4").RuleID, "4")
	for _, on := range []bool{true, false} {
		r := parse(t, func(f *Factory, runF func(*ACLRuleOptions) error) *cobra.Command { return newACLActiveCmd(f, runF, on) }, "4")
		check(t, "enable/disable", []any{r.RuleID, r.Active}, []any{"4", on})
	}
	c := parse(t, newACLCheckCmd, "alice", "run", "web1")
	check(t, "check", []any{c.User, c.Permission, c.Client}, []any{"alice", "run", "web1"})
}

func TestUserFlags(t *testing.T) {
	a := parse(t, newUserAddCmd, "ci-bot", "--token-name", "ci", "--no-token")
	check(t, "add", []any{a.Name, a.TokenName, a.NoToken}, []any{"ci-bot", "ci", true})
	check(t, "list -q", parse(t, newUserListCmd, "-q").out.Quiet, true)
	check(t, "delete", parse(t, newUserDeleteCmd, "alice").Name, "alice")
	c := parse(t, newUserTokenCreateCmd, "alice", "--name", "laptop")
	check(t, "token create", []any{c.User, c.Name}, []any{"alice", "laptop"})
	c = parse(t, newUserTokenCreateCmd)
	check(t, "token create for oneself", []any{c.User, c.Name}, []any{"", ""})
	l := parse(t, newUserTokenListCmd, "alice")
	check(t, "token list", []any{l.User, l.userGiven}, []any{"alice", true})
	check(t, "token list of one's own", parse(t, newUserTokenListCmd).userGiven, false)
	check(t, "token revoke", parse(t, newUserTokenRevokeCmd, "7").TokenID, "7")
}

func TestGroupFlags(t *testing.T) {
	c := parse(t, newGroupCreateCmd, "client", "web", "--note", "front ends")
	check(t, "create", []any{c.Kind, c.Name, c.Note}, []any{"client", "web", "front ends"})
	d := parse(t, newGroupDeleteCmd, "user", "ops")
	check(t, "delete", []any{d.Kind, d.Name}, []any{"user", "ops"})
	l := parse(t, newGroupListCmd, "client", "-q")
	check(t, "list", []any{l.Kind, l.kindGiven, l.out.Quiet}, []any{"client", true, true})
	check(t, "list of both kinds", parse(t, newGroupListCmd).kindGiven, false)
	s := parse(t, newGroupShowCmd, "client", "web")
	check(t, "show", []any{s.Kind, s.Name}, []any{"client", "web"})
	for _, add := range []bool{true, false} {
		m := parse(t, func(f *Factory, runF func(*GroupOptions) error) *cobra.Command {
			return newGroupMembersCmd(f, runF, add)
		},
			"client", "web", "web1", "group:all")
		check(t, "members", []any{m.Kind, m.Name, m.Members}, []any{"client", "web", []string{"web1", "group:all"}})
	}
}

func TestAuditFlags(t *testing.T) {
	a := parse(t, newAuditListCmd, "--actor", "alice", "--operation", "acl.*", "--outcome", "denied", "--since", "24h",
		"--limit", "5", "--before", "9", "-q")
	check(t, "list", []any{a.Actor, a.Operation, a.Outcome, a.Since, a.Limit, a.Before, a.out.Quiet},
		[]any{"alice", "acl.*", "denied", 24 * time.Hour, 5, "9", true})
	a = parse(t, newAuditListCmd)
	check(t, "defaults", []any{a.Limit, a.Since}, []any{100, time.Duration(0)})
}

func TestBlacklistFlags(t *testing.T) {
	l := parse(t, newBlacklistListCmd, "--offline", "--data-dir", "/d", "-q")
	check(t, "list", []any{l.Offline, l.conn.DataDir, l.out.Quiet}, []any{true, "/d", true})
	a := parse(t, func(f *Factory, runF func(*BlacklistOptions) error) *cobra.Command {
		return newBlacklistEditCmd(f, runF, true)
	},
		"job.submit", "acl.*", "--force")
	check(t, "add", []any{a.Patterns, a.Force, a.Offline}, []any{[]string{"job.submit", "acl.*"}, true, false})
	r := parse(t, func(f *Factory, runF func(*BlacklistOptions) error) *cobra.Command {
		return newBlacklistEditCmd(f, runF, false)
	},
		"job.submit", "--offline")
	check(t, "remove", []any{r.Patterns, r.Offline}, []any{[]string{"job.submit"}, true})
	check(t, "check", parse(t, newBlacklistCheckCmd, "job.submit").Operation, "job.submit")
}

func TestOpsFlags(t *testing.T) {
	check(t, "list -q", parse(t, newOpsListCmd, "-q").out.Quiet, true)
	check(t, "cancel", parse(t, newOpsCancelCmd, "42").OpID, "42")
	check(t, "classes -o json", parse(t, newOpsClassesCmd, "-o", "json").out.Format, "json")
}

func TestServerFlags(t *testing.T) {
	check(t, "list -q", parse(t, newServerListCmd, "-q").out.Quiet, true)
	s := parse(t, newServerStatusCmd, "-o", "json", "--server", "h:2")
	check(t, "status", []any{s.out.Format, s.conn.Server}, []any{"json", "h:2"})
}
