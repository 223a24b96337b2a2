package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewGroupCmd builds `scirectl group`.
func NewGroupCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Manage client groups and user groups",
		Long: `Groups name sets of machines (client groups) or of operators (user groups), for
ACL rules and for "job submit --group". Every group command takes the kind
first: "client" or "user"; the two kinds have separate names.

Groups nest: "group add client all group:web" makes every member of web a
member of all. Members of a client group are client ids, names or
fingerprints; members of a user group are user names.`,
		Example: `  scirectl group create client web --note "front-end machines"
  scirectl group add client web web1 web2
  scirectl group create client all
  scirectl group add client all group:web
  scirectl group create user ops
  scirectl group add user ops alice bob
  scirectl acl add group:ops run group:all`,
	}
	cmd.AddCommand(newGroupCreateCmd(f, nil), newGroupDeleteCmd(f, nil), newGroupListCmd(f, nil), newGroupShowCmd(f, nil),
		newGroupMembersCmd(f, nil, true), newGroupMembersCmd(f, nil, false))
	return cmd
}

var groupKinds = []string{"client", "user"}

func kindArg(kind string) error {
	if kind != "client" && kind != "user" {
		return usageError(fmt.Sprintf("group kind %q: want client or user", kind))
	}
	return nil
}

// GroupOptions are the arguments and flags of the group verbs.
type GroupOptions struct {
	remote
	Kind     string   // client or user; list: empty for both
	Name     string   // the group
	Note     string   // create
	Selector string   // create: a dynamic client group
	Members  []string // add, remove

	kindGiven bool // list: a kind was on the command line
}

// setKindName takes KIND NAME [MEMBER...].
func (o *GroupOptions) setKindName(args []string) {
	o.Kind, o.Name, o.Members = args[0], args[1], args[2:]
}

func newGroupCreateCmd(f *Factory, runF func(*GroupOptions) error) *cobra.Command {
	o := &GroupOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "create client|user NAME",
		Short: "Create a group",
		Long: `Create an empty group of clients or of users. Names are per kind: a client
group and a user group may share a name.

With --selector a client group is dynamic: it has no members of its own,
its members are the accepted clients the selector matches when the group is
used (a job submitted to it, the ACL deciding a run), so a machine labelled
later belongs to it at once. A selector that names a fact (fact.KEY) makes a
group no ACL rule may name and no group may nest: facts are what a machine
says about itself, and a machine must not grant itself work by claiming one.`,
		Example: "  scirectl group create client web --note \"front-end machines\"\n" +
			"  scirectl group create client prod-web --selector 'env=prod,tier=web'\n" +
			"  scirectl group create client debian --selector fact.os_id=debian\n" +
			"  scirectl group create user ops",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeKind,
		RunE:              runE(o, o.setKindName, runF, runGroupCreate),
	}
	cmd.Flags().StringVar(&o.Note, "note", "", "what the group is for")
	cmd.Flags().StringVar(&o.Selector, "selector", "", "make a dynamic client group: its members are the clients `SEL` matches when it is used")
	o.addFlags(cmd)
	return cmd
}

func runGroupCreate(ctx context.Context, o *GroupOptions) error {
	ios := o.io()
	if err := kindArg(o.Kind); err != nil {
		return err
	}
	args := []any{o.Kind, o.Name, o.Note}
	if o.Selector != "" {
		if o.Kind != "client" {
			return usageError("--selector: only a client group selects its members")
		}
		if err := checkSelectors([]string{o.Selector}); err != nil {
			return err
		}
		args = append(args, o.Selector)
	}
	g, err := call[api.Group](ctx, &o.remote, api.MethodGroupCreate, args...)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, g, func(g api.Group) error {
		fmt.Fprintf(ios.Out, "created %s group %s\n", g.Kind, g.Name)
		return nil
	})
}

func newGroupDeleteCmd(f *Factory, runF func(*GroupOptions) error) *cobra.Command {
	o := &GroupOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "delete client|user NAME",
		Short: "Delete a group",
		Long: `Delete a group and its memberships (the members themselves stay). A group an
ACL rule names cannot be deleted until the rule is removed.`,
		Example:           "  scirectl group delete client web",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeGroupArgs(&o.remote, ""),
		RunE:              runE(o, o.setKindName, runF, runGroupDelete),
	}
	o.addFlags(cmd)
	return cmd
}

func runGroupDelete(ctx context.Context, o *GroupOptions) error {
	ios := o.io()
	if err := kindArg(o.Kind); err != nil {
		return err
	}
	g, err := call[api.Group](ctx, &o.remote, api.MethodGroupDelete, o.Kind, o.Name)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, g, func(g api.Group) error {
		fmt.Fprintf(ios.Out, "deleted %s group %s\n", g.Kind, g.Name)
		return nil
	})
}

