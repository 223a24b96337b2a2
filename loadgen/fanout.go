package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
)

// The fanout mode: one job for the whole fleet, as an operator runs a
// command on every machine. The agents first do what real idle agents do —
// polling agents call agent.getJobs every PollInterval ±10%, their first
// polls spread evenly over one interval so that at any moment the fleet is
// spread over its cycle; daemon-mode agents (Push) poll once, then, as the
// reference agent does, hold an agent.getJobs open that waits for work
// (its wait: PollInterval, at most 30s), one after the other, and still
// listen for agent.pollNow, which a daemon sends them when they are not
// waiting on it — and
// only when every agent has had an empty agent.getJobs answered, its
// connection open and the server's certificate cache warm, is the job
// submitted: one job.submit whose target is a glob of the agents' names
// (bench-RUNID-*), as a user names a fleet. Registration, acceptance and
// that warm-up are not measured; the measurement runs from the moment the
// job.submit request is sent until the last of its runs is reported
// succeeded, and what it shows is the fan-out alone: resolving the glob,
// creating N runs, pushing N agents or waiting for their polls, and N
// claims and reports. An agent that has completed its run goes on polling
// (or waiting for a push), as a real one does, so the server answers the
// fleet's polls while it hands the rest of the runs out.

// fanoutPushSpread is the time over which daemon-mode agents make their
// first poll: their cycle is the push, not the poll, so the warm-up need
// not last a whole (safety-net) interval.
const fanoutPushSpread = time.Second

// fanoutWarmUpGrace is how long after its first polls are due the fleet
// may take to have each agent's first agent.getJobs answered.
const fanoutWarmUpGrace = 2 * time.Minute

// fanout is the fanout mode's state: the one job and its runs.
type fanout struct {
	target  string        // the job's target: a glob of the agents' names
	stop    chan struct{} // closed when the agents are to stop
	ready   atomic.Int64  // agents whose first agent.getJobs was answered
	changed chan struct{} // a run became final (one pending at most)

	mu    sync.Mutex
	final map[int64]bool // runs reported succeeded

	// Written by the submit; read after the agents stopped.
	sent time.Time // the job.submit request was sent
	job  int64
	runs int // runs the job.submit created
}

// validateFanout checks the options of the fanout mode (after defaults):
// it submits one job of its own and ends when that job is done.
func (o Options) validateFanout() error {
	switch {
	case o.Jobs != 0:
		return fmt.Errorf("jobs %d: the fanout mode submits one job, for every agent", o.Jobs)
	case o.Rate != 0:
		return errors.New("rate applies to the steady mode only (the fanout mode submits one job)")
	case o.Duration != 0:
		return errors.New("duration applies to the steady and idle modes only (the fanout mode ends when every run is final)")
	case o.Old != 0:
		return fmt.Errorf("old %d: the fanout mode is over long before the cleaner's first pass (use burn-down or steady)", o.Old)
	}
	return nil
}

// finished records runs reported succeeded and says so to awaitFinal.
func (f *fanout) finished(ds []doneRec) {
	if len(ds) == 0 {
		return
	}
	f.mu.Lock()
	for _, d := range ds {
		f.final[d.run] = true
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// count is how many of the runs are final.
func (f *fanout) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.final)
}

// fanout warms the fleet up, submits the job and waits until each of its
// runs is final, measuring the server meanwhile; profile starts the CPU
// profile (if one was asked for) once the fleet is warm.
func (b *bench) fanout(ctx context.Context, profile func() error) error {
	n := len(b.agents)
	f := &fanout{target: fmt.Sprintf("bench-%s-*", b.runID), stop: make(chan struct{}),
		changed: make(chan struct{}, 1), final: make(map[int64]bool, n)}
	b.fan = f
	spread := b.o.PollInterval
	if b.o.Push {
		spread = min(spread, fanoutPushSpread)
	}
	var wg sync.WaitGroup
	cctx := b.countConns(ctx)
	for i, a := range b.agents {
		first := time.Duration(int64(spread) * int64(i) / int64(n))
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.fanLoop(cctx, b, f, first)
		}()
	}
	stopped := false
	stopAgents := func() {
		if !stopped {
			stopped = true
			close(f.stop) // calls in flight finish; none starts
			wg.Wait()
		}
	}
	defer stopAgents()
	if err := b.fanWarmUp(ctx, f, spread); err != nil {
		return err
	}
	if err := profile(); err != nil {
		return err
	}

	w := b.openWindow()
	b.measureStart = w.start
	b.measuring.Store(true)
	stopProgress := b.every(2*time.Second, func() {
		b.printf("%d of %d runs final (%s)", f.count(), n, time.Since(w.start).Round(100*time.Millisecond))
	})
	err := b.submitFanout(ctx, f)
	if err == nil {
		err = b.awaitFinal(ctx, f)
	}
	stopProgress()
	w.close()
	b.measuring.Store(false)
	b.measureEnd = time.Now()
	stopAgents()
	if err != nil && f.job != 0 && b.t.kind == "remote" {
		// Its runs still out would keep the bench's clients from being
		// deleted, and a kept server would hold them for ever.
		b.cancelFanout(f)
	}
	return err
}

