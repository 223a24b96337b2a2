package loadgen_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/loadgen"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/server"
)

// serveEnv makes this test binary act as "scirectl serve" when the bench
// spawns it as its server process.
const serveEnv = "SCIRE_LOADGEN_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		os.Exit(serve(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serve is a minimal "scirectl serve --data-dir D --db URL --listen ADDR
// --log-level L" (the flags the bench passes), so that the spawned server
// runs the real server package without this test depending on the CLI.
func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("data-dir", "", "")
	dbURL := fs.String("db", "", "")
	listen := fs.String("listen", "", "")
	fs.String("log-level", "", "")
	if len(args) == 0 || args[0] != "serve" || fs.Parse(args[1:]) != nil {
		fmt.Fprintln(os.Stderr, "want: serve --data-dir D --db URL --listen ADDR")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := server.New(ctx, server.Config{DataDir: *dir, DB: *dbURL, Listen: *listen, Log: log})
	if err == nil {
		err = s.Serve(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// check verifies what every run must satisfy.
func check(t *testing.T, r *loadgen.Results, jobs int) {
	t.Helper()
	js, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("results: %s", js)
	if r.Jobs != jobs || r.Completed != jobs || r.Missing != 0 || r.Duplicates != 0 {
		t.Fatalf("jobs %d, completed %d, missing %d, duplicates %d; want %d completed exactly once",
			r.Jobs, r.Completed, r.Missing, r.Duplicates, jobs)
	}
	if r.JobsPerSecond <= 0 || r.DrainSeconds <= 0 || r.SubmitRate <= 0 {
		t.Fatalf("jobs/s %v, drain %vs, submit rate %v: want > 0", r.JobsPerSecond, r.DrainSeconds, r.SubmitRate)
	}
	for name, l := range map[string]loadgen.Latency{"submit→received": r.SubmitToReceived, "submit→completed": r.SubmitToCompleted} {
		if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("%s percentiles out of order: %+v", name, l)
		}
	}
	if r.SubmitToCompleted.P50 < r.SubmitToReceived.P50 || r.SubmitToCompleted.Max < r.SubmitToReceived.Max {
		t.Errorf("completed before received: %+v vs %+v", r.SubmitToCompleted, r.SubmitToReceived)
	}
	if r.ErrorsTotal != 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	if r.Calls["agent.getJobs"] == 0 || r.Calls["agent.ackJobs"] == 0 || r.Calls["agent.reportStatus"] == 0 {
		t.Errorf("calls: %v", r.Calls)
	}
}

func TestBurnDownInProcess(t *testing.T) {
	var cpu bytes.Buffer
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Agents: 4, Jobs: 200, Batch: 10, SubmitBatch: 25, Pending: 50,
		DataDir: t.TempDir(), CPUProfile: &cpu, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 200)
	if r.Target != "in-process" || !strings.HasPrefix(r.Backend, "sqlite://") || r.Pending != 50 || r.PreloadSeconds <= 0 {
		t.Errorf("target %q, backend %q, pending %d, preload %vs", r.Target, r.Backend, r.Pending, r.PreloadSeconds)
	}
	// 200 jobs in batches of 10 for 4 agents: at least 20 claims.
	if n := r.Calls["agent.getJobs"]; n < 20 {
		t.Errorf("%d getJobs calls for 200 jobs in batches of 10", n)
	}
	// After a full batch an agent reports it with its next agent.getJobs.
	if n := r.Calls["system.multicall(agent.reportStatus, agent.getJobs)"]; n == 0 || n >= r.Calls["agent.reportStatus"] {
		t.Errorf("%d report+getJobs requests for %d reports: want some, and some reports alone (after short batches)", n, r.Calls["agent.reportStatus"])
	}
	if r.Calls["system.multicall"] != 8 {
		t.Errorf("%d multicall requests for 200 jobs by 25, want 8", r.Calls["system.multicall"])
	}
	if cpu.Len() == 0 {
		t.Error("no CPU profile written")
	}
}

func TestSteadySpawned(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Steady, Rate: 100, Jobs: 60, Agents: 3, Batch: 5, SubmitBatch: 1,
		PollInterval: 20 * time.Millisecond, Spawn: true, Executable: exe, Env: []string{serveEnv + "=1"},
		Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 60)
	if r.Target != "spawned" || r.Calls["job.submit"] != 60 {
		t.Errorf("target %q, job.submit calls %d", r.Target, r.Calls["job.submit"])
	}
	// 60 jobs at 100/s: about 0.6s of submission.
	if r.SubmitSeconds < 0.4 || r.SubmitRate > 150 {
		t.Errorf("steady submission took %.2fs (%.0f jobs/s), want ~0.6s at 100/s", r.SubmitSeconds, r.SubmitRate)
	}
	if r.ServerCPUSeconds == nil || *r.ServerCPUSeconds <= 0 || r.ServerPeakRSSBytes == nil || *r.ServerPeakRSSBytes < 1<<20 {
		t.Errorf("server resources: cpu %v, rss %v", r.ServerCPUSeconds, r.ServerPeakRSSBytes)
	}
	if !strings.Contains(r.ResourceScope, "server process alone") {
		t.Errorf("resource scope %q", r.ResourceScope)
	}
}

