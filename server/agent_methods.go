package server

import (
	"context"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runstate"
	"github.com/scirectl/scirectl/xmlrpc"
)

// MaxJobsPerCall bounds agent.getJobs' max.
const MaxJobsPerCall = api.MaxJobsPerCall

func (s *Server) agentOperations() []Operation {
	return []Operation{
		{Name: "agent.register", Class: gate.NonModifier, caller: byAgent, handler: s.agentRegister,
			Signature: []string{"struct", "struct"},
			Help: "Register the calling agent, identified by its client certificate's SHA-256 fingerprint. " +
				"Param: struct of facts {hostname, os, arch, version, name?, mode? (poll|daemon), callback_url? (daemon mode)}. " +
				"A new fingerprint becomes a pending client; registering again updates the facts and never changes the status. " +
				"Returns {client_id: string, status: pending|active|rejected|revoked}."},
		{Name: "agent.getJobs", Class: gate.NonModifier, caller: byAgent, handler: s.agentGetJobs,
			Signature: []string{"array", "int"},
			Help: "Hand out up to max (1..1000) of the caller's pending runs, highest priority first, then oldest. " +
				"Each run is checked against the ACL first; a refused run becomes denied and is never sent. " +
				"Returns an array of job XML documents (docs/job-xml.md). Each must be acknowledged with agent.ackJobs within the lease."},
		{Name: "agent.ackJobs", Class: gate.NonModifier, caller: byAgent, handler: s.agentAckJobs,
			Signature: []string{"struct", "array"},
			Help: "Acknowledge durable receipt of runs (array of run ids as strings). Only runs sent to the caller: " +
				"an unknown id is fault 404, another client's run fault 409, and then nothing changes. Repeats are counted again. " +
				"Returns {acknowledged: int, stale: [run ids no longer acknowledgeable — drop them]}."},
		{Name: "agent.reportStatus", Class: gate.NonModifier, caller: byAgent, handler: s.agentReportStatus,
			Signature: []string{"array", "string"},
			Help: "Report run states with a status XML document (docs/job-xml.md), one or many <status>. " +
				"Returns [{run_id, accepted, error?, cancelled}]; accepted reports may be dropped by the agent; cancelled: stop the run. Idempotent: a repeated report " +
				"is accepted again without a second transition; a report for a run already final keeps the first final state and says so."},
		{Name: "agent.heartbeat", Class: gate.NonModifier, caller: byAgent, handler: s.agentHeartbeat,
			Signature: []string{"struct", "array"}, // the array is optional
			Help: "Tell the server the agent is alive. Optional param: array of the run ids (strings) the agent holds, queued or running " +
				"(at most 1000); the caller's received runs among them have their loss timer restarted, so a run waiting in a live agent's " +
				"queue is not declared lost (a running run's timer runs from its start report); ids of other clients, unknown ids and " +
				"runs in other states are ignored. Returns {server_time: dateTime.iso8601 (UTC), poll_interval: int seconds, " +
				"cancel: [run ids cancelled after they were sent: kill or drop them], " +
				"lost: [the given run ids the server declared lost (failed, reason lost): kill or drop them, report nothing; empty without the param]}."},
	}
}

type registerResult struct {
	ClientID string `xmlrpc:"client_id"`
	Status   string `xmlrpc:"status"`
}

