package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Limits on submitted jobs.
const (
	MaxScriptBytes = 1 << 20
	MaxTargets     = 10000
	MaxTimeout     = 7 * 24 * time.Hour
)

func (s *Server) jobOperations() []Operation {
	return []Operation{
		{Name: "job.submit", Class: gate.Modifier, caller: byOperator, handler: s.jobSubmit, batch: s.jobSubmitBatch,
			keepsClients: true, auditsSuccess: true,
			Signature: []string{"struct", "struct"},
			Help: "Submit a job. Param: struct {script (required), targets: [client name|id|fingerprint], groups: [client group] (at least one target or group), " +
				"interpreter (default /bin/sh), name, priority (int, higher first), timeout (int seconds), permission (default run), " +
				"max_attempts (int), not_before (dateTime), expires_at (dateTime)}. Each target must be an active client. " +
				"Fault 403 when the ACL allows the caller on none of the targets. Returns {id, runs}."},
		{Name: "job.list", Class: gate.NonModifier, caller: byOperator, handler: s.jobList, Checks: []string{PermJobRead},
			Signature: []string{"array", "struct"},
			Help: "List jobs, newest first. Optional param: struct {limit (int, default 100), before (job id: page older), submitted_by}. " +
				"Returns an array of job structs without runs. Without the job.read permission a user sees only their own jobs."},
		{Name: "job.get", Class: gate.NonModifier, caller: byOperator, handler: s.jobGet, Checks: []string{PermJobRead},
			Signature: []string{"struct", "string"},
			Help:      "Get one job with its script and its runs (id, client, state, exit_code, attempts, reason, times). Param: job id."},
		{Name: "job.cancel", Class: gate.NonModifier, Changes: true, caller: byOperator, handler: s.jobCancel, Checks: []string{PermJobCancel},
			Signature: []string{"struct", "string"},
			Help: "Cancel a job: every run not yet final becomes cancelled; an agent holding one learns it on its next call " +
				"and kills or drops it. Param: job id. One's own jobs need no permission; others' need job.cancel. " +
				"Returns {job_id, cancelled: n}; cancelling again changes nothing."},
		{Name: "job.output", Class: gate.NonModifier, caller: byOperator, handler: s.jobOutput, Checks: []string{PermJobRead},
			Signature: []string{"array", "string"},
			Help:      "Get the captured output of a job's runs. Params: job id, optional client name or id. Returns [{run_id, client, state, exit_code?, output, truncated}]."},
	}
}

// jobSubmit stores one job, with the audit record of its submission in the
// same transaction.
func (s *Server) jobSubmit(ctx context.Context, p xmlrpc.Params) (any, error) {
	sub, err := s.prepareSubmit(ctx, p)
	if err != nil {
		return nil, err
	}
	js, err := s.store.SubmitJobs(ctx, []db.NewJob{sub.job}, []db.Operation{sub.audit})
	if err != nil {
		return nil, err
	}
	return s.submitted(sub, js[0]), nil
}

// jobSubmitBatch serves consecutive job.submit calls of one multicall: each
// is checked as it would be alone, and the valid ones are stored in one
// transaction, one commit for all (under one gate admission, see
// interceptBatch). Checking a job reads clients, groups and the ACL, which
// no job.submit writes, so every call sees what it would have seen had
// the calls run one after another. Should the transaction fail, each job
// is stored alone, so that one job's failure is not the others'.
func (s *Server) jobSubmitBatch(ctx context.Context, ps []xmlrpc.Params) ([]any, []error) {
	res, errs := make([]any, len(ps)), make([]error, len(ps))
	var subs []submission
	var at []int // the call of each of subs
	for i, p := range ps {
		sub, err := s.prepareSubmit(ctx, p)
		if err != nil {
			errs[i] = err
			continue
		}
		subs, at = append(subs, sub), append(at, i)
	}
	if len(subs) == 0 {
		return res, errs
	}
	jobs, audit := make([]db.NewJob, len(subs)), make([]db.Operation, len(subs))
	for k, sub := range subs {
		jobs[k], audit[k] = sub.job, sub.audit
	}
	js, err := s.store.SubmitJobs(ctx, jobs, audit)
	if err == nil {
		for k, sub := range subs {
			res[at[k]] = s.submitted(sub, js[k])
		}
		return res, errs
	}
	if len(subs) == 1 {
		errs[at[0]] = err
		return res, errs
	}
	for k, sub := range subs {
		js, err := s.store.SubmitJobs(ctx, []db.NewJob{sub.job}, []db.Operation{sub.audit})
		if err != nil {
			errs[at[k]] = err
			continue
		}
		res[at[k]] = s.submitted(sub, js[0])
	}
	return res, errs
}

