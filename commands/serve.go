package commands

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/internal/gcpace"
	"github.com/scirectl/scirectl/server"
	"github.com/scirectl/scirectl/serverconfig"
)

// ServeOptions are the flags of `scirectl serve`.
type ServeOptions struct {
	Config       string
	DataDir      string
	DB           string
	Listen       string
	Lease        time.Duration
	PollInterval time.Duration
	GateMaxWait  time.Duration
	LostGrace    time.Duration     // added to a job's timeout before a silent run is lost
	Rescue       time.Duration     // between the rescuer's sweeps
	MaxThreads   int               // requests served at once
	MaxBody      serverconfig.Size // request body; beyond it fault 413
	MaxOutput    serverconfig.Size // output kept per run
	Retain       serverconfig.Retention
	RetainAudit  serverconfig.Retention
	LogFormat    string
	LogLevel     string
}

// NewServeCmd builds `scirectl serve`.
func NewServeCmd(ios *IOStreams) *cobra.Command {
	o := &ServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the job server",
		Long: `Run the job server daemon: XML-RPC over TLS on --listen, jobs kept in --db.

The first start creates the data directory: a CA and a server certificate
(tls/), the database (scire.db), and a token for the built-in admin user
(admin.token, mode 0600). Later starts reuse all of it. Everything serve
creates is private to its user (it runs with umask 077). A data directory
its group or others can access is made 0700 while still empty of keys, and
refused once it holds them: chmod 700 it.

SIGTERM or SIGINT stops the server gracefully: requests in flight finish,
the database is closed cleanly. SIGHUP reloads the blacklist file.

One server per SQLite database: serve holds a lock on DATABASE.lock (next
to the database file) while it runs, and a second serve on the same
database exits at once, naming the first one's pid. The lock dies with the
process, even after kill -9. Several servers can share a PostgreSQL
database (--db postgres://…).

Settings come from the flags, then the configuration file (--config, or
server.yaml in the data directory when it exists), then the defaults. The
file can also override the gate class of any operation:

  listen: 0.0.0.0:7443
  poll_interval: 30s
  gate:
    max_wait: 10s
    classes:
      job.submit: non-modifier
  limits:
    max_threads: 128
    max_body: 32MiB
  push_networks: [10.0.0.0/8, 127.0.0.1/32]
  webhooks:
    allow_http: true
    timeout: 5s
  retain: 90d
  retain_audit: 400d

push_networks, when set, are the only networks agent.pollNow is pushed to
(daemon-mode agents' callback URLs; docs/protocol.md).

webhooks: says how events are POSTed to webhooks ("scirectl webhook add";
docs/events.md): allow_http lets a webhook's URL be http:// to any host
(without it, http:// only to a loopback address), timeout bounds one POST
(default 10s, at most 1m).
Retention: a cleaner deletes the jobs whose runs are all final and whose
last run ended more than --retain ago (default 90d), with their runs and
output, and the audit records older than --retain-audit (default 400d). It
runs a minute after the start and then every hour, in small batches between
which agents' calls go on, on one server at a time when several share a
PostgreSQL database; SQLite then gives the space back to the file system.
A duration is a number and a unit, d (days), h, m or s (90d, 36h, 1d12h);
off (or never, or 0) keeps for ever. Each pass that deleted something is in
the audit trail (operation cleaner.clean). See docs/maintenance.md.

Every hostile-input limit (body size, nesting depth, values per call, string
length, output kept, header/read/write/idle timeouts, concurrent requests)
has a key under limits:, its default and its fault in docs/limits.md.

"scirectl ops classes" prints the table in force.

The server bounds the garbage collector's headroom to 64 MiB, so that the
state of thousands of connected agents is not doubled in memory
(docs/limits.md); GOGC in its environment overrides that.`,
		Example: `  # embedded defaults: ./scire-data, SQLite, 127.0.0.1:7443
  scirectl serve

  # listen on all interfaces with a data directory under /var/lib
  scirectl serve --data-dir /var/lib/scire --listen 0.0.0.0:7443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			privateUmask()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			defer tuneGC()()
			return runServe(ctx, ios, o, cmd.Flags().Changed)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "", "server configuration file (default <data-dir>/server.yaml when it exists)")
	f.StringVar(&o.DataDir, "data-dir", "", "data directory (default $SCIRE_DATA_DIR, else ./scire-data)")
	f.StringVar(&o.DB, "db", "", "database URL: sqlite://PATH or postgres://… (default sqlite://<data-dir>/scire.db)")
	f.StringVar(&o.Listen, "listen", api.DefaultListen, "address to listen on")
	f.DurationVar(&o.Lease, "lease", 2*time.Minute, "how long a sent job may stay unacknowledged before it is requeued")
	f.DurationVar(&o.PollInterval, "poll-interval", 30*time.Second, "poll interval suggested to agents")
	f.DurationVar(&o.GateMaxWait, "gate-max-wait", 30*time.Second, "longest wait of an operation for the gate before fault 423")
	f.DurationVar(&o.LostGrace, "lost-grace", 2*time.Minute, "grace added to a job's timeout before a run nothing was heard of is failed as lost")
	f.DurationVar(&o.Rescue, "rescue-interval", 5*time.Second, "between sweeps for expired leases, lost runs and passed expiry dates")
	o.MaxBody, o.MaxOutput = server.DefaultMaxBodyBytes, server.DefaultMaxOutput
	f.IntVar(&o.MaxThreads, "max-threads", server.DefaultMaxThreads, "requests served at once; more wait for a slot, then get fault 423 (health probes exempt)")
	f.Var(&o.MaxBody, "max-body", "largest request body, e.g. 16MiB; a larger one gets fault 413")
	f.Var(&o.MaxOutput, "max-output", "output kept per run, e.g. 1MiB; the rest is cut and marked truncated")
	o.Retain, o.RetainAudit = serverconfig.Retention(server.DefaultRetain), serverconfig.Retention(server.DefaultRetainAudit)
	f.Var(&o.Retain, "retain", "delete the jobs whose runs are all final and whose last run ended longer ago than this, with their runs and output, e.g. 90d, 36h; off keeps them")
	f.Var(&o.RetainAudit, "retain-audit", "delete the audit records older than this, e.g. 400d; off keeps them")
	f.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func newLogger(ios *IOStreams, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError(fmt.Sprintf("--log-level %q: want debug, info, warn or error", level))
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(ios.ErrOut, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(ios.ErrOut, opts)), nil
	}
	return nil, usageError(fmt.Sprintf("--log-format %q: want text or json", format))
}

// serveGCHeadroom bounds how far the server's heap may grow past what the
// last collection left live (internal/gcpace). With 5,000 idle agents
// connected, Go's default of 100% headroom let the server reach 292 MiB;
// bounded so, 5,000 agents cost about 240 MiB, while a server draining jobs
// (live heap 10–20 MiB) keeps the default and its CPU (docs/benchmarks.md,
// 2026-12-04).
const serveGCHeadroom = 64 << 20

// tuneGC paces the collector for a server process unless GOGC in the
// environment says otherwise, as it does for any Go program. Only the
// serve command calls it: servers embedded in tests and in bench
// --spawn=false leave their process's collector alone.
func tuneGC() (stop func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	return gcpace.Start(serveGCHeadroom).Stop
}

func runServe(ctx context.Context, ios *IOStreams, o *ServeOptions, changed func(string) bool) error {
	dataDir := defaultDataDir(o.DataDir)
	cfgPath := o.Config
	if cfgPath == "" {
		if p := filepath.Join(dataDir, serverconfig.ConfigFileName); fileExists(p) {
			cfgPath = p
		}
	}
	var fc serverconfig.FileConfig
	if cfgPath != "" {
		var err error
		if fc, err = serverconfig.LoadConfigFile(cfgPath); err != nil {
			return &exitError{code: ExitUsage, msg: err.Error()}
		}
	}
	// Flags win over the file, the file over the defaults.
	str := func(flag string, dst *string, file string) {
		if !changed(flag) && file != "" {
			*dst = file
		}
	}
	dur := func(flag string, dst *time.Duration, file serverconfig.Duration) {
		if !changed(flag) && file != 0 {
			*dst = time.Duration(file)
		}
	}
	str("listen", &o.Listen, fc.Listen)
	str("db", &o.DB, fc.DB)
	str("log-format", &o.LogFormat, fc.LogFormat)
	str("log-level", &o.LogLevel, fc.LogLevel)
	dur("lease", &o.Lease, fc.Lease)
	dur("poll-interval", &o.PollInterval, fc.PollInterval)
	dur("gate-max-wait", &o.GateMaxWait, fc.Gate.MaxWait)
	dur("lost-grace", &o.LostGrace, fc.LostGrace)
	dur("rescue-interval", &o.Rescue, fc.Rescue)
	retain := func(flag string, dst *serverconfig.Retention, file *serverconfig.Retention) {
		if !changed(flag) && file != nil {
			*dst = *file
		}
	}
	retain("retain", &o.Retain, fc.Retain)
	retain("retain-audit", &o.RetainAudit, fc.RetainAudit)
	if o.LostGrace <= 0 || o.Rescue <= 0 {
		return usageError(fmt.Sprintf("--lost-grace %v, --rescue-interval %v: both must be positive", o.LostGrace, o.Rescue))
	}

	log, err := newLogger(ios, o.LogFormat, o.LogLevel)
	if err != nil {
		return err
	}
	cfg := server.Config{
		DataDir: dataDir, DB: o.DB, Listen: o.Listen, Lease: o.Lease,
		PollInterval: o.PollInterval, GateMaxWait: o.GateMaxWait, LostGrace: o.LostGrace, RescueInterval: o.Rescue,
		Version: version, Log: log,
		Classes: fc.Classes(), PushNetworks: fc.PushNetworks,
		Webhooks: server.WebhookConfig{AllowHTTP: fc.Webhooks.AllowHTTP, Timeout: time.Duration(fc.Webhooks.Timeout)},
		Retain:   retention(o.Retain), RetainAudit: retention(o.RetainAudit),
	}
	// Limits: the file's limits: section, then the flags (docs/limits.md).
	server.ApplyFileLimits(fc.Limits, &cfg)
	if changed("max-threads") {
		if o.MaxThreads <= 0 {
			return usageError(fmt.Sprintf("--max-threads %d: want 1 or more", o.MaxThreads))
		}
		cfg.MaxThreads = o.MaxThreads
	}
	if changed("max-body") {
		cfg.MaxBodyBytes = int64(o.MaxBody)
	}
	if changed("max-output") {
		cfg.MaxOutput = int(o.MaxOutput)
	}
	s, err := server.New(ctx, cfg)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := s.LoadBlacklist(); err != nil {
					log.Error("blacklist not reloaded: the previous list stays in force", "err", err)
				}
			}
		}
	}()
	return s.Serve(ctx)
}

// retention is a retention period as server.Config takes it: negative
// for off, which the Config reads as keep for ever (0 would be its default).
func retention(r serverconfig.Retention) time.Duration {
	if r <= 0 {
		return -1
	}
	return time.Duration(r)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