func newGroupListCmd(f *Factory, runF func(*GroupOptions) error) *cobra.Command {
	o := &GroupOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list [client|user]",
		Short: "List groups with their direct members",
		Long: `List groups (of one kind, or both) with their direct members and the groups
nested in them. -q prints only the names.`,
		Example:           "  scirectl group list\n  scirectl group list client -o json",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: completeKind,
		RunE: runE(o, func(args []string) {
			if len(args) == 1 {
				o.Kind, o.kindGiven = args[0], true
			}
		}, runF, runGroupList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "group names")
	return cmd
}

func runGroupList(ctx context.Context, o *GroupOptions) error {
	ios := o.io()
	var callArgs []any
	if o.kindGiven {
		if err := kindArg(o.Kind); err != nil {
			return err
		}
		callArgs = append(callArgs, o.Kind)
	}
	gs, err := call[[]api.Group](ctx, &o.remote, api.MethodGroupList, callArgs...)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, gs, func(g api.Group) string { return g.Name }, func(gs []api.Group) error { return printGroups(ios, &o.out, gs) })
}

func printGroups(ios *IOStreams, o *outputOptions, gs []api.Group) error {
	now := clock()
	rows := make([][]string, len(gs))
	for i, g := range gs {
		members := strings.Join(g.Members, ",")
		if g.Selector != "" {
			members = "selector " + g.Selector
			if len(g.Members) > 0 {
				members += ": " + strings.Join(g.Members, ",")
			}
		}
		rows[i] = []string{g.Kind, g.Name, dash(members), dash(strings.Join(g.Groups, ",")), dash(g.Note), ago(g.CreatedAt, now)}
	}
	return printTable(ios.Out, o, []string{"KIND", "NAME", "MEMBERS", "GROUPS", "NOTE", "CREATED"}, rows)
}

func newGroupShowCmd(f *Factory, runF func(*GroupOptions) error) *cobra.Command {
	o := &GroupOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "show client|user NAME",
		Short: "Show one group",
		Long: `Show one group: its direct members, the groups nested in it, its note and
when it was created.`,
		Example:           "  scirectl group show client web",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeGroupArgs(&o.remote, ""),
		RunE:              runE(o, o.setKindName, runF, runGroupShow),
	}
	o.addFlags(cmd)
	return cmd
}

func runGroupShow(ctx context.Context, o *GroupOptions) error {
	ios := o.io()
	if err := kindArg(o.Kind); err != nil {
		return err
	}
	g, err := call[api.Group](ctx, &o.remote, api.MethodGroupGet, o.Kind, o.Name)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, g, func(g api.Group) error { return printGroups(ios, &o.out, []api.Group{g}) })
}

func newGroupMembersCmd(f *Factory, runF func(*GroupOptions) error, add bool) *cobra.Command {
	o := &GroupOptions{remote: newRemote(f)}
	use, method, short := "add", api.MethodGroupAdd, "Add members to a group"
	example := "  scirectl group add client web web1 web2 12\n  scirectl group add client all group:web\n  scirectl group add user ops alice"
	if !add {
		use, method, short = "remove", api.MethodGroupRemove, "Remove members from a group"
		example = "  scirectl group remove client web web2\n  scirectl group remove client all group:web"
	}
	cmd := &cobra.Command{
		Use:   use + " client|user GROUP MEMBER...",
		Short: short,
		Long: short + `. A MEMBER is a client id, name or fingerprint (client
groups) or a user name (user groups); group:NAME names a nested group of the
same kind.`,
		Example:           example,
		Args:              cobra.MinimumNArgs(3),
		ValidArgsFunction: completeGroupArgs(&o.remote, use),
		RunE: runE(o, o.setKindName, runF, func(ctx context.Context, o *GroupOptions) error {
			return runGroupMembers(ctx, o, method)
		}),
	}
	o.addFlags(cmd)
	return cmd
}

// runGroupMembers calls group.add or group.remove.
func runGroupMembers(ctx context.Context, o *GroupOptions, method string) error {
	ios := o.io()
	if err := kindArg(o.Kind); err != nil {
		return err
	}
	g, err := call[api.Group](ctx, &o.remote, method, o.Kind, o.Name, o.Members)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, g, func(g api.Group) error { return printGroups(ios, &o.out, []api.Group{g}) })
}

// completeKind completes the group kind, the first argument of every
// group command.
func completeKind(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return groupKinds, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