func (s *Server) agentRegister(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	facts, err := p.Struct(0, "facts")
	if err != nil {
		return nil, err
	}
	if err := facts.Unknown("hostname", "os", "arch", "version", "name", "mode", "callback_url"); err != nil {
		return nil, err
	}
	reg := db.ClientRegistration{Fingerprint: requestFrom(ctx).Fingerprint, At: time.Now().UTC(), Mode: db.ModePoll}
	for _, f := range []struct {
		key string
		dst *string
		max int
	}{{"hostname", &reg.Hostname, 253}, {"os", &reg.OS, 64}, {"arch", &reg.Arch, 64}, {"version", &reg.Version, 64},
		{"name", &reg.Name, 253}, {"mode", &reg.Mode, 16}, {"callback_url", &reg.CallbackURL, 2048}} {
		v, ok, err := facts.String(f.key)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if len(v) > f.max {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.register: facts.%s: longer than %d bytes", f.key, f.max)
		}
		if err := jobxml.ValidateText("facts."+f.key, v); err != nil {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.register: %v", err)
		}
		*f.dst = v
	}
	if reg.Hostname == "" {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.register: facts.hostname: required")
	}
	if reg.Name == "" {
		reg.Name = reg.Hostname
	}
	switch reg.Mode {
	case db.ModePoll:
	case db.ModeDaemon:
		if reg.CallbackURL == "" {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.register: facts.callback_url: required in daemon mode")
		}
	default:
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.register: facts.mode: %q is not poll or daemon", reg.Mode)
	}
	c, err := s.store.RegisterClient(ctx, reg)
	if err != nil {
		return nil, err
	}
	return registerResult{ClientID: strconv.FormatInt(c.ID, 10), Status: string(c.Status)}, nil
}

// touch records that the client was heard from (written within a
// second: lastseen.go).
func (s *Server) touch(id int64) { s.seen.saw(id, time.Now().UTC()) }

func (s *Server) agentGetJobs(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	max, err := p.Int(0, "max")
	if err != nil {
		return nil, err
	}
	if max < 1 || max > MaxJobsPerCall {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.getJobs: param 1 (max): %d is outside 1..%d", max, MaxJobsPerCall)
	}
	c := callingClient(ctx)
	s.touch(c.ID)
	policy, err := s.policy.Policy(ctx)
	if err != nil {
		return nil, err
	}
	type denial struct {
		job    db.Job
		reason string
	}
	var denied []denial
	now := time.Now().UTC()
	ds, err := s.store.ClaimRuns(ctx, db.Claim{
		ClientID: c.ID, Max: int(max), At: now, Lease: s.cfg.Lease, ServerID: s.serverID(),
		Decide: func(j db.Job, _ int64) (bool, string) {
			d := policy.Check(j.SubmittedBy, j.Permission, acl.Client{ID: c.ID, Name: c.Name})
			if !d.Allowed {
				denied = append(denied, denial{j, d.Reason})
			}
			return d.Allowed, d.Reason
		},
	})
	if err != nil {
		return nil, err
	}
	for _, d := range denied {
		s.log.Warn("run denied at dispatch", "job_id", d.job.ID, "client_id", c.ID, "user", d.job.SubmittedBy,
			"permission", d.job.Permission, "reason", d.reason)
		s.record(ctx, db.Operation{At: now, Actor: d.job.SubmittedBy, Name: "dispatch",
			Target: "job " + strconv.FormatInt(d.job.ID, 10) + " on client " + strconv.FormatInt(c.ID, 10), Outcome: "denied", Detail: d.reason})
	}
	docs := make([]string, 0, len(ds))
	for _, d := range ds {
		b, err := jobxml.EncodeJob(jobxml.Job{
			ID: d.Job.ID, Run: d.Run.ID, Attempt: d.Run.Attempts, Name: d.Job.Name, Permission: d.Job.Permission,
			Priority: d.Job.Priority, SubmittedBy: d.Job.SubmittedBy, Timeout: d.Job.Timeout,
			Interpreter: d.Job.Interpreter, Script: d.Job.Script,
		})
		if err != nil {
			// Scripts are validated at submit; this is a broken row. The run
			// stays sent and its lease will return it; say so loudly.
			return nil, err
		}
		docs = append(docs, string(b))
	}
	return docs, nil
}

type ackResult struct {
	Acknowledged int      `xmlrpc:"acknowledged"`
	Stale        []string `xmlrpc:"stale"`
}