// submission is a checked job.submit call, ready to be stored.
type submission struct {
	job     db.NewJob
	clients []db.Client // the targets, to push to once the job is stored
	audit   db.Operation
}

// submitted tells daemon-mode targets about a stored job (push.go, without
// waiting) and returns job.submit's result.
func (s *Server) submitted(sub submission, j db.Job) api.SubmitResult {
	s.pushSubmitted(sub.clients, sub.job.NotBefore)
	total := 0
	for _, n := range j.Counts {
		total += n
	}
	return api.SubmitResult{ID: strconv.FormatInt(j.ID, 10), Runs: total}
}

// prepareSubmit checks a job.submit call (fields, targets, groups, the
// ACL) and returns the job to store; a job no target may run is refused
// and recorded here.
func (s *Server) prepareSubmit(ctx context.Context, p xmlrpc.Params) (submission, error) {
	if err := p.Count(1, 1); err != nil {
		return submission{}, err
	}
	in, err := p.Struct(0, "job")
	if err != nil {
		return submission{}, err
	}
	if err := in.Unknown("script", "targets", "groups", "interpreter", "name", "priority", "timeout", "permission",
		"max_attempts", "not_before", "expires_at"); err != nil {
		return submission{}, err
	}
	bad := func(field, format string, args ...any) error {
		return xmlrpc.Faultf(xmlrpc.CodeInvalid, "job.submit: %s: %s", field, fmt.Sprintf(format, args...))
	}
	now := time.Now().UTC()
	nj := db.NewJob{SubmittedBy: callingUser(ctx).Name, CreatedAt: now, Interpreter: "/bin/sh", Permission: "run"}
	var ok bool
	if nj.Script, ok, err = in.String("script"); err != nil {
		return submission{}, err
	} else if !ok || nj.Script == "" {
		return submission{}, bad("script", "required and must not be empty")
	}
	if len(nj.Script) > MaxScriptBytes {
		return submission{}, bad("script", "%d bytes, at most %d", len(nj.Script), MaxScriptBytes)
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"script", &nj.Script}, {"interpreter", &nj.Interpreter}, {"name", &nj.Name}, {"permission", &nj.Permission}} {
		v, ok, err := in.String(f.key)
		if err != nil {
			return submission{}, err
		}
		if ok {
			*f.dst = v
		}
		if err := jobxml.ValidateText(f.key, *f.dst); err != nil {
			return submission{}, xmlrpc.Faultf(xmlrpc.CodeInvalid, "job.submit: %v", err)
		}
	}
	if nj.Interpreter == "" || strings.ContainsAny(nj.Interpreter, "\n\r") {
		return submission{}, bad("interpreter", "must be a non-empty path")
	}
	if nj.Permission == "" || len(nj.Permission) > 64 {
		return submission{}, bad("permission", "must be 1..64 characters")
	}
	if err := s.namespaces.CheckJobPermission(nj.Permission); err != nil {
		return submission{}, bad("permission", "%v", err)
	}
	if nj.Name == "" {
		nj.Name = defaultJobName(nj.Script)
	} else if len(nj.Name) > 200 {
		return submission{}, bad("name", "longer than 200 bytes")
	}
	if v, ok, err := in.Int("priority"); err != nil {
		return submission{}, err
	} else if ok {
		if v < -1000000 || v > 1000000 {
			return submission{}, bad("priority", "%d is outside -1000000..1000000", v)
		}
		nj.Priority = int(v)
	}
	if v, ok, err := in.Int("timeout"); err != nil {
		return submission{}, err
	} else if ok {
		if v < 0 || time.Duration(v)*time.Second > MaxTimeout {
			return submission{}, bad("timeout", "%d seconds is outside 0..%d", v, int(MaxTimeout/time.Second))
		}
		nj.Timeout = time.Duration(v) * time.Second
	}
	if v, ok, err := in.Int("max_attempts"); err != nil {
		return submission{}, err
	} else if ok {
		if v < 0 || v > 1000 {
			return submission{}, bad("max_attempts", "%d is outside 0..1000", v)
		}
		nj.MaxAttempts = int(v)
	}
	if nj.NotBefore, _, err = in.Time("not_before"); err != nil {
		return submission{}, err
	} else if err := jobxml.CheckTime(nj.NotBefore); err != nil && !nj.NotBefore.IsZero() {
		return submission{}, bad("not_before", "%v", err)
	}
	if nj.ExpiresAt, _, err = in.Time("expires_at"); err != nil {
		return submission{}, err
	} else if err := jobxml.CheckTime(nj.ExpiresAt); err != nil && !nj.ExpiresAt.IsZero() {
		return submission{}, bad("expires_at", "%v", err)
	}
	if !nj.ExpiresAt.IsZero() && !nj.ExpiresAt.After(now) {
		return submission{}, bad("expires_at", "%s is not in the future", nj.ExpiresAt.Format(time.RFC3339))
	}
	targets, _, err := in.StringSlice("targets")
	if err != nil {
		return submission{}, err
	}
	groups, _, err := in.StringSlice("groups")
	if err != nil {
		return submission{}, err
	}
	if len(targets) == 0 && len(groups) == 0 {
		return submission{}, bad("targets", "required: at least one client name, id or fingerprint, or a client group in groups")
	} else if len(targets)+len(groups) > MaxTargets {
		return submission{}, bad("targets", "%d targets and groups, at most %d", len(targets)+len(groups), MaxTargets)
	}
	clients, err := s.resolveClients(ctx, targets)
	if err != nil {
		return submission{}, err
	}
	for _, c := range clients {
		if c.Status != db.ClientActive {
			return submission{}, xmlrpc.Faultf(xmlrpc.CodeConflict, "job.submit: target %q: client %d is %s, not active", c.Name, c.ID, c.Status)
		}
	}
	// Groups are resolved to their members now (SPEC §2): a machine added
	// to the group later does not receive this job.
	members, err := s.groupClients(ctx, groups)
	if err != nil {
		return submission{}, err
	}
	seen := map[int64]bool{}
	for _, c := range clients {
		seen[c.ID] = true
	}
	for _, c := range members {
		if !seen[c.ID] {
			seen[c.ID] = true
			clients = append(clients, c)
		}
	}
	if len(clients) == 0 {
		return submission{}, xmlrpc.Faultf(xmlrpc.CodeConflict, "job.submit: groups %s have no active client", strings.Join(groups, ", "))
	}
	if len(clients) > MaxTargets {
		return submission{}, bad("targets", "%d clients, at most %d", len(clients), MaxTargets)
	}
	for _, g := range groups {
		targets = append(targets, "group:"+g)
	}
	// Early ACL check: refuse a job no target could run. Each run is
	// checked again at dispatch, so a rule changed meanwhile still applies.
	policy, err := s.policy.Policy(ctx)
	if err != nil {
		return submission{}, err
	}
	var last acl.Decision
	allowed := 0
	for _, c := range clients {
		d := policy.Check(nj.SubmittedBy, nj.Permission, acl.Client{ID: c.ID, Name: c.Name})
		if d.Allowed {
			allowed++
		} else {
			last = d
		}
	}
	if allowed == 0 {
		s.log.Warn("job refused at submit", "request_id", requestFrom(ctx).ID, "user", nj.SubmittedBy, "permission", nj.Permission, "reason", last.Reason)
		s.record(ctx, db.Operation{At: now, Actor: nj.SubmittedBy, Name: "job.submit",
			Target: strings.Join(targets, ","), Outcome: "denied", Detail: last.Reason})
		return submission{}, xmlrpc.Faultf(xmlrpc.CodeForbidden, "job.submit: %s may not %q on any target: %s", nj.SubmittedBy, nj.Permission, last.Reason)
	}
	nj.Targets = targets
	for _, c := range clients {
		nj.ClientIDs = append(nj.ClientIDs, c.ID)
	}
	audit := db.Operation{At: now, ServerID: s.serverID(), Actor: nj.SubmittedBy, Name: "job.submit",
		Target: describeParams(p), Outcome: "ok"}
	return submission{job: nj, clients: clients, audit: audit}, nil
}

