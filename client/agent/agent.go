package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/client/facts"
	"github.com/scirectl/scirectl/jobxml"
)

// Config configures Run. Servers and StateDir are required.
type Config struct {
	Servers  []string // https://host:port/RPC2, in failover order
	StateDir string   // identity, pinned CA, queue, outbox (see the package comment)
	// CAFile is the server CA to pin. Required on first start; later the
	// pinned copy in StateDir/ca.crt is used, and a different CA given here is
	// an error (the message says how to re-pin) rather than a silent switch.
	CAFile string
	Name   string // client name; default the host name
	// Interval between polls while idle, applied with ±10% jitter so a fleet
	// started together does not poll in lockstep. Zero takes the server's
	// suggestion (agent.heartbeat's poll_interval), else 30s.
	Interval time.Duration
	// Once is cron mode: poll, run everything queued, deliver every report,
	// and return nil when nothing is left.
	Once bool
	// Daemon mode (daemon.go): also serve agent.pollNow on Listen (TLS with
	// the enrolled certificate, callers must chain to the pinned server CA)
	// and register with mode=daemon and CallbackURL, so the server can make
	// the agent poll at once. The interval polls go on as a safety net.
	Daemon      bool
	Listen      string // host:port; required with Daemon
	CallbackURL string // URL advertised to the server; default https://<Listen, host name if a wildcard>/RPC2
	MaxJobs     int    // at most this many runs queued locally, asked for per getJobs; default 10
	OutputLimit int    // bytes of stdout+stderr kept per run, the first and the last half; default 1 MiB
	// Facts are the --fact values, KEY=VALUE each: custom facts sent with
	// the built-in ones and those of StateDir/facts.d (facts.go).
	Facts   []string
	Version string
	Log     *slog.Logger // default slog.Default()
	Out     io.Writer    // human messages (the fingerprint to accept); default os.Stderr
}

// ErrNotAccepted is returned in Once mode when the server does not (or no
// longer) accept this agent: it is pending, rejected or revoked. The wrapping
// error names the status and the fingerprint.
var ErrNotAccepted = errors.New("client not accepted by the server")

// Limits and delays.
const (
	defaultInterval    = 30 * time.Second
	defaultMaxJobs     = 10
	defaultOutputLimit = 1 << 20
	maxJobsPerCall     = 1000 // the server's bound on getJobs and ackJobs
	callTimeout        = 30 * time.Second
	firstBackoff       = time.Second
	maxPendingBackoff  = 30 * time.Second
	maxBatchReports    = 500
	maxBatchBytes      = 4 << 20 // a batch of reports stays well under request size limits
	stopDeliverTimeout = 5 * time.Second
	minKeepAlive       = 5 * time.Second // heartbeat period floor while a job runs
)

// Fault codes of docs/protocol.md the agent acts on.
const (
	faultInvalid     = 400
	faultNotAccepted = 402
	faultNotFound    = 404
	faultConflict    = 409
	faultTooLarge    = 413
)

// errNotActive says the server does not let this agent work (status, or a
// 402 fault); the agent goes back to registering.
var errNotActive = errors.New("not active")

type agent struct {
	cfg   Config
	log   *slog.Logger
	id    *identity
	rpc   *client.Client
	store *store

	interval    time.Duration // resolved poll interval
	active      bool          // registered and accepted
	printed     string        // status last printed to Out, to print once per change
	notAccepted error         // Once: the ErrNotAccepted to return

	// pendingAck holds runs written to the queue whose acknowledgement has not
	// been confirmed. On start it holds the whole queue: a repeated ack is
	// harmless, a missing one makes the server hand the run out again.
	pendingAck map[int64]bool

	backoff     time.Duration // current delay after a failure
	nextContact time.Time     // do not call the server before this
	offline     bool          // Once: stop calling the server after a failure
	deliverDone chan error    // the background delivery of a "running" report

	cancels  cancels   // runs the operator cancelled or the server declared lost (cancel.go)
	stream   streamer  // live output (stream.go)
	lastBeat time.Time // last successful agent.heartbeat

	renewEvery  time.Duration // how often the queued runs need a heartbeat (lease.go); 0: no limit
	heldRefused atomic.Bool   // the server refused the held runs in agent.heartbeat (lease.go)

	wake        chan struct{} // daemon mode: a pending agent.pollNow (daemon.go); nil otherwise
	callbackURL string        // daemon mode: the URL registered
	noWait      bool          // daemon mode: the server refused agent.getJobs' wait (an older server; longpoll.go)

	facts machineFacts // the machine's facts, collected at start and every factsEvery (facts.go)
}

