package commands

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/client/facts"
)

// NewClientCmd builds `scirectl client`.
func NewClientCmd(f *Factory) *cobra.Command {
	ios := f.IOStreams
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Manage clients (managed machines) and run the agent",
		Long: `Clients are the managed machines. A new agent registers as pending and is
known by the SHA-256 fingerprint of its certificate; an operator accepts it
before it gets any work.`,
		Example: `  scirectl client list --status pending
  scirectl client accept web1
  scirectl client revoke old1 && scirectl client delete old1
  scirectl client poll --server https://jobs.example:7443/RPC2 --ca ca.crt --state-dir /var/lib/scire-agent`,
	}
	cmd.AddCommand(
		NewClientListCmd(f, nil),
		newClientStatusCmd(f, nil, "accept", api.MethodClientAccept, "Accept pending clients so they get work",
			"  scirectl client accept web1\n  scirectl client accept 3f2a9c…(fingerprint) 12"),
		newClientStatusCmd(f, nil, "reject", api.MethodClientReject, "Reject pending clients",
			"  scirectl client reject 7"),
		newClientStatusCmd(f, nil, "revoke", api.MethodClientRevoke, "Revoke accepted clients: they get no more work",
			"  scirectl client revoke web1"),
		newClientStatusCmd(f, nil, "delete", api.MethodClientDelete, "Delete clients that are not active, with their runs",
			"  scirectl client revoke web1 && scirectl client delete web1"),
		NewClientPollCmd(ios),
	)
	return cmd
}

// ClientListOptions are the flags of `client list`.
type ClientListOptions struct {
	remote
	Status string
}