// defaultJobName names a job after the first line of its script.
func defaultJobName(script string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(script), "\n")
	line = strings.TrimSpace(line)
	if r := []rune(line); len(r) > 40 {
		line = string(r[:40]) + "…"
	}
	if line == "" {
		return "job"
	}
	return line
}

// resolveClients maps targets (id, fingerprint or name) to clients
// (service.Client).
func (s *Server) resolveClients(ctx context.Context, refs []string) ([]db.Client, error) {
	return s.svc.Clients(ctx, refs)
}

func (s *Server) resolveClient(ctx context.Context, ref string) (db.Client, error) {
	return s.svc.Client(ctx, ref)
}

func (s *Server) jobList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var f db.JobFilter
	if p.Has(0) {
		in, err := p.Struct(0, "filter")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("limit", "before", "submitted_by"); err != nil {
			return nil, err
		}
		if v, ok, err := in.Int("limit"); err != nil {
			return nil, err
		} else if ok {
			if v < 1 || v > 10000 {
				return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "job.list: limit: %d is outside 1..10000", v)
			}
			f.Limit = int(v)
		}
		if f.BeforeID, _, err = in.ID("before"); err != nil {
			return nil, err
		}
		if f.SubmittedBy, _, err = in.String("submitted_by"); err != nil {
			return nil, err
		}
	}
	if d, err := s.may(ctx, PermJobRead); err != nil {
		return nil, err
	} else if !d.Allowed {
		// Everyone sees their own jobs; others' need job.read.
		if me := callingUser(ctx).Name; f.SubmittedBy == "" {
			f.SubmittedBy = me
		} else if f.SubmittedBy != me {
			return nil, s.authorize(ctx, PermJobRead)
		}
	}
	jobs, err := s.store.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	return mapSlice(jobs, func(j db.Job) api.Job { return apiJob(j, false) }), nil
}