// Run runs the agent until ctx is cancelled (then it returns nil after
// stopping the running job, see the package comment) or, with Once, until
// nothing is left to do. Only one agent may use a state directory at a time.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if err := makeStateDir(cfg.StateDir); err != nil {
		return err
	}
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer unlock()
	id, err := loadIdentity(cfg.StateDir, cfg.CAFile, cfg.Name)
	if err != nil {
		return err
	}
	st, err := openStore(cfg.StateDir, cfg.Log)
	if err != nil {
		return err
	}
	st.outputLimit = cfg.OutputLimit
	rpc, err := client.New(client.Options{Servers: cfg.Servers, RootCAs: id.roots, Certificate: &id.cert,
		Timeout: callTimeout, UserAgent: "scirectl-agent/" + cfg.Version})
	if err != nil {
		return err
	}
	defer rpc.Close()
	a := &agent{cfg: cfg, log: cfg.Log.With("fingerprint", id.fingerprint[:16]), id: id, rpc: rpc, store: st,
		interval: cfg.Interval, pendingAck: map[int64]bool{}}

	interrupted, err := st.recoverRuns(time.Now())
	if err != nil {
		return fmt.Errorf("recover state in %s: %w", cfg.StateDir, err)
	}
	for _, run := range interrupted {
		a.log.Warn("run was interrupted by the agent's previous stop; reporting it failed, not running it again", "run", run)
	}
	queued, err := st.queuedRuns()
	if err != nil {
		return err
	}
	for _, run := range queued {
		a.pendingAck[run] = true
	}
	if cfg.Daemon {
		pn, err := a.startDaemon()
		if err != nil {
			return err
		}
		defer pn.Close()
	}
	a.log.Info("agent starting", "name", cfg.Name, "servers", cfg.Servers, "state_dir", cfg.StateDir,
		"queued", len(queued), "unsent_reports", st.outboxLen(), "once", cfg.Once)
	// The first registration carries the facts: they are collected now,
	// then again in the background, off the loop's path (facts.go).
	a.collectFacts(ctx)
	stopFacts := a.recollectFacts(ctx)
	defer stopFacts()
	err = a.loop(ctx)
	if ctx.Err() != nil && a.active && st.outboxLen() > 0 {
		// Last chance for the report of the job the stop interrupted; on
		// failure it stays in the outbox for the next start.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopDeliverTimeout)
		if derr := a.deliver(dctx); derr != nil {
			a.log.Info("reports kept for the next start", "count", st.outboxLen(), "err", derr)
		}
		cancel()
	}
	return err
}

func (c *Config) defaults() error {
	if len(c.Servers) == 0 {
		return errors.New("agent: no server URL")
	}
	if c.StateDir == "" {
		return errors.New("agent: no state directory")
	}
	if c.Name == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: no --name and no host name: %w", err)
		}
		c.Name = h
	}
	if c.Interval < 0 {
		return fmt.Errorf("agent: negative interval %v", c.Interval)
	}
	switch {
	case c.Daemon && c.Once:
		return errors.New("agent: daemon mode (--daemon) and cron mode (--once) exclude each other")
	case c.Daemon && c.Listen == "":
		return errors.New("agent: daemon mode needs an address to listen on (--listen HOST:PORT)")
	case !c.Daemon && (c.Listen != "" || c.CallbackURL != ""):
		return errors.New("agent: --listen and --callback-url are for daemon mode: add --daemon")
	case c.CallbackURL != "":
		// The server refuses the same at agent.register (docs/protocol.md).
		if err := api.CheckCallbackURL(c.CallbackURL); err != nil {
			return fmt.Errorf("agent: callback URL %q: %v", c.CallbackURL, err)
		}
	}
	if c.MaxJobs <= 0 {
		c.MaxJobs = defaultMaxJobs
	}
	c.MaxJobs = min(c.MaxJobs, maxJobsPerCall)
	if c.OutputLimit <= 0 {
		c.OutputLimit = defaultOutputLimit
	}
	if _, err := facts.ParseFlags(c.Facts); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Out == nil {
		c.Out = os.Stderr
	}
	return nil
}

// lockStateDir takes an exclusive flock on the state directory: two agents on
// one queue would run the same jobs twice.
func lockStateDir(dir string) (func(), error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another agent (lock %s)", dir, p)
		}
		return nil, fmt.Errorf("lock state directory: %w", err)
	}
	return func() { f.Close() }, nil
}

