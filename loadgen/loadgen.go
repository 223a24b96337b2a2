// Package loadgen is scirectl's load generator: the engine of `scirectl
// bench`, usable from Go benchmarks too.
//
// It starts a server (as a child process `scirectl serve`, or in this
// process) or targets an existing one, simulates agents — each with its own
// self-signed identity and its own kept-alive TLS connection, registered and
// accepted like a real agent — and submits no-op jobs through the operator
// API, several job.submit calls per system.multicall request. Each agent
// loops agent.getJobs(batch) → agent.ackJobs(ids) → agent.reportStatus(one
// <statuses> document, all succeeded) without running anything, so what is
// measured is the server: XML-RPC, TLS, the gate and the database. After a
// full batch the report and the next agent.getJobs go in one
// system.multicall request.
//
// Four modes: burn-down (submit every job first, then start the agents and
// time the drain), steady (agents run from the start while jobs arrive at a
// fixed rate), idle (no jobs: a fleet of agents polls at a real agent's
// cadence — agent.getJobs every PollInterval, ±10%, with agent.heartbeat
// in the same system.multicall request every IdleHeartbeatEvery —
// and what is measured is what the fleet costs the server while nothing
// happens) and fanout (one job for the whole fleet, submitted once every
// agent is polling or waiting for a push: the time until all its runs are
// final, fanout.go). In burn-down and steady modes every job targets one
// agent, round-robin, and carries its job id in the job document, so each
// job's submit→received and submit→completed latencies are known; the
// percentiles are over all jobs (in fanout mode, over the job's runs).
//
// With Stream, extra agents — streamers — each hold one running job and
// send its output with agent.output while the jobs are measured, so that
// the figures show what a fleet streaming output costs dispatch (stream.go).
package loadgen

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/scirectl/scirectl/api"
	clientagent "github.com/scirectl/scirectl/client/agent"
)

// Mode is how jobs arrive.
type Mode string

const (
	// BurnDown submits every job first, then starts the agents and times
	// how long they take to drain the queue.
	BurnDown Mode = "burn-down"
	// Steady submits jobs at a fixed rate while the agents run.
	Steady Mode = "steady"
	// Idle submits nothing: the agents poll as real idle agents do, each
	// every PollInterval with ±10% jitter, their first polls spread evenly
	// over one interval, for Duration.
	Idle Mode = "idle"
	// Fanout submits one job targeting every agent, once all of them are
	// polling (or, with Push, waiting for agent.pollNow), and times it
	// until each of its runs is reported succeeded.
	Fanout Mode = "fanout"
)

// Idle mode's defaults: those of the real agent (scirectl client poll).
const (
	DefaultIdlePollInterval = 30 * time.Second // the agent's default --interval
	DefaultIdleBatch        = 10               // the agent's default --max-jobs
	DefaultIdleDuration     = 2 * time.Minute
)

// Fanout mode's defaults. A polling agent uses a short --interval, as one
// that must pick work up within a second would: with the agent's 30s the
// figure would be the poll interval, not the server. A daemon-mode agent
// keeps the agent's default 30s as its safety net, so that what brings
// the runs out is the push: a net shorter than the fan-out would let
// agents find their runs by polling and flatter a slow push. The batch is
// the agent's --max-jobs, as in idle mode.
const (
	DefaultFanoutPollInterval = time.Second
	DefaultFanoutPushInterval = DefaultIdlePollInterval
	DefaultFanoutBatch        = DefaultIdleBatch
)

