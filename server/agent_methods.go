package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

func (s *Server) agentOperations() []Operation {
	return []Operation{
		{Name: api.MethodRegister, Class: gate.NonModifier, caller: byAgent, handler: s.agentRegister,
			Signature: []string{"struct", "struct"},
			Help: "Register the calling agent, identified by its client certificate's SHA-256 fingerprint. " +
				"Param: struct of facts {hostname, os, arch, version, name?, mode? (poll|daemon), callback_url? (daemon mode), " +
				"facts? (struct of strings: every fact of the machine, selectable as fact.KEY; it replaces the stored ones)}. " +
				"The name (default: the hostname) follows the rules of every name (docs/limits.md), and must not be all digits or 64 hex digits " +
				"(it would read as an id or a fingerprint): fault 400 naming the field. " +
				"A new fingerprint becomes a pending client; registering again updates the facts and never changes the status. " +
				"Returns {client_id: string, status: pending|active|rejected|revoked}."},
		{Name: api.MethodGetJobs, Class: gate.NonModifier, gatesItself: true, caller: byAgent, handler: s.agentGetJobs,
			Signature: []string{"array", "int", "int"}, // wait is optional
			Help: "Hand out up to max (1..1000) of the caller's pending runs, highest priority first, then oldest. " +
				"Each run is checked against the ACL first; a refused run becomes denied and is never sent. " +
				"Optional param: wait (seconds, 0..30): when there is nothing for the caller, wait up to that long for work " +
				"and answer as soon as some is there (the long poll; a wait holds no place in the gate). " +
				"Returns an array of job XML documents (docs/job-xml.md), empty when none came. Each must be acknowledged with agent.ackJobs within the lease."},
		{Name: api.MethodAckJobs, Class: gate.NonModifier, caller: byAgent, handler: s.agentAckJobs,
			Signature: []string{"struct", "array"},
			Help: "Acknowledge durable receipt of runs (array of run ids as strings). Only runs sent to the caller: " +
				"an unknown id is fault 404, another client's run fault 409, and then nothing changes. Repeats are counted again. " +
				"Returns {acknowledged: int, stale: [run ids no longer acknowledgeable — drop them]}."},
		{Name: api.MethodReportStatus, Class: gate.NonModifier, caller: byAgent, handler: s.agentReportStatus,
			Signature: []string{"array", "string"},
			Help: "Report run states with a status XML document (docs/job-xml.md), one or many <status>. " +
				"Returns [{run_id, accepted, error?, cancelled}]; accepted reports may be dropped by the agent; cancelled: stop the run. Idempotent: a repeated report " +
				"is accepted again without a second transition; a report for a run already final keeps the first final state and says so."},
		{Name: api.MethodHeartbeat, Class: gate.NonModifier, caller: byAgent, handler: s.agentHeartbeat,
			Signature: []string{"struct", "array"}, // the array is optional
			Help: "Tell the server the agent is alive. Optional param: array of the run ids (strings) the agent holds, queued or running " +
				"(at most 1000); the caller's received runs among them have their loss timer restarted, so a run waiting in a live agent's " +
				"queue is not declared lost (a running run's timer runs from its start report); ids of other clients, unknown ids and " +
				"runs in other states are ignored. Returns {server_time: dateTime.iso8601 (UTC), poll_interval: int seconds, " +
				"cancel: [run ids cancelled after they were sent: kill or drop them], " +
				"lost: [the given run ids the server declared lost (failed, reason lost): kill or drop them, report nothing; empty without the param], " +
				"facts_hash: the hash of the facts the server holds for the caller (\"\" for none): an agent whose facts hash otherwise registers again with them}."},
		{Name: api.MethodOutput, Class: gate.NonModifier, caller: byAgent, handler: s.agentOutput,
			Signature: []string{"array", "array"},
			Help: "Stream the output of running jobs. Param: array of chunks {run_id: string, offset: int, data: string} " +
				"(at most 100, data at most 256 KiB of valid UTF-8, cut at a character boundary; offset: of data's first byte in the run's output). " +
				"A chunk is stored when it starts where the server's copy ends; one past it is not (send again from the answer's offset); " +
				"a resent chunk is accepted without being stored twice. Returns, at each chunk's index, " +
				"{run_id, offset: the bytes the server has of the run (the next chunk starts there), accepted, stop: send no more for this run, error?}. " +
				"A run that is not the caller's is fault 404/409 and nothing is stored. The final report still carries the whole bounded output."},
	}
}

