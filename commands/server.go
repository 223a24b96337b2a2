package commands

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// NewServerCmd builds `scirectl server`.
func NewServerCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "See the server daemons sharing the database",
		Long: `Every "scirectl serve" registers itself in the database at start and sends a
heartbeat every 10 seconds. A daemon silent for 30 seconds is dead: a live one
takes over the runs it had sent and no agent acknowledged ("scirectl recover"
does it by hand).`,
		Example: "  scirectl server list\n  scirectl server status -o json",
	}
	var list, status remote
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List the daemons, alive and dead",
		Long: `List every daemon registered in the database with its address, host, state
(alive while it sends heartbeats), start time, last heartbeat and version.
-q prints only the ids.`,
		Example: "  scirectl server list\n  scirectl server list -o json | jq -r '.[] | select(.alive) | .address'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := call[[]api.ServerInfo](cmd.Context(), &list, "server.list")
			if err != nil {
				return err
			}
			return showList(ios, &list.out, ss, func(s api.ServerInfo) string { return s.ID }, func(ss []api.ServerInfo) error {
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
				return printTable(ios.Out, &list.out, []string{"ID", "ADDRESS", "HOST", "STATE", "STARTED", "HEARTBEAT", "VERSION"}, rows)
			})
		},
	}
	list.addFlags(listCmd)
	addQuietFlag(listCmd, &list.out, "server ids")
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Show the state of the daemon that answers",
		Long: `Show the daemon that answers the call: its id, address, uptime and version,
its database and schema version, and its gate (readers running, whether a
modifier runs, operations waiting, and counters since start).`,
		Example: "  scirectl server status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := call[api.ServerStatus](cmd.Context(), &status, "server.status")
			if err != nil {
				return err
			}
			return show(ios, &status, st, func(st api.ServerStatus) error {
				g := st.Gate
				fmt.Fprintf(ios.Out, "server %s at %s, up %s (version %s, %s)\n", st.ID, st.Address,
					short(clock().Sub(st.StartedAt)), dash(st.Version), st.GoVersion)
				fmt.Fprintf(ios.Out, "database %s, schema version %d\n", st.Database, st.SchemaVersion)
				fmt.Fprintf(ios.Out, "gate: %d readers running, modifier running: %v, %d waiting; since start %d admitted, %d waited, %d busy, %d cancelled\n",
					g.RunningReaders, g.Modifier, g.Waiting, g.Admitted, g.Waited, g.Busy, g.Cancelled)
				return nil
			})
		},
	}
	status.addFlags(statusCmd)
	cmd.AddCommand(listCmd, statusCmd)
	return cmd
}
