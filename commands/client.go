package commands

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
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
before it gets any work.

Two things are known about a client besides its name: its facts, which the
machine reports about itself (hostname, os, arch, kernel, os_id, os_version,
cpus, memory_bytes, agent_version and custom facts), and its labels, which
operators give it ("client label"). Selectors choose machines by both
("client list --selector", "job submit --selector"); a selector names a
fact as fact.KEY.`,
		Example: `  scirectl client list --status pending
  scirectl client accept web1
  scirectl client label web1 web2 env=prod tier=web
  scirectl client show web1
  scirectl client list --selector 'env=prod,fact.os_id=debian'
  scirectl client revoke old1 && scirectl client delete old1
  scirectl client poll --server https://jobs.example:7443/RPC2 --ca ca.crt --state-dir /var/lib/scire-agent`,
	}
	cmd.AddCommand(
		NewClientListCmd(f, nil),
		NewClientShowCmd(f, nil),
		NewClientLabelCmd(f, nil),
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
	Status    string
	Selectors []string // --selector, as written: a client matches if any does
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
daemon-mode agent, the labels and more; -q prints only the ids; --status
filters.

--selector SEL keeps the clients the selector matches, in Kubernetes'
label-selector syntax: env=prod, env!=prod, env in (prod,staging),
env notin (dev), env (has the label), !env (lacks it); commas mean AND. A
key names a label ("client label"); fact.KEY names a fact the machine
reports (fact.os_id=debian, fact.arch=arm64). Repeat --selector for a union:
a client is listed if any of them matches. As in Kubernetes, env!=prod and
env notin (...) also match a client without an env label. A selector that
does not parse is refused before anything is asked of the server.`,
		Example: `  scirectl client list
  scirectl client list -o wide
  scirectl client list --status pending -o json | jq -r '.[].fingerprint'
  scirectl client list --selector 'env=prod,fact.os_id=debian'
  scirectl client list --selector 'tier in (web,cache)' --selector '!env' -q
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
	addSelectorFlag(cmd, &o.Selectors, "only the clients this selector matches, e.g. 'env=prod,fact.os_id=debian' (repeatable: any of them; commas mean AND)")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(clientStatuses, cobra.ShellCompDirectiveNoFileComp))
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "client ids")
	return cmd
}

func runClientList(ctx context.Context, o *ClientListOptions) error {
	ios := o.io()
	if err := checkSelectors(o.Selectors); err != nil {
		return err
	}
	cs, err := call[[]api.Client](ctx, &o.remote, api.MethodClientList, api.ClientListRequest{Status: o.Status, Selectors: o.Selectors})
	if err != nil {
		return err
	}
	return showList(ios, &o.out, withMaps(cs), func(c api.Client) string { return c.ID }, func(cs []api.Client) error { return printClients(ios, &o.out, cs) })
}

// ClientShowOptions are the argument and flags of `client show`.
type ClientShowOptions struct {
	remote
	Client string // id, name or fingerprint
}