// NewClientListCmd builds `client list`; runF, when not nil, is called with
// the options instead of listing.
func NewClientListCmd(f *Factory, runF func(*ClientListOptions) error) *cobra.Command {
	o := &ClientListOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Long: `List the clients: id, name, status (pending, active, rejected, revoked),
certificate fingerprint, platform, agent mode and when each was last seen.
-o wide adds the host name, the agent version, the callback URL of a
daemon-mode agent and more; -q prints only the ids; --status filters.`,
		Example: `  scirectl client list
  scirectl client list -o wide
  scirectl client list --status pending -o json | jq -r '.[].fingerprint'
  for id in $(scirectl client list --status pending -q); do scirectl client accept "$id"; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runClientList(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Status, "status", "", "only clients in this status: pending, active, rejected or revoked")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(clientStatuses, cobra.ShellCompDirectiveNoFileComp))
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "client ids")
	return cmd
}

func runClientList(ctx context.Context, o *ClientListOptions) error {
	ios := o.io()
	cs, err := call[[]api.Client](ctx, &o.remote, api.MethodClientList, api.ClientListRequest{Status: o.Status})
	if err != nil {
		return err
	}
	return showList(ios, &o.out, cs, func(c api.Client) string { return c.ID }, func(cs []api.Client) error { return printClients(ios, &o.out, cs) })
}

var clientStatuses = []string{"pending", "active", "rejected", "revoked"}

// printClients prints clients; -o wide adds the host name, the agent
// version, the callback URL of a daemon-mode agent and when it registered.
func printClients(ios *IOStreams, o *outputOptions, cs []api.Client) error {
	now := clock()
	header := []string{"ID", "NAME", "STATUS", "FINGERPRINT", "PLATFORM", "MODE", "LAST SEEN"}
	if o.wide() {
		header = append(header, "HOSTNAME", "VERSION", "CALLBACK", "LAST PUSH", "REGISTERED")
	}
	rows := make([][]string, len(cs))
	for i, c := range cs {
		seen := "-"
		if c.LastSeen != nil {
			seen = ago(*c.LastSeen, now)
		}
		rows[i] = []string{c.ID, c.Name, c.Status, c.Fingerprint, c.OS + "/" + c.Arch, c.Mode, seen}
		if o.wide() {
			rows[i] = append(rows[i], dash(c.Hostname), dash(c.Version), dash(c.CallbackURL), lastPushCell(c.LastPush, now), ago(c.RegisteredAt, now))
		}
	}
	return printTable(ios.Out, o, header, rows)
}

// lastPushCell shows the answering daemon's last agent.pollNow push to a
// daemon-mode client: "ok 3s ago", "failed 1m ago", or "-".
func lastPushCell(p *api.PushResult, now time.Time) string {
	if p == nil {
		return "-"
	}
	return p.Result + " " + ago(p.At, now)
}

// ClientStatusOptions are the arguments and flags of `client accept`,
// `reject`, `revoke` and `delete`.
type ClientStatusOptions struct {
	remote
	Method  string   // client.accept, client.reject, client.revoke or client.delete
	Clients []string // ids, names or fingerprints
}

// newClientStatusCmd builds `client accept`, `reject`, `revoke` or
// `delete`; runF, when not nil, is called with the options instead of
// calling method.
func newClientStatusCmd(f *Factory, runF func(*ClientStatusOptions) error, use, method, short, example string) *cobra.Command {
	o := &ClientStatusOptions{remote: newRemote(f), Method: method}
	cmd := &cobra.Command{
		Use:     use + " CLIENT...",
		Short:   short,
		Long:    short + ". CLIENT is a client id, name or certificate fingerprint; several may be given.",
		Example: example,
		Args:    cobra.MinimumNArgs(1),
		// Complete the names of the clients the command applies to.
		ValidArgsFunction: completeClients(&o.remote, map[string][]string{"accept": {"pending"}, "reject": {"pending"},
			"revoke": {"active"}, "delete": {"pending", "rejected", "revoked"}}[use]...),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Clients = args
			if runF != nil {
				return runF(o)
			}
			return runClientStatus(cmd.Context(), o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func runClientStatus(ctx context.Context, o *ClientStatusOptions) error {
	ios := o.io()
	cs, err := call[[]api.Client](ctx, &o.remote, o.Method, o.Clients)
	if err != nil {
		return err
	}
	if o.out.json() {
		return printJSON(ios.Out, nonNil(cs))
	}
	return printClients(ios, &o.out, cs)
}

// NewClientPollCmd builds `client poll`, the agent.
func NewClientPollCmd(ios *IOStreams) *cobra.Command {
	cfg := agent.Config{}
	var servers []string
	cmd := &cobra.Command{
		Use:   "poll",
		Short: "Run the agent: ask the server for work, run it, report back",
		Long: `Run the agent on a managed machine.

On first start it creates its identity (key and self-signed certificate) in
--state-dir, pins the server CA given with --ca, and registers. Until an
operator accepts it, it waits and prints its fingerprint. Then it asks for
work every --interval (with jitter), writes each job to its queue on disk
before acknowledging it, runs it under its timeout, and keeps each report on
disk until the server has accepted it: an agent killed at any point loses no
acknowledged job and no finished result.

With --once it polls, runs what it got and exits when nothing is left (for cron).

With --daemon --listen ADDR it also listens (TLS, with its enrolled
certificate) for the server's agent.pollNow, accepted only from a peer whose
certificate chains to the pinned server CA, and asks for work the moment the
server has some; it still polls every --interval as a safety net. It
registers with mode=daemon and its callback URL (--callback-url, default
https://ADDR/RPC2, with the host name for a wildcard address).

It sends the machine's facts when it registers, for selectors to name as
fact.KEY (job submit --selector 'fact.os=linux'): the built-in hostname, os,
arch, kernel, os_id, os_version, cpus, memory_bytes and agent_version; the
custom facts of facts.d/ in the state directory (<state-dir>/facts.d/),
where each *.facts file holds KEY=VALUE lines and each executable file
prints them (within 10 s: one that fails or runs longer gives none), a
later name winning over an earlier one for the same key; and those of
--fact KEY=VALUE, which win over both. A fact that
cannot be read or is invalid is left out, with a warning in the log. The
facts are collected again every 5 minutes, without holding up the polls,
and sent again when they changed or the server holds others.`,
		Example: `  scirectl client poll --server https://jobs.example:7443/RPC2 --ca /etc/scire/ca.crt --state-dir /var/lib/scire-agent
  # cron mode, two servers in failover order
  scirectl client poll --once --server https://a:7443/RPC2 --server https://b:7443/RPC2 --state-dir /var/lib/scire-agent
  # daemon mode: pushed at once, polling hourly as a safety net
  scirectl client poll --daemon --listen 0.0.0.0:7444 --interval 1h --server https://jobs.example:7443/RPC2 --state-dir /var/lib/scire-agent
  # custom facts, for job submit --selector 'fact.role=web,fact.rack=r12'
  scirectl client poll --fact role=web --fact rack=r12 --server https://jobs.example:7443/RPC2 --state-dir /var/lib/scire-agent`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(servers) == 0 {
				if s := os.Getenv("SCIRE_SERVER"); s != "" {
					servers = []string{s}
				} else {
					return usageError("no server: use --server URL")
				}
			}
			if cfg.StateDir == "" {
				return usageError("no state directory: use --state-dir DIR")
			}
			if _, err := facts.ParseFlags(cfg.Facts); err != nil {
				return usageError(err.Error())
			}
			for _, s := range servers {
				cfg.Servers = append(cfg.Servers, normalizeServerURL(s))
			}
			log, err := newLogger(ios, "text", "info")
			if err != nil {
				return err
			}
			cfg.Log, cfg.Out, cfg.Version = log, ios.ErrOut, version
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = agent.Run(ctx, cfg)
			if errors.Is(err, agent.ErrNotAccepted) {
				return &exitError{code: ExitNotAccepted, msg: err.Error()}
			}
			if err != nil && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&servers, "server", nil, "server URL; repeat for failover, in order (default $SCIRE_SERVER)")
	f.StringVar(&cfg.StateDir, "state-dir", "", "agent state directory: identity, pinned CA, job queue, unsent reports")
	f.StringVar(&cfg.CAFile, "ca", "", "server CA certificate to pin (required on first start)")
	f.StringVar(&cfg.Name, "name", "", "client name (default: the host name)")
	f.DurationVar(&cfg.Interval, "interval", 30*time.Second, "poll interval (jittered by ±10%)")
	f.BoolVar(&cfg.Once, "once", false, "poll, run what is queued, and exit when nothing is left (cron mode)")
	f.BoolVar(&cfg.Daemon, "daemon", false, "daemon mode: also serve agent.pollNow on --listen so the server can push work at once")
	f.StringVar(&cfg.Listen, "listen", "", "daemon mode: HOST:PORT to serve agent.pollNow on (TLS)")
	f.StringVar(&cfg.CallbackURL, "callback-url", "", "daemon mode: URL the server calls (default https://<listen address, host name for 0.0.0.0>/RPC2)")
	f.IntVar(&cfg.MaxJobs, "max-jobs", 10, "ask for at most this many jobs per poll")
	f.StringArrayVar(&cfg.Facts, "fact", nil, "custom fact KEY=VALUE to send, winning over a built-in or facts.d fact of the same key; repeat for more")
	f.IntVar(&cfg.OutputLimit, "output-limit", 1<<20, "bytes of output kept per job: the first and the last half of it, with a marker line for what is cut between them (marked truncated)")
	return cmd
}