// loop alternates between talking to the server (register, deliver reports,
// acknowledge, take new jobs) and running one queued job. The local queue
// runs whatever the server's state: those jobs were acknowledged, which is
// the agent's promise to run them.
func (a *agent) loop(ctx context.Context) error {
	var onceErr error
	for {
		if ctx.Err() != nil {
			return nil
		}
		talked, newJobs := false, 0
		if !a.offline && !time.Now().Before(a.nextContact) {
			a.drainWake()
			n, err := a.talk(ctx)
			if ctx.Err() != nil {
				return nil
			}
			switch {
			case err == nil:
				talked, newJobs = true, n
				a.backoff = 0
				a.nextContact = time.Now().Add(jitter(a.interval))
			case errors.Is(err, errNotActive):
				if a.cfg.Once {
					a.offline, onceErr = true, a.notAccepted
					break
				}
				a.nextContact = time.Now().Add(a.grow(maxPendingBackoff))
			default:
				a.log.Warn("server call failed; queue and reports are kept", "server", a.rpc.Server(), "err", err)
				if a.cfg.Once {
					a.offline, onceErr = true, err
					break
				}
				a.nextContact = time.Now().Add(a.grow(a.interval))
			}
		}

		if err := a.applyCancels(); err != nil { // learnt while the last job ran
			return fmt.Errorf("drop cancelled runs: %w", err)
		}
		jobs, bad, err := a.store.listQueue()
		if err != nil {
			return fmt.Errorf("read queue: %w", err)
		}
		a.renewEvery = renewEvery(jobs)
		for _, b := range bad {
			if err := a.badDocument(b.run, b.err); err != nil {
				return err
			}
			if err := a.store.finish(b.run); err != nil {
				return err
			}
		}
		if len(jobs) > 0 {
			if err := a.execute(ctx, jobs[0]); err != nil {
				return err
			}
			if a.backoff == 0 {
				a.nextContact = time.Time{} // report it and refill the queue now
			}
			continue
		}

		if a.cfg.Once {
			switch {
			case onceErr != nil && errors.Is(onceErr, ErrNotAccepted):
				return onceErr
			case onceErr != nil:
				return fmt.Errorf("%w (%d reports kept in %s for the next run)", onceErr,
					a.store.outboxLen(), a.store.path(outboxDir))
			case talked && newJobs == 0 && len(bad) == 0 && a.store.outboxLen() == 0:
				return nil
			}
			a.nextContact = time.Time{}
			continue
		}
		if err := a.idle(ctx, time.Until(a.nextContact)); err != nil {
			return nil
		}
	}
}

// grow doubles the failure backoff up to limit and returns it jittered.
func (a *agent) grow(limit time.Duration) time.Duration {
	if a.backoff == 0 {
		a.backoff = firstBackoff
	} else {
		a.backoff *= 2
	}
	a.backoff = min(a.backoff, max(limit, firstBackoff))
	return jitter(a.backoff)
}

// jitter spreads d by ±10%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// talk is one round with the server: register if needed, deliver reports,
// acknowledge what is pending, take new jobs while the local queue has room.
// It returns how many new jobs were queued.
func (a *agent) talk(ctx context.Context) (int, error) {
	if !a.active {
		if err := a.register(ctx); err != nil {
			return 0, err
		}
	} else if err := a.syncFacts(ctx); err != nil { // heard by a heartbeat during the last job
		return 0, err
	}
	// What the spools of runs the agent died in still hold goes to the
	// server before their reports (stream.go).
	a.streamLeftovers(ctx)
	queued, err := a.store.queuedRuns()
	if err != nil {
		return 0, err
	}
	beat := a.beatDue(len(queued) > 0 || a.store.outboxLen() > 0 || len(a.pendingAck) > 0)
	if beat && a.store.outboxLen() == 0 && len(a.pendingAck) == 0 {
		// The idle poll: with no report to deliver and no run to
		// acknowledge, nothing comes between the heartbeat and getJobs,
		// which go in one system.multicall request (poll).
		n, err := a.poll(ctx, true)
		if err != nil {
			return n, err
		}
		if err := a.syncFacts(ctx); err != nil {
			return n, err
		}
		if err := a.applyCancels(); err != nil {
			return n, err
		}
		return n, a.deliver(ctx) // reports of undecodable documents, if any
	}
	if beat {
		a.heartbeat(ctx)
		if err := a.syncFacts(ctx); err != nil {
			return 0, err
		}
	}
	if err := a.applyCancels(); err != nil {
		return 0, err
	}
	if err := a.deliver(ctx); err != nil {
		return 0, err
	}
	n, err := a.poll(ctx, false)
	if err != nil {
		return n, err
	}
	return n, a.deliver(ctx) // reports of undecodable documents, if any
}

// call wraps client.Call: a 402 means the server no longer lets this agent
// work, whatever the method, and sends it back to registering.
func (a *agent) call(ctx context.Context, method string, reply any, args ...any) error {
	return a.checked(method, a.rpc.Call(ctx, method, reply, args...))
}

// checked is call's treatment of a 402, for the outcome err of a call of
// method made otherwise (one call of a multicall).
func (a *agent) checked(method string, err error) error {
	if api.FaultCode(err) == faultNotAccepted {
		a.active = false
		a.notAccepted = fmt.Errorf("%w: this agent (fingerprint %s): %v", ErrNotAccepted, a.id.fingerprint, err)
		a.log.Warn("server no longer accepts this agent; registering again", "method", method, "err", err)
		return fmt.Errorf("%w: %v", errNotActive, err)
	}
	return err
}

