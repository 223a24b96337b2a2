package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewACLCmd builds `scirectl acl`.
func NewACLCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Decide who may do what, where",
		Long: `The access control list decides whether an operator may use a permission on a
client. Every run is checked twice: when the job is submitted (a job no
target allows is refused at once) and again just before it is handed to its
machine, so a rule changed after submit still applies; a refused run becomes
"denied" and is never sent.

A rule is SUBJECT PERMISSION TARGET, allow or deny:
  SUBJECT     user:NAME, group:NAME (a user group) or * (anyone); a bare name is a user
  PERMISSION  the permission a job needs (run by default; job submit --permission),
              an admin permission, or * (any)
  TARGET      client:REF, group:NAME (a client group) or *; a bare name is a client.
              REF (an id, fingerprint or name of a registered client) is resolved
              when the rule is written: the rule names that client's id, shown as
              client:NAME#ID, and no later client with the same name. Deleting the
              client deletes its rules.

Deny wins over allow; with no matching rule the answer is deny. The built-in
admin is allowed everything unless a deny rule names it (directly or through a
user group); a deny for * does not bind admin.

Admin permissions act on the server itself and are granted by rules whose
target is *: job.read (see others' jobs), job.cancel, client.read,
client.accept, client.reject, client.revoke, client.delete, user.read,
user.write, group.read, group.write, acl.read, acl.write, audit.read,
ops.read, ops.cancel, blacklist.write, server.read, db.admin.

Admin and job permissions are separate: an admin permission (and any name
in the server's areas, such as client.* or acl.*) is never a job's
permission, and a job permission never grants an admin action. * in a rule
means every job permission on its target; with the target * it also means
every admin permission. Changing a user group's members needs acl.write.`,
		Example: `  scirectl acl add group:ops run group:web --note "ops deploy to web"
  scirectl acl add --deny user:intern '*' group:databases
  scirectl acl add user:alice client.accept '*'
  scirectl acl check alice run web1
  scirectl acl list`,
	}
	cmd.AddCommand(newACLListCmd(f, nil), newACLAddCmd(f, nil), newACLRemoveCmd(f, nil),
		newACLActiveCmd(f, nil, true), newACLActiveCmd(f, nil, false), newACLCheckCmd(f, nil))
	return cmd
}

// ruleTarget shows a rule's target; a client with its id, which is what
// the rule names ("client:web#7"): a later client named web is another.
func ruleTarget(r api.ACLRule) string {
	if r.TargetID != "" {
		return r.Target + "#" + r.TargetID
	}
	return r.Target
}

func printRules(ios *IOStreams, o *outputOptions, rs []api.ACLRule) error {
	now := clock()
	rows := make([][]string, len(rs))
	for i, r := range rs {
		active := "yes"
		if !r.Active {
			active = "no"
		}
		rows[i] = []string{r.ID, r.Action, r.Subject, r.Permission, ruleTarget(r), active, dash(r.Note), dash(r.CreatedBy), ago(r.CreatedAt, now)}
	}
	return printTable(ios.Out, o, []string{"ID", "ACTION", "SUBJECT", "PERMISSION", "TARGET", "ACTIVE", "NOTE", "BY", "CREATED"}, rows)
}

// ACLListOptions are the flags of `acl list`.
type ACLListOptions struct{ remote }

func newACLListCmd(f *Factory, runF func(*ACLListOptions) error) *cobra.Command {
	o := &ACLListOptions{newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rules",
		Long: `List every ACL rule, active or not, with who added it and when. -q prints
only the rule ids.`,
		Example: "  scirectl acl list\n  scirectl acl list -o json",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runACLList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "rule ids")
	return cmd
}

func runACLList(ctx context.Context, o *ACLListOptions) error {
	ios := o.io()
	rs, err := call[[]api.ACLRule](ctx, &o.remote, api.MethodACLList)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, rs, func(r api.ACLRule) string { return r.ID },
		func(rs []api.ACLRule) error { return printRules(ios, &o.out, rs) })
}

// ACLAddOptions are the arguments and flags of `acl add`.
type ACLAddOptions struct {
	remote
	Subject, Permission, Target string
	Deny, Inactive              bool
	Note                        string
}

func newACLAddCmd(f *Factory, runF func(*ACLAddOptions) error) *cobra.Command {
	o := &ACLAddOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "add SUBJECT PERMISSION TARGET",
		Short: "Add a rule (allow by default)",
		Long: `Add a rule. SUBJECT is user:NAME, group:NAME or *; PERMISSION is a job
permission (run), an admin permission (acl.write, client.accept, …) or *;
TARGET is client:REF (id, fingerprint or name of a registered client, resolved
now to its id), group:NAME or *. Quote * in the shell.`,
		Example: `  scirectl acl add group:ops run group:web
  scirectl acl add --deny '*' run client:db1 --note "db1 is frozen"
  scirectl acl add user:alice acl.write '*'`,
		Args: cobra.ExactArgs(3),
		RunE: runE(o, func(args []string) { o.Subject, o.Permission, o.Target = args[0], args[1], args[2] }, runF, runACLAdd),
	}
	cmd.Flags().BoolVar(&o.Deny, "deny", false, "make it a deny rule")
	cmd.Flags().BoolVar(&o.Inactive, "inactive", false, "add the rule switched off (see acl enable)")
	cmd.Flags().StringVar(&o.Note, "note", "", "why the rule exists (shown in decisions)")
	o.addFlags(cmd)
	return cmd
}

