// Package server is the scirectl daemon: it owns the data directory, the
// store, the readers-writers gate and the XML-RPC endpoint, and wires every
// method through one interceptor (authentication, gate, audit) before the
// method's own code runs.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/blacklist"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/internal/lockfile"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/push"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/wakeup"
	"github.com/scirectl/scirectl/webhook"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Config is what `scirectl serve` is started with. The zero value of every
// field but DataDir takes the documented default.
type Config struct {
	DataDir      string
	DB           string        // database URL; default sqlite://<DataDir>/scire.db
	Listen       string        // default 127.0.0.1:7443
	Lease        time.Duration // how long a sent run may stay unacknowledged; default 2m
	PollInterval time.Duration // suggested to agents by agent.heartbeat; default 30s
	GateMaxWait  time.Duration // longest wait for the gate; default 30s
	MaxOutput    int           // bytes of output kept per run; default 1 MiB
	// Hostile-input limits (docs/limits.md). A zero field takes its default.
	MaxBodyBytes      int64         // request body; beyond it fault 413; default 16 MiB
	MaxDepth          int           // nesting of XML-RPC values; default 32
	MaxValues         int           // values in one call, params and nested ones; default 10000
	MaxStringBytes    int           // one string, base64 or member name; default 8 MiB
	MaxHeaderBytes    int           // request line and headers; beyond it HTTP 431; default 64 KiB
	MaxThreads        int           // requests served at once (probes exempt); default 32
	MaxThreadsWait    time.Duration // longest wait for a request slot before fault 423; default 10s
	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // whole request, body included; default 60s
	WriteTimeout      time.Duration // from the end of the headers to the end of the reply; default 60s
	IdleTimeout       time.Duration // keep-alive connection without a request; default 120s
	// Classes overrides the gate class of operations by name (docs/protocol.md, "The gate and the blacklist");
	// naming an operation that does not exist is an error at start.
	Classes map[string]gate.Class
	// Rescue drives the rescuer (expired leases, lost and expired runs):
	// its interval (default 5s) and the grace added to a job's timeout
	// before a silent run is lost (default 2m).
	RescueInterval time.Duration
	LostGrace      time.Duration
	// Retention (docs/maintenance.md, "Retention"): the cleaner deletes
	// the final jobs whose last run ended longer ago than Retain (default
	// 90 days) and the audit records older than RetainAudit (default 400
	// days); a negative value keeps them for ever (serve --retain off).
	// CleanInterval is the time between its passes (default 1h; the first
	// comes a minute after the start).
	Retain         time.Duration
	RetainAudit    time.Duration
	CleanInterval  time.Duration
	Version        string
	DisableMetrics bool // turns /metrics off (404) and with it all metric collection
	// PushNetworks, when not empty, are the only networks agent.pollNow is
	// pushed to, and the only ones a daemon-mode client may register an IP
	// callback address in (server.yaml push_networks; package push).
	PushNetworks []netip.Prefix
	// Webhooks are the rules of webhook deliveries (server.yaml webhooks:).
	Webhooks WebhookConfig
	Log      *slog.Logger
	// Listener, when set, is used instead of listening on Listen (tests).
	Listener net.Listener
}

// WebhookConfig is how the daemon delivers webhooks (docs/events.md).
type WebhookConfig struct {
	// AllowHTTP lets a webhook's URL be http:// to any host; without it
	// http:// is only for loopback addresses.
	AllowHTTP bool
	// Timeout bounds one POST; default 10s.
	Timeout time.Duration
}

// The retention periods when none is given (SPEC §14).
const (
	DefaultRetain      = 90 * 24 * time.Hour
	DefaultRetainAudit = 400 * 24 * time.Hour
)

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = api.DefaultListen
	}
	if c.DB == "" {
		c.DB = "sqlite://" + datadir.Paths{Dir: c.DataDir}.DB()
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 30 * time.Second
	}
	if c.GateMaxWait <= 0 {
		c.GateMaxWait = 30 * time.Second
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = 1 << 20
	}
	if c.Webhooks.Timeout <= 0 {
		c.Webhooks.Timeout = webhook.DefaultTimeout
	}
	if c.Retain == 0 {
		c.Retain = DefaultRetain
	}
	if c.RetainAudit == 0 {
		c.RetainAudit = DefaultRetainAudit
	}
	c.limitDefaults()
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Server is a running daemon.
type Server struct {
	cfg    Config
	paths  datadir.Paths
	store  db.Store
	gate   *gate.Gate
	rpc    *xmlrpc.Server
	policy *acl.Cache
	// svc is the domain layer the handlers adapt (service.Service).
	svc *service.Service
	// namespaces is the admin namespace of the registry (adminNamespaces).
	namespaces acl.Namespaces
	log        *slog.Logger
	info       atomic.Pointer[db.ServerInfo] // this daemon's registry row; replaced by db.restore and db.reset
	ops        map[string]Operation

	ready     atomic.Bool
	blacklist atomic.Pointer[blacklist.List]
	clients   clientCache       // fingerprint → client, for agent authentication
	seen      seenRecorder      // clients' last-seen times, written once a second by the lastSeenWriter (lastseen.go)
	limit     limiter           // request slots (limits.go)
	metrics   *metrics          // nil when Config.DisableMetrics (metrics.go)
	push      *push.Pusher      // agent.pollNow to daemon-mode clients (package push; triggers in push.go)
	waiting   wakeup.Board      // agents waiting in agent.getJobs on this daemon (agent_methods.go)
	rollouts  *rolloutKeeper    // halts rollouts and pushes the clients whose turn comes (rollout.go)
	schedules *scheduler        // makes the schedules' jobs (scheduler.go)
	events    *eventWatcher     // wakes events.list's long polls (eventwatch.go)
	webhooks  *webhookDeliverer // sends the events to the webhooks (webhooks.go)
	dbLock    *lockfile.Lock    // a SQLite database's lock, held until Serve returns or Close (lock.go)
}