// register announces the agent and learns its status, with the machine's
// facts unless the server is one that takes none (facts.go). Anything but
// active returns errNotActive; the status is printed to Out once per
// change, with the command that accepts it. Registering again while active
// (to send changed facts) changes nothing else.
func (a *agent) register(ctx context.Context) error {
	host, _ := os.Hostname()
	params := map[string]any{"hostname": host, "os": runtime.GOOS, "arch": runtime.GOARCH,
		"version": a.cfg.Version, "name": a.cfg.Name, "mode": "poll"}
	if a.cfg.Daemon {
		params["mode"], params["callback_url"] = "daemon", a.callbackURL
	}
	if host == "" {
		params["hostname"] = a.cfg.Name
	}
	var res api.RegisterResult
	var err error
	sent, hash := false, ""
	if !a.facts.refused.Load() {
		var f facts.Facts
		f, hash = a.facts.current()
		params["facts"] = map[string]string(f)
		err = a.rpc.Call(ctx, api.MethodRegister, &res, params)
		if sent = err == nil; refusesFacts(err) {
			a.facts.refused.Store(true)
			a.log.Info("the server does not take the machine's facts in agent.register (an older server); "+
				"registering without them, and sending none while this agent runs", "err", err)
			delete(params, "facts")
			res = api.RegisterResult{}
			err = a.rpc.Call(ctx, api.MethodRegister, &res, params)
		}
	} else {
		err = a.rpc.Call(ctx, api.MethodRegister, &res, params)
	}
	if err != nil {
		return err
	}
	if sent {
		a.factsSent(hash)
	}
	fp := a.id.fingerprint
	if res.Status == "active" {
		if !a.active {
			a.log.Info("registered", "client_id", res.ClientID, "server", a.rpc.Server())
		}
		a.active = true
		a.printed = ""
		return nil
	}
	a.active = false
	a.notAccepted = fmt.Errorf("%w: this agent (fingerprint %s) is %s", ErrNotAccepted, fp, res.Status)
	if a.printed != res.Status {
		a.printed = res.Status
		switch res.Status {
		case "pending":
			fmt.Fprintf(a.cfg.Out, "waiting for acceptance: fingerprint %s  (accept with: scirectl client accept %s)\n", fp, fp)
		default:
			fmt.Fprintf(a.cfg.Out, "this agent is %s by the server: fingerprint %s  (an operator must delete the client before it can register again, or give the agent a new --state-dir)\n", res.Status, fp)
		}
	}
	switch res.Status {
	case "pending":
		a.log.Info("waiting for an operator to accept this agent", "client_id", res.ClientID, "fingerprint", fp)
	case "rejected", "revoked":
		a.log.Warn("the server refuses this agent", "status", res.Status, "client_id", res.ClientID, "fingerprint", fp)
		// Nothing the agent does changes this; ask rarely.
		a.backoff = maxPendingBackoff
	default:
		a.log.Warn("unknown registration status", "status", res.Status)
	}
	return fmt.Errorf("%w: %s", errNotActive, res.Status)
}

// IdleHeartbeatEvery is how often an agent that holds no run heartbeats.
// Its idle polls in between are agent.getJobs alone: one call per poll,
// not two, for a fleet that is idle most of the time (docs/protocol.md).
const IdleHeartbeatEvery = 5 * time.Minute

// beatDue says whether this round with the server heartbeats. An agent
// that holds runs (queued, to acknowledge, or with a report to deliver)
// heartbeats once per poll cycle, and every few seconds while short jobs
// keep it busy: the heartbeat renews the queued runs on the server
// (lease.go; more often when one has a short timeout) and says which of
// them the operator cancelled. One that holds none has nothing to renew,
// stop or drop; it heartbeats on its first round and then every
// IdleHeartbeatEvery, for the server's poll interval and clock.
func (a *agent) beatDue(holds bool) bool {
	if a.interval == 0 || a.lastBeat.IsZero() {
		return true
	}
	since := time.Since(a.lastBeat)
	if holds {
		every := min(a.interval, 2*beatEveryMax) / 2
		if a.renewEvery > 0 {
			every = min(every, a.renewEvery)
		}
		return since >= every
	}
	return since >= IdleHeartbeatEvery
}

// heartbeat names the queued runs (lease.go), logs clock skew (reports
// carry the agent's times), takes the server's poll interval when none was
// configured, and learns which runs were cancelled or lost. Failure is not
// an error: the next poll will tell.
func (a *agent) heartbeat(ctx context.Context) {
	held, err := a.store.queuedRuns()
	if err != nil {
		a.log.Warn("cannot list the queue for the heartbeat", "err", err)
	}
	var hb api.Heartbeat
	a.beaten(&hb, a.callBeat(ctx, held, &hb))
}