// fanWarmUp waits until every agent's first agent.getJobs was answered:
// each agent has its connection open and the server knows its certificate,
// as in a fleet that has been up for a while.
func (b *bench) fanWarmUp(ctx context.Context, f *fanout, spread time.Duration) error {
	n := int64(len(b.agents))
	how := fmt.Sprintf("polling every %s ±10%%", b.o.PollInterval)
	if b.o.Push {
		how = fmt.Sprintf("in daemon mode, waiting for agent.pollNow (safety-net poll every %s)", b.o.PollInterval)
	}
	b.printf("warming up: %d agents %s, each polls once before the submit (first polls over %s), not measured", n, how, spread)
	start := time.Now()
	stopProgress := b.every(2*time.Second, func() {
		b.printf("warming up: %d/%d agents polled (%s)", f.ready.Load(), n, time.Since(start).Round(time.Second))
	})
	defer stopProgress()
	limit := time.NewTimer(spread + fanoutWarmUpGrace)
	defer limit.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for f.ready.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted while warming up (%d of %d agents polled): %w", f.ready.Load(), n, ctx.Err())
		case <-limit.C:
			return fmt.Errorf("warming up: %d of %d agents had an agent.getJobs answered within %s", f.ready.Load(), n,
				(spread + fanoutWarmUpGrace).Round(time.Second))
		case <-tick.C:
		}
	}
	b.printf("%d agents warm in %s", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// submitFanout submits the one job, a no-op for every agent, by a glob of
// their names; f.sent is when its request was sent.
func (b *bench) submitFanout(ctx context.Context, f *fanout) error {
	n := len(b.agents)
	b.printf("submitting one job for %d agents (target %s)", n, f.target)
	job := map[string]any{"script": "true", "name": "bench-fanout", "targets": []string{f.target}}
	var r api.SubmitResult
	b.count(api.MethodJobSubmit, "", 1)
	f.sent = time.Now()
	err := b.op.Call(ctx, api.MethodJobSubmit, &r, job)
	b.res.SubmitSeconds = time.Since(f.sent).Seconds()
	if err != nil {
		b.count(api.MethodJobSubmit, errKind(err), 1)
		return fmt.Errorf("submit the job for every agent (job.submit, target %s): %w", f.target, err)
	}
	id, err := strconv.ParseInt(r.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("job.submit (target %s): id %q: %w", f.target, r.ID, err)
	}
	f.job, f.runs = id, r.Runs
	b.submitted.Add(1)
	b.mu.Lock()
	b.subs = append(b.subs, submitRec{job: id, sent: f.sent.UnixNano()})
	b.mu.Unlock()
	if r.Runs != n {
		return fmt.Errorf("job.submit (target %s) created %d runs for %d agents", f.target, r.Runs, n)
	}
	b.printf("job %d submitted in %s: %d runs", id, time.Since(f.sent).Round(time.Millisecond), r.Runs)
	return nil
}

// awaitFinal waits until each of the job's runs was reported succeeded.
func (b *bench) awaitFinal(ctx context.Context, f *fanout) error {
	for f.count() < f.runs {
		select {
		case <-ctx.Done():
			why := "interrupted"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = fmt.Sprintf("timed out after %s", b.o.Timeout)
			}
			return fmt.Errorf("%s: %d of the job's %d runs final", why, f.count(), f.runs)
		case <-f.changed:
		}
	}
	return nil
}