// Options configure a run. The zero value of a field takes the default in
// its comment.
type Options struct {
	Mode        Mode    // default BurnDown
	Agents      int     // simulated agents; default 64
	Jobs        int     // jobs to submit; default 10000 (idle mode: none; fanout mode: one, for every agent). Steady mode with Duration: 0 means no limit
	Batch       int     // agent.getJobs max (1..1000); default 100 (idle and fanout modes: 10)
	SubmitBatch int     // job.submit calls per system.multicall request; 1 sends plain job.submit calls; default 100
	Submitters  int     // concurrent submitting connections; default 4
	Rate        float64 // steady mode: jobs submitted per second (required)
	// Duration is, in steady mode, when to stop submitting (0: when Jobs
	// are submitted); in idle mode the measurement window (default 2m, at
	// least one PollInterval).
	Duration time.Duration
	// PollInterval is how long an agent that got no job waits before it
	// asks again (in steady mode, a part of submit→received); default
	// 100ms. With Push it is the safety net behind agent.pollNow; default
	// 5s. In idle mode it is the agent's --interval; default 30s. In fanout
	// mode default 1s, and with Push 30s (DefaultFanoutPollInterval,
	// DefaultFanoutPushInterval).
	PollInterval time.Duration
	// IdleHeartbeatEvery is, in idle mode, how often an agent heartbeats
	// (agent.heartbeat and agent.getJobs in one system.multicall); its
	// polls in between are agent.getJobs alone, as the reference agent's
	// are while it holds no run. Default the agent's,
	// clientagent.IdleHeartbeatEvery.
	IdleHeartbeatEvery time.Duration
	// Pending preloads a backlog of this many extra jobs, each with one
	// run for a client that never polls, before the measurement, to show
	// that dispatch does not slow down with the size of the queue.
	Pending int
	// Old preloads a history of this many final jobs, each with one
	// succeeded run, created and ended OldAge (a year) ago, straight into
	// a local server's store before it starts: its cleaner (serve
	// --retain, 90 days by default) deletes them during the measurement,
	// its first pass a minute after the start. The results then tell the
	// agent.getJobs calls made while it cleaned from the others.
	Old int
	// Retain, when set, is the server's --retain ("off": keep for ever,
	// the baseline of a run with Old); empty keeps the server's default.
	Retain string
	// Push makes the agents daemon-mode clients: each also listens (on
	// loopback, with its identity) for the server's agent.pollNow, and an
	// agent that found no work waits for that push instead of polling.
	Push bool
	// Stream is the total rate, in bytes per second, at which Streamers
	// extra agents send live output (agent.output) during the measurement;
	// 0 streams nothing. Not in idle mode. Each streamer holds one job it
	// reported running, and sends Stream/Streamers bytes of text about
	// once a second (stream.go).
	Stream int64
	// Streamers is how many agents stream, when Stream is set; default 32.
	Streamers int

	// Server is the XML-RPC URL of an existing server to load; empty
	// starts one. With it, Token (the operator's, allowed client.accept
	// and job.submit) and usually RootCAs are needed.
	Server  string
	Token   string
	RootCAs *x509.CertPool
	// Keep leaves the bench's clients (and with them their runs) on an
	// existing server; by default they are revoked and deleted at the end.
	Keep bool

	// For a server started by the bench:
	// Spawn runs it as a child process "Executable serve …", so that its
	// CPU time and peak RSS are its own; otherwise it runs in this process
	// and the figures include the load generator.
	Spawn      bool
	Executable string   // default os.Executable()
	Env        []string // added to the child's environment
	// DB is the database URL; default a SQLite file in DataDir. Use a
	// scratch database: the bench adds clients and jobs to it.
	DB string
	// DataDir holds the server's TLS files and admin token (and the
	// default SQLite file); default a temporary directory removed at the end.
	DataDir string
	// ServerLog receives the server's warnings and errors; nil discards them.
	ServerLog io.Writer
	// CPUProfile, for an in-process server, receives a CPU profile of the
	// drain (burn-down mode) or of the whole run (steady mode); server and
	// load generator are one process, told apart by the goroutine label
	// role=server|loadgen (go tool pprof -tagfocus role=server).
	CPUProfile io.Writer
	// MemProfile, for an in-process server, receives a heap profile taken
	// at the end of the measurement (after a GC), while every agent still
	// holds its connection: the server's allocation sites and the load
	// generator's are told apart by their stacks.
	MemProfile io.Writer

	// Progress, when set, receives a line every few seconds.
	Progress io.Writer
	// Timeout bounds the whole run; default 30m.
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Mode == "" {
		o.Mode = BurnDown
	}
	if o.Agents == 0 {
		o.Agents = 64
	}
	if o.Jobs == 0 && !(o.Mode == Steady && o.Duration > 0) && o.Mode != Idle && o.Mode != Fanout {
		o.Jobs = 10000
	}
	if o.Batch == 0 {
		o.Batch = 100
		switch o.Mode {
		case Idle:
			o.Batch = DefaultIdleBatch
		case Fanout:
			o.Batch = DefaultFanoutBatch
		}
	}
	if o.SubmitBatch == 0 {
		o.SubmitBatch = 100
	}
	if o.Submitters == 0 {
		o.Submitters = 4
	}
	if o.PollInterval == 0 {
		switch {
		case o.Mode == Idle:
			o.PollInterval = DefaultIdlePollInterval
		case o.Mode == Fanout && o.Push:
			o.PollInterval = DefaultFanoutPushInterval
		case o.Mode == Fanout:
			o.PollInterval = DefaultFanoutPollInterval
		case o.Push:
			o.PollInterval = 5 * time.Second
		default:
			o.PollInterval = 100 * time.Millisecond
		}
	}
	if o.Mode == Idle && o.Duration == 0 {
		o.Duration = DefaultIdleDuration
	}
	if o.Stream > 0 && o.Streamers == 0 {
		o.Streamers = DefaultStreamers
	}
	if o.IdleHeartbeatEvery == 0 {
		o.IdleHeartbeatEvery = clientagent.IdleHeartbeatEvery
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Minute
	}
}