// beaten takes in the outcome of an agent.heartbeat call: its result hb or
// its failure err.
func (a *agent) beaten(hb *api.Heartbeat, err error) {
	if err != nil {
		a.log.Debug("heartbeat", "err", err)
		if a.interval == 0 {
			a.interval = defaultInterval
		}
		return
	}
	a.lastBeat = time.Now()
	a.facts.heard(hb.FactsHash)
	a.learnCancels(parseRunIDs(hb.Cancel), "heartbeat")
	a.learnLost(parseRunIDs(hb.Lost), "heartbeat")
	if skew := time.Since(hb.ServerTime); !hb.ServerTime.IsZero() && (skew > time.Minute || skew < -time.Minute) {
		a.log.Warn("clock differs from the server's; reported times will be off", "skew", skew.Round(time.Second))
	}
	if a.cfg.Interval == 0 {
		a.interval = defaultInterval
		if hb.PollInterval > 0 {
			a.interval = time.Duration(hb.PollInterval) * time.Second
		}
	}
}

// runIDPattern finds the run id of a job document that does not decode, so
// the run can still be reported failed instead of coming back forever.
var runIDPattern = regexp.MustCompile(`<job\b[^>]*?\srun\s*=\s*["']([0-9]{1,19})["']`)

// poll acknowledges pending runs and takes new ones while the local queue
// has room. Each new document is written durably to the queue before its ack.
// With beat it heartbeats too, first: in the same system.multicall request
// as agent.getJobs, each call with its own outcome — a failed heartbeat is
// only logged, as on its own; a failed getJobs is poll's error.
func (a *agent) poll(ctx context.Context, beat bool) (int, error) {
	if err := a.ackPending(ctx); err != nil {
		return 0, err
	}
	queued, err := a.store.queuedRuns()
	if err != nil {
		return 0, err
	}
	room := a.cfg.MaxJobs - len(queued)
	if room <= 0 {
		if beat {
			a.heartbeat(ctx)
		}
		return 0, nil
	}
	var docs []string
	if beat {
		var hb api.Heartbeat
		hbCall := &client.Call{Method: api.MethodHeartbeat, Args: a.beatArgs(queued), Reply: &hb}
		getCall := &client.Call{Method: api.MethodGetJobs, Args: []any{room}, Reply: &docs}
		a.rpc.Multicall(ctx, hbCall, getCall) // a failed request fails both calls
		if len(hbCall.Args) > 0 {
			a.refusesHeld(hbCall.Err) // an older server: the next heartbeat goes without
		}
		a.beaten(&hb, hbCall.Err)
		err = a.checked(api.MethodGetJobs, getCall.Err)
	} else {
		err = a.call(ctx, api.MethodGetJobs, &docs, room)
	}
	if err != nil {
		return 0, err
	}
	n, firstErr := a.take(docs)
	if err := a.ackPending(ctx); err != nil {
		return n, err
	}
	return n, firstErr
}

// take queues the job documents agent.getJobs returned, each written
// durably before it is acknowledged (ackPending, after it): it returns how
// many were new, and the first failure to queue one (that run is not
// acknowledged, so the server hands it out again).
func (a *agent) take(docs []string) (int, error) {
	n := 0
	var firstErr error
	for _, doc := range docs {
		j, err := jobxml.DecodeJob([]byte(doc))
		if err != nil {
			m := runIDPattern.FindStringSubmatch(doc)
			if m == nil {
				a.log.Error("undecodable job document without a run id; ignored (its lease will expire)", "err", err)
				continue
			}
			run, _ := strconv.ParseInt(m[1], 10, 64)
			if run <= 0 || a.store.known(run) {
				continue
			}
			if err := a.badDocument(run, err); err != nil {
				a.log.Error("cannot write report; the run will be handed out again", "run", run, "err", err)
			}
			continue
		}
		if a.store.known(j.Run) {
			a.log.Info("run handed out again; already have it, acknowledging only", "run", j.Run, "attempt", j.Attempt)
			a.pendingAck[j.Run] = true
			continue
		}
		if err := a.store.enqueue(j.Run, []byte(doc)); err != nil {
			// Not acknowledged: the server hands it out again later.
			a.log.Error("cannot queue job; not acknowledging it", "run", j.Run, "err", err)
			if firstErr == nil {
				firstErr = fmt.Errorf("queue run %d: %w", j.Run, err)
			}
			continue
		}
		a.log.Info("job queued", "job", j.ID, "run", j.Run, "name", j.Name, "priority", j.Priority, "attempt", j.Attempt)
		a.pendingAck[j.Run] = true
		n++
	}
	return n, firstErr
}