// cancelFanout cancels the job on a remote server after a failed run;
// failing is reported, not fatal.
func (b *bench) cancelFanout(f *fanout) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.op.Call(ctx, api.MethodJobCancel, nil, strconv.FormatInt(f.job, 10)); err != nil {
		b.printf("warning: could not cancel job %d: %v", f.job, err)
	}
}

// fanLoop is one agent of the fanout mode: its first poll after first,
// then, like the reference agent, a poll every PollInterval ±10% (after a
// failed one it backs off 1s, 2s, 4s, … up to PollInterval), or at once
// when pushed; a daemon-mode agent's polls after the first wait for work
// (agent.getJobs' wait), one after the other, until stop. A poll that brings its run acknowledges it and
// reports it succeeded.
func (a *agent) fanLoop(ctx context.Context, b *bench, f *fanout, first time.Duration) {
	if !a.idleWait(ctx, first, f.stop) {
		return
	}
	warm := false
	var backoff time.Duration
	for {
		next := jitter(b.o.PollInterval)
		if a.fanPoll(ctx, b, f, warm) {
			backoff = 0
			if !warm {
				warm = true
				f.ready.Add(1)
			}
			if b.waitSeconds() > 0 {
				next = 0 // its next agent.getJobs is the wait
			}
		} else {
			backoff = min(max(2*backoff, time.Second), max(b.o.PollInterval, time.Second))
			next = jitter(backoff)
		}
		if !a.idleWait(ctx, next, f.stop) {
			return
		}
	}
}

// fanPoll is one agent.getJobs (with long, the daemon-mode agent's wait:
// not the first, so that the agent is warm once it is answered) and, when it brings runs, their
// acknowledgement and report; false when the agent.getJobs failed. Calls
// are counted, and agent.getJobs timed, within the measurement only.
func (a *agent) fanPoll(ctx context.Context, b *bench, f *fanout, long bool) bool {
	measured := b.measuring.Load()
	if measured {
		a.calls[api.MethodGetJobs]++
	}
	var docs []string
	sent := time.Now()
	err := a.getJobs(ctx, b, &docs, long, f.stop)
	recv := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			a.fail(api.MethodGetJobs, err)
		}
		return false
	}
	if measured {
		a.gets = append(a.gets, callSample{at: sent.UnixNano(), d: recv.Sub(sent)})
	}
	if len(docs) == 0 {
		if measured {
			a.empty++
		}
		return true
	}
	jobs := a.receive(ctx, docs)
	if len(jobs) == 0 {
		return true // nothing acknowledged: the lease hands them out again
	}
	doc, err := a.statusDoc(jobs, recv)
	if err != nil {
		a.errs["agent.reportStatus: encode"]++
		return true
	}
	var rep []api.ReportResult
	if !a.retry(ctx, api.MethodReportStatus, &rep, string(doc)) {
		return true // the lease hands them out again
	}
	before := len(a.done)
	a.reported(b, jobs, rep, recv)
	f.finished(a.done[before:])
	return true
}

// collectFanout matches the agents' completions with the job's runs
// (b.mu held): each run's first completion counts, a second is a
// duplicate, and all_final_seconds is the last first completion.
func (b *bench) collectFanout() {
	r, f := b.res, b.fan
	if f == nil || f.job == 0 {
		return
	}
	r.Jobs, r.Runs = 1, f.runs
	sent := f.sent.UnixNano()
	first := make(map[int64]doneRec, f.runs)
	for _, a := range b.agents {
		for _, d := range a.done {
			_, seen := first[d.run]
			switch {
			case d.job != f.job:
				b.errs["agent.getJobs: job not submitted by the bench"]++
			case seen:
				r.Duplicates++
			default:
				first[d.run] = d
			}
		}
	}
	recv := make([]time.Duration, 0, len(first))
	comp := make([]time.Duration, 0, len(first))
	var last int64
	for _, d := range first {
		recv = append(recv, time.Duration(d.recv-sent))
		comp = append(comp, time.Duration(d.done-sent))
		last = max(last, d.done)
	}
	r.Completed = len(first)
	r.Missing = r.Runs - r.Completed
	r.SubmitToReceived, r.SubmitToCompleted = distribution(recv), distribution(comp)
	if r.Missing == 0 && r.Completed > 0 {
		s := time.Duration(last - sent).Seconds()
		r.AllFinalSeconds = &s
	}
}
