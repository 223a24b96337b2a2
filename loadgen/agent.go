package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	clientagent "github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
)

// agent is one simulated agent: its own identity and connection.
type agent struct {
	name string
	id   string // client id
	fp   string
	c    *client.Client
	pair tls.Certificate

	// Push mode: the agent.pollNow listener and its wake-ups (one pending
	// at most; more collapse into it).
	pn   *clientagent.PollNowServer
	wake chan struct{}

	assigned atomic.Int64 // jobs submitted for it
	finished int64        // jobs it completed (its own goroutine only)
	woken    int64        // its waiting agent.getJobs answered with runs (its own goroutine only)

	// Written by its own goroutine only; read after it stopped.
	done  []doneRec
	calls map[string]int64
	errs  map[string]int64
	empty int64
	lat   []time.Duration // idle mode: each call's response time
	gets  []callSample    // burn-down and steady modes: each agent.getJobs made alone
	// Idle mode: the last successful agent.heartbeat.
	lastBeat time.Time
}

// callSample is one call: when it was sent (unix ns) and how long its
// answer took.
type callSample struct {
	at int64
	d  time.Duration
}

// doneRec is one completed job as the agent saw it.
type doneRec struct {
	job  int64
	run  int64
	recv int64 // unix ns: agent.getJobs returned it
	done int64 // unix ns: agent.reportStatus accepted it
}

// newIdentity makes a client presenting a fresh self-signed identity.
func (b *bench) newIdentity(name string) (*client.Client, tls.Certificate, string, error) {
	var pair tls.Certificate
	certPEM, keyPEM, err := pki.SelfSigned(name, []string{"127.0.0.1"})
	if err != nil {
		return nil, pair, "", err
	}
	if pair, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return nil, pair, "", err
	}
	c, err := client.New(client.Options{Servers: []string{b.t.url}, RootCAs: b.t.roots, Certificate: &pair, UserAgent: "scirectl-bench-agent"})
	if err != nil {
		return nil, pair, "", err
	}
	return c, pair, pki.Fingerprint(pair.Certificate[0]), nil
}

// register calls agent.register and returns the client id; a callback URL
// makes it a daemon-mode client.
func register(ctx context.Context, c *client.Client, name, callback string) (string, error) {
	var reg api.RegisterResult
	facts := map[string]any{"hostname": name, "os": runtime.GOOS, "arch": runtime.GOARCH, "version": "bench"}
	if callback != "" {
		facts["mode"], facts["callback_url"] = "daemon", callback
	}
	err := c.Call(ctx, api.MethodRegister, &reg, facts)
	if err != nil {
		return "", fmt.Errorf("agent %s: register: %w", name, err)
	}
	return reg.ClientID, nil
}

// setupConcurrency is how many agents are created and registered at once:
// enough to batch the registrations' commits and keep both ends' TLS
// handshakes busy, below the server's default request slots (32).
const setupConcurrency = 16