func (s *Server) jobGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "job_id")
	if err != nil {
		return nil, err
	}
	j, err := s.readableJob(ctx, id)
	if err != nil {
		return nil, err
	}
	runs, err := s.store.Runs(ctx, id)
	if err != nil {
		return nil, err
	}
	out := apiJob(j, true)
	out.Runs = mapSlice(runs, apiRun)
	return out, nil
}

func (s *Server) jobOutput(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 2); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "job_id")
	if err != nil {
		return nil, err
	}
	var only string
	if p.Has(1) {
		if only, err = p.String(1, "client"); err != nil {
			return nil, err
		}
	}
	if _, err := s.readableJob(ctx, id); err != nil {
		return nil, err
	}
	runs, err := s.store.Runs(ctx, id)
	if err != nil {
		return nil, err
	}
	out := []api.Output{}
	for _, r := range runs {
		if only != "" && only != r.ClientName && only != strconv.FormatInt(r.ClientID, 10) {
			continue
		}
		out = append(out, api.Output{RunID: strconv.FormatInt(r.ID, 10), Client: r.ClientName, State: string(r.State),
			ExitCode: r.ExitCode, Output: r.Output, Truncated: r.OutputTruncated})
	}
	if only != "" && len(out) == 0 {
		return nil, xmlrpc.Faultf(xmlrpc.CodeNotFound, "job %d has no run on client %q", id, only)
	}
	return out, nil
}

func (s *Server) jobCancel(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "job_id")
	if err != nil {
		return nil, err
	}
	j, err := s.store.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	me := callingUser(ctx).Name
	if j.SubmittedBy != me {
		if err := s.authorize(ctx, PermJobCancel); err != nil {
			return nil, err
		}
	}
	changes, err := s.store.CancelJob(ctx, id, time.Now().UTC(), "cancelled by "+me)
	if err != nil {
		return nil, err
	}
	s.log.Info("job cancelled", "request_id", requestFrom(ctx).ID, "job_id", id, "by", me, "runs", len(changes))
	return api.CancelResult{JobID: strconv.FormatInt(id, 10), Cancelled: len(changes)}, nil
}

// readableJob returns a job the caller may see: their own, or any with
// the job.read permission.
func (s *Server) readableJob(ctx context.Context, id int64) (db.Job, error) {
	j, err := s.store.Job(ctx, id)
	if err != nil {
		return db.Job{}, err
	}
	if j.SubmittedBy != callingUser(ctx).Name {
		if err := s.authorize(ctx, PermJobRead); err != nil {
			return db.Job{}, err
		}
	}
	return j, nil
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func apiJob(j db.Job, withScript bool) api.Job {
	out := api.Job{
		ID: strconv.FormatInt(j.ID, 10), Name: j.Name, Status: j.Status(), Permission: j.Permission,
		Interpreter: j.Interpreter, Priority: j.Priority, SubmittedBy: j.SubmittedBy, CreatedAt: j.CreatedAt,
		NotBefore: optTime(j.NotBefore), ExpiresAt: optTime(j.ExpiresAt), Timeout: int(j.Timeout / time.Second),
		MaxAttempts: j.MaxAttempts, Targets: j.Targets, Counts: map[string]int{},
	}
	if out.Targets == nil {
		out.Targets = []string{}
	}
	if withScript {
		out.Script = j.Script
	}
	for st, n := range j.Counts {
		out.Counts[string(st)] = n
	}
	return out
}

func apiRun(r db.Run) api.Run {
	return api.Run{
		ID: strconv.FormatInt(r.ID, 10), JobID: strconv.FormatInt(r.JobID, 10), ClientID: strconv.FormatInt(r.ClientID, 10),
		Client: r.ClientName, State: string(r.State), ExitCode: r.ExitCode, Attempts: r.Attempts, Reason: r.Reason,
		SentAt: optTime(r.SentAt), StartedAt: optTime(r.StartedAt), FinishedAt: optTime(r.FinishedAt),
	}
}
