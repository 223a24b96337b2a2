package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
)

// bench is one run in progress.
type bench struct {
	o        Options
	res      *Results
	progress io.Writer
	runID    string // distinguishes this run's client names on a shared server
	t        *target
	op       *client.Client // the operator: accepts agents, submits jobs
	agents   []*agent
	idleID   string // remote: the client holding the preloaded backlog

	// Streaming (Options.Stream): the streamers, and their loops while
	// they run.
	streamers []*streamer
	streaming *streaming

	fan *fanout // fanout mode: the one job and its runs

	measureStart time.Time     // the measurement's window opened
	measureEnd   time.Time     // and closed
	cleanerSeen  []time.Time   // Old: the cleaner's batches seen at the gate (watchCleaner)
	submitDone   atomic.Bool   // no more jobs will be submitted
	allSubmitted chan struct{} // closed with submitDone set
	noWait       atomic.Bool   // the server refused agent.getJobs' wait (an older server)
	submitted    atomic.Int64  // jobs accepted by job.submit
	completed    atomic.Int64  // completions accepted by reportStatus

	// Idle and fanout modes.
	measuring atomic.Bool // the window is open: the warm-up is over
	// Idle mode.
	requests atomic.Int64 // agent calls made
	failures atomic.Int64 // of which failed
	newConns atomic.Int64 // connections the agents opened during the window

	mu    sync.Mutex
	subs  []submitRec // every accepted submit
	calls map[string]int64
	errs  map[string]int64
}

// submitRec is one accepted job.submit.
type submitRec struct {
	job  int64
	sent int64 // unix nanoseconds when the request carrying it was sent
}

func (b *bench) printf(format string, args ...any) {
	if b.progress != nil {
		fmt.Fprintf(b.progress, format+"\n", args...)
	}
}