func TestSteadyPush(t *testing.T) {
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Steady, Rate: 50, Jobs: 30, Agents: 3, Batch: 5, SubmitBatch: 1, Push: true,
		PollInterval: time.Minute, // only the pushes can wake the agents in time
		Timeout:      30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 30)
	if !r.Push || r.Pushes+r.Woken == 0 {
		t.Errorf("push %v, %d pushes received, %d waits answered with runs", r.Push, r.Pushes, r.Woken)
	}
	if r.SubmitToReceived.Max > 20000 {
		t.Errorf("submit→received max %.0f ms: an agent waited for its safety poll, not a push", r.SubmitToReceived.Max)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		o    loadgen.Options
		want string
	}{
		{loadgen.Options{Mode: "fast"}, "mode"},
		{loadgen.Options{Batch: 1001}, "batch"},
		{loadgen.Options{Agents: -1}, "agents"},
		{loadgen.Options{Mode: loadgen.Steady}, "rate"},
		{loadgen.Options{Rate: 10}, "steady"},
		{loadgen.Options{Server: "https://x/RPC2"}, "token"},
		{loadgen.Options{Spawn: true, CPUProfile: &bytes.Buffer{}}, "in-process"},
		{loadgen.Options{Stream: -1}, "stream"},
		{loadgen.Options{Streamers: 4}, "streamers"},
		{loadgen.Options{Stream: 1 << 20, Streamers: -1}, "streamers"},
		{loadgen.Options{Mode: loadgen.Idle, Stream: 1 << 20}, "idle"},
		{loadgen.Options{Stream: 10, Streamers: 32}, "each"},
		{loadgen.Options{Stream: 1 << 30, Streamers: 2}, "add streamers"},
		{loadgen.Options{Old: -1}, "old"},
		{loadgen.Options{Mode: loadgen.Idle, Old: 5}, "idle"},
		{loadgen.Options{Server: "https://x/RPC2", Token: "t", Old: 5}, "old"},
		{loadgen.Options{Retain: "soon"}, "retain"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one naming %q", tc.o, err, tc.want)
		}
	}
	if err := (loadgen.Options{Mode: loadgen.Steady, Rate: 5, Duration: time.Second}).Validate(); err != nil {
		t.Errorf("steady with a duration: %v", err)
	}
	if err := (loadgen.Options{Stream: 10 << 20}).Validate(); err != nil {
		t.Errorf("stream with the default streamers: %v", err)
	}
}

