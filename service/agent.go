package service

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client/facts"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runoutput"
	"github.com/scirectl/scirectl/runstate"
)

// The agent protocol: what an agent, identified by its certificate, may
// do — register, take its runs, acknowledge them, report on them and say
// it is alive. The agent is authenticated before (the daemon's interceptor
// finds the active client of the certificate); these methods take it.

// AgentRules are the daemon's rules for its agents (server.yaml).
type AgentRules struct {
	Lease        time.Duration  // how long a sent run may stay unacknowledged
	PollInterval time.Duration  // suggested to agents by Heartbeat
	MaxOutput    int            // bytes of output kept per run; more is cut
	PushNetworks []netip.Prefix // when set, the only networks a callback URL's address may be in
}

// CancelWindow is how long Heartbeat keeps telling an agent about a
// cancelled run: longer than any agent stays away and still holds work.
const CancelWindow = 24 * time.Hour

// serverID is Service.ServerID's answer, or 0.
func (s *Service) serverID() int64 {
	if s.ServerID == nil {
		return 0
	}
	return s.ServerID()
}

// Facts are what an agent says about itself when it registers. Mode is
// poll or daemon, which needs CallbackURL. Name defaults to Hostname.
type Facts struct {
	Hostname, OS, Arch, Version, Name, Mode, CallbackURL string
	// Machine is every fact the agent collected (client/facts), selectable
	// as fact.KEY; nil when it sent none (an older agent): the stored ones
	// stay.
	Machine map[string]string
}

// RegisterAgent registers the agent holding the certificate with this
// fingerprint: a new fingerprint becomes a pending client; registering
// again updates the facts and never changes the status. Refusals name the
// fact ("facts.hostname: required").
func (s *Service) RegisterAgent(ctx context.Context, fingerprint string, f Facts) (db.Client, error) {
	reg := db.ClientRegistration{Fingerprint: fingerprint, At: time.Now().UTC(), Mode: f.Mode,
		Hostname: f.Hostname, OS: f.OS, Arch: f.Arch, Version: f.Version, Name: f.Name, CallbackURL: f.CallbackURL}
	for _, f := range []struct {
		key string
		v   string
		max int
	}{{"hostname", f.Hostname, 253}, {"os", f.OS, 64}, {"arch", f.Arch, 64}, {"version", f.Version, 64},
		{"name", f.Name, 253}, {"mode", f.Mode, 16}, {"callback_url", f.CallbackURL, 2048}} {
		if len(f.v) > f.max {
			return db.Client{}, refuse(ErrInvalid, "facts.%s: longer than %d bytes", f.key, f.max)
		}
		if err := jobxml.ValidateText("facts."+f.key, f.v); err != nil {
			return db.Client{}, refuse(ErrInvalid, "%v", err)
		}
	}
	if reg.Hostname == "" {
		return db.Client{}, refuse(ErrInvalid, "facts.hostname: required")
	}
	field := "facts.name"
	if reg.Name == "" {
		reg.Name, field = reg.Hostname, "facts.hostname"
	}
	// The client's name is a name like any other (an operator types it
	// back in client:NAME), and must not read as an id or a fingerprint,
	// which references try first.
	if err := CheckNewName(field, reg.Name); err != nil {
		return db.Client{}, refuse(ErrInvalid, "%s (the client's name; send facts.name to choose another)", err)
	}
	switch reg.Mode {
	case db.ModePoll:
	case db.ModeDaemon:
		if reg.CallbackURL == "" {
			return db.Client{}, refuse(ErrInvalid, "facts.callback_url: required in daemon mode")
		}
	default:
		return db.Client{}, refuse(ErrInvalid, "facts.mode: %q is not poll or daemon", reg.Mode)
	}
	if reg.CallbackURL != "" {
		if err := s.checkCallback(reg.CallbackURL); err != nil {
			return db.Client{}, refuse(ErrInvalid, "facts.callback_url: %v", err)
		}
	}
	if f.Machine != nil {
		m := facts.Facts(f.Machine)
		if err := m.Check(); err != nil {
			return db.Client{}, refuse(ErrInvalid, "facts.facts: %v", err)
		}
		reg.Facts, reg.FactsHash = f.Machine, m.Hash()
	}
	return s.Store.RegisterClient(ctx, reg)
}

