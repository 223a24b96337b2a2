package commands

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewServerCmd builds `scirectl server`.
func NewServerCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "See the server daemons sharing the database",
		Long: `Every "scirectl serve" registers itself in the database at start and sends a
heartbeat every 10 seconds. A daemon silent for 30 seconds is dead: a live one
takes over the runs it had sent and no agent acknowledged ("scirectl recover"
does it by hand).`,
		Example: "  scirectl server list\n  scirectl server status -o json",
	}
	cmd.AddCommand(newServerListCmd(f, nil), newServerStatusCmd(f, nil))
	return cmd
}

// ServerOptions are the flags of `server list` and `server status`.
type ServerOptions struct{ remote }

func newServerListCmd(f *Factory, runF func(*ServerOptions) error) *cobra.Command {
	o := &ServerOptions{newRemote(f)}
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the daemons, alive and dead",
		Long: `List every daemon registered in the database with its address, host, state
(alive while it sends heartbeats), start time, last heartbeat and version.
-q prints only the ids.`,
		Example: "  scirectl server list\n  scirectl server list -o json | jq -r '.[] | select(.alive) | .address'",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runServerList),
	}
	o.addFlags(listCmd)
	addQuietFlag(listCmd, &o.out, "server ids")
	return listCmd
}

func runServerList(ctx context.Context, o *ServerOptions) error {
	ios := o.io()
	ss, err := call[[]api.ServerInfo](ctx, &o.remote, api.MethodServerList)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, ss, func(s api.ServerInfo) string { return s.ID }, func(ss []api.ServerInfo) error {
		now := clock()
		rows := make([][]string, len(ss))
		for i, s := range ss {
			state := "dead"
			if s.Alive {
				state = "alive"
			}
			beat := "-"
			if s.HeartbeatAt.Unix() > 0 {
				beat = ago(s.HeartbeatAt, now)
			}
			rows[i] = []string{s.ID, s.Address, dash(s.Hostname), state, ago(s.StartedAt, now), beat, dash(s.Version)}
		}
		return printTable(ios.Out, &o.out, []string{"ID", "ADDRESS", "HOST", "STATE", "STARTED", "HEARTBEAT", "VERSION"}, rows)
	})
}

func newServerStatusCmd(f *Factory, runF func(*ServerOptions) error) *cobra.Command {
	o := &ServerOptions{newRemote(f)}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show the state of the daemon that answers",
		Long: `Show the daemon that answers the call: its id, address, uptime and version,
its database and schema version, and its gate (readers running, whether a
modifier runs, operations waiting, and counters since start).`,
		Example: "  scirectl server status",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runServerStatus),
	}
	o.addFlags(statusCmd)
	return statusCmd
}

func runServerStatus(ctx context.Context, o *ServerOptions) error {
	ios := o.io()
	st, err := call[api.ServerStatus](ctx, &o.remote, api.MethodServerStatus)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, st, func(st api.ServerStatus) error {
		g := st.Gate
		fmt.Fprintf(ios.Out, "server %s at %s, up %s (version %s, %s)\n", st.ID, st.Address,
			short(clock().Sub(st.StartedAt)), dash(st.Version), st.GoVersion)
		fmt.Fprintf(ios.Out, "database %s, schema version %d\n", st.Database, st.SchemaVersion)
		fmt.Fprintf(ios.Out, "gate: %d readers running, modifier running: %v, %d waiting; since start %d admitted, %d waited, %d busy, %d cancelled\n",
			g.RunningReaders, g.Modifier, g.Waiting, g.Admitted, g.Waited, g.Busy, g.Cancelled)
		return nil
	})
}