// New prepares the data directory (CA, certificates, database, admin token)
// and the method table; Serve then accepts connections.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("server: no data directory")
	}
	cfg.defaults()
	p := datadir.Paths{Dir: cfg.DataDir}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", p.Dir, err)
	}
	if tightened, err := datadir.CheckDataDir(p); err != nil {
		return nil, err
	} else if tightened {
		cfg.Log.Info("data dir made private to this user (mode 0700): it will hold keys, the admin token and the database", "data_dir", p.Dir)
	}
	// One daemon per SQLite database, taken before anything in the data
	// directory is written (lock.go).
	dbLock, err := datadir.LockDatabase(cfg.DB, "scirectl serve", true)
	if errors.Is(err, lockfile.ErrUnsupported) {
		cfg.Log.Warn("no file locks on this system: nothing stops a second server on the same SQLite database")
	} else if err != nil {
		return nil, datadir.HeldByOther(err, "stop it first (one scirectl serve per SQLite database; several can share a PostgreSQL database)")
	}
	started := false
	defer func() {
		if !started {
			dbLock.Release()
		}
	}()
	if err := datadir.EnsureTLS(p, cfg.Listen); err != nil {
		return nil, err
	}
	store, err := db.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	if err := datadir.EnsureAdmin(ctx, store, p); err != nil {
		store.Close()
		return nil, err
	}
	s := &Server{
		cfg: cfg, paths: p, store: store, log: cfg.Log, dbLock: dbLock,
		gate:  gate.New(gate.Options{MaxWait: cfg.GateMaxWait, Cluster: store.ClusterLock()}),
		rpc:   xmlrpc.NewServer(),
		limit: limiter{slots: make(chan struct{}, cfg.MaxThreads), workers: newWorkers()},
	}
	s.rpc.Limits = cfg.xmlrpcLimits()
	if store.ClusterLock() == nil { // no other daemon shares the database
		s.clients.ttl = clientCacheAloneTTL
	}
	pushCert, err := tls.LoadX509KeyPair(p.PushCert(), p.PushKey())
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("push certificate: %w", err)
	}
	s.push = push.New(cfg.Log, pushCert, func(ctx context.Context, id int64) (db.Client, error) { return s.store.Client(ctx, id) },
		s.serverID, push.Options{Networks: cfg.PushNetworks, Waiting: &s.waiting})
	s.policy = &acl.Cache{Load: store.Policy, TTL: 5 * time.Second}
	s.rpc.Intercept = s.intercept
	s.rpc.InterceptBatch = s.interceptBatch
	s.rpc.OnError = s.internalError
	s.initMetrics() // wraps s.store and the interceptor, unless cfg.DisableMetrics
	s.svc = &service.Service{Store: s.store, Policy: s.policy, Authz: service.AuthorizeFunc(s.authorize)}
	if err := s.registerOperations(); err != nil {
		store.Close()
		return nil, err
	}
	s.svc.ServerID = s.serverID
	s.rollouts = newRolloutKeeper(s)
	s.schedules = newScheduler(s)
	s.events = newEventWatcher(s.store, s.log)
	s.webhooks = newWebhookDeliverer(s)
	s.svc.RunsEnded = func(failed []int64) { s.rollouts.Enforce(db.RolloutScope{RunIDs: failed}) }
	s.svc.Agents = service.AgentRules{Lease: cfg.Lease, PollInterval: cfg.PollInterval, MaxOutput: cfg.MaxOutput, PushNetworks: cfg.PushNetworks}
	s.svc.WebhookRules = service.WebhookRules{AllowHTTP: cfg.Webhooks.AllowHTTP}
	// A malformed blacklist stops the start: running without the denials
	// an operator asked for would be worse than not running.
	if err := s.LoadBlacklist(); err != nil {
		store.Close()
		return nil, err
	}
	started = true
	return s, nil
}

