package commands

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/server"
)

// ServeOptions are the flags of `scirectl serve`.
type ServeOptions struct {
	DataDir      string
	DB           string
	Listen       string
	Lease        time.Duration
	PollInterval time.Duration
	GateMaxWait  time.Duration
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
(admin.token, mode 0600). Later starts reuse all of it. SIGTERM or SIGINT
stops the server gracefully: requests in flight finish, the database is
closed cleanly.`,
		Example: `  # embedded defaults: ./scire-data, SQLite, 127.0.0.1:7443
  scirectl serve

  # listen on all interfaces with a data directory under /var/lib
  scirectl serve --data-dir /var/lib/scire --listen 0.0.0.0:7443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, ios, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", "", "data directory (default $SCIRE_DATA_DIR, else ./scire-data)")
	f.StringVar(&o.DB, "db", "", "database URL: sqlite://PATH or postgres://… (default sqlite://<data-dir>/scire.db)")
	f.StringVar(&o.Listen, "listen", server.DefaultListen, "address to listen on")
	f.DurationVar(&o.Lease, "lease", 2*time.Minute, "how long a sent job may stay unacknowledged before it is requeued")
	f.DurationVar(&o.PollInterval, "poll-interval", 30*time.Second, "poll interval suggested to agents")
	f.DurationVar(&o.GateMaxWait, "gate-max-wait", 30*time.Second, "longest wait of an operation for the gate before fault 423")
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

func runServe(ctx context.Context, ios *IOStreams, o *ServeOptions) error {
	log, err := newLogger(ios, o.LogFormat, o.LogLevel)
	if err != nil {
		return err
	}
	s, err := server.New(ctx, server.Config{
		DataDir: defaultDataDir(o.DataDir), DB: o.DB, Listen: o.Listen, Lease: o.Lease,
		PollInterval: o.PollInterval, GateMaxWait: o.GateMaxWait, Version: version, Log: log,
	})
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