func (s *Server) agentAckJobs(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	ids, err := p.IDs(0, "run_ids")
	if err != nil {
		return nil, err
	}
	if len(ids) > MaxJobsPerCall {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.ackJobs: param 1 (run_ids): %d ids, at most %d", len(ids), MaxJobsPerCall)
	}
	res, err := s.store.AckRuns(ctx, callingClient(ctx).ID, ids, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := ackResult{Acknowledged: res.Acknowledged, Stale: make([]string, len(res.Stale))}
	for i, id := range res.Stale {
		out.Stale[i] = strconv.FormatInt(id, 10)
	}
	return out, nil
}

type reportResult struct {
	RunID     string `xmlrpc:"run_id"`
	Accepted  bool   `xmlrpc:"accepted"`
	Error     string `xmlrpc:"error,omitempty"`
	Cancelled bool   `xmlrpc:"cancelled"` // the run was cancelled: stop it if it still runs
}

func (s *Server) agentReportStatus(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	doc, err := p.String(0, "status_xml")
	if err != nil {
		return nil, err
	}
	sts, err := jobxml.DecodeStatuses([]byte(doc))
	if err != nil {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.reportStatus: %v", err)
	}
	reports := make([]db.Report, len(sts))
	for i, st := range sts {
		out, trunc := st.Output, st.Truncated
		if len(out) > s.cfg.MaxOutput {
			out, trunc = truncateUTF8(out, s.cfg.MaxOutput), true
		}
		reports[i] = db.Report{RunID: st.Run, State: runstate.State(st.State), ExitCode: st.Exit, Reason: st.Reason,
			StartedAt: st.Started, Finished: st.Finished, Output: out, Truncated: trunc}
	}
	res, err := s.store.ReportRuns(ctx, callingClient(ctx).ID, reports, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]reportResult, len(res))
	for i, r := range res {
		out[i] = reportResult{RunID: strconv.FormatInt(r.RunID, 10), Accepted: r.Accepted, Error: r.Note}
		if r.Note != "" { // a report that changed nothing: tell the agent if that is because of a cancel
			if run, err := s.store.Run(ctx, r.RunID); err == nil && run.State == runstate.Cancelled {
				out[i].Cancelled = true
			}
		}
	}
	return out, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

type heartbeatResult struct {
	ServerTime   time.Time `xmlrpc:"server_time"`
	PollInterval int       `xmlrpc:"poll_interval"`
	// Cancel lists the caller's runs cancelled recently (CancelWindow)
	// after they were sent: the agent kills or drops those it holds.
	Cancel []string `xmlrpc:"cancel"`
	// Lost lists the runs among those the caller says it holds that were
	// declared lost (failed, reason "lost"): the agent kills or drops them
	// and reports nothing, since the server keeps them failed.
	Lost []string `xmlrpc:"lost"`
}

// CancelWindow is how long agent.heartbeat keeps telling an agent about a
// cancelled run: longer than any agent stays away and still holds work.
const CancelWindow = 24 * time.Hour

// agentHeartbeat renews the runs the caller says it holds (the optional
// param; an agent that sends none, as before this param existed, gets the
// old loss rule: timeout+grace after its ack) and tells it which of them were
// lost and which of its runs were cancelled.
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
		if len(held) > MaxJobsPerCall {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "agent.heartbeat: param 1 (run_ids): %d ids, at most %d", len(held), MaxJobsPerCall)
		}
	}
	c := callingClient(ctx)
	s.touch(c.ID)
	now := time.Now().UTC()
	renewed, err := s.store.RenewRuns(ctx, c.ID, held, now)
	if err != nil {
		return nil, err
	}
	ids, err := s.store.CancelledRuns(ctx, c.ID, now.Add(-CancelWindow))
	if err != nil {
		return nil, err
	}
	str := func(id int64) string { return strconv.FormatInt(id, 10) }
	return heartbeatResult{ServerTime: now, PollInterval: int(s.cfg.PollInterval / time.Second),
		Cancel: mapSlice(ids, str), Lost: mapSlice(renewed.Lost, str)}, nil
}