// Close closes what New opened, for a server that is not going to Serve
// (tools and tests): the database, and its lock. Serve does it itself.
func (s *Server) Close() error {
	err := s.store.Close()
	s.dbLock.Release()
	return err
}

// Store gives tests and in-process tools the store.
func (s *Server) Store() db.Store { return s.store }

// Serve registers the daemon in the database, starts the background
// services, opens the listener and serves until ctx is done; then in-flight
// requests finish (up to 30s), the services stop, the last one started
// first, each waited for, and only then is the database closed and its
// lock released (docs/architecture.md, "Background services").
func (s *Server) Serve(ctx context.Context) error {
	defer s.dbLock.Release() // after the store is closed
	defer s.store.Close()
	services := &lifecycle.Group{Log: s.log}
	defer services.Stop() // first of the three; on an error return too
	// The services run until Serve stops them, not until ctx ends: during
	// the drain the daemon still serves, and needs them.
	bg := context.WithoutCancel(ctx)
	host, _ := os.Hostname()
	info, err := s.store.RegisterServer(ctx, db.ServerInfo{Address: s.cfg.Listen, Hostname: host, Version: s.cfg.Version, StartedAt: time.Now().UTC()})
	if err != nil {
		return err
	}
	s.info.Store(&info)
	// Startup recovery, before the listener opens (docs/architecture.md): what a crash
	// left sent but unacknowledged past its lease goes back to the queue,
	// silent runs are marked lost, passed expiry dates applied.
	rescuer := s.instrumentRescuer(s.rescuer())
	changes, err := rescuer.RunOnce(ctx)
	if err != nil {
		return fmt.Errorf("startup recovery: %w", err)
	}
	s.log.Info("startup recovery", "server_id", info.ID, "changed", maintenance.Summary(changes))
	cleaner := s.cleaner()
	s.log.Info("retention", "keep", cleaner.Describe())
	cert, err := tls.LoadX509KeyPair(s.paths.ServerCert(), s.paths.ServerKey())
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	ln := s.cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{cert},
		// Agents present self-signed certificates: identity is the
		// fingerprint, checked against the database, not a chain.
		ClientAuth: tls.RequestClientCert,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	}
	hs := &http.Server{
		Handler:           s.limited(s.Handler()),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	for _, svc := range []struct {
		name string
		svc  lifecycle.Service
	}{
		{"heartbeat", newServerHeartbeat(s.store, s.serverID, s.log)},
		{"last-seen writer", newLastSeenWriter(&s.seen, s.store, s.log)},
		{"rescuer", rescuer},
		{"cleaner", cleaner},
	} {
		if err := services.Start(bg, svc.name, svc.svc); err != nil {
			return err
		}
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(ln, tlsConf)) }()
	// The listener is open: agents pushed now can call back (package push).
	if m := s.metrics; m != nil && m.push != nil {
		s.push.Observe(func(outcome string) { m.push.WithLabelValues(outcome).Inc() })
	}
	for _, svc := range []struct {
		name string
		svc  lifecycle.Service
	}{
		{"push workers", s.push},
		{"startup push", newStartupPush(s.store, s.push, s.log)},
		{"not_before watcher", newNotBeforeWatcher(s.store, s.push, s.pushLeader, s.cfg.RescueInterval, s.log)},
		{"rollout keeper", s.rollouts},
		{"scheduler", s.schedules},
		{"event watcher", s.events},
		{"webhook deliverer", s.webhooks},
	} {
		if err := services.Start(bg, svc.name, svc.svc); err != nil {
			return err
		}
	}
	s.ready.Store(true)
	s.log.Info("serving", "address", ln.Addr().String(), "server_id", info.ID, "data_dir", s.paths.Dir, "db", db.Redact(s.cfg.DB))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down: finishing in-flight requests")
	s.waiting.Close() // calls of agent.getJobs waiting for work answer now
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	<-errc
	// No request runs any more: stop the services, the last started first
	// (the last-seen writer writes what the last requests recorded).
	services.Stop()
	// A clean stop marks the registry row dead at once, so an offline
	// maintenance command or a peer taking over need not wait for the
	// heartbeat to go stale.
	if err := s.store.HeartbeatServer(context.Background(), s.serverID(), time.Unix(0, 0).UTC()); err != nil {
		s.log.Warn("mark server stopped", "err", err)
	}
	s.log.Info("stopped")
	return nil
}

// serverID is this daemon's id in the servers table (0 before Serve).
func (s *Server) serverID() int64 {
	if i := s.info.Load(); i != nil {
		return i.ID
	}
	return 0
}