// Validate checks the options after defaults; its errors name the option
// as the CLI flag does.
func (o Options) Validate() error {
	o.defaults()
	bad := func(format string, args ...any) error { return fmt.Errorf(format, args...) }
	switch {
	case o.Mode != BurnDown && o.Mode != Steady && o.Mode != Idle && o.Mode != Fanout:
		return bad("mode %q: want burn-down, steady, idle or fanout", o.Mode)
	case o.Agents < 1 || o.Agents > 10000:
		return bad("agents %d: want 1..10000", o.Agents)
	case o.Jobs < 0:
		return bad("jobs %d: want 1 or more", o.Jobs)
	case o.Batch < 1 || o.Batch > api.MaxJobsPerCall:
		return bad("batch %d: want 1..%d (agent.getJobs' max)", o.Batch, api.MaxJobsPerCall)
	case o.SubmitBatch < 1 || o.SubmitBatch > 1000:
		return bad("submit-batch %d: want 1..1000", o.SubmitBatch)
	case o.Submitters < 1 || o.Submitters > 256:
		return bad("submitters %d: want 1..256", o.Submitters)
	case o.Pending < 0:
		return bad("pending %d: want 0 or more", o.Pending)
	case o.Old < 0:
		return bad("old %d: want 0 or more", o.Old)
	case o.PollInterval < 0:
		return bad("poll-interval %s: want 0 or more", o.PollInterval)
	case o.Timeout < 0:
		return bad("timeout %s: want more than 0", o.Timeout)
	}
	if err := o.validateStream(); err != nil {
		return err
	}
	switch o.Mode {
	case BurnDown:
		if o.Rate != 0 || o.Duration != 0 {
			return bad("rate and duration apply to the steady mode only")
		}
	case Steady:
		if o.Rate <= 0 {
			return bad("steady mode needs a rate (jobs/s) above 0")
		}
		if o.Duration < 0 {
			return bad("duration %s: want more than 0", o.Duration)
		}
	case Idle:
		switch {
		case o.Old != 0:
			return bad("old %d: the idle mode claims no jobs (use burn-down or steady)", o.Old)
		case o.Jobs != 0:
			return bad("jobs %d: the idle mode submits no jobs", o.Jobs)
		case o.Rate != 0:
			return bad("rate applies to the steady mode only (the idle mode submits no jobs)")
		case o.Duration < 0:
			return bad("duration %s: want more than 0", o.Duration)
		case o.Duration < o.PollInterval:
			return bad("duration %s is shorter than poll-interval %s: every agent must poll at least once", o.Duration, o.PollInterval)
		case o.Timeout <= o.Duration:
			return bad("timeout %s: want more than the duration (%s) and the setup", o.Timeout, o.Duration)
		}
	case Fanout:
		if err := o.validateFanout(); err != nil {
			return err
		}
	}
	if o.Retain != "" {
		if _, err := api.ParseRetention(o.Retain); err != nil {
			return bad("retain: %v", err)
		}
	}
	if o.Server != "" {
		switch {
		case o.Old > 0 || o.Retain != "":
			return bad("old and retain are for a server started by the bench, not with --server")
		case o.Token == "":
			return bad("an existing server (--server) needs an operator token allowed client.accept and job.submit")
		case o.DB != "" || o.DataDir != "":
			return bad("db and data-dir are for a server started by the bench, not with --server")
		case o.CPUProfile != nil || o.MemProfile != nil:
			return bad("a CPU or heap profile can be taken of an in-process server only (not with --server)")
		}
	}
	if o.Spawn && (o.CPUProfile != nil || o.MemProfile != nil) {
		return bad("a CPU or heap profile can be taken of an in-process server only (spawn off)")
	}
	return nil
}