// checkStream verifies the streaming figures of a run with streamers
// streaming rate bytes/s in total: every call answered, its chunks
// accepted, at least each streamer's first second of output stored.
func checkStream(t *testing.T, r *loadgen.Results, streamers int, rate int64) {
	t.Helper()
	if r.Streamers != streamers || r.StreamTargetBytesPerSecond != rate {
		t.Errorf("streamers %d, target %d B/s; want %d, %d", r.Streamers, r.StreamTargetBytesPerSecond, streamers, rate)
	}
	if r.StreamBytes == nil || r.StreamCalls == nil || r.StreamBytesPerSecond == nil || r.StreamSeconds == nil || r.StreamCallLatency == nil {
		t.Fatalf("streaming figures missing: bytes %v, calls %v, rate %v, seconds %v, latency %v",
			r.StreamBytes, r.StreamCalls, r.StreamBytesPerSecond, r.StreamSeconds, r.StreamCallLatency)
	}
	if *r.StreamCalls < int64(streamers) || r.Calls["agent.output"] != *r.StreamCalls {
		t.Errorf("%d agent.output calls (%d in calls) for %d streamers: want one each at least", *r.StreamCalls, r.Calls["agent.output"], streamers)
	}
	if *r.StreamBytes < rate || *r.StreamBytesPerSecond <= 0 || *r.StreamSeconds <= 0 {
		t.Errorf("streamed %d bytes (%.0f B/s over %.2fs): want at least each streamer's first second, %d bytes",
			*r.StreamBytes, *r.StreamBytesPerSecond, *r.StreamSeconds, rate)
	}
	// What was stored was offered: at most the rate over the window and
	// the first second (the first calls carry a second's output).
	if max := float64(rate) * (*r.StreamSeconds + 1); float64(*r.StreamBytes) > max {
		t.Errorf("streamed %d bytes in %.2fs at %d B/s: more than offered", *r.StreamBytes, *r.StreamSeconds, rate)
	}
	if l := r.StreamCallLatency; !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("agent.output latency out of order: %+v", l)
	}
}

// Streamers send output while the jobs are measured; the jobs still all
// complete, and each streamer's run is reported succeeded at the end.
func TestStreamInProcess(t *testing.T) {
	// 512 KiB a second each: two chunks per call (api.MaxOutputChunk),
	// and past the server's default bound on a run's output.
	const rate = 1 << 20
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Steady, Rate: 100, Jobs: 120, Agents: 3, Batch: 5, SubmitBatch: 1,
		PollInterval: 20 * time.Millisecond, Stream: rate, Streamers: 2,
		DataDir: t.TempDir(), Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 120)
	checkStream(t, r, 2, rate)
	js, _ := json.Marshal(r)
	for _, k := range []string{`"stream_bytes_per_second":`, `"stream_calls":`, `"stream_call_latency":{"p50_ms":`} {
		if !bytes.Contains(js, []byte(k)) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}
}