// every calls fn every d until the returned function is called.
func (b *bench) every(d time.Duration, fn func()) (stop func()) {
	if b.progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// count adds n to the calls (or, with kind, the errors) of method.
func (b *bench) count(method, kind string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if kind == "" {
		b.calls[method] += n
	} else {
		b.errs[method+": "+kind] += n
	}
}

// errKind names an error for the error table: "fault 423", "timeout",
// "transport".
func errKind(err error) string {
	if code := api.FaultCode(err); code != 0 {
		return fmt.Sprintf("fault %d", code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "transport"
}

func (b *bench) run(ctx context.Context) (res *Results, err error) {
	b.calls, b.errs = map[string]int64{}, map[string]int64{}
	b.allSubmitted = make(chan struct{})
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	b.runID = hex.EncodeToString(id)

	// Every agent holds a connection (and in push mode a listener, and the
	// server's connection to it); an in-process server holds the other end.
	need := b.o.Agents + b.o.Streamers + 128
	if b.o.Push {
		need += 2 * b.o.Agents
	}
	if b.o.Server == "" && !b.o.Spawn {
		need += b.o.Agents + b.o.Streamers
	}
	what := fmt.Sprintf("%d agents (--agents)", b.o.Agents)
	if b.o.Streamers > 0 {
		what += fmt.Sprintf(" and %d streamers (--streamers)", b.o.Streamers)
	}
	if err := ensureOpenFiles(need, what); err != nil {
		return nil, err
	}

	b.printf("starting the server")
	t, err := b.startTarget(ctx)
	if err != nil {
		return nil, err
	}
	b.t = t
	defer t.cleanup()
	b.res.Target, b.res.ServerURL, b.res.Backend = t.kind, t.url, t.backend
	stopped := false
	defer func() {
		if !stopped {
			t.stop()
		}
	}()
	b.op, err = client.New(client.Options{Servers: []string{t.url}, RootCAs: t.roots, Token: t.token, UserAgent: "scirectl-bench"})
	if err != nil {
		return nil, err
	}
	defer b.op.Close()

	if t.kind == "remote" && b.o.Pending > 0 {
		if err := b.preloadRemote(ctx); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, a := range b.agents {
			if a != nil && a.c != nil {
				a.c.Close()
			}
			if a != nil && a.pn != nil {
				a.pn.Close()
			}
		}
	}()
	b.printf("registering %d agents", b.o.Agents)
	t0 := time.Now()
	if err := b.setupAgents(ctx); err != nil {
		return nil, err
	}
	b.res.SetupSeconds = time.Since(t0).Seconds()
	if t.kind == "remote" && !b.o.Keep {
		defer b.removeClients()
	}
	if b.o.Stream > 0 {
		defer func() {
			for _, s := range b.streamers {
				if s != nil && s.c != nil {
					s.c.Close()
				}
			}
		}()
		// Before the clients are removed and the server stops, on every
		// path: their runs must end.
		defer b.finishStreamers()
		if err := b.setupStreamers(ctx); err != nil {
			return nil, err
		}
	}

	runErr := b.measure(ctx)
	b.finishStreamers()
	if b.o.Mode != Idle {
		// The cleaner's passes are read from the server while it runs.
		b.collectClean(ctx, b.measureStart, b.measureEnd, b.cleanerSeen)
	}

	// Stop the server before removing its data; the figures are in.
	stopped = true
	if err := t.stop(); err != nil && runErr == nil {
		runErr = err
	}
	b.collect()
	if runErr == nil && (b.res.Missing > 0 || b.res.Duplicates > 0) {
		if b.o.Mode == Fanout {
			runErr = fmt.Errorf("%d of the job's %d runs never completed, %d completed more than once", b.res.Missing, b.res.Runs, b.res.Duplicates)
		} else {
			runErr = fmt.Errorf("%d of %d jobs never completed, %d completed more than once", b.res.Missing, b.res.Jobs, b.res.Duplicates)
		}
	}
	return b.res, runErr
}

// measure submits and drains (or, in idle mode, lets the agents idle),
// timing both, with the server's resources sampled around them.
func (b *bench) measure(ctx context.Context) error {
	profiling := false
	profile := func() error {
		if b.o.CPUProfile == nil {
			return nil
		}
		if err := pprof.StartCPUProfile(b.o.CPUProfile); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		profiling = true
		return nil
	}
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	if b.o.Mode == Idle {
		if err := profile(); err != nil {
			return err
		}
		return b.idle(ctx)
	}
	if b.o.Mode == Fanout {
		return b.fanout(ctx, profile) // the profile starts after the warm-up
	}
	w := b.openWindow()
	b.measureStart = w.start
	if b.o.Old > 0 {
		stopWatch := b.watchCleaner(ctx)
		defer func() { b.cleanerSeen = stopWatch() }()
	}
	if b.streamers != nil {
		b.printf("streaming %.2f MiB/s of output (agent.output) from %d streamers", float64(b.o.Stream)/(1<<20), len(b.streamers))
		b.startStreaming(ctx)
	}
	stopProgress := b.every(2*time.Second, func() {
		line := fmt.Sprintf("submitted %d, completed %d", b.submitted.Load(), b.completed.Load())
		if st := b.streaming; st != nil {
			line += fmt.Sprintf(", streamed %.1f MiB", float64(st.stored.Load())/(1<<20))
		}
		b.printf("%s", line)
	})
	var err error
	var start time.Time
	switch b.o.Mode {
	case BurnDown:
		b.printf("submitting %d jobs", b.o.Jobs)
		t0 := time.Now()
		err = b.submitAll(ctx)
		b.res.SubmitSeconds = time.Since(t0).Seconds()
		b.endSubmission()
		if err == nil {
			b.printf("draining with %d agents, batch %d", b.o.Agents, b.o.Batch)
			var uD usage
			haveD := false
			if b.t.meter != nil {
				uD, haveD = b.t.meter.sample()
			}
			start = time.Now()
			if err = profile(); err == nil {
				err = b.drain(ctx)
			}
			if haveD {
				if u1, ok := b.t.meter.sample(); ok {
					c := (u1.cpu - uD.cpu).Seconds()
					b.res.ServerCPUDrainSeconds = &c
				}
			}
		}
	case Steady:
		start = time.Now()
		if err = profile(); err == nil {
			err = b.steady(ctx)
		}
	}
	stopProgress()
	b.stopStreaming()
	w.close()
	b.measureEnd = time.Now()
	if !start.IsZero() {
		b.res.DrainSeconds = b.lastCompletion().Sub(start).Seconds()
		if b.res.DrainSeconds < 0 {
			b.res.DrainSeconds = 0
		}
	}
	if ctx.Err() != nil && err != nil {
		why := "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("timed out after %s", b.o.Timeout)
		}
		return fmt.Errorf("%s: %d jobs submitted, %d completed", why, b.submitted.Load(), b.completed.Load())
	}
	return err
}

// window is the measured part of a run: the server's resources (and, with
// a spawned server, the load generator's own) sampled at its start; close
// samples them again and fills the results.
type window struct {
	b         *bench
	start     time.Time
	srv, self usage
	haveSrv   bool
	haveSelf  bool
	reset     bool // the server's peak RSS was reset at the start
}

func (b *bench) openWindow() *window {
	w := &window{b: b}
	if m := b.t.meter; m != nil {
		if w.srv, w.haveSrv = m.sample(); w.haveSrv {
			w.reset = m.resetPeak()
		}
	}
	if b.t.kind == "spawned" {
		w.self, w.haveSelf = selfMeter{}.sample()
	}
	w.start = time.Now()
	return w
}

func (w *window) close() {
	if p := w.b.o.MemProfile; p != nil {
		runtime.GC()
		if err := pprof.Lookup("heap").WriteTo(p, 0); err != nil {
			w.b.printf("warning: heap profile: %v", err)
		}
	}
	r := w.b.res
	secs := time.Since(w.start).Seconds()
	r.MeasureSeconds = secs
	percent := func(cpu float64) *float64 {
		if secs <= 0 {
			return nil
		}
		p := 100 * cpu / secs
		return &p
	}
	if w.haveSrv {
		if u, ok := w.b.t.meter.sample(); ok {
			c := (u.cpu - w.srv.cpu).Seconds()
			peak := u.peak
			if w.reset {
				wp := u.peak
				r.ServerWindowPeakRSSBytes = &wp
				peak = max(peak, w.srv.peak) // the setup's peak, from before the reset
			}
			r.ServerCPUSeconds, r.ServerCPUPercent, r.ServerPeakRSSBytes, r.ResourceScope = &c, percent(c), &peak, w.b.t.scope
			if u.rss > 0 {
				rss := u.rss
				r.ServerRSSEndBytes = &rss
			}
		}
	}
	if w.haveSelf {
		if u, ok := (selfMeter{}).sample(); ok {
			c := (u.cpu - w.self.cpu).Seconds()
			peak := u.peak
			r.LoadgenCPUSeconds, r.LoadgenCPUPercent, r.LoadgenPeakRSSBytes = &c, percent(c), &peak
		}
	}
}

// endSubmission tells the agents that no more jobs will come.
func (b *bench) endSubmission() {
	b.submitDone.Store(true)
	close(b.allSubmitted)
}

// drain runs the agents until each has completed what was submitted for it.
func (b *bench) drain(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, a := range b.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.loop(ctx, b)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// steady runs the agents while the pacer submits at the rate.
func (b *bench) steady(ctx context.Context) error {
	drained := make(chan error, 1)
	go func() { drained <- b.drain(ctx) }()
	t0 := time.Now()
	err := b.submitPaced(ctx)
	b.res.SubmitSeconds = time.Since(t0).Seconds()
	b.endSubmission()
	derr := <-drained
	if err != nil {
		return err
	}
	return derr
}

func (b *bench) lastCompletion() time.Time {
	var last int64
	for _, a := range b.agents {
		for _, r := range a.done {
			last = max(last, r.done)
		}
	}
	return time.Unix(0, last)
}

// collect joins submissions and completions into the results.
func (b *bench) collect() {
	r := b.res
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.agents {
		r.EmptyPolls += a.empty
		r.Woken += a.woken
		if a.pn != nil {
			r.Pushes += a.pn.Calls()
		}
	}
	if b.o.Mode == Fanout {
		b.collectFanout()
	} else {
		b.collectJobs()
	}
	for _, a := range b.agents {
		for k, v := range a.calls {
			b.calls[k] += v
		}
		for k, v := range a.errs {
			b.errs[k] += v
		}
	}
	cpu := r.ServerCPUDrainSeconds
	if cpu == nil {
		cpu = r.ServerCPUSeconds
	}
	if cpu != nil && r.Completed > 0 {
		us := *cpu * 1e6 / float64(r.Completed)
		r.ServerCPUPerJob = &us
	}
	if b.o.Mode == Idle {
		var lat []time.Duration
		for _, a := range b.agents {
			lat = append(lat, a.lat...)
		}
		l := distribution(lat)
		r.CallLatency = &l
	}
	if b.o.Mode == Idle || b.o.Mode == Fanout {
		n := b.newConns.Load()
		r.NewConnections = &n
	}
	b.collectStreaming()
	r.Calls, r.Errors = b.calls, b.errs
	r.ErrorsTotal = 0
	for _, v := range b.errs {
		r.ErrorsTotal += v
	}
}

// collectJobs matches the agents' completions with the submitted jobs
// (burn-down and steady modes; b.mu held).
func (b *bench) collectJobs() {
	r := b.res
	sent := make(map[int64]int64, len(b.subs))
	for _, s := range b.subs {
		sent[s.job] = s.sent
	}
	r.Jobs = len(sent)
	seen := make(map[int64]bool, len(sent))
	recv := make([]time.Duration, 0, len(sent))
	comp := make([]time.Duration, 0, len(sent))
	for _, a := range b.agents {
		for _, d := range a.done {
			s, ok := sent[d.job]
			if !ok {
				b.errs["agent.getJobs: job not submitted by the bench"]++
				continue
			}
			if seen[d.job] {
				r.Duplicates++
				continue
			}
			seen[d.job] = true
			recv = append(recv, time.Duration(d.recv-s))
			comp = append(comp, time.Duration(d.done-s))
		}
	}
	r.Completed = len(seen)
	r.Missing = r.Jobs - r.Completed
	r.SubmitToReceived, r.SubmitToCompleted = distribution(recv), distribution(comp)
	if r.SubmitSeconds > 0 {
		r.SubmitRate = float64(r.Jobs) / r.SubmitSeconds
	}
	if r.DrainSeconds > 0 {
		r.JobsPerSecond = float64(r.Completed) / r.DrainSeconds
	}
}

// distribution returns the percentiles of ds (nearest rank) in ms.
func distribution(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(p*float64(len(ds))+0.999999) - 1
		i = min(max(i, 0), len(ds)-1)
		return float64(ds[i]) / float64(time.Millisecond)
	}
	return Latency{P50: at(0.50), P95: at(0.95), P99: at(0.99), Max: float64(ds[len(ds)-1]) / float64(time.Millisecond)}
}

// removeClients revokes and deletes the bench's clients on a remote
// server, with their runs; failures are reported, not fatal.
func (b *bench) removeClients() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ids []string
	for _, a := range b.agents {
		if a != nil && a.id != "" {
			ids = append(ids, a.id)
		}
	}
	for _, s := range b.streamers {
		if s != nil && s.id != "" {
			ids = append(ids, s.id)
		}
	}
	if b.idleID != "" {
		ids = append(ids, b.idleID)
	}
	for i := 0; i < len(ids); i += 500 {
		chunk := ids[i:min(i+500, len(ids))]
		if err := b.op.Call(ctx, "client.revoke", nil, chunk); err != nil {
			b.printf("warning: could not revoke the bench's clients: %v", err)
			return
		}
		if err := b.op.Call(ctx, "client.delete", nil, chunk); err != nil {
			b.printf("warning: could not delete the bench's clients: %v", err)
			return
		}
	}
}