func runACLAdd(ctx context.Context, o *ACLAddOptions) error {
	ios := o.io()
	action := "allow"
	if o.Deny {
		action = "deny"
	}
	rule := api.ACLAddRequest{Subject: o.Subject, Permission: o.Permission, Target: o.Target,
		Action: action, Note: o.Note, Active: !o.Inactive}
	got, err := call[api.ACLRule](ctx, &o.remote, api.MethodACLAdd, rule)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, got, func(got api.ACLRule) error {
		fmt.Fprintf(ios.Out, "rule %s: %s %s %s on %s\n", got.ID, got.Action, got.Subject, got.Permission, ruleTarget(got))
		return nil
	})
}

// ACLRuleOptions are the argument and flags of `acl remove`, `enable` and
// `disable`.
type ACLRuleOptions struct {
	remote
	RuleID string
	Active bool // enable (true) or disable (false); not used by remove
}

func newACLRemoveCmd(f *Factory, runF func(*ACLRuleOptions) error) *cobra.Command {
	o := &ACLRuleOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "remove RULE_ID",
		Short: "Remove a rule",
		Long: `Remove a rule for good; the decision it took part in is made again without it
from now on (a run already denied stays denied). "acl disable" switches a rule
off without losing it.`,
		Example:           "  scirectl acl remove 4",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRules(&o.remote),
		RunE:              runE(o, func(args []string) { o.RuleID = args[0] }, runF, runACLRemove),
	}
	o.addFlags(cmd)
	return cmd
}

func runACLRemove(ctx context.Context, o *ACLRuleOptions) error {
	ios := o.io()
	got, err := call[api.ACLRule](ctx, &o.remote, api.MethodACLRemove, o.RuleID)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, got, func(got api.ACLRule) error {
		fmt.Fprintf(ios.Out, "removed rule %s: %s %s %s on %s\n", got.ID, got.Action, got.Subject, got.Permission, got.Target)
		return nil
	})
}

func newACLActiveCmd(f *Factory, runF func(*ACLRuleOptions) error, on bool) *cobra.Command {
	o := &ACLRuleOptions{remote: newRemote(f), Active: on}
	use, short := "enable", "Switch a rule on"
	if !on {
		use, short = "disable", "Switch a rule off without removing it"
	}
	cmd := &cobra.Command{
		Use:   use + " RULE_ID",
		Short: short,
		Long: short + `. A disabled rule stays in the list but takes no part in
any decision until it is enabled again; runs are checked against the rules in
force when they are handed out.`,
		Example:           "  scirectl acl " + use + " 4",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRules(&o.remote),
		RunE:              runE(o, func(args []string) { o.RuleID = args[0] }, runF, runACLActive),
	}
	o.addFlags(cmd)
	return cmd
}

func runACLActive(ctx context.Context, o *ACLRuleOptions) error {
	ios := o.io()
	got, err := call[api.ACLRule](ctx, &o.remote, api.MethodACLSetActive, o.RuleID, o.Active)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, got, func(got api.ACLRule) error { return printRules(ios, &o.out, []api.ACLRule{got}) })
}

// ACLCheckOptions are the arguments and flags of `acl check`.
type ACLCheckOptions struct {
	remote
	User, Permission, Client string
}

func newACLCheckCmd(f *Factory, runF func(*ACLCheckOptions) error) *cobra.Command {
	o := &ACLCheckOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "check USER PERMISSION CLIENT",
		Short: "Explain whether a user may use a permission on a client",
		Long: `Explain a decision and name the rule that made it. CLIENT is a client id, name
or fingerprint, or * for an admin permission. Exit code 0 when allowed, 3
when denied, so scripts can test it.`,
		Example: "  scirectl acl check alice run web1\n  scirectl acl check alice acl.write '*'",
		Args:    cobra.ExactArgs(3),
		RunE:    runE(o, func(args []string) { o.User, o.Permission, o.Client = args[0], args[1], args[2] }, runF, runACLCheck),
	}
	o.addFlags(cmd)
	return cmd
}

func runACLCheck(ctx context.Context, o *ACLCheckOptions) error {
	ios := o.io()
	d, err := call[api.ACLDecision](ctx, &o.remote, api.MethodACLCheck, o.User, o.Permission, o.Client)
	if err != nil {
		return err
	}
	err = show(ios, &o.remote, d, func(d api.ACLDecision) error {
		verdict := "ALLOWED"
		if !d.Allowed {
			verdict = "DENIED"
		}
		fmt.Fprintf(ios.Out, "%s: %s %q on %s\n%s\n", verdict, d.User, d.Permission, d.Target, d.Reason)
		return nil
	})
	if err == nil && !d.Allowed {
		return &exitError{code: ExitJobFailed}
	}
	return err
}
