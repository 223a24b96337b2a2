package commands

import (
	"context"

	"github.com/spf13/cobra"
)

// remote is what every command that calls the server shares: the
// connection flags and -o. Commands embed it and call [call] and [show].
type remote struct {
	conn connOptions
	out  outputOptions
}

func (r *remote) addFlags(cmd *cobra.Command) {
	addConnFlags(cmd, &r.conn)
	addOutputFlag(cmd, &r.out)
}

// call makes one XML-RPC call and decodes its reply into a T.
func call[T any](ctx context.Context, r *remote, method string, args ...any) (T, error) {
	var reply T
	if err := r.out.validate(); err != nil {
		return reply, err
	}
	c, err := r.conn.client()
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

// nonNil makes an empty list print as [] rather than null in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