// setupAgents creates, registers and accepts the agents; each opens its
// TLS connection here, before the measurement. Identities are ECDSA P-256
// like the real agent's (a key costs microseconds, not an RSA key's
// tens of milliseconds), and the agents are accepted 500 fingerprints per
// client.accept call.
func (b *bench) setupAgents(ctx context.Context) error {
	b.agents = make([]*agent, b.o.Agents)
	var wg sync.WaitGroup
	errs := make([]error, b.o.Agents)
	sem := make(chan struct{}, setupConcurrency)
	var registered atomic.Int64
	start := time.Now()
	stopProgress := b.every(5*time.Second, func() {
		b.printf("registered %d/%d agents (%s)", registered.Load(), b.o.Agents, time.Since(start).Round(time.Second))
	})
	for i := range b.agents {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer registered.Add(1)
			a := &agent{name: fmt.Sprintf("bench-%s-%04d", b.runID, i+1), calls: map[string]int64{}, errs: map[string]int64{},
				wake: make(chan struct{}, 1)}
			b.agents[i] = a
			c, pair, fp, err := b.newIdentity(a.name)
			if err != nil {
				errs[i] = err
				return
			}
			a.c, a.pair, a.fp = c, pair, fp
			callback := ""
			if b.o.Push {
				a.pn, err = clientagent.ListenPollNow(clientagent.PollNowConfig{
					Addr: "127.0.0.1:0", Certificate: pair, ServerCA: b.t.roots,
					Wake: func() {
						select {
						case a.wake <- struct{}{}:
						default:
						}
					},
					Log: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					errs[i] = err
					return
				}
				callback = a.pn.URL()
			}
			if a.id, err = register(ctx, c, a.name, callback); err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	stopProgress()
	if ctx.Err() != nil {
		return fmt.Errorf("registering the agents: %w", ctx.Err())
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	t0 := time.Now()
	fps := make([]string, len(b.agents))
	for i, a := range b.agents {
		fps[i] = a.fp
	}
	for i := 0; i < len(fps); i += 500 {
		if err := b.op.Call(ctx, "client.accept", nil, fps[i:min(i+500, len(fps))]); err != nil {
			return fmt.Errorf("accept the agents (client.accept): %w", err)
		}
	}
	b.res.AcceptSeconds = time.Since(t0).Seconds()
	b.printf("%d agents registered in %s, accepted in %s", b.o.Agents, t0.Sub(start).Round(time.Millisecond),
		time.Since(t0).Round(time.Millisecond))
	return nil
}

func (a *agent) fail(method string, err error) {
	a.errs[method+": "+errKind(err)]++
}

// loop is the agent: getJobs → ackJobs → reportStatus, until it has
// completed every job submitted for it and no more will come. After a full
// batch, like the reference agent, it asks for more at once, and sends
// the report and that agent.getJobs in one system.multicall: two requests
// a job at batch 1, not three.
func (a *agent) loop(ctx context.Context, b *bench) {
	var docs []string
	var recv time.Time
	have := false // docs came with the last report
	for ctx.Err() == nil {
		if !have {
			if b.submitDone.Load() && a.finished >= a.assigned.Load() {
				return
			}
			a.calls[api.MethodGetJobs]++
			sent := time.Now()
			err := a.getJobs(ctx, b, &docs, true, b.allSubmitted)
			recv = time.Now()
			if err == nil {
				a.gets = append(a.gets, callSample{at: sent.UnixNano(), d: recv.Sub(sent)})
			}
			if err != nil {
				if ctx.Err() == nil {
					a.fail(api.MethodGetJobs, err)
					sleep(ctx, 50*time.Millisecond)
				}
				continue
			}
		}
		have = false
		if len(docs) == 0 {
			a.empty++
			a.idle(ctx, b)
			continue
		}
		jobs := a.receive(ctx, docs)
		if len(jobs) == 0 {
			continue
		}
		doc, err := a.statusDoc(jobs, recv)
		if err != nil {
			a.errs["agent.reportStatus: encode"]++
			continue
		}
		var rep []api.ReportResult
		full := len(docs) == b.o.Batch
		if full && !(b.submitDone.Load() && a.finished+int64(len(jobs)) >= a.assigned.Load()) {
			repCall := &client.Call{Method: api.MethodReportStatus, Args: []any{string(doc)}, Reply: &rep}
			getCall := &client.Call{Method: api.MethodGetJobs, Args: []any{b.o.Batch}, Reply: &docs}
			if !a.multicall(ctx, repCall, getCall) {
				continue // the lease will hand them out again
			}
			a.reported(b, jobs, rep, recv)
			if getCall.Err == nil {
				recv, have = time.Now(), true
			} else {
				a.fail(api.MethodGetJobs, getCall.Err)
			}
			continue
		}
		if !a.retry(ctx, api.MethodReportStatus, &rep, string(doc)) {
			continue
		}
		a.reported(b, jobs, rep, recv)
		// A short batch emptied the agent's queue: like a real agent, wait
		// for the next poll (or push) rather than asking again at once.
		if !full {
			a.idle(ctx, b)
		}
	}
}

// receive decodes the job documents and acknowledges their runs; it
// returns the acknowledged runs with their jobs (run → job).
func (a *agent) receive(ctx context.Context, docs []string) map[int64]int64 {
	runs := make([]string, 0, len(docs))
	jobs := make(map[int64]int64, len(docs))
	for _, d := range docs {
		j, err := jobxml.DecodeJob([]byte(d))
		if err != nil {
			a.errs["agent.getJobs: bad job document"]++
			continue
		}
		runs = append(runs, strconv.FormatInt(j.Run, 10))
		jobs[j.Run] = j.ID
	}
	if len(runs) == 0 {
		return nil
	}
	var ack api.AckResult
	if !a.retry(ctx, api.MethodAckJobs, &ack, runs) {
		return nil // the lease will hand them out again
	}
	for _, s := range ack.Stale {
		id, _ := strconv.ParseInt(s, 10, 64)
		delete(jobs, id)
		a.errs["agent.ackJobs: stale"]++
	}
	return jobs
}

// statusDoc is the report of the jobs as succeeded (no-op jobs: received
// at recv, finished now).
func (a *agent) statusDoc(jobs map[int64]int64, recv time.Time) ([]byte, error) {
	zero := 0
	started, finished := recv.UTC(), time.Now().UTC()
	sts := make([]jobxml.Status, 0, len(jobs))
	for run := range jobs {
		sts = append(sts, jobxml.Status{Run: run, State: jobxml.StateSucceeded, Exit: &zero, Started: started, Finished: finished})
	}
	return jobxml.EncodeStatuses(sts)
}

// reported counts the jobs whose report was accepted.
func (a *agent) reported(b *bench, jobs map[int64]int64, rep []api.ReportResult, recv time.Time) {
	now := time.Now().UnixNano()
	for _, r := range rep {
		run, _ := strconv.ParseInt(r.RunID, 10, 64)
		job, ok := jobs[run]
		switch {
		case !ok:
			a.errs["agent.reportStatus: unknown run in reply"]++
		case !r.Accepted || r.Error != "":
			a.errs["agent.reportStatus: not accepted"]++
		default:
			a.done = append(a.done, doneRec{job: job, run: run, recv: recv.UnixNano(), done: now})
			a.finished++
			b.completed.Add(1)
		}
	}
}

// multicall sends the report with the next agent.getJobs, retrying the
// request (both calls are safe to repeat) up to 10 times; false when the
// report did not get through.
func (a *agent) multicall(ctx context.Context, rep, get *client.Call) bool {
	for i := 0; i < 10 && ctx.Err() == nil; i++ {
		a.calls["system.multicall("+rep.Method+", "+get.Method+")"]++ // the requests; the submitter's are system.multicall
		a.calls[rep.Method]++
		a.calls[get.Method]++
		err := a.c.Multicall(ctx, rep, get)
		if err == nil && rep.Err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			err = rep.Err
		}
		a.fail(rep.Method, err)
		sleep(ctx, 50*time.Millisecond)
	}
	return false
}

// idle waits after an empty agent.getJobs: PollInterval, or in push mode
// until agent.pollNow arrives (PollInterval at most, the safety net), or
// until the agent's work is done.
func (a *agent) idle(ctx context.Context, b *bench) {
	if b.submitDone.Load() && a.finished >= a.assigned.Load() {
		return
	}
	if a.pn == nil {
		sleep(ctx, b.o.PollInterval)
		return
	}
	if b.waitSeconds() > 0 {
		return // its next agent.getJobs is the wait
	}
	t := time.NewTimer(b.o.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-a.wake:
	case <-t.C:
	case <-b.allSubmitted:
	}
}

// waitSeconds is the wait of a daemon-mode agent's agent.getJobs, its long
// poll, as the reference agent's (client/agent, longPoll): its safety-net
// interval, within the server's bound; 0 for polling agents, and once a
// server refused the param (an older server: those agents then wait for
// agent.pollNow between polls).
func (b *bench) waitSeconds() int {
	if !b.o.Push || b.noWait.Load() {
		return 0
	}
	return int(max(time.Second, min(b.o.PollInterval, api.MaxJobWait)) / time.Second)
}

// getJobs is the agent's agent.getJobs, with long the wait of waitSeconds. A
// wait ends early when stop is closed and the agent has nothing more to
// do (the call is cancelled, its connection closed): the bench is over for
// it. Only the agent's own goroutine calls it.
func (a *agent) getJobs(ctx context.Context, b *bench, docs *[]string, long bool, stop <-chan struct{}) error {
	wait := b.waitSeconds()
	if wait == 0 || !long {
		return a.c.Call(ctx, api.MethodGetJobs, docs, b.o.Batch)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	finished := a.finished // not written while it waits
	go func() {
		select {
		case <-stop:
			if b.o.Mode == Fanout || finished >= a.assigned.Load() {
				cancel()
			}
		case <-done:
		}
	}()
	err := a.c.Call(cctx, api.MethodGetJobs, docs, b.o.Batch, wait)
	if api.RefusesExtraParam(err) {
		b.noWait.Store(true)
		return a.c.Call(ctx, api.MethodGetJobs, docs, b.o.Batch)
	}
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		*docs = nil
		return nil // stopped waiting: nothing came
	}
	if err == nil && len(*docs) > 0 {
		a.woken++
	}
	return err
}

// retry calls an idempotent method until it succeeds, up to 10 times.
func (a *agent) retry(ctx context.Context, method string, reply any, arg any) bool {
	for i := 0; i < 10 && ctx.Err() == nil; i++ {
		a.calls[method]++
		err := a.c.Call(ctx, method, reply, arg)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		a.fail(method, err)
		sleep(ctx, 50*time.Millisecond)
	}
	return false
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