// NewClientShowCmd builds `client show`; runF, when not nil, is called
// with the options instead of asking the server.
func NewClientShowCmd(f *Factory, runF func(*ClientShowOptions) error) *cobra.Command {
	o := &ClientShowOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "show CLIENT",
		Short: "Show one client with its labels and facts",
		Long: `Show one client (by id, name or certificate fingerprint): what "client list
-o wide" shows of it, then its labels (set by operators with "client label")
and its facts (reported by the machine: hostname, os, arch, kernel, os_id,
os_version, cpus, memory_bytes, agent_version and custom facts), each sorted
by key. A selector names a label by its key and a fact as fact.KEY:
--selector 'env=prod,fact.os_id=debian'. With -o json the client has a
"facts" and a "labels" object.`,
		Example: `  scirectl client show web1
  scirectl client show web1 -o json | jq -r '.facts.os_version'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeClients(&o.remote)),
		RunE:              runE(o, func(args []string) { o.Client = args[0] }, runF, runClientShow),
	}
	o.addFlags(cmd)
	return cmd
}

func runClientShow(ctx context.Context, o *ClientShowOptions) error {
	ios := o.io()
	c, err := call[api.Client](ctx, &o.remote, api.MethodClientGet, o.Client)
	if err != nil {
		return err
	}
	c = withMaps([]api.Client{c})[0]
	return show(ios, &o.remote, c, func(c api.Client) error { return printClient(ios, &o.out, c) })
}

// printClient prints one client as client show does: a line per property,
// then its labels and its facts as KEY VALUE tables sorted by key.
func printClient(ios *IOStreams, o *outputOptions, c api.Client) error {
	now := clock()
	fmt.Fprintf(ios.Out, "Client %s %q: %s\n", c.ID, c.Name, c.Status)
	seen := "-"
	if c.LastSeen != nil {
		seen = ago(*c.LastSeen, now)
	}
	lines := [][2]string{
		{"fingerprint", c.Fingerprint}, {"hostname", dash(c.Hostname)}, {"platform", c.OS + "/" + c.Arch},
		{"version", dash(c.Version)}, {"mode", c.Mode},
	}
	// A daemon-mode agent's callback and last push; a polling agent has
	// neither.
	if c.Mode == "daemon" || c.CallbackURL != "" || c.LastPush != nil {
		lines = append(lines, [2]string{"callback", dash(c.CallbackURL)}, [2]string{"last push", lastPushCell(c.LastPush, now)})
	}
	lines = append(lines, [2]string{"registered", ago(c.RegisteredAt, now)}, [2]string{"last seen", seen})
	if len(c.Labels) == 0 {
		lines = append(lines, [2]string{"labels", "none"})
	}
	if len(c.Facts) == 0 {
		lines = append(lines, [2]string{"facts", "none"})
	}
	for _, l := range lines {
		fmt.Fprintf(ios.Out, "%-12s %s\n", l[0]+":", l[1])
	}
	for _, t := range []struct {
		what string
		m    map[string]string
	}{{"LABEL", c.Labels}, {"FACT", c.Facts}} {
		if len(t.m) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(t.m))
		rows := make([][]string, len(keys))
		for i, k := range keys {
			rows[i] = []string{k, valueText(t.m[k])}
		}
		fmt.Fprintln(ios.Out)
		if err := printTable(ios.Out, o, []string{t.what, "VALUE"}, rows); err != nil {
			return err
		}
	}
	return nil
}

var clientStatuses = []string{"pending", "active", "rejected", "revoked"}

// printClients prints clients; -o wide adds the host name, the agent
// version, the callback URL of a daemon-mode agent, when it registered and
// its labels.
func printClients(ios *IOStreams, o *outputOptions, cs []api.Client) error {
	now := clock()
	header := []string{"ID", "NAME", "STATUS", "FINGERPRINT", "PLATFORM", "MODE", "LAST SEEN"}
	if o.wide() {
		header = append(header, "HOSTNAME", "VERSION", "CALLBACK", "LAST PUSH", "REGISTERED", "LABELS")
	}
	rows := make([][]string, len(cs))
	for i, c := range cs {
		seen := "-"
		if c.LastSeen != nil {
			seen = ago(*c.LastSeen, now)
		}
		rows[i] = []string{c.ID, c.Name, c.Status, c.Fingerprint, c.OS + "/" + c.Arch, c.Mode, seen}
		if o.wide() {
			rows[i] = append(rows[i], dash(c.Hostname), dash(c.Version), dash(c.CallbackURL), lastPushCell(c.LastPush, now), ago(c.RegisteredAt, now),
				labelsText(c.Labels))
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
		return printJSON(ios.Out, withMaps(cs))
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

With --daemon --listen ADDR it gets work the moment the server has some:
between contacts it waits for it in agent.getJobs (a long poll, on the
connection it holds), and it also listens (TLS, with its enrolled
certificate) for agent.pollNow, accepted only from a peer whose certificate
chains to the pinned server CA, which another daemon of a cluster sends;
it still polls every --interval as a safety net. It
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
	f.BoolVar(&cfg.Daemon, "daemon", false, "daemon mode: wait for work in agent.getJobs, and serve agent.pollNow on --listen, so that work comes at once")
	f.StringVar(&cfg.Listen, "listen", "", "daemon mode: HOST:PORT to serve agent.pollNow on (TLS)")
	f.StringVar(&cfg.CallbackURL, "callback-url", "", "daemon mode: URL the server calls (default https://<listen address, host name for 0.0.0.0>/RPC2)")
	f.IntVar(&cfg.MaxJobs, "max-jobs", 10, "ask for at most this many jobs per poll")
	f.StringArrayVar(&cfg.Facts, "fact", nil, "custom fact KEY=VALUE to send, winning over a built-in or facts.d fact of the same key; repeat for more")
	f.IntVar(&cfg.OutputLimit, "output-limit", 1<<20, "bytes of output kept per job: the first and the last half of it, with a marker line for what is cut between them (marked truncated)")
	return cmd
}