// Against an existing server the streamers work the same, and the bench's
// clients, streamers included, are removed at the end: their runs were
// reported succeeded first, or client.delete would refuse them.
func TestStreamRemote(t *testing.T) {
	srv := startRemote(t)
	const rate = 64 << 10
	r, err := loadgen.Run(srv.ctx, loadgen.Options{
		Mode: loadgen.Steady, Rate: 100, Jobs: 100, Agents: 2, Batch: 5, SubmitBatch: 10,
		PollInterval: 20 * time.Millisecond, Stream: rate, Streamers: 3,
		Server: srv.url, Token: srv.token, RootCAs: srv.roots, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 100)
	checkStream(t, r, 3, rate)
	srv.noClientsLeft(t)
}

// remote is a server started by a test for the bench to load as an
// existing one (Options.Server).
type remote struct {
	ctx   context.Context
	url   string
	token string
	roots *x509.CertPool
}

// startRemote starts a server in this process, stopped at the end of t.
func startRemote(t *testing.T) *remote {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(ctx, server.Config{DataDir: dir, Listener: ln, Listen: ln.Addr().String(),
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	paths := datadir.Paths{Dir: dir}
	tok, err := os.ReadFile(paths.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.CertPool(paths.CACert())
	if err != nil {
		t.Fatal(err)
	}
	return &remote{ctx: ctx, url: "https://" + ln.Addr().String() + "/RPC2", token: strings.TrimSpace(string(tok)), roots: roots}
}

// noClientsLeft checks that the bench removed its clients, as it does
// from an existing server unless told to keep them.
func (s *remote) noClientsLeft(t *testing.T) {
	t.Helper()
	op, err := client.New(client.Options{Servers: []string{s.url}, RootCAs: s.roots, Token: s.token})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	var cs []map[string]any
	if err := op.Call(s.ctx, "client.list", &cs); err != nil {
		t.Fatal(err)
	}
	if len(cs) != 0 {
		t.Errorf("%d clients left after the bench, want none: %v", len(cs), cs)
	}
}

// Idle agents poll as the reference agent does when it holds no run:
// agent.getJobs each cycle, with agent.heartbeat in the same
// system.multicall request every IdleHeartbeatEvery, every call answered
// without a fault.
func TestIdleInProcess(t *testing.T) {
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Idle, Agents: 3, Batch: 10, PollInterval: 100 * time.Millisecond, Duration: 2 * time.Second,
		IdleHeartbeatEvery: 500 * time.Millisecond, DataDir: t.TempDir(), Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("results: %s", js)
	beats, gets := r.Calls["agent.heartbeat"], r.Calls["agent.getJobs"]
	// 2 s / 100 ms ≈ 20 polls and 2 s / 500 ms ≈ 4 heartbeats per agent.
	if gets < 30 || r.EmptyPolls != gets || beats < 6 || beats > 18 {
		t.Errorf("%d heartbeats, %d getJobs, %d empty polls: want ~60 empty getJobs and ~12 heartbeats", beats, gets, r.EmptyPolls)
	}
	if r.HeartbeatEverySeconds != 0.5 {
		t.Errorf("heartbeat_every_seconds %v, want 0.5", r.HeartbeatEverySeconds)
	}
	if r.ErrorsTotal != 0 || r.CallLatency == nil || r.CallLatency.P50 <= 0 {
		t.Errorf("errors %v, latency %+v", r.Errors, r.CallLatency)
	}
}

// Idle daemon-mode agents (Push) wait for work in agent.getJobs between
// their rounds: each wait is answered empty at its end, none fails, and
// the end of the window ends the waits at once.
func TestIdlePushInProcess(t *testing.T) {
	start := time.Now()
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Idle, Agents: 3, Batch: 10, Push: true, PollInterval: 2 * time.Second, Duration: 3 * time.Second,
		DataDir: t.TempDir(), Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("results: %s", js)
	// Each agent: a round, then waits of 2 s, for 3 s: one or two waits.
	if gets := r.Calls["agent.getJobs"]; gets < 3 || gets > 18 {
		t.Errorf("%d agent.getJobs calls by 3 agents in 3 s waiting 2 s at a time", gets)
	}
	if r.ErrorsTotal != 0 || r.NewConnections == nil || *r.NewConnections != 0 {
		t.Errorf("errors %v, new connections %d", r.Errors, *r.NewConnections)
	}
	// Setup, one interval of warm-up, the window; not a wait more.
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("the run took %s", d)
	}
}

// A history of old finished jobs is preloaded into the store before the
// server starts; with the cleaner off it is all there afterwards, and the
// agents' agent.getJobs calls are timed.
func TestOldHistoryInProcess(t *testing.T) {
	dir := t.TempDir()
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Agents: 2, Jobs: 40, Batch: 10, SubmitBatch: 20, Old: 1500, Retain: "off", DataDir: dir, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	check(t, r, 40)
	if r.Old != 1500 || r.Retain != "off" || r.OldPreloadSeconds <= 0 || r.Clean != nil {
		t.Errorf("old %d, retain %q, preload %vs, clean %+v", r.Old, r.Retain, r.OldPreloadSeconds, r.Clean)
	}
	if r.GetJobsLatency == nil || r.GetJobsCalls == 0 || r.GetJobsLatency.P50 <= 0 {
		t.Errorf("agent.getJobs latency %+v over %d calls", r.GetJobsLatency, r.GetJobsCalls)
	}
	st, err := db.Open(context.Background(), "sqlite://"+filepath.Join(dir, "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := st.PruneJobs(context.Background(), db.PruneOptions{Before: time.Now().Add(-loadgen.OldAge / 2), Limit: 5000, DryRun: true})
	if err != nil || res.Jobs != 1500 || res.Runs != 1500 {
		t.Fatalf("old final jobs in the store: %+v, %v; want the 1,500 preloaded", res, err)
	}
}
