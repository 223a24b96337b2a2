package commands

import (
	"context"

	"github.com/spf13/cobra"
)

// remote is what every command that calls the server shares: the factory,
// the connection flags and -o. Options structs embed it; commands call
// [call] and [show] (or [showList] for a list with -q).
type remote struct {
	f    *Factory
	conn connOptions
	out  outputOptions
}

func newRemote(f *Factory) remote { return remote{f: f} }

func (r *remote) addFlags(cmd *cobra.Command) {
	addConnFlags(cmd, &r.conn)
	addOutputFlag(cmd, &r.out)
}

// io is where the command reads and writes.
func (r *remote) io() *IOStreams { return r.f.IOStreams }

// client returns an API client for the command's connection settings.
func (r *remote) client() (API, error) { return r.f.APIClient(&r.conn) }

// call checks -o, then makes one XML-RPC call and decodes its reply into a T.
func call[T any](ctx context.Context, r *remote, method string, args ...any) (T, error) {
	var reply T
	if err := r.out.validate(); err != nil {
		return reply, err
	}
	c, err := r.client()
	if err != nil {
		return reply, err
	}
	defer c.Close()
	err = c.Call(ctx, method, &reply, args...)
	return reply, err
}

// show prints v as JSON with -o json, else with table.
func show[T any](ios *IOStreams, r *remote, v T, table func(T) error) error {
	if r.out.json() {
		return printJSON(ios.Out, v)
	}
	return table(v)
}

// showList prints a list: its ids with -q, JSON with -o json, else the
// table.
func showList[T any](ios *IOStreams, o *outputOptions, items []T, id func(T) string, table func([]T) error) error {
	if o.Quiet {
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = id(it)
		}
		return printIDs(ios.Out, ids)
	}
	if o.json() {
		return printJSON(ios.Out, nonNil(items))
	}
	return table(items)
}

// nonNil makes an empty list print as [] rather than null in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// runE is a verb's RunE: set copies the arguments into the options o;
// then runF, when a test gave one, gets o, else run does the work.
func runE[O any](o *O, set func(args []string), runF func(*O) error, run func(context.Context, *O) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if set != nil {
			set(args)
		}
		if runF != nil {
			return runF(o)
		}
		return run(cmd.Context(), o)
	}
}
