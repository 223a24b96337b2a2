package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/selector"
)

// ClientLabelOptions are the arguments and flags of `client label`.
type ClientLabelOptions struct {
	remote
	Clients []string          // ids, names or fingerprints
	Set     map[string]string // KEY=VALUE: labels to set
	Remove  []string          // KEY-: label keys to remove, in the order given
}

// NewClientLabelCmd builds `client label`; runF, when not nil, is called
// with the options instead of labelling.
func NewClientLabelCmd(f *Factory, runF func(*ClientLabelOptions) error) *cobra.Command {
	o := &ClientLabelOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "label CLIENT... KEY=VALUE... KEY-...",
		Short: "Set and remove the labels of clients",
		Long: `Set and remove labels: what operators say about a machine, as its facts are
what the machine says about itself. Selectors choose machines by both
("job submit --selector", "client list --selector").

The syntax is kubectl's: the clients first (ids, names or fingerprints), then
the changes: KEY=VALUE sets a label (replacing its value, if the client had
the key), KEY- removes one. Every client named gets every change. A key is a
name of up to 63 letters, digits, '-', '_' and '.' that begins and ends with
a letter or digit, optionally after a DNS prefix and a '/'
(example.com/team); a value is empty or such a name. Keys beginning with "fact." are refused: a selector reads fact.KEY as
the fact KEY, so such a label could never be selected.

An argument with '=' or ending in '-' is a change, so a client whose name
holds '=' or ends in '-' is named by its id or fingerprint instead.

Prints the clients with their labels after the change (-o json: the clients).
Needs the client.label permission.`,
		Example: `  scirectl client label web-01 web-02 env=prod tier=web
  scirectl client label web-01 tier-
  scirectl client label db1 env=staging example.com/team=dba owner-
  scirectl client label web-01 env=prod -o json | jq '.[].labels'`,
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: completeLabelArgs(&o.remote),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Clients, o.Set, o.Remove, err = parseLabelArgs(args); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runClientLabel(cmd.Context(), o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// isLabelChange reports whether a `client label` argument is a change,
// KEY=VALUE or KEY-, rather than a client: kubectl's rule.
func isLabelChange(arg string) bool {
	return strings.Contains(arg, "=") || strings.HasSuffix(arg, "-")
}

// parseLabelArgs splits the arguments of `client label` into the clients
// and the changes, as kubectl does: every argument with '=' or ending in '-'
// is a change, and the clients come before the first change. A bad key or
// value, a key both set and removed or set to two values, no client and no
// change are usage errors; each names the argument it is about.
func parseLabelArgs(args []string) (clients []string, set map[string]string, remove []string, err error) {
	setBy := map[string]string{} // key -> the argument that set it
	removed := map[string]bool{}
	for _, a := range args {
		if !isLabelChange(a) {
			if len(setBy) > 0 || len(removed) > 0 {
				return nil, nil, nil, usageError(fmt.Sprintf("argument %q: the clients come first, then the label changes "+
					"(KEY=VALUE, KEY-)", a))
			}
			clients = append(clients, a)
			continue
		}
		if key, value, ok := strings.Cut(a, "="); ok {
			if err := selector.CheckLabel(key, value); err != nil {
				return nil, nil, nil, usageError(fmt.Sprintf("argument %q: %v", a, err))
			}
			if prev, dup := setBy[key]; dup && set[key] != value {
				return nil, nil, nil, usageError(fmt.Sprintf("argument %q: label %q is already set by %q", a, key, prev))
			}
			if removed[key] {
				return nil, nil, nil, usageError(fmt.Sprintf("argument %q: label %q is both set and removed", a, key))
			}
			if set == nil {
				set = map[string]string{}
			}
			set[key], setBy[key] = value, a
			continue
		}
		key := strings.TrimSuffix(a, "-")
		if err := selector.CheckLabel(key, ""); err != nil {
			return nil, nil, nil, usageError(fmt.Sprintf("argument %q: %v", a, err))
		}
		if _, ok := setBy[key]; ok {
			return nil, nil, nil, usageError(fmt.Sprintf("argument %q: label %q is both set and removed", a, key))
		}
		if !removed[key] {
			removed[key] = true
			remove = append(remove, key)
		}
	}
	switch {
	case len(clients) == 0:
		return nil, nil, nil, usageError("no client: name the clients first, then the changes " +
			"(scirectl client label CLIENT... KEY=VALUE... KEY-)")
	case len(set) == 0 && len(remove) == 0:
		return nil, nil, nil, usageError("no label change: give KEY=VALUE to set a label or KEY- to remove one")
	}
	return clients, set, remove, nil
}

func runClientLabel(ctx context.Context, o *ClientLabelOptions) error {
	ios := o.io()
	cs, err := call[[]api.Client](ctx, &o.remote, api.MethodClientLabel, o.Clients, api.LabelRequest{Set: o.Set, Remove: o.Remove})
	if err != nil {
		return err
	}
	cs = withMaps(cs)
	return show(ios, &o.remote, cs, func(cs []api.Client) error {
		rows := make([][]string, len(cs))
		for i, c := range cs {
			rows[i] = []string{c.ID, c.Name, labelsText(c.Labels)}
		}
		return printTable(ios.Out, &o.out, []string{"ID", "NAME", "LABELS"}, rows)
	})
}

// completeLabelArgs completes the clients of `client label`, until the
// first change: label keys are not completed.
func completeLabelArgs(r *remote) cobra.CompletionFunc {
	clients := completeClients(r)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		for _, a := range args {
			if isLabelChange(a) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
		return clients(cmd, args, toComplete)
	}
}
