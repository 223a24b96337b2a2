package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	agentpkg "github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/internal/testtool"
)

// --- agent.getJobs' wait: the long poll ---

// getJobsAsync calls agent.getJobs(max, wait) in the background.
type getJobsCall struct {
	docs []string
	err  error
	done chan struct{}
}

func (a *daemonAgent) getJobsAsync(max, wait int) *getJobsCall {
	c := &getJobsCall{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		c.err = a.c.Call(context.Background(), api.MethodGetJobs, &c.docs, max, wait)
	}()
	return c
}

func (c *getJobsCall) returned() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *getJobsCall) wait(t *testing.T, within time.Duration, what string) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(within):
		t.Fatalf("agent.getJobs did not return within %s: %s", within, what)
	}
}

// TestGetJobsWaitWokenBySubmit: a daemon-mode agent waiting in
// agent.getJobs gets a job submitted for it at once, in the answer to that
// call, and is sent no agent.pollNow; client.get says it was woken.
func TestGetJobsWaitWokenBySubmit(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	call := a.getJobsAsync(10, 20)
	time.Sleep(300 * time.Millisecond)
	if call.returned() {
		t.Fatalf("agent.getJobs with nothing to do returned at once: %d documents, %v", len(call.docs), call.err)
	}
	testtool.WaitFor(t, "the call to wait", func() bool { return h.srv.waiting.Waiting() == 1 })
	start := time.Now()
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	call.wait(t, 5*time.Second, "after job.submit")
	if call.err != nil || len(call.docs) != 1 {
		t.Fatalf("the waiting agent.getJobs: %d documents, %v", len(call.docs), call.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("woken %s after the submit", d)
	}
	a.noWake(t, 300*time.Millisecond, "an agent waiting in agent.getJobs needs no push")
	var c api.Client
	if err := h.operator(t).Call(ctx, "client.get", &c, a.fp); err != nil {
		t.Fatal(err)
	}
	if c.LastPush == nil || c.LastPush.Result != "woken" || c.LastPush.Attempts != 0 {
		t.Fatalf("last_push = %+v, want woken", c.LastPush)
	}
	if n := h.srv.waiting.Waiting(); n != 0 {
		t.Fatalf("%d waiters left after the call returned", n)
	}
}

// TestGetJobsWaitPollMode: a poll-mode agent may wait too, and is woken
// by a job for it; a job for another agent does not end its wait.
func TestGetJobsWaitPollMode(t *testing.T) {
	h := newHarness(t)
	other := h.daemonAgent(t, "d2")
	c, fp := h.agentClient(t)
	register(t, c, "p1")
	if err := h.operator(t).Call(context.Background(), "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	call := &getJobsCall{done: make(chan struct{})}
	go func() {
		defer close(call.done)
		call.err = c.Call(context.Background(), api.MethodGetJobs, &call.docs, 5, 20)
	}()
	testtool.WaitFor(t, "the call to wait", func() bool { return h.srv.waiting.Waiting() == 1 })
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d2"}})
	other.waitWake(t, "the daemon-mode agent, not waiting, is pushed")
	time.Sleep(300 * time.Millisecond)
	if call.returned() {
		t.Fatalf("a job for another agent ended the wait: %d documents, %v", len(call.docs), call.err)
	}
	h.submit(t, map[string]any{"script": "true", "targets": []string{"p1"}})
	call.wait(t, 5*time.Second, "after a job for it")
	if call.err != nil || len(call.docs) != 1 {
		t.Fatalf("agent.getJobs: %d documents, %v", len(call.docs), call.err)
	}
}

// TestGetJobsWaitEnds: with nothing for it, the call answers an empty
// array when its wait is over; without a wait, at once.
func TestGetJobsWaitEnds(t *testing.T) {
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	for _, wait := range []int{0, 1} {
		start := time.Now()
		var docs []string
		if err := a.c.Call(context.Background(), api.MethodGetJobs, &docs, 10, wait); err != nil || len(docs) != 0 {
			t.Fatalf("wait %d: %d documents, %v", wait, len(docs), err)
		}
		d := time.Since(start)
		if wait == 1 && (d < 900*time.Millisecond || d > 5*time.Second) {
			t.Errorf("wait 1 answered after %s", d)
		}
		if wait == 0 && d > time.Second {
			t.Errorf("wait 0 answered after %s", d)
		}
	}
}

// TestGetJobsWaitWithinWriteTimeout: a server whose write timeout is
// shorter than the wait asked answers the wait, empty, while it still can
// (5 s before the timeout), instead of failing to answer at all.
func TestGetJobsWaitWithinWriteTimeout(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.WriteTimeout = 7 * time.Second })
	a := h.daemonAgent(t, "d1")
	start := time.Now()
	var docs []string
	if err := a.c.Call(context.Background(), api.MethodGetJobs, &docs, 10, 20); err != nil || len(docs) != 0 {
		t.Fatalf("wait 20 with a write timeout of 7s: %d documents, %v", len(docs), err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 6*time.Second {
		t.Errorf("wait 20 with a write timeout of 7s answered after %s, want about 2s", d)
	}
}

// TestGetJobsWaitRefused: a wait out of bounds is fault 400 naming the
// param, and nothing is handed out.
func TestGetJobsWaitRefused(t *testing.T) {
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	for _, wait := range []any{-1, 31, "5"} {
		var docs []string
		err := a.c.Call(context.Background(), api.MethodGetJobs, &docs, 10, wait)
		if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "wait") {
			t.Fatalf("wait %v: %v, want fault 400 naming wait", wait, err)
		}
	}
	var docs []string
	if err := a.c.Call(context.Background(), api.MethodGetJobs, &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("the run after the refusals: %d documents, %v", len(docs), err)
	}
}

// TestGetJobsWaitHoldsNoSlot: calls waiting for work give their request
// slot back, so a fleet waiting does not make the server busy for others.
func TestGetJobsWaitHoldsNoSlot(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.MaxThreads, c.MaxThreadsWait = 2, 200*time.Millisecond })
	var calls []*getJobsCall
	var agents []*daemonAgent
	for _, name := range []string{"w1", "w2", "w3", "w4"} {
		a := h.daemonAgent(t, name)
		agents = append(agents, a)
		calls = append(calls, a.getJobsAsync(10, 20))
	}
	testtool.WaitFor(t, "four calls waiting", func() bool { return h.srv.waiting.Waiting() == 4 })
	var hb api.Heartbeat
	if err := agents[0].c.Call(context.Background(), api.MethodHeartbeat, &hb); err != nil {
		t.Fatalf("a call while four wait with two request slots: %v", err)
	}
	h.submit(t, map[string]any{"script": "true", "targets": []string{"w1", "w2", "w3", "w4"}})
	for i, c := range calls {
		c.wait(t, 10*time.Second, "after the submit")
		if c.err != nil || len(c.docs) != 1 {
			t.Fatalf("agent %d: %d documents, %v", i+1, len(c.docs), c.err)
		}
	}
}