// Latency is a distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Results are what a run measured. The JSON names are stable.
type Results struct {
	Mode      Mode      `json:"mode"`
	StartedAt time.Time `json:"started_at"`
	// Target says where the server ran: "spawned" (child process),
	// "in-process" or "remote".
	Target      string  `json:"target"`
	ServerURL   string  `json:"server_url"`
	Backend     string  `json:"backend,omitempty"` // database URL, password removed; unknown for a remote server
	CPUs        int     `json:"cpus"`
	Agents      int     `json:"agents"`
	Batch       int     `json:"batch"`
	SubmitBatch int     `json:"submit_batch"`
	Submitters  int     `json:"submitters"`
	Pending     int     `json:"pending"`
	Old         int     `json:"old,omitempty"`         // preloaded old final jobs (Options.Old)
	Retain      string  `json:"retain,omitempty"`      // the server's --retain, when the bench set it
	Push        bool    `json:"push"`                  // daemon-mode agents woken by agent.pollNow
	TargetRate  float64 `json:"target_rate,omitempty"` // steady mode
	// PollIntervalSeconds is how long an agent with no work waits before
	// it polls again (idle mode: the cycle of agent.getJobs, ±10% jitter).
	PollIntervalSeconds float64 `json:"poll_interval_seconds"`
	// HeartbeatEverySeconds is, in idle mode, how often each agent sent
	// agent.heartbeat along with its agent.getJobs.
	HeartbeatEverySeconds float64 `json:"heartbeat_every_seconds,omitempty"`

	// SetupSeconds is the time to create, register and accept the agents
	// (each opens its TLS connection then), of which AcceptSeconds for
	// client.accept; neither is part of the measurement.
	SetupSeconds  float64 `json:"setup_seconds"`
	AcceptSeconds float64 `json:"accept_seconds"`
	// MeasureSeconds is the wall time between the two samples of the
	// server's resources: the measured part of the run (idle mode: the
	// window of --duration; fanout mode: from just before the job.submit
	// to the last run's completion).
	MeasureSeconds float64 `json:"measure_seconds"`

	// Jobs were submitted and accepted by the server; Completed were
	// reported succeeded and accepted, once each; Duplicates are
	// completions beyond the first of a job; Missing were submitted and
	// never completed. In fanout mode Jobs is the one job and the other
	// three count its runs.
	Jobs       int `json:"jobs"`
	Completed  int `json:"completed"`
	Duplicates int `json:"duplicates"`
	Missing    int `json:"missing"`
	// Runs is, in fanout mode, how many runs the one job.submit created:
	// one for each agent.
	Runs int `json:"runs,omitempty"`
	// AllFinalSeconds is, in fanout mode, the time from the moment the
	// job.submit request was sent to the moment the last of the job's runs
	// was reported succeeded; absent when some run never was.
	AllFinalSeconds *float64 `json:"all_final_seconds,omitempty"`

	PreloadSeconds float64 `json:"preload_seconds"`
	// OldPreloadSeconds is the time the history of Old jobs took to write.
	OldPreloadSeconds float64 `json:"old_preload_seconds,omitempty"`
	// SubmitSeconds is the time the submission took (fanout mode: the
	// one job.submit, from its request sent to its answer).
	SubmitSeconds float64 `json:"submit_seconds"`
	SubmitRate    float64 `json:"submit_rate"` // jobs/s accepted by job.submit (not in fanout mode)
	// DrainSeconds is, in burn-down mode, from the agents' start to the
	// last completion; in steady mode from the first submit to the last
	// completion. Not in fanout mode: AllFinalSeconds.
	DrainSeconds  float64 `json:"drain_seconds"`
	JobsPerSecond float64 `json:"jobs_per_second"` // completed / drain_seconds

	SubmitToReceived  Latency `json:"submit_to_received"`
	SubmitToCompleted Latency `json:"submit_to_completed"`

	// Server resources over the measured part (submission and drain); nil
	// when unknown (remote server). ResourceScope says whose they are.
	ServerCPUSeconds *float64 `json:"server_cpu_seconds,omitempty"`
	// ServerCPUDrainSeconds is the part of ServerCPUSeconds spent while
	// the agents drained the queue (burn-down mode).
	ServerCPUDrainSeconds *float64 `json:"server_cpu_drain_seconds,omitempty"`
	// ServerCPUPerJob is server CPU microseconds per completed job: over
	// the drain in burn-down mode, over the whole run in steady mode, per
	// completed run over the fan-out in fanout mode. It varies less than
	// jobs/s when the machine is shared.
	ServerCPUPerJob *float64 `json:"server_cpu_us_per_job,omitempty"`
	// ServerCPUPercent is ServerCPUSeconds as a percentage of one core
	// over MeasureSeconds.
	ServerCPUPercent *float64 `json:"server_cpu_percent,omitempty"`
	// ServerPeakRSSBytes is the largest resident set since the server
	// started, setup included; ServerWindowPeakRSSBytes the largest during
	// the measurement alone (when the peak could be reset at its start:
	// Linux /proc/PID/clear_refs); ServerRSSEndBytes the resident set at
	// its end.
	ServerPeakRSSBytes       *int64 `json:"server_peak_rss_bytes,omitempty"`
	ServerWindowPeakRSSBytes *int64 `json:"server_window_peak_rss_bytes,omitempty"`
	ServerRSSEndBytes        *int64 `json:"server_rss_end_bytes,omitempty"`
	ResourceScope            string `json:"resource_scope,omitempty"`
	// The load generator's own cost over the same window, when it runs in
	// a process of its own (spawned server): it shares the machine.
	LoadgenCPUSeconds   *float64 `json:"loadgen_cpu_seconds,omitempty"`
	LoadgenCPUPercent   *float64 `json:"loadgen_cpu_percent,omitempty"`
	LoadgenPeakRSSBytes *int64   `json:"loadgen_peak_rss_bytes,omitempty"`

	// Idle mode: the response time of the agents' requests (agent.getJobs,
	// or agent.heartbeat and agent.getJobs in one system.multicall), and the TLS connections the agents had to open
	// during the window (0 when each kept its own alive, as it should).
	CallLatency    *Latency `json:"call_latency,omitempty"`
	NewConnections *int64   `json:"new_connections,omitempty"`

	// Burn-down, steady and fanout modes: the response time of the agents'
	// agent.getJobs calls made alone (not those sent with a report in one
	// system.multicall), GetJobsCalls of them. With a pass of the server's
	// cleaner during the measurement (Old), Clean says when it ran and
	// what it deleted, and the calls are split into those made while it
	// ran (Cleaning) and the others (NotCleaning).
	GetJobsLatency            *Latency `json:"getjobs_latency,omitempty"`
	GetJobsCalls              int      `json:"getjobs_calls,omitempty"`
	Clean                     *Clean   `json:"clean,omitempty"`
	GetJobsLatencyCleaning    *Latency `json:"getjobs_latency_cleaning,omitempty"`
	GetJobsCallsCleaning      int      `json:"getjobs_calls_cleaning,omitempty"`
	GetJobsLatencyNotCleaning *Latency `json:"getjobs_latency_not_cleaning,omitempty"`
	GetJobsCallsNotCleaning   int      `json:"getjobs_calls_not_cleaning,omitempty"`

	// Calls counts XML-RPC calls by method: an idle poll's agent.heartbeat
	// and agent.getJobs, one request, count one each; a request of
	// job.submit calls counts as one system.multicall.
	Calls       map[string]int64 `json:"calls"`
	EmptyPolls  int64            `json:"empty_polls"` // agent.getJobs answered with no job
	Pushes      int64            `json:"pushes"`      // agent.pollNow calls the agents received (push mode)
	Woken       int64            `json:"woken"`       // waiting agent.getJobs calls answered with runs (push mode)
	Errors      map[string]int64 `json:"errors"`      // by "method: kind"
	ErrorsTotal int64            `json:"errors_total"`

	// Streaming (Stream): Streamers agents, each holding one running job,
	// offered StreamTargetBytesPerSecond of output in total with
	// agent.output while the jobs were measured. StreamBytes is what the
	// server acknowledged as stored (its offsets' advance: resends count
	// once), StreamBytesPerSecond that over StreamSeconds, the time the
	// streamers ran (the measured part of the run); StreamCalls the
	// agent.output calls made then (counted in Calls too), and
	// StreamCallLatency their response times. Absent without streaming.
	Streamers                  int      `json:"streamers,omitempty"`
	StreamTargetBytesPerSecond int64    `json:"stream_target_bytes_per_second,omitempty"`
	StreamSeconds              *float64 `json:"stream_seconds,omitempty"`
	StreamBytes                *int64   `json:"stream_bytes,omitempty"`
	StreamBytesPerSecond       *float64 `json:"stream_bytes_per_second,omitempty"`
	StreamCalls                *int64   `json:"stream_calls,omitempty"`
	StreamCallLatency          *Latency `json:"stream_call_latency,omitempty"`
}