func (s *Server) agentOutput(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	arr, err := p.Array(0, "chunks")
	if err != nil {
		return nil, err
	}
	if len(arr) > api.MaxChunksPerCall {
		return nil, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid,
			Message: fmt.Sprintf("param 1 (chunks): %d chunks, at most %d", len(arr), api.MaxChunksPerCall)}
	}
	chunks := make([]api.OutputChunk, len(arr))
	for i, v := range arr {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: fmt.Sprintf("param 1 (chunks): chunk %d: expected struct", i+1)}
		}
		in := xmlrpc.NewStruct(fmt.Sprintf("param 1 (chunks): chunk %d", i+1), m)
		if err := in.Unknown("run_id", "offset", "data"); err != nil {
			return nil, err
		}
		var c api.OutputChunk
		if c.RunID, _, err = in.String("run_id"); err != nil {
			return nil, err
		}
		off, _, err := in.Int("offset")
		if err != nil {
			return nil, err
		}
		c.Offset = int(off)
		if c.Data, _, err = in.String("data"); err != nil {
			return nil, err
		}
		chunks[i] = c
	}
	out, err := s.svc.AppendOutput(ctx, callingClient(ctx).ID, chunks)
	if err != nil {
		return nil, inMethod(api.MethodOutput, err)
	}
	return out, nil
}

func (s *Server) agentRegister(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	in, err := p.Struct(0, "facts")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("hostname", "os", "arch", "version", "name", "mode", "callback_url", "facts"); err != nil {
		return nil, err
	}
	facts := service.Facts{Mode: db.ModePoll}
	for _, f := range []struct {
		key string
		dst *string
	}{{"hostname", &facts.Hostname}, {"os", &facts.OS}, {"arch", &facts.Arch}, {"version", &facts.Version},
		{"name", &facts.Name}, {"mode", &facts.Mode}, {"callback_url", &facts.CallbackURL}} {
		if v, ok, err := in.String(f.key); err != nil {
			return nil, err
		} else if ok {
			*f.dst = v
		}
	}
	if facts.Machine, _, err = in.StringMap("facts"); err != nil {
		return nil, err
	}
	c, err := s.svc.RegisterAgent(ctx, requestFrom(ctx).Fingerprint, facts)
	if err != nil {
		return nil, inMethod(api.MethodRegister, err)
	}
	return api.RegisterResult{ClientID: strconv.FormatInt(c.ID, 10), Status: string(c.Status)}, nil
}

// touch records that the client was heard from (written within a
// second: lastseen.go), unless the service refused its call's arguments.
func (s *Server) touch(id int64, err error) {
	if err != nil {
		var e *service.Error
		if errors.As(err, &e) {
			return
		}
	}
	s.seen.saw(id, time.Now().UTC())
}

// agentGetJobs hands out the caller's pending runs; with wait, when there
// are none, it waits for work (the long poll, docs/protocol.md "Waiting for
// work"): registered on the daemon's board before it first looks, so that
// a job committed between its look and its wait still wakes it (package
// wakeup). Each look enters the gate on its own; the waits hold no place in
// it, so an operator's modifier never waits behind a fleet's long polls,
// and no request slot. A call alone in its request waits off the workers
// (handoff.go); one inside a system.multicall waits on its worker.
func (s *Server) agentGetJobs(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 2); err != nil {
		return nil, err
	}
	max, err := p.Int(0, "max")
	if err != nil {
		return nil, err
	}
	var wait time.Duration
	if p.Has(1) {
		n, err := p.Int(1, "wait")
		if err != nil {
			return nil, err
		}
		if n < 0 || time.Duration(n)*time.Second > api.MaxJobWait {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: param 2 (wait): %d is outside 0..%d seconds",
				api.MethodGetJobs, n, int(api.MaxJobWait/time.Second))
		}
		wait = s.boundWait(time.Duration(n) * time.Second)
	}
	c := callingClient(ctx)
	if wait == 0 {
		return s.dispatch(ctx, c, int(max), false)
	}
	jw := s.newJobWait(ctx, c, int(max), wait)
	jobs, err := s.dispatch(ctx, c, jw.max, false)
	if err != nil || len(jobs) > 0 {
		jw.end()
		return jobs, err
	}
	if h := handoffFor(ctx); h != nil {
		h.park(jw)
		return []string{}, nil // dropped: jw answers
	}
	defer jw.end()
	for {
		again := s.yieldSlot()
		news, err := jw.await()
		again()
		res, done, err := jw.proceed(news, err)
		if done {
			return res, err
		}
	}
}

// jobWait is an agent.getJobs call waiting for work (a waiter, handoff.go).
type jobWait struct {
	s       *Server
	ctx     context.Context
	c       db.Client
	max     int
	woken   <-chan struct{}
	release func()
	timer   *time.Timer
}

func (s *Server) newJobWait(ctx context.Context, c db.Client, max int, wait time.Duration) *jobWait {
	woken, release := s.waiting.Wait(c.ID)
	return &jobWait{s: s, ctx: ctx, c: c, max: max, woken: woken, release: release, timer: time.NewTimer(wait)}
}

