package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/loadgen"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/serverconfig"
)

// BenchOptions are the flags of `scirectl bench`.
type BenchOptions struct {
	Mode         string
	Agents       int
	Jobs         int
	Batch        int
	SubmitBatch  int
	Submitters   int
	Rate         float64
	Duration     time.Duration
	PollInterval time.Duration
	Pending      int
	Old          int
	Retain       string
	Push         bool
	Stream       serverconfig.Size
	Streamers    int
	DB           string
	DataDir      string
	Spawn        bool
	Server       string
	Token        string
	TokenFile    string
	CA           string
	Keep         bool
	Timeout      time.Duration
	Output       string
	NoProgress   bool
	CPUProfile   string
	MemProfile   string
}

// NewBenchCmd builds `scirectl bench`.
func NewBenchCmd(ios *IOStreams) *cobra.Command {
	o := &BenchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the server's throughput, latency, fan-out and idle cost with simulated agents",
		Long: `Measure how many jobs per second the server dispatches, how long a job
waits, how long one job for a whole fleet takes, and what a fleet of idle
agents costs it, with simulated agents over real TLS XML-RPC connections.

By default bench starts a server of its own ("scirectl serve" as a child
process, on a temporary data directory and SQLite database, removed at the
end), so that its CPU time and memory are measured alone. --server loads an
existing server instead (its CPU and memory are then unknown).

Each simulated agent has its own self-signed identity and kept-alive
connection; it registers, is accepted, then loops agent.getJobs(--batch),
agent.ackJobs, agent.reportStatus (all succeeded) without running anything:
what is measured is the server — TLS, XML-RPC, the gate and the database.
After a full batch it asks for more at once, with the report and the next
agent.getJobs in one system.multicall request (two requests a job at
--batch 1); after a short one it waits for the next poll (or push).
Jobs are no-op scripts submitted with job.submit, --submit-batch calls per
system.multicall request, each for one agent in turn (in fanout mode, one
job for every agent).

Modes:
  burn-down  submit all --jobs first, then start the agents: the throughput
             is jobs completed / time to drain the queue.
  steady     the agents run from the start while jobs arrive at --rate per
             second, for --duration or until --jobs are submitted. An agent
             that finds nothing waits --poll-interval, which is part of the
             submit→received latency.
  idle       no jobs: --agents agents poll as idle real agents do, each
             calling agent.getJobs(--batch, default 10 as the agent's
             --max-jobs) every --poll-interval (default 30s, the agent's)
             with ±10% jitter, and every 5 minutes agent.heartbeat too, in
             the same system.multicall request, as an agent that holds no
             run does; their first polls spread evenly over one interval
             and their heartbeats over 5 minutes. After one interval of
             warm-up, in which each agent polls once, they are measured
             for --duration (default 2m). The report gives the server's
             CPU (seconds and % of one core) and memory over that window,
             setup and warm-up excluded, the requests' response times and
             the TLS connections the agents had to reopen (0: each kept its
             own alive). With --push the agents are daemon-mode agents,
             as the reference agent's --daemon: each waits for work in
             agent.getJobs, 30s at a time, a wait that ends empty being
             its round's poll (a heartbeat, when due, still makes a round
             of its own).
  fanout     one job for every agent, as an operator runs a command on the
             whole fleet: a single job.submit whose target is a glob of the
             bench's agents' names (bench-RUNID-*). First the agents warm
             up: polling agents call agent.getJobs(--batch, default 10)
             every --poll-interval (default 1s, a real agent's short
             --interval) ±10%, their first polls spread evenly over one
             interval; with --push each polls once, then waits for
             work in agent.getJobs (its wait). When every agent has had its first poll
             answered, the job is submitted, and the measurement runs from
             the moment that request is sent until the last of its runs is
             reported succeeded (all final). An agent that has completed
             its run goes on polling, as a real one does. --jobs, --rate,
             --duration, --submit-batch, --submitters, --old and --stream
             do not apply.

--push makes the agents daemon-mode clients, as the reference agent's
--daemon: when one finds no work it waits for some in agent.getJobs (the
call's wait: --poll-interval, default 5s then, at most 30s; in fanout mode
30s, the agent's default), answered the moment a job for it is submitted;
each also listens on loopback for agent.pollNow, which a server older than
the wait sends instead. Compare steady-mode latencies, or fanout's time
until all final, with and without it.

--stream RATE measures what a fleet streaming live output costs dispatch.
Before the measurement, --streamers extra agents (default 32) register and
are accepted, are each submitted one no-op job, and claim, acknowledge and
report it running, as an agent starting a long job does. While the jobs are
measured, each sends about once a second (their first calls spread over a
second, later ones ±10%) one agent.output call with its share of RATE as
lines of text, in chunks of at most 256 KiB, from the offset the server
acknowledged: a chunk it did not take is sent again from the offset it
answered, and the output of a call that failed goes with the next call,
which carries the backlog too. RATE is bytes per second in total, written
as sizes are (10MB = 10 MiB/s). The report adds the output
the server stored per second (the advance of its offsets, to compare with
RATE), the agent.output calls and their response times. At the end each
streamer reports its run succeeded, so that its client can be removed; the
streamers' jobs are not among the measured ones. Not in idle mode. Compare
the throughput with and without it.

Latencies are per job: submit→received runs from the moment the request
carrying its job.submit was sent to the moment an agent's getJobs returned
it; submit→completed to the moment its status report was accepted. In
burn-down mode they mostly measure the queue (jobs wait for the whole
submission); steady mode shows the latency of a loaded server. In fanout
mode they are per run of the one job, and the report adds the time until
all were final (all_final_seconds, the largest submit→completed); the
jobs, completed, missing and duplicates figures then count that job's
runs.

--pending N preloads a backlog of N extra jobs, each for a client that never
polls, straight into the database before the measurement (for SQLite without
an fsync per commit, since it is setup): dispatch should not slow down with
the size of the queue. Against --server the backlog is submitted through the
API, which is slower.

--old N preloads a history of N finished jobs (one succeeded run each,
created and ended a year ago) straight into the database, as --pending does,
for the server's cleaner to delete while the agents work (serve --retain,
90 days by default; its first pass comes a minute after the server starts,
so measure longer: --mode steady --duration 5m). The report then gives the
response time of the agents' agent.getJobs calls while the cleaner's pass
ran and otherwise, the pass's time and what it deleted (from its audit
record). --retain off runs the same server with the cleaner off: the
baseline.

Setup — creating the agents' identities (ECDSA, like the agent's),
registering them (each over its own connection, which it keeps) and
accepting them (500 per client.accept) — is timed apart and not measured.
Every agent holds an open connection: bench raises its open-files limit
(RLIMIT_NOFILE) to the hard limit if it needs to, and says so when the hard
limit is too low for --agents; the spawned server inherits it.

The report gives jobs/s (fanout mode: the time until all runs were
final), the latency percentiles (p50, p95, p99, max), the
server's CPU seconds and share of one core, its peak resident memory (since
it started, and within the measurement) and its resident memory at the end,
the load generator's own CPU and memory (with a spawned server), the
requests by method, and the errors by method and kind. -o json prints the
same with stable field names (docs/cli-output.md). Progress goes to stderr
(--no-progress silences it). The exit code is 1 when a job (fanout mode: a
run) did not complete exactly once.`,
		Example: `  # the default: 64 agents drain 10,000 jobs, batches of 100
  scirectl bench

  # the issue's figures: 100,000 jobs, batch 100, then one job per call
  scirectl bench --jobs 100000 --agents 64 --batch 100
  scirectl bench --jobs 100000 --agents 64 --batch 1

  # does a backlog of a million pending jobs slow dispatch down?
  scirectl bench --jobs 100000 --pending 1000000

  # dispatch latency while the cleaner deletes a million old jobs, and without it
  scirectl bench --mode steady --rate 200 --duration 5m --old 1000000
  scirectl bench --mode steady --rate 200 --duration 5m --old 1000000 --retain off

  # latency under a steady 500 jobs/s for one minute, as JSON
  scirectl bench --mode steady --rate 500 --duration 1m -o json

  # the same with daemon-mode agents, which wait for work in agent.getJobs
  scirectl bench --mode steady --rate 500 --duration 1m --push

  # what 32 agents streaming 10 MiB/s of output cost dispatch at batch 100
  scirectl bench --jobs 30000 --batch 100 --stream 10MB

  # what 5,000 idle agents polling every 30 s cost the server (issue 8)
  scirectl bench --mode idle --agents 5000 --poll-interval 30s --duration 2m

  # one job for 2,000 daemon-mode agents: how long until every run is final
  scirectl bench --mode fanout --agents 2000 --push

  # the same fleet polling every second (the default) instead
  scirectl bench --mode fanout --agents 2000

  # on PostgreSQL (a scratch database: bench adds clients and jobs)
  scirectl bench --db postgres://bench@localhost/scire_bench

  # load an existing server (its admin token and CA)
  scirectl bench --server https://scire.example.com:7443 \
      --token-file /var/lib/scire/admin.token --ca /var/lib/scire/tls/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBench(ctx, ios, o, cmd.Flags().Changed)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Mode, "mode", string(loadgen.BurnDown), "burn-down (submit everything, then drain), steady (fixed arrival rate), idle (no jobs: agents polling) or fanout (one job for every agent)")
	f.IntVar(&o.Agents, "agents", 64, "simulated agents, each with its own identity and connection (1..10000)")
	f.IntVar(&o.Jobs, "jobs", 10000, "jobs to submit (steady mode with --duration: no limit unless given; idle mode: none; fanout mode: one, for every agent)")
	f.IntVar(&o.Batch, "batch", 100, "jobs an agent asks for per agent.getJobs call (1..1000; idle and fanout modes: default 10, the agent's --max-jobs)")
	f.IntVar(&o.SubmitBatch, "submit-batch", 100, "job.submit calls per system.multicall request (1: plain job.submit calls)")
	f.IntVar(&o.Submitters, "submitters", 4, "concurrent submitting connections")
	f.Float64Var(&o.Rate, "rate", 0, "steady mode: jobs submitted per second")
	f.DurationVar(&o.Duration, "duration", 0, "steady mode: how long jobs arrive, e.g. 1m (default: until --jobs are submitted); idle mode: how long the agents are measured (default 2m)")
	f.DurationVar(&o.PollInterval, "poll-interval", 100*time.Millisecond, "how long an agent that got no job waits before asking again (with --push: 5s, a safety net behind agent.pollNow; idle mode: 30s, the agent's --interval; fanout mode: 1s, with --push 30s)")
	f.IntVar(&o.Pending, "pending", 0, "preload a backlog of this many jobs for a client that never polls")
	f.IntVar(&o.Old, "old", 0, "preload a history of this many finished jobs a year old, which the server's cleaner deletes while measured (its first pass a minute after the start)")
	f.StringVar(&o.Retain, "retain", "", "the bench's server's --retain (e.g. off, the baseline of a run with --old; default the server's, 90d)")
	f.BoolVar(&o.Push, "push", false, "daemon-mode agents: each waits for work in agent.getJobs, and listens for agent.pollNow, instead of polling")
	f.Var(&o.Stream, "stream", "while measured, --streamers agents send live output (agent.output) at this total rate in bytes/s, e.g. 10MB (10 MiB/s); not in idle mode")
	f.IntVar(&o.Streamers, "streamers", loadgen.DefaultStreamers, "with --stream: agents streaming, each running one job and sending its share of the rate once a second")
	f.StringVar(&o.DB, "db", "", "database URL of the bench's server: sqlite://PATH or postgres://… (default a temporary SQLite file)")
	f.StringVar(&o.DataDir, "data-dir", "", "data directory of the bench's server, kept afterwards; a server.yaml in it configures a spawned server (default a temporary directory, removed)")
	f.BoolVar(&o.Spawn, "spawn", true, "run the bench's server as a child process, measured alone; --spawn=false runs it inside bench")
	f.StringVar(&o.Server, "server", "", "load this existing server instead of starting one (URL or host:port)")
	f.StringVar(&o.Token, "token", "", "with --server: operator token allowed client.accept and job.submit (default $SCIRE_TOKEN)")
	f.StringVar(&o.TokenFile, "token-file", "", "with --server: file holding the token")
	f.StringVar(&o.CA, "ca", "", "with --server: the server's CA certificate (default $SCIRE_CA, else the system roots)")
	f.BoolVar(&o.Keep, "keep", false, "with --server: keep the bench's clients and jobs (default: revoke and delete them)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "give up after this long, reporting what was measured")
	f.StringVarP(&o.Output, "output", "o", "table", "output format: table or json (default $SCIRE_OUTPUT, else table)")
	f.BoolVar(&o.NoProgress, "no-progress", false, "no progress lines on stderr")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "with --spawn=false: write a CPU profile of the drain (burn-down), the run (steady, idle) or the fan-out after the warm-up (fanout) to FILE; the server's goroutines carry the label role=server")
	f.StringVar(&o.MemProfile, "memprofile", "", "with --spawn=false: write a heap profile taken at the end of the measurement, every agent still connected, to FILE")
	_ = f.MarkHidden("cpuprofile")
	_ = f.MarkHidden("memprofile")
	return cmd
}

func runBench(ctx context.Context, ios *IOStreams, o *BenchOptions, changed func(string) bool) error {
	if env := os.Getenv("SCIRE_OUTPUT"); env != "" && !changed("output") {
		o.Output = env
	}
	switch o.Output {
	case "table", "wide": // one report: wide is the same
		o.Output = "table"
	case "json":
	default:
		return usageError(fmt.Sprintf("--output %q: want table or json", o.Output))
	}
	lo := loadgen.Options{
		Mode: loadgen.Mode(o.Mode), Agents: o.Agents, Jobs: o.Jobs, Batch: o.Batch, SubmitBatch: o.SubmitBatch,
		Submitters: o.Submitters, Rate: o.Rate, Duration: o.Duration, PollInterval: o.PollInterval, Pending: o.Pending, Push: o.Push,
		Old: o.Old, Retain: o.Retain,
		DB: o.DB, DataDir: o.DataDir, Spawn: o.Spawn, Keep: o.Keep, Timeout: o.Timeout, ServerLog: ios.ErrOut,
	}
	idle := lo.Mode == loadgen.Idle
	fanout := lo.Mode == loadgen.Fanout
	if idle {
		// Nothing is submitted: the submission flags are mistakes here.
		for _, f := range []string{"jobs", "rate", "submit-batch", "submitters"} {
			if changed(f) {
				return usageError(fmt.Sprintf("--%s: the idle mode submits no jobs (it measures agents polling with nothing to do)", f))
			}
		}
		if !changed("duration") {
			lo.Duration = 0 // loadgen's idle default
		}
	}
	if fanout {
		// One job, one job.submit, over when its runs are: the flags that
		// shape a submission or a window are mistakes here.
		for _, f := range []string{"jobs", "rate", "duration", "submit-batch", "submitters", "old", "stream", "streamers"} {
			if changed(f) {
				return usageError(fmt.Sprintf("--%s: the fanout mode submits one job for every agent and ends when each of its runs is final", f))
			}
		}
		lo.Duration = 0
	}
	if idle || fanout {
		lo.Jobs, lo.SubmitBatch, lo.Submitters = 0, 0, 0
		if !changed("batch") {
			lo.Batch = 0 // loadgen's default for the mode: the agent's --max-jobs
		}
		if !changed("poll-interval") {
			lo.PollInterval = 0 // loadgen's default for the mode (and --push)
		}
	}
	// Zero would mean "the default" to loadgen; on the command line it is a mistake.
	for _, c := range []struct {
		flag string
		v    int
	}{{"agents", o.Agents}, {"jobs", o.Jobs}, {"batch", o.Batch}, {"submit-batch", o.SubmitBatch}, {"submitters", o.Submitters}} {
		if c.v <= 0 && !(c.flag == "jobs" && o.Mode == string(loadgen.Steady) && o.Duration > 0) && !((idle || fanout) && c.flag != "agents" && c.flag != "batch") {
			return usageError(fmt.Sprintf("--%s %d: want 1 or more", c.flag, c.v))
		}
	}
	if o.Timeout <= 0 {
		return usageError(fmt.Sprintf("--timeout %s: want more than 0", o.Timeout))
	}
	if o.PollInterval <= 0 {
		return usageError(fmt.Sprintf("--poll-interval %s: want more than 0", o.PollInterval))
	}
	if idle && changed("duration") && o.Duration <= 0 {
		return usageError(fmt.Sprintf("--duration %s: want more than 0", o.Duration))
	}
	switch {
	case changed("stream"):
		if o.Streamers < 1 {
			return usageError(fmt.Sprintf("--streamers %d: want 1 or more", o.Streamers))
		}
		lo.Stream, lo.Streamers = int64(o.Stream), o.Streamers
	case changed("streamers"):
		return usageError("--streamers goes with --stream (the total rate)")
	}
	if o.Push && !changed("poll-interval") && !idle && !fanout {
		lo.PollInterval = 0 // loadgen's default for push mode: a 5s safety net
	}
	if lo.Mode == loadgen.Steady && o.Duration > 0 && !changed("jobs") {
		lo.Jobs = 0 // arrivals for --duration, however many
	}
	if o.Server != "" {
		if o.DB != "" || o.DataDir != "" || changed("spawn") || changed("old") || changed("retain") {
			return usageError("--server loads an existing server: --db, --data-dir, --spawn, --old and --retain are for the server bench starts")
		}
		lo.Server = normalizeServerURL(o.Server)
		lo.Token = o.Token
		if lo.Token == "" && o.TokenFile == "" {
			lo.Token = os.Getenv("SCIRE_TOKEN")
		}
		if lo.Token == "" && o.TokenFile != "" {
			b, err := os.ReadFile(o.TokenFile)
			if err != nil {
				return fmt.Errorf("token file: %w", err)
			}
			lo.Token = strings.TrimSpace(string(b))
		}
		if lo.Token == "" {
			return usageError("--server needs an operator token: --token, $SCIRE_TOKEN or --token-file")
		}
		ca := o.CA
		if ca == "" {
			ca = os.Getenv("SCIRE_CA")
		}
		if ca != "" {
			pool, err := pki.CertPool(ca)
			if err != nil {
				return err
			}
			lo.RootCAs = pool
		}
	} else if o.Token != "" || o.TokenFile != "" || o.CA != "" || o.Keep {
		return usageError("--token, --token-file, --ca and --keep go with --server")
	}
	if !o.NoProgress {
		lo.Progress = ios.ErrOut
	}
	if o.CPUProfile != "" {
		if lo.Spawn {
			return usageError("--cpuprofile profiles the bench process: use it with --spawn=false")
		}
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		lo.CPUProfile = f
	}
	if o.MemProfile != "" {
		if lo.Spawn {
			return usageError("--memprofile profiles the bench process: use it with --spawn=false")
		}
		f, err := os.Create(o.MemProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		lo.MemProfile = f
	}
	if err := lo.Validate(); err != nil {
		return usageError(err.Error())
	}
	res, runErr := loadgen.Run(ctx, lo)
	if res == nil {
		return runErr
	}
	var err error
	if o.Output == "json" {
		enc := json.NewEncoder(ios.Out)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = printBench(ios.Out, res)
	}
	if runErr != nil {
		return runErr
	}
	return err
}

// printBench writes the results for people, each figure with its unit.
func printBench(out io.Writer, r *loadgen.Results) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	idle := r.Mode == loadgen.Idle
	fanout := r.Mode == loadgen.Fanout
	mode := "burn-down: every job submitted first, then drained"
	switch r.Mode {
	case loadgen.Steady:
		mode = fmt.Sprintf("steady: %s jobs/s arriving while the agents run", num(r.TargetRate))
	case loadgen.Idle:
		mode = fmt.Sprintf("idle: no jobs, agents polling for %s", dur(r.MeasureSeconds))
	case loadgen.Fanout:
		mode = "fanout: one job for every agent, submitted once all were warm, timed until every run is final"
	}
	row("MODE", "%s", mode)
	srv := r.Target + " server, " + r.ServerURL
	if r.Backend != "" {
		srv += ", " + r.Backend
	}
	row("SERVER", "%s", srv)
	row("MACHINE", "%d CPUs", r.CPUs)
	agents := fmt.Sprintf("%d polling, up to %d jobs per agent.getJobs", r.Agents, r.Batch)
	if idle {
		agents = fmt.Sprintf("%s polling: agent.getJobs(%d) every %s ±10%%, first polls spread over one interval; agent.heartbeat with it in one system.multicall every %s",
			num(float64(r.Agents)), r.Batch, dur(r.PollIntervalSeconds), dur(r.HeartbeatEverySeconds))
	}
	if fanout {
		agents = fmt.Sprintf("%s polling every %s ±10%%, up to %d jobs per agent.getJobs", num(float64(r.Agents)), dur(r.PollIntervalSeconds), r.Batch)
	}
	if r.Push {
		agents = fmt.Sprintf("%s in daemon mode (waiting in agent.getJobs: %s woken; %s agent.pollNow pushes received), up to %d jobs per agent.getJobs",
			num(float64(r.Agents)), num(float64(r.Woken)), num(float64(r.Pushes)), r.Batch)
		if fanout {
			agents += fmt.Sprintf("; safety-net poll every %s", dur(r.PollIntervalSeconds))
		}
	}
	row("AGENTS", "%s", agents)
	row("SETUP", "%s agents registered and accepted in %s (client.accept %s), not measured",
		num(float64(r.Agents)), dur(r.SetupSeconds), dur(r.AcceptSeconds))
	if r.Pending > 0 {
		row("BACKLOG", "%s pending jobs for an idle client, preloaded in %s", num(float64(r.Pending)), dur(r.PreloadSeconds))
	}
	if r.Old > 0 {
		retain := "the server's default"
		if r.Retain != "" {
			retain = "--retain " + r.Retain
		}
		row("HISTORY", "%s finished jobs a year old, preloaded in %s; the server runs with %s", num(float64(r.Old)), dur(r.OldPreloadSeconds), retain)
	}
	lat := func(l loadgen.Latency) string {
		return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max))
	}
	if fanout {
		if r.Jobs == 0 {
			row("JOB", "none: the job.submit targeting every agent failed")
		} else {
			row("JOB", "%d job, %s runs, from one job.submit targeting every agent (a glob of their names), answered in %s",
				r.Jobs, num(float64(r.Runs)), dur(r.SubmitSeconds))
		}
		row("RUNS", "%s completed (%d missing, %d completed twice)", num(float64(r.Completed)), r.Missing, r.Duplicates)
		if r.AllFinalSeconds != nil {
			row("ALL FINAL", "%s from the submit to the last run reported succeeded", dur(*r.AllFinalSeconds))
		} else {
			row("ALL FINAL", "not reached: %s of %s runs completed", num(float64(r.Completed)), num(float64(r.Runs)))
		}
		row("SUBMIT→RECEIVED", "%s (per run)", lat(r.SubmitToReceived))
		row("SUBMIT→COMPLETED", "%s (per run)", lat(r.SubmitToCompleted))
		if r.GetJobsLatency != nil {
			row("GETJOBS LATENCY", "%s (%s agent.getJobs calls while measured)", lat(*r.GetJobsLatency), num(float64(r.GetJobsCalls)))
		}
	} else if !idle {
		row("JOBS", "%s submitted, %s completed (%d missing, %d completed twice)", num(float64(r.Jobs)), num(float64(r.Completed)), r.Missing, r.Duplicates)
		per := fmt.Sprintf("%d job.submit per request", r.SubmitBatch)
		if r.SubmitBatch == 1 {
			per = "one job.submit per request"
		}
		row("SUBMITTED", "%s jobs/s (%s in %s; %s, %d connections)", num(r.SubmitRate), num(float64(r.Jobs)), dur(r.SubmitSeconds), per, r.Submitters)
		row("THROUGHPUT", "%s jobs/s completed (%s in %s)", num(r.JobsPerSecond), num(float64(r.Completed)), dur(r.DrainSeconds))
		row("SUBMIT→RECEIVED", "%s", lat(r.SubmitToReceived))
		row("SUBMIT→COMPLETED", "%s", lat(r.SubmitToCompleted))
		if r.GetJobsLatency != nil {
			row("GETJOBS LATENCY", "%s (%s agent.getJobs calls made alone)", lat(*r.GetJobsLatency), num(float64(r.GetJobsCalls)))
		}
		if c := r.Clean; c != nil {
			to := "to " + dur(c.EndSeconds)
			if !c.Ended {
				to = "to its end (" + dur(c.EndSeconds) + ")"
			}
			row("CLEANER", "%d pass(es) from %s %s of the measurement: %s", c.Passes, dur(c.StartSeconds), to, c.Detail)
			row("  WHILE CLEANING", "%s (%s calls)", lat(*r.GetJobsLatencyCleaning), num(float64(r.GetJobsCallsCleaning)))
			row("  OTHERWISE", "%s (%s calls)", lat(*r.GetJobsLatencyNotCleaning), num(float64(r.GetJobsCallsNotCleaning)))
		}
	} else if r.CallLatency != nil {
		row("CALL LATENCY", "%s (agent.getJobs, alone or after agent.heartbeat in one system.multicall)", lat(*r.CallLatency))
	}
	if r.StreamBytesPerSecond != nil {
		row("STREAMED", "%s/s of output stored, of %s/s offered by %s streamers (%s in %s agent.output calls over %s)",
			humanBytes(int64(*r.StreamBytesPerSecond)), humanBytes(r.StreamTargetBytesPerSecond), num(float64(r.Streamers)),
			humanBytes(*r.StreamBytes), num(float64(*r.StreamCalls)), dur(*r.StreamSeconds))
		if r.StreamCallLatency != nil {
			row("OUTPUT CALL LATENCY", "%s (agent.output)", lat(*r.StreamCallLatency))
		}
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	if r.ServerCPUSeconds != nil {
		share := ""
		if r.ServerCPUPercent != nil {
			share = fmt.Sprintf(", %.1f%% of one core over %s", *r.ServerCPUPercent, dur(r.MeasureSeconds))
		}
		if r.ServerCPUDrainSeconds != nil {
			share += fmt.Sprintf("; %.2f s of it while draining", *r.ServerCPUDrainSeconds)
		}
		row("SERVER CPU", "%.2f s%s", *r.ServerCPUSeconds, share)
		if r.ServerCPUPerJob != nil {
			what, label := "over the drain", "SERVER CPU PER JOB"
			switch r.Mode {
			case loadgen.Steady:
				what = "over the run"
			case loadgen.Fanout:
				what, label = "over the fan-out", "SERVER CPU PER RUN"
			}
			row(label, "%.0f µs (%s)", *r.ServerCPUPerJob, what)
		}
		rss := mib(*r.ServerPeakRSSBytes) + " peak since start"
		if r.ServerWindowPeakRSSBytes != nil {
			rss += ", " + mib(*r.ServerWindowPeakRSSBytes) + " peak while measured"
		}
		if r.ServerRSSEndBytes != nil {
			rss += ", " + mib(*r.ServerRSSEndBytes) + " at the end"
		}
		row("SERVER RSS", "%s", rss)
		row("MEASURED", "%s", r.ResourceScope)
	} else {
		row("SERVER CPU, RSS", "unknown (remote server)")
	}
	if r.LoadgenCPUSeconds != nil {
		share := ""
		if r.LoadgenCPUPercent != nil {
			share = fmt.Sprintf(" (%.1f%% of one core)", *r.LoadgenCPUPercent)
		}
		row("LOAD GENERATOR", "%.2f s CPU%s, %s peak RSS: bench itself, on the same machine", *r.LoadgenCPUSeconds, share, mib(*r.LoadgenPeakRSSBytes))
	}
	calls := make([]string, 0, len(r.Calls))
	var total int64
	for _, k := range sortedKeys(r.Calls) {
		calls = append(calls, fmt.Sprintf("%s %s", k, num(float64(r.Calls[k]))))
		total += r.Calls[k]
	}
	if idle {
		rate := ""
		if r.MeasureSeconds > 0 {
			rate = fmt.Sprintf(" (%s/s)", num(float64(total)/r.MeasureSeconds))
		}
		row("REQUESTS", "%s%s: %s", num(float64(total)), rate, strings.Join(calls, ", "))
		if r.NewConnections != nil {
			row("CONNECTIONS", "%s opened while measured (0: every agent kept its own alive)", num(float64(*r.NewConnections)))
		}
	} else {
		row("REQUESTS", "%s; %s empty polls", strings.Join(calls, ", "), num(float64(r.EmptyPolls)))
	}
	if r.ErrorsTotal == 0 {
		row("ERRORS", "none")
	} else {
		for i, k := range sortedKeys(r.Errors) {
			label := ""
			if i == 0 {
				label = "ERRORS"
			}
			row(label, "%s × %s", num(float64(r.Errors[k])), k)
		}
	}
	return w.Flush()
}

func sortedKeys(m map[string]int64) []string { return slices.Sorted(maps.Keys(m)) }

// num writes a count or rate with thousands separators: 15,234 or 12.5.
func num(v float64) string {
	if v < 100 && v != float64(int64(v)) {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ms writes a latency given in milliseconds with a fitting unit.
func ms(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0f µs", v*1000)
	case v < 1000:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f s", v/1000)
}

// dur writes seconds for people: 850 ms, 12.3 s, 4m12s.
func dur(s float64) string {
	switch {
	case s < 1:
		return fmt.Sprintf("%.0f ms", s*1000)
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	}
	return (time.Duration(s) * time.Second).String()
}
