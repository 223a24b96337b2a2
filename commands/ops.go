package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewOpsCmd builds `scirectl ops`.
func NewOpsCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ops",
		Short: "See and cancel operations at the server's gate",
		Long: `Every operation passes one readers-writers gate: a modifier (submitting a job,
editing the ACL, database maintenance, …) runs alone; non-modifiers (reads and
the agent protocol) run together unless a modifier runs. Waiting is first in,
first out, up to the server's wait limit; with --no-wait a command fails at
once with exit code 18 instead, naming the operation that holds the gate.`,
		Example: `  scirectl ops list
  scirectl ops cancel 42
  scirectl ops classes`,
	}
	cmd.AddCommand(newOpsListCmd(f, nil), newOpsCancelCmd(f, nil), newOpsClassesCmd(f, nil))
	return cmd
}

func printOps(ios *IOStreams, o *outputOptions, ops []api.Op) error {
	now := clock()
	rows := make([][]string, len(ops))
	for i, o := range ops {
		rows[i] = []string{o.ID, o.Name, o.Class, o.State, o.User, ago(o.Since, now)}
	}
	return printTable(ios.Out, o, []string{"ID", "OPERATION", "CLASS", "STATE", "USER", "SINCE"}, rows)
}

// OpsOptions are the argument and flags of the ops verbs.
type OpsOptions struct {
	remote
	OpID string // cancel
}

func newOpsListCmd(f *Factory, runF func(*OpsOptions) error) *cobra.Command {
	o := &OpsOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List running and waiting operations",
		Long: `List the operations running at the gate (oldest first), then those waiting, in
queue order. This call is itself a non-modifier, so it waits while a modifier
runs unless --no-wait is given.`,
		Example: "  scirectl ops list\n  scirectl ops list -o json",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runOpsList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "operation ids")
	return cmd
}

func runOpsList(ctx context.Context, o *OpsOptions) error {
	ios := o.io()
	ops, err := call[[]api.Op](ctx, &o.remote, api.MethodOpsList)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, ops, func(o api.Op) string { return o.ID }, func(ops []api.Op) error { return printOps(ios, &o.out, ops) })
}

func newOpsCancelCmd(f *Factory, runF func(*OpsOptions) error) *cobra.Command {
	o := &OpsOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running or waiting operation",
		Long: `Cancel an operation by the id "ops list" shows. A waiting one leaves the queue
at once; a running one has its context cancelled and stops at its next check
(its database transaction is rolled back).`,
		Example:           "  scirectl ops cancel 42",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeOps(&o.remote),
		RunE:              runE(o, func(args []string) { o.OpID = args[0] }, runF, runOpsCancel),
	}
	o.addFlags(cmd)
	return cmd
}

func runOpsCancel(ctx context.Context, o *OpsOptions) error {
	ios := o.io()
	op, err := call[api.Op](ctx, &o.remote, api.MethodOpsCancel, o.OpID)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, op, func(op api.Op) error {
		fmt.Fprintf(ios.Out, "cancelled %s %s (op %s) of %s\n", op.State, op.Name, op.ID, op.User)
		return nil
	})
}

func newOpsClassesCmd(f *Factory, runF func(*OpsOptions) error) *cobra.Command {
	o := &OpsOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "classes",
		Short: "Print every operation with its gate class",
		Long: `Print the operation table in force: each operation's gate class, its default
class (the server configuration may override it), and the admin permission an
operator needs for it.`,
		Example: "  scirectl ops classes\n  scirectl ops classes -o json | jq -r '.[] | select(.class==\"modifier\") | .name'",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runOpsClasses),
	}
	o.addFlags(cmd)
	return cmd
}

func runOpsClasses(ctx context.Context, o *OpsOptions) error {
	ios := o.io()
	cs, err := call[[]api.OpClass](ctx, &o.remote, api.MethodOpsClasses)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, nonNil(cs), func(cs []api.OpClass) error {
		rows := make([][]string, len(cs))
		for i, c := range cs {
			def := "-"
			if c.DefaultClass != c.Class {
				def = c.DefaultClass
			}
			rows[i] = []string{c.Name, c.Class, def, dash(c.Permission)}
		}
		return printTable(ios.Out, &o.out, []string{"OPERATION", "CLASS", "OVERRIDES", "PERMISSION"}, rows)
	})
}