func newResults(o Options) *Results {
	if o.Mode == Idle || o.Mode == Fanout { // nothing is submitted, or one job.submit
		o.SubmitBatch, o.Submitters = 0, 0
	}
	r := &Results{
		Mode: o.Mode, StartedAt: time.Now().UTC(), CPUs: runtime.NumCPU(), Agents: o.Agents, Batch: o.Batch,
		SubmitBatch: o.SubmitBatch, Submitters: o.Submitters, Pending: o.Pending, Old: o.Old, Retain: o.Retain, Push: o.Push, TargetRate: o.Rate,
		PollIntervalSeconds: o.PollInterval.Seconds(), Calls: map[string]int64{}, Errors: map[string]int64{},
	}
	if o.Mode == Idle {
		r.HeartbeatEverySeconds = o.IdleHeartbeatEvery.Seconds()
	}
	if o.Stream > 0 {
		r.Streamers, r.StreamTargetBytesPerSecond = o.Streamers, o.Stream
	}
	return r
}

// Run performs one benchmark run. On a timeout or with jobs missing it
// returns the results measured so far together with the error.
func Run(ctx context.Context, o Options) (*Results, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	b := &bench{o: o, res: newResults(o), progress: o.Progress}
	// Labels tell the load generator's goroutines from an in-process
	// server's in a CPU profile: go tool pprof -tagfocus role=server.
	var res *Results
	var err error
	pprof.Do(ctx, pprof.Labels("role", "loadgen"), func(ctx context.Context) { res, err = b.run(ctx) })
	return res, err
}