// checkCallback applies the callback_url rules (api.CheckCallbackURL) and,
// when PushNetworks is set, refuses an IP address outside it. A host name
// is taken here and checked when a push resolves it: what it resolves to
// may change, and only the addresses the push connects to matter.
func (s *Service) checkCallback(raw string) error {
	if err := api.CheckCallbackURL(raw); err != nil {
		return err
	}
	if len(s.Agents.PushNetworks) == 0 {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !InNetworks(ip, s.Agents.PushNetworks) {
		return fmt.Errorf("host %s is outside the networks this server pushes to (push_networks in server.yaml)", ip)
	}
	return nil
}

// InNetworks reports whether ip is inside one of networks (an IPv4
// address written as IPv6, ::ffff:a.b.c.d, counts as IPv4).
func InNetworks(ip netip.Addr, networks []netip.Prefix) bool {
	ip = ip.Unmap().WithZone("")
	for _, n := range networks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Dispatched is what Dispatch hands an agent, and what it refused.
type Dispatched struct {
	Jobs []string // job XML documents (docs/job-xml.md), one per run
	// Denied are the runs the ACL refused at dispatch, now denied: the
	// caller logs them and writes their audit records.
	Denied []DeniedRun
}

// DeniedRun is a run refused by the ACL at dispatch.
type DeniedRun struct {
	Job    db.Job
	Reason string
	Record db.AuditEntry // its audit record
}

// Dispatch hands the client up to max of its pending runs, highest
// priority first, then oldest, each checked against the ACL first: a
// refused run becomes denied and is never sent. Each run handed out must
// be acknowledged (AckRuns) within the lease. expected says the client
// was just woken for work (db.Claim.Expected): the look costs less when
// it finds some, more when it does not.
func (s *Service) Dispatch(ctx context.Context, c db.Client, max int, expected bool) (Dispatched, error) {
	if max < 1 || max > api.MaxJobsPerCall {
		return Dispatched{}, refuse(ErrInvalid, "param 1 (max): %d is outside 1..%d", max, api.MaxJobsPerCall)
	}
	policy, err := s.policy(ctx)
	if err != nil {
		return Dispatched{}, err
	}
	var out Dispatched
	now := time.Now().UTC()
	ds, err := s.Store.ClaimRuns(ctx, db.Claim{
		ClientID: c.ID, Max: max, At: now, Lease: s.Agents.Lease, ServerID: s.serverID(), Expected: expected,
		Decide: func(j db.Job, _ int64) (bool, string) {
			d := policy.Check(j.SubmittedBy, j.Permission, acl.Client{ID: c.ID, Name: c.Name, Labels: c.Labels})
			if !d.Allowed {
				out.Denied = append(out.Denied, DeniedRun{Job: j, Reason: d.Reason, Record: db.AuditEntry{
					At: now, Actor: j.SubmittedBy, Name: "dispatch", Outcome: "denied", Detail: d.Reason,
					Target: "job " + strconv.FormatInt(j.ID, 10) + " on client " + strconv.FormatInt(c.ID, 10)}})
			}
			return d.Allowed, d.Reason
		},
	})
	if err != nil {
		return Dispatched{}, err // rolled back: nothing was denied
	}
	out.Jobs = make([]string, 0, len(ds))
	for _, d := range ds {
		b, err := jobxml.EncodeJob(jobxml.Job{
			ID: d.Job.ID, Run: d.Run.ID, Attempt: d.Run.Attempts, Name: d.Job.Name, Permission: d.Job.Permission,
			Priority: d.Job.Priority, SubmittedBy: d.Job.SubmittedBy, Timeout: d.Job.Timeout,
			Interpreter: d.Job.Interpreter, Script: d.Job.Script,
		})
		if err != nil {
			// Scripts are validated at submit; this is a broken row. The run
			// stays sent and its lease will return it; say so loudly.
			return out, err
		}
		out.Jobs = append(out.Jobs, string(b))
	}
	return out, nil
}

// AckRuns records that the client holds runs it was sent. Only runs sent
// to it: an unknown id is a not-found refusal, another client's run a
// conflict, and then nothing changes. Repeats are counted again; runs no
// longer acknowledgeable are listed as stale, for the agent to drop.
func (s *Service) AckRuns(ctx context.Context, clientID int64, runIDs []int64) (api.AckResult, error) {
	if len(runIDs) > api.MaxJobsPerCall {
		return api.AckResult{}, refuse(ErrInvalid, "param 1 (run_ids): %d ids, at most %d", len(runIDs), api.MaxJobsPerCall)
	}
	res, err := s.Store.AckRuns(ctx, clientID, runIDs, time.Now().UTC())
	if err != nil {
		return api.AckResult{}, err
	}
	out := api.AckResult{Acknowledged: res.Acknowledged, Stale: make([]string, len(res.Stale))}
	for i, id := range res.Stale {
		out.Stale[i] = strconv.FormatInt(id, 10)
	}
	return out, nil
}

// Report applies the client's status document (docs/job-xml.md: one or
// many <status>) to its runs, output beyond MaxOutput cut, and says of each
// report whether it was accepted and, for one that changed nothing because
// the run was cancelled, that the agent should stop it. Idempotent: a
// repeated report is accepted again without a second transition.
func (s *Service) Report(ctx context.Context, clientID int64, doc []byte) ([]api.ReportResult, error) {
	sts, err := jobxml.DecodeStatuses(doc)
	if err != nil {
		return nil, refuse(ErrInvalid, "%v", err)
	}
	reports := make([]db.Report, len(sts))
	for i, st := range sts {
		out, trunc := st.Output, st.Truncated
		if len(out) > s.Agents.MaxOutput {
			// Both ends kept (runoutput): the agent's bound was larger.
			k := runoutput.Parse(out).Rebound(s.Agents.MaxOutput)
			out, trunc = k.String(), true
		}
		reports[i] = db.Report{RunID: st.Run, State: runstate.State(st.State), ExitCode: st.Exit, Reason: st.Reason,
			StartedAt: st.Started, Finished: st.Finished, Output: out, Truncated: trunc}
	}
	res, err := s.Store.ReportRuns(ctx, clientID, reports, time.Now().UTC())
	if err != nil {
		return nil, err
	}
	out := make([]api.ReportResult, len(res))
	var failed []int64
	ended := false
	for i, r := range res {
		if r.Accepted && reports[i].State != runstate.Running {
			ended = true
			if reports[i].State == runstate.Failed {
				failed = append(failed, r.RunID)
			}
		}
		out[i] = api.ReportResult{RunID: strconv.FormatInt(r.RunID, 10), Accepted: r.Accepted, Error: r.Note}
		if r.Note != "" { // a report that changed nothing: tell the agent if that is because of a cancel
			if run, err := s.Store.Run(ctx, r.RunID); err == nil && run.State == runstate.Cancelled {
				out[i].Cancelled = true
			}
		}
	}
	if ended && s.RunsEnded != nil {
		s.RunsEnded(failed)
	}
	return out, nil
}

// AppendOutput stores chunks of the client's running jobs' output
// (agent.output), bounded by MaxOutput: each chunk's answer says how much
// of its run's output the server has, and whether to stop streaming it.
// Chunks must be in order per run, valid UTF-8, at most
// api.MaxOutputChunk bytes each, api.MaxChunksPerCall in a call; a run
// that is not the caller's fails the call and nothing is stored.
func (s *Service) AppendOutput(ctx context.Context, clientID int64, chunks []api.OutputChunk) ([]api.OutputAck, error) {
	if len(chunks) > api.MaxChunksPerCall {
		return nil, refuse(ErrInvalid, "param 1 (chunks): %d chunks, at most %d", len(chunks), api.MaxChunksPerCall)
	}
	in := make([]db.OutputChunk, len(chunks))
	for i, c := range chunks {
		bad := func(format string, args ...any) error {
			return refuse(ErrInvalid, "param 1 (chunks): chunk %d (run %s): "+format, append([]any{i + 1, c.RunID}, args...)...)
		}
		id, err := strconv.ParseInt(c.RunID, 10, 64)
		if err != nil || id <= 0 {
			return nil, bad("run_id must be a run id")
		}
		switch {
		case c.Offset < 0:
			return nil, bad("offset %d is negative", c.Offset)
		case len(c.Data) > api.MaxOutputChunk:
			return nil, bad("data is %d bytes, at most %d", len(c.Data), api.MaxOutputChunk)
		case !utf8.ValidString(c.Data):
			return nil, bad("data is not valid UTF-8")
		}
		in[i] = db.OutputChunk{RunID: id, Offset: int64(c.Offset), Data: c.Data}
	}
	res, err := s.Store.AppendOutput(ctx, clientID, in, s.Agents.MaxOutput)
	if err != nil {
		return nil, err
	}
	out := make([]api.OutputAck, len(res))
	for i, r := range res {
		out[i] = api.OutputAck{RunID: strconv.FormatInt(r.RunID, 10), Offset: int(min(r.Offset, api.MaxOutputOffset)),
			Accepted: r.Accepted, Stop: r.Stop, Error: r.Note}
	}
	return out, nil
}

// Heartbeat renews the runs the client says it holds, queued or running
// (held may be nil: an agent that sends none, as before the parameter
// existed, gets the old loss rule, timeout+grace after its ack), and
// tells it which of them were lost and which of its runs were cancelled
// (within CancelWindow).
func (s *Service) Heartbeat(ctx context.Context, clientID int64, held []int64) (api.Heartbeat, error) {
	if len(held) > api.MaxJobsPerCall {
		return api.Heartbeat{}, refuse(ErrInvalid, "param 1 (run_ids): %d ids, at most %d", len(held), api.MaxJobsPerCall)
	}
	now := time.Now().UTC()
	renewed, err := s.Store.RenewRuns(ctx, clientID, held, now)
	if err != nil {
		return api.Heartbeat{}, err
	}
	ids, err := s.Store.CancelledRuns(ctx, clientID, now.Add(-CancelWindow))
	if err != nil {
		return api.Heartbeat{}, err
	}
	return api.Heartbeat{ServerTime: now, PollInterval: int(s.Agents.PollInterval / time.Second),
		Cancel: idStrings(ids), Lost: idStrings(renewed.Lost)}, nil
}

func idStrings(ids []int64) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strconv.FormatInt(id, 10)
	}
	return out
}