// TestGetJobsWaitHoldsNoWorker: a call waiting for work alone in its
// request waits on its connection's goroutine, not on a worker (whose
// stack earlier handlers grew): with calls waiting, no handler runs, and
// the submit still answers each with its job.
func TestGetJobsWaitHoldsNoWorker(t *testing.T) {
	h := newHarness(t)
	var calls []*getJobsCall
	for _, name := range []string{"w1", "w2", "w3"} {
		calls = append(calls, h.daemonAgent(t, name).getJobsAsync(10, 20))
	}
	testtool.WaitFor(t, "three calls waiting", func() bool { return h.srv.waiting.Waiting() == 3 })
	testtool.WaitFor(t, "no handler running", func() bool { return h.srv.limit.workers.running() == 0 })
	h.submit(t, map[string]any{"script": "true", "targets": []string{"w1", "w2", "w3"}})
	for i, c := range calls {
		c.wait(t, 10*time.Second, "after the submit")
		if c.err != nil || len(c.docs) != 1 {
			t.Fatalf("agent %d: %d documents, %v", i+1, len(c.docs), c.err)
		}
	}
}

// TestGetJobsWaitInMulticall: a waiting agent.getJobs inside a
// system.multicall, whose reply it shares with the other calls, waits on
// its worker instead, and is answered by a submit all the same.
func TestGetJobsWaitInMulticall(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.daemonAgent(t, "m1")
	var hb api.Heartbeat
	var docs []string
	beat := &client.Call{Method: api.MethodHeartbeat, Reply: &hb}
	get := &client.Call{Method: api.MethodGetJobs, Args: []any{10, 20}, Reply: &docs}
	done := make(chan error, 1)
	go func() { done <- a.c.Multicall(ctx, beat, get) }()
	testtool.WaitFor(t, "the call to wait", func() bool { return h.srv.waiting.Waiting() == 1 })
	if n := h.srv.limit.workers.running(); n != 1 {
		t.Errorf("%d handlers running with a multicall waiting, want 1 (the multicall's)", n)
	}
	h.submit(t, map[string]any{"script": "true", "targets": []string{"m1"}})
	select {
	case err := <-done:
		if err != nil || beat.Err != nil || get.Err != nil {
			t.Fatalf("multicall: %v; heartbeat %v; getJobs %v", err, beat.Err, get.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the multicall did not return within 10s of the submit")
	}
	if len(docs) != 1 {
		t.Fatalf("getJobs in the multicall: %d documents, want 1", len(docs))
	}
}

// TestGetJobsWaitRevokedWhileWaiting: an agent revoked while its call
// waits is refused (fault 402) when a submit wakes the call, not handed
// the job.
func TestGetJobsWaitRevokedWhileWaiting(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.daemonAgent(t, "r1")
	call := a.getJobsAsync(10, 20)
	testtool.WaitFor(t, "the call to wait", func() bool { return h.srv.waiting.Waiting() == 1 })
	if err := h.operator(t).Call(ctx, "client.revoke", nil, []string{a.fp}); err != nil {
		t.Fatal(err)
	}
	// A revoked client is no submit's target any more: wake the call as
	// a submit just before the revocation would have.
	id, err := strconv.ParseInt(a.id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.waiting.Wake(id)
	call.wait(t, 10*time.Second, "after the wake-up")
	wantFault(t, call.err, 402)
}

// TestGetJobsWaitHoldsNoGate: calls waiting for work hold no place in the
// gate: an operator's modifier, which must have the gate alone, goes
// through at once, well within a gate wait too short for a wait to end.
func TestGetJobsWaitHoldsNoGate(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.GateMaxWait = time.Second })
	var calls []*getJobsCall
	for _, name := range []string{"w1", "w2", "w3"} {
		calls = append(calls, h.daemonAgent(t, name).getJobsAsync(10, 20))
	}
	testtool.WaitFor(t, "three calls waiting", func() bool { return h.srv.waiting.Waiting() == 3 })
	start := time.Now()
	if err := h.operator(t).Call(context.Background(), "group.create", nil, "client", "web"); err != nil {
		t.Fatalf("a modifier while three calls wait for work: %v", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the modifier took %s with three calls waiting", d)
	}
	for i, c := range calls {
		if c.returned() {
			t.Errorf("waiting call %d returned (%d documents, %v) while nothing was submitted", i+1, len(c.docs), c.err)
		}
	}
}

// TestGetJobsWaitAnsweredAtStop: a stopping daemon answers the calls
// waiting for work at once, instead of keeping its stop waiting for them.
func TestGetJobsWaitAnsweredAtStop(t *testing.T) {
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	call := a.getJobsAsync(10, 30)
	testtool.WaitFor(t, "the call to wait", func() bool { return h.srv.waiting.Waiting() == 1 })
	start := time.Now()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the harness' cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop within 10s with a call waiting")
	}
	call.wait(t, 5*time.Second, "at the stop")
	if call.err != nil || len(call.docs) != 0 {
		t.Fatalf("the waiting call at the stop: %d documents, %v", len(call.docs), call.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping took %s with a call waiting", d)
	}
}

// TestDaemonAgentWaitsForWork: the reference agent in daemon mode, polling
// once an hour, runs a job as soon as it is submitted, by its wait in
// agent.getJobs: the server pushes it nothing.
func TestDaemonAgentWaitsForWork(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	stateDir := filepath.Join(t.TempDir(), "agent")
	caFile := h.paths.CACert()
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() {
		runErr = agentpkg.Run(actx, agentpkg.Config{Servers: []string{h.url}, StateDir: stateDir, CAFile: caFile, Name: "waiter",
			Interval: time.Hour, Daemon: true, Listen: "127.0.0.1:0", Version: "test", Log: slog.New(slog.DiscardHandler), Out: &testtool.SyncBuffer{}})
	})
	defer func() {
		cancel()
		wg.Wait()
		if runErr != nil && !errors.Is(runErr, context.Canceled) {
			t.Errorf("agent: %v", runErr)
		}
	}()
	var cs []api.Client
	testtool.WaitFor(t, "the agent to register", func() bool {
		if err := h.operator(t).Call(ctx, "client.list", &cs); err != nil {
			t.Fatal(err)
		}
		return len(cs) == 1
	})
	if err := h.operator(t).Call(ctx, "client.accept", nil, []string{cs[0].Fingerprint}); err != nil {
		t.Fatal(err)
	}
	testtool.WaitFor(t, "the agent to wait in agent.getJobs", func() bool { return h.srv.waiting.Waiting() == 1 })
	id := h.submit(t, map[string]any{"script": "echo waited", "targets": []string{"waiter"}})
	var job api.Job
	testtool.WaitFor(t, "the job to succeed", func() bool {
		if err := h.operator(t).Call(ctx, "job.get", &job, id); err != nil {
			t.Fatal(err)
		}
		return job.Status == "succeeded"
	})
	var c api.Client
	if err := h.operator(t).Call(ctx, "client.get", &c, cs[0].Fingerprint); err != nil {
		t.Fatal(err)
	}
	if c.LastPush == nil || c.LastPush.Result != "woken" {
		t.Fatalf("last_push = %+v, want woken (no push sent)", c.LastPush)
	}
}

// TestGetJobsWaitTwoDaemons: two daemons share a PostgreSQL database, and a
// daemon-mode agent waits in agent.getJobs on the first. A job submitted
// on the first answers the wait (no push); one submitted on the second,
// which has no wait to answer, is pushed to the agent with agent.pollNow,
// and the agent's next call to the first gets it.
func TestGetJobsWaitTwoDaemons(t *testing.T) {
	url := pgtest.Start(t)
	first := newHarnessConfig(t, func(c *Config) { c.DB = url })
	second := newHarnessConfig(t, func(c *Config) { c.DB = url; c.DataDir = first.paths.Dir }) // one CA, as a cluster's daemons share
	a := first.daemonAgent(t, "d1")
	a.settle(time.Second) // each starting daemon pushes its daemon-mode clients once

	call := a.getJobsAsync(10, 20)
	testtool.WaitFor(t, "the call to wait on the first daemon", func() bool { return first.srv.waiting.Waiting() == 1 })
	first.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	call.wait(t, 5*time.Second, "after a submit on the same daemon")
	if call.err != nil || len(call.docs) != 1 {
		t.Fatalf("the wait on the submitting daemon: %d documents, %v", len(call.docs), call.err)
	}
	a.noWake(t, 300*time.Millisecond, "the agent was answered in its wait")

	call = a.getJobsAsync(10, 20)
	testtool.WaitFor(t, "the call to wait again", func() bool { return first.srv.waiting.Waiting() == 1 })
	second.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	a.waitWake(t, "a push from the second daemon, where the agent does not wait")
	if call.returned() {
		t.Fatalf("the wait on the first daemon returned (%d documents, %v) for a job submitted on the second", len(call.docs), call.err)
	}
	// The reference agent now ends its wait and asks at once.
	var docs []string
	if err := a.c.Call(context.Background(), api.MethodGetJobs, &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("agent.getJobs after the push: %d documents, %v", len(docs), err)
	}
}