// ackPending acknowledges the runs in pendingAck. A run the server calls
// stale (lease expired and requeued, or cancelled) is dropped from the queue
// unrun. An id the server disowns (404/409) fails the whole call, so the ids
// are then acknowledged one by one to find it; that run is dropped too: the
// server says it is not this agent's to run.
func (a *agent) ackPending(ctx context.Context) error {
	if len(a.pendingAck) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(a.pendingAck))
	for id := range a.pendingAck {
		if a.store.queued(id) || a.store.known(id) {
			ids = append(ids, id)
		} else {
			delete(a.pendingAck, id) // ran and left the queue meanwhile
		}
	}
	slices.Sort(ids)
	for chunk := range slices.Chunk(ids, maxJobsPerCall) {
		err := a.ack(ctx, chunk)
		if code := api.FaultCode(err); (code == faultNotFound || code == faultConflict) && len(chunk) > 1 {
			for _, id := range chunk {
				if err := a.ack(ctx, []int64{id}); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (a *agent) ack(ctx context.Context, ids []int64) error {
	strs := make([]string, len(ids))
	for i, id := range ids {
		strs[i] = strconv.FormatInt(id, 10)
	}
	var res api.AckResult
	err := a.call(ctx, api.MethodAckJobs, &res, strs)
	if code := api.FaultCode(err); (code == faultNotFound || code == faultConflict) && len(ids) == 1 {
		a.log.Error("server disowns a queued run; dropping it unrun", "run", ids[0], "err", err)
		delete(a.pendingAck, ids[0])
		if !exists(a.store.markerPath(ids[0])) {
			return a.store.dropQueued(ids[0])
		}
		return nil
	}
	if err != nil {
		return err
	}
	for _, id := range ids {
		delete(a.pendingAck, id)
	}
	for _, s := range res.Stale {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || !slices.Contains(ids, id) {
			continue
		}
		a.log.Info("server says the run is stale (lease expired or cancelled); dropping it unrun", "run", id)
		if err := a.store.dropQueued(id); err != nil {
			return err
		}
	}
	return nil
}

// badDocument reports a run whose job document cannot be decoded as failed:
// the agent cannot run it, and silence would only make the server hand it
// out again after each lease.
func (a *agent) badDocument(run int64, derr error) error {
	a.log.Error("job document does not decode; reporting the run failed", "run", run, "err", derr)
	now := time.Now().UTC()
	st := jobxml.Status{Run: run, State: jobxml.StateFailed, Started: now, Finished: now, Reason: ReasonBadDocument,
		Output: jobxml.Sanitize("the agent could not decode the job document: " + derr.Error())}
	return a.store.putReport(st)
}

// execute runs one queued job through the crash-safe sequence of the
// package comment: marker, "running" report, process, final report, cleanup.
func (a *agent) execute(ctx context.Context, j queuedJob) error {
	if ctx.Err() != nil {
		return nil // stopping: the job stays queued for the next start
	}
	log := a.log.With("job", j.ID, "run", j.Run, "name", j.Name)
	stop, note := a.cancels.begin(j.Run)
	if note != "" {
		return a.dropCancelled(j.Run, note)
	}
	defer a.cancels.end(j.Run)
	started := time.Now().UTC()
	if err := a.store.markRunning(j.Run, started); err != nil {
		return fmt.Errorf("mark run %d running: %w", j.Run, err)
	}
	// Best effort: a lost "running" report costs nothing but a less precise
	// view on the server. It is delivered while the job runs.
	online := a.active && !a.offline
	if err := a.store.putReport(jobxml.Status{Run: j.Run, State: jobxml.StateRunning, Started: started}); err != nil {
		log.Warn("cannot write running report", "err", err)
	} else if online && a.backoff == 0 {
		a.deliverDone = make(chan error, 1)
		go func(done chan<- error) { done <- a.deliver(ctx) }(a.deliverDone)
	}

	stopBeat := make(chan struct{})
	beatDone := make(chan struct{})
	var keptAlive time.Time // keepAlive's last successful heartbeat, read once it is done
	if online {
		every := min(max(a.interval, minKeepAlive), maxKeepAlive)
		if a.renewEvery > 0 {
			every = min(every, a.renewEvery)
		}
		held, err := a.store.queuedRuns() // this run and those waiting: fixed until it ends
		if err != nil {
			log.Warn("cannot list the queue for the heartbeats", "err", err)
		}
		first := every
		if !a.lastBeat.IsZero() {
			first = min(every, max(every-time.Since(a.lastBeat), 0))
		}
		go a.keepAlive(ctx, first, every, held, &keptAlive, stopBeat, beatDone)
	} else {
		close(beatDone)
	}

	log.Info("job starting", "interpreter", j.Interpreter, "timeout", j.Timeout)
	res := result{State: jobxml.StateFailed, Reason: ReasonCancelled, Started: started, Finished: started}
	ran := false
	select {
	case <-stop: // cancelled (answer to the "running" report) before it could start: never started
	default:
		ran = true
		res = a.runStreamed(ctx, j, stop, online, log)
	}
	close(stopBeat)
	<-beatDone
	if keptAlive.After(a.lastBeat) {
		a.lastBeat = keptAlive
	}
	if a.deliverDone != nil {
		if err := <-a.deliverDone; err != nil && !errors.Is(err, errNotActive) {
			log.Debug("running report not delivered yet", "err", err)
		}
		a.deliverDone = nil
	}
	switch note := a.cancels.end(j.Run); {
	case note == noteLost || (note == noteCancel && !ran):
		// Nothing final is reported: the server keeps the run failed
		// (lost), and refuses its results; or it was cancelled before it
		// started, and there is nothing to tell.
		if err := a.forgetCancelled(j.Run, note); err != nil {
			return fmt.Errorf("forget %s run %d: %w", note, j.Run, err)
		}
		msg := "job cancelled by the operator before it started; nothing is reported"
		if note == noteLost {
			msg = "job declared lost by the server while it ran; its process group was stopped, nothing is reported"
		}
		log.Warn(msg, "result", res.State, "reason", res.Reason, "duration", res.Finished.Sub(res.Started).Round(time.Millisecond))
		return nil
	case note == noteCancel:
		// Reported with the output it wrote until it was stopped: the
		// server keeps the run cancelled and takes the output.
		log.Warn("job cancelled by the operator while it ran; its process group was stopped, its output is reported",
			"duration", res.Finished.Sub(res.Started).Round(time.Millisecond))
	}
	if res.Reason == ReasonInterrupted {
		res.Output = withNote(res.Output, "[scirectl agent: stopped while this job ran; its process group was killed, it is not run again]")
	}
	st := jobxml.Status{Run: j.Run, State: res.State, Exit: res.Exit, Started: res.Started, Finished: res.Finished,
		Reason: res.Reason, Output: res.Output, Truncated: res.Truncated}
	if err := a.store.putReport(st); err != nil {
		// The marker stays: the next start reports the run interrupted.
		return fmt.Errorf("write report of run %d: %w", j.Run, err)
	}
	delete(a.pendingAck, j.Run)
	// The report carries the output now: the spool has served.
	if err := a.store.removeSpool(j.Run); err != nil {
		log.Warn("cannot remove the output spool", "err", err)
	}
	if err := a.store.finish(j.Run); err != nil {
		return fmt.Errorf("clean up run %d: %w", j.Run, err)
	}
	attrs := []any{"state", res.State, "duration", res.Finished.Sub(res.Started).Round(time.Millisecond)}
	if res.Exit != nil {
		attrs = append(attrs, "exit", *res.Exit)
	}
	if res.Reason != "" {
		attrs = append(attrs, "reason", res.Reason)
	}
	if res.Truncated {
		attrs = append(attrs, "output_truncated", true)
	}
	log.Info("job finished", attrs...)
	return nil
}

// runStreamed runs a job's script with its output spooled and, when the
// agent talks to the server (online), streamed while it runs (stream.go).
// Neither the spool nor the sender can fail or hold up the job: without a
// spool the output is kept in memory only.
func (a *agent) runStreamed(ctx context.Context, j queuedJob, stop <-chan struct{}, online bool, log *slog.Logger) result {
	sp, err := a.store.newSpool(j.Run, a.cfg.OutputLimit)
	if err != nil {
		log.Warn("cannot make the output spool; the output is kept in memory only, and not streamed", "err", err)
		sp = nil
	}
	streamCtx, stopStream := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	switch {
	case sp == nil:
		close(streamDone)
	case online:
		a.stream.begin(j.Run, sp)
		go a.streamWhileRunning(streamCtx, streamDone)
	default:
		sp.stop("the server is not reachable")
		sp.told.Store(true)
		close(streamDone)
	}
	res := runCommand(ctx, command{
		Interpreter: j.Interpreter, Script: j.Script, Dir: a.store.workPath(j.Run), Timeout: j.Timeout,
		OutputLimit: a.cfg.OutputLimit, Stop: stop, Spool: sp,
		Env: append(os.Environ(),
			"SCIRE_JOB_ID="+strconv.FormatInt(j.ID, 10), "SCIRE_RUN_ID="+strconv.FormatInt(j.Run, 10),
			"SCIRE_ATTEMPT="+strconv.Itoa(j.Attempt), "SCIRE_JOB_NAME="+j.Name, "SCIRE_SUBMITTED_BY="+j.SubmittedBy),
	})
	stopStream() // a request under way is abandoned: the report carries everything
	<-streamDone
	a.stream.end(j.Run)
	if res.SpoolErr != nil {
		log.Warn("the output spool ended early; the report carries the output, but a crash now would lose its end", "err", res.SpoolErr)
	}
	return res
}

// keepAlive heartbeats while a job runs, since the agent makes no other
// call then, first after first and then every every, naming the held runs:
// the server keeps seeing the client, and through last_seen can tell a
// long job from a dead agent; it renews the runs waiting behind the job
// (lease.go); and the agent learns when the operator cancels the job or a
// held run was declared lost. It records its last successful heartbeat in
// *last. Failures only get a debug line; the calls after the job will tell
// if the server is gone.
func (a *agent) keepAlive(ctx context.Context, first, every time.Duration, held []int64, last *time.Time,
	stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(every)
			var hb api.Heartbeat
			if err := a.callBeat(ctx, held, &hb); err != nil {
				a.log.Debug("heartbeat during job", "err", err)
				continue
			}
			*last = time.Now()
			a.facts.heard(hb.FactsHash) // acted on by the next round with the server
			a.learnCancels(parseRunIDs(hb.Cancel), "heartbeat")
			a.learnLost(parseRunIDs(hb.Lost), "heartbeat")
		}
	}
}

// deliver sends every report in the outbox, in batches of up to
// maxBatchReports and maxBatchBytes. An answered report leaves the outbox
// whether accepted or not (a refused report would be refused forever; it is
// logged). A transport error or fault keeps the batch for the next try —
// except the faults that reject the content of the call (see
// contentFault), which fail the whole batch for the sake of one report: the
// batch is then sent report by report, and a report refused on its own is
// set aside in rejected/ so that it cannot hold up the others.
func (a *agent) deliver(ctx context.Context) error {
	reps, err := a.store.outbox()
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	for len(reps) > 0 {
		n, size := 0, 0
		for n < len(reps) && n < maxBatchReports && (n == 0 || size+reps[n].size <= maxBatchBytes) {
			size += reps[n].size
			n++
		}
		batch := reps[:n]
		reps = reps[n:]
		err := a.sendBatch(ctx, batch)
		if contentFault(err) && len(batch) > 1 {
			for _, r := range batch {
				if err := a.sendBatch(ctx, []report{r}); err != nil {
					return err
				}
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// contentFault reports a fault about what the call carried rather than
// about the server's condition: malformed (400), unknown run (404), not this
// agent's run (409), too large (413). Sending the same report again cannot
// succeed.
func contentFault(err error) bool {
	switch api.FaultCode(err) {
	case faultInvalid, faultNotFound, faultConflict, faultTooLarge:
		return true
	}
	return false
}

func (a *agent) sendBatch(ctx context.Context, batch []report) error {
	sts := make([]jobxml.Status, len(batch))
	for i, r := range batch {
		sts[i] = r.Status
	}
	doc, err := jobxml.EncodeStatuses(sts)
	if err != nil {
		return fmt.Errorf("encode reports: %w", err)
	}
	var res []api.ReportResult
	err = a.call(ctx, api.MethodReportStatus, &res, string(doc))
	if contentFault(err) && len(batch) == 1 {
		r := batch[0]
		a.log.Error("server refuses this report for good; set aside in "+rejectedDir+"/", "run", r.Run, "err", err)
		return a.store.reject(r)
	}
	if err != nil {
		return err
	}
	type answer struct {
		ok, cancelled bool
		msg           string
	}
	answered := map[int64]answer{}
	for _, r := range res {
		id, err := strconv.ParseInt(r.RunID, 10, 64)
		if err != nil {
			continue
		}
		answered[id] = answer{r.Accepted, r.Cancelled, r.Error}
	}
	for _, r := range batch {
		ans, ok := answered[r.Run]
		if !ok {
			a.log.Warn("server did not answer for a report; keeping it", "run", r.Run)
			continue
		}
		switch {
		case ans.cancelled:
			if r.running {
				// Still going here: stop it (execute then reports nothing).
				a.learnCancels([]int64{r.Run}, "reportStatus")
				break
			}
			a.log.Info("report answered: the operator cancelled this run; the server keeps it cancelled", "run", r.Run, "state", r.State)
			if err := a.store.appendDoneNote(r.Run, noteCancel); err != nil {
				return err
			}
		case !ans.ok:
			a.log.Warn("server did not accept the report; dropping it", "run", r.Run, "state", r.State, "err", ans.msg)
		case ans.msg != "":
			a.log.Info("report accepted with a note", "run", r.Run, "state", r.State, "note", ans.msg)
		default:
			a.log.Debug("report delivered", "run", r.Run, "state", r.State)
		}
		if err := a.store.delivered(r); err != nil {
			return err
		}
	}
	return nil
}