func (jw *jobWait) method() string           { return api.MethodGetJobs }
func (jw *jobWait) context() context.Context { return jw.ctx }

func (jw *jobWait) end() {
	jw.timer.Stop()
	jw.release()
}

func (jw *jobWait) await() (bool, error) {
	select {
	case <-jw.woken:
		return true, nil
	case <-jw.timer.C:
		return false, nil
	case <-jw.ctx.Done():
		return false, jw.ctx.Err()
	}
}

// proceed answers a wait that ran out empty; woken, it looks again.
func (jw *jobWait) proceed(woken bool, err error) (any, bool, error) {
	s := jw.s
	switch {
	case err != nil:
		return nil, true, err
	case !woken:
		return []string{}, true, nil
	case s.waiting.Closed():
		// The daemon is stopping: answer at once, empty. A look now
		// would race the stop (the gate and the store close next);
		// what came meanwhile waits for the agent's next call, here
		// or on another daemon.
		return []string{}, true, nil
	}
	// Woken: the caller may have been revoked (or deleted) while it
	// waited; it is looked up again, as at the start of a call.
	c, err := s.clients.get(jw.ctx, jw.c.Fingerprint, s.store.ClientByFingerprint)
	if err != nil {
		return nil, true, inMethod(api.MethodGetJobs, err)
	}
	if c.Status != db.ClientActive {
		return nil, true, xmlrpc.Faultf(xmlrpc.CodeNotAccepted, "%s: client %d (%s) is %s", api.MethodGetJobs, c.ID, c.Fingerprint, c.Status)
	}
	jw.c = c
	jobs, err := s.dispatch(jw.ctx, c, jw.max, true) // woken: work is expected
	return jobs, err != nil || len(jobs) > 0, err
}

// dispatch is one look of agent.getJobs, inside the gate: the caller's
// pending runs claimed, those the ACL refuses denied (their rollouts
// checked, the refusals logged and audited). woken: the caller was just
// woken for work (Service.Dispatch's expected).
func (s *Server) dispatch(ctx context.Context, c db.Client, max int, woken bool) ([]string, error) {
	t, err := s.enterAs(ctx, api.MethodGetJobs)
	if err != nil {
		return nil, err
	}
	defer t.Release()
	ctx = t.Context()
	out, err := s.svc.Dispatch(ctx, c, max, woken)
	s.touch(c.ID, err)
	if len(out.Denied) > 0 {
		jobs := make([]int64, len(out.Denied))
		for i, d := range out.Denied {
			jobs[i] = d.Job.ID
		}
		s.rollouts.Enforce(db.RolloutScope{JobIDs: jobs}) // a denied canary halts its rollout
	}
	for _, d := range out.Denied {
		s.log.Warn("run denied at dispatch", "job_id", d.Job.ID, "client_id", c.ID, "user", d.Job.SubmittedBy,
			"permission", d.Job.Permission, "reason", d.Reason)
		s.record(ctx, d.Record)
	}
	if err != nil {
		return nil, inMethod(api.MethodGetJobs, err)
	}
	return out.Jobs, nil
}

func (s *Server) agentAckJobs(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	ids, err := p.IDs(0, "run_ids")
	if err != nil {
		return nil, err
	}
	out, err := s.svc.AckRuns(ctx, callingClient(ctx).ID, ids)
	if err != nil {
		return nil, inMethod(api.MethodAckJobs, err)
	}
	return out, nil
}

func (s *Server) agentReportStatus(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	doc, err := p.String(0, "status_xml")
	if err != nil {
		return nil, err
	}
	out, err := s.svc.Report(ctx, callingClient(ctx).ID, []byte(doc))
	if err != nil {
		return nil, inMethod(api.MethodReportStatus, err)
	}
	return out, nil
}

// CancelWindow is how long agent.heartbeat keeps telling an agent about a
// cancelled run (service.CancelWindow).
const CancelWindow = service.CancelWindow

// agentHeartbeat renews the runs the caller says it holds (the optional
// param; an agent that sends none, as before this param existed, gets the
// old loss rule: timeout+grace after its ack) and tells it which of them were
// lost and which of its runs were cancelled (service.Heartbeat).
func (s *Server) agentHeartbeat(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var held []int64
	if p.Has(0) {
		var err error
		if held, err = p.IDs(0, "run_ids"); err != nil {
			return nil, err
		}
	}
	c := callingClient(ctx)
	out, err := s.svc.Heartbeat(ctx, c.ID, held)
	s.touch(c.ID, err)
	if err != nil {
		return nil, inMethod(api.MethodHeartbeat, err)
	}
	out.FactsHash = c.FactsHash // the agent registers again when its facts hash otherwise
	return out, nil
}
