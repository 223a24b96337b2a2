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

// Limits on submitted jobs (service.PrepareJob).
const (
	MaxScriptBytes = service.MaxScriptBytes
	MaxTargets     = service.MaxTargets
	MaxTimeout     = service.MaxTimeout
)

func (s *Server) jobOperations() []Operation {
	return []Operation{
		{Name: api.MethodJobSubmit, Class: gate.Modifier, caller: byOperator, handler: s.jobSubmit, batch: s.jobSubmitBatch,
			keepsClients: true, auditsSuccess: true,
			Signature: []string{"struct", "struct"},
			Help: "Submit a job. Param: struct {script (required), idempotency_key (the same key from the same user within 24 hours returns the first job, duplicate: true, and creates nothing), targets: [client name|id|fingerprint, or a * ? glob on names], groups: [client group], " +
				"selectors: [selector: the active clients any matches] (at least one target, group or selector), " +
				"interpreter (default /bin/sh), name, priority (int, higher first), timeout (int seconds), permission (default run), " +
				"max_attempts (int), not_before (dateTime), expires_at (dateTime), and the rollout: max_parallel (\"N\" or \"P%\"), " +
				"max_failures (\"N\" or \"P%\"), canary (int), success_threshold (\"P%\")}. Each target must be an active client. " +
				"Fault 403 when the ACL allows the caller on none of the targets. Returns {id, runs}."},
		{Name: api.MethodJobList, Class: gate.NonModifier, caller: byOperator, handler: s.jobList, Checks: []string{PermJobRead},
			Signature: []string{"array", "struct"},
			Help: "List jobs, newest first. Optional param: struct {limit (int, default 100), before (job id: page older), submitted_by}. " +
				"Returns an array of job structs without runs. Without the job.read permission a user sees only their own jobs."},
		{Name: api.MethodJobGet, Class: gate.NonModifier, caller: byOperator, handler: s.jobGet, Checks: []string{PermJobRead},
			Signature: []string{"struct", "string"},
			Help:      "Get one job with its script and its runs (id, client, state, exit_code, attempts, reason, times). Param: job id."},
		{Name: api.MethodJobCancel, Class: gate.NonModifier, Changes: true, caller: byOperator, handler: s.jobCancel, Checks: []string{PermJobCancel},
			Signature: []string{"struct", "string"},
			Help: "Cancel a job: every run not yet final becomes cancelled; an agent holding one learns it on its next call " +
				"and kills or drops it. Param: job id. One's own jobs need no permission; others' need job.cancel. " +
				"Returns {job_id, cancelled: n}; cancelling again changes nothing."},
		{Name: api.MethodJobOutput, Class: gate.NonModifier, caller: byOperator, handler: s.jobOutput, Checks: []string{PermJobRead},
			Signature: []string{"array", "string"},
			Help: "Get the output of a job's runs: the final output, or while a run goes on what its agent streamed so far " +
				"(bounded: the first and last halves with a marker line). Params: job id, optional client name or id (\"\" for all), " +
				"optional struct {offsets: {run id: offset}}: a follower's read, each listed run's output only after that offset. " +
				"Returns [{run_id, client, state, exit_code?, output, truncated, omitted_bytes, size}]; size is the next offset."},
		{Name: api.MethodJobDelete, Class: gate.Modifier, caller: byOperator, handler: s.jobDelete, Checks: []string{PermJobDelete},
			keepsClients: true, Signature: []string{"struct", "array"},
			Help: "Delete jobs with their runs and output, whatever their age, all or none. Param: array of job ids (at most 1000). " +
				"Fault 404 naming an id that is not a job, 409 naming a job with a run not final (cancel it first). " +
				"One's own jobs need no permission; others' need job.delete. Returns {job_ids, jobs, runs}."},
		{Name: api.MethodJobPrune, Class: gate.Modifier, caller: byOperator, handler: s.jobPrune, Permission: PermJobDelete,
			keepsClients: true, Signature: []string{"struct", "struct"},
			Help: "Delete every job whose runs are all final and whose last run ended longer ago than older_than, with its runs and output, " +
				"as the cleaner does (serve --retain), in batches. Param: struct {older_than (a duration such as \"30d\", \"12h\", or int seconds; required), " +
				"dry_run (bool: count, delete nothing)}. Returns {older_than, before, dry_run, jobs, runs}."},
	}
}

func (s *Server) jobSubmit(ctx context.Context, p xmlrpc.Params) (any, error) {
	sub, err := s.prepareSubmit(ctx, p)
	if err != nil {
		return nil, err
	}
	done, err := s.svc.SubmitJob(ctx, sub)
	if err != nil {
		return nil, err
	}
	return s.submitted(done), nil
}

// jobSubmitBatch serves consecutive job.submit calls of one multicall: each
// is checked as it would be alone, and the valid ones are stored in one
// transaction, one commit for all (under one gate admission, see
// interceptBatch; service.SubmitJobs). Checking a job reads clients,
// groups and the ACL, which no job.submit writes, so every call sees what
// it would have seen had the calls run one after another.
func (s *Server) jobSubmitBatch(ctx context.Context, ps []xmlrpc.Params) ([]any, []error) {
	res, errs := make([]any, len(ps)), make([]error, len(ps))
	var subs []service.Submission
	var at []int // the call of each of subs
	for i, p := range ps {
		if sub, err := s.prepareSubmit(ctx, p); err != nil {
			errs[i] = err
		} else {
			subs, at = append(subs, sub), append(at, i)
		}
	}
	done, failed := s.svc.SubmitJobs(ctx, subs)
	for k, i := range at {
		if errs[i] = failed[k]; errs[i] == nil {
			res[i] = s.submitted(done[k])
		}
	}
	return res, errs
}

// prepareSubmit checks a job.submit call (service.PrepareJob); a job no
// target may run is refused, logged and recorded here.
func (s *Server) prepareSubmit(ctx context.Context, p xmlrpc.Params) (service.Submission, error) {
	req, err := jobRequest(p)
	if err != nil {
		return service.Submission{}, err
	}
	sub, err := s.svc.PrepareJob(ctx, callingUser(ctx), req)
	if err == nil {
		return sub, nil
	}
	s.logDenied(ctx, err)
	return sub, inMethod(api.MethodJobSubmit, err)
}

// logDenied logs and records a job the ACL refused at submit (a
// *service.Denied), and returns it; nil for any other error.
func (s *Server) logDenied(ctx context.Context, err error) *service.Denied {
	var d *service.Denied
	if !errors.As(err, &d) {
		return nil
	}
	s.log.Warn("job refused at submit", "request_id", requestFrom(ctx).ID, "user", d.Record.Actor, "permission", d.Permission, "reason", d.Reason)
	s.record(ctx, d.Record)
	return d
}

// jobRequest reads job.submit's param; the service checks the values.
func jobRequest(p xmlrpc.Params) (req service.JobRequest, err error) {
	if err = p.Count(1, 1); err != nil {
		return req, err
	}
	in, err := p.Struct(0, "job")
	if err != nil {
		return req, err
	}
	if req, err = jobMembers(in); err != nil {
		return req, err
	}
	req.Audit = describeParams(p)
	return req, nil
}

// jobMembers reads a job struct: job.submit's param, schedule.add's job.
func jobMembers(in xmlrpc.Struct) (req service.JobRequest, err error) {
	if err = in.Unknown("script", "targets", "groups", "interpreter", "name", "priority", "timeout", "permission",
		"max_attempts", "not_before", "expires_at", "max_parallel", "max_failures", "canary", "success_threshold", "selectors",
		"idempotency_key"); err != nil {
		return req, err
	}
	// The first wrongly typed member is the fault; absent ones are nil or zero.
	val := func(key string) (string, bool) {
		v, ok, e := in.String(key)
		if err == nil {
			err = e
		}
		return v, ok
	}
	opt := func(key string) *string {
		v, ok := val(key)
		if !ok {
			return nil
		}
		given := new(string) // on the heap only when given
		*given = v
		return given
	}
	num := func(key string) int64 {
		v, _, e := in.Int(key)
		if err == nil {
			err = e
		}
		return v
	}
	req.Script, _ = val("script")
	req.IdempotencyKey, _ = val("idempotency_key")
	req.Interpreter = opt("interpreter")
	req.Name, _ = val("name")
	req.Permission = opt("permission")
	req.Priority, req.Timeout, req.MaxAttempts = num("priority"), num("timeout"), num("max_attempts")
	if err != nil {
		return req, err
	}
	if req.NotBefore, _, err = in.Time("not_before"); err != nil {
		return req, err
	}
	if req.ExpiresAt, _, err = in.Time("expires_at"); err != nil {
		return req, err
	}
	if req.Targets, _, err = in.StringSlice("targets"); err != nil {
		return req, err
	}
	if req.Groups, _, err = in.StringSlice("groups"); err != nil {
		return req, err
	}
	if req.Selectors, _, err = in.StringSlice("selectors"); err != nil {
		return req, err
	}
	err = rolloutRequest(in, &req)
	return req, err
}

// submitted tells daemon-mode targets about a stored job (push.go, without
// waiting) and returns job.submit's result. A gated rollout's targets are
// told as their turns come (rollout.go): the first window, or the
// canaries.
func (s *Server) submitted(j service.Submitted) api.SubmitResult {
	if j.Job.Duplicate {
		// Nothing new: the first submit told its clients.
	} else if j.Job.Rollout.Gated() && (j.NotBefore.IsZero() || !j.NotBefore.After(time.Now())) {
		s.rollouts.Wake(j.Job.ID)
	} else {
		s.pushSubmitted(j.Clients, j.NotBefore)
	}
	return api.SubmitResult{ID: strconv.FormatInt(j.Job.ID, 10), Runs: j.Runs(), Duplicate: j.Job.Duplicate}
}

func (s *Server) jobList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	f := db.JobFilter{Limit: 100}
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
			f.Limit = int(v)
		}
		if f.BeforeID, _, err = in.ID("before"); err != nil {
			return nil, err
		}
		if f.SubmittedBy, _, err = in.String("submitted_by"); err != nil {
			return nil, err
		}
	}
	jobs, err := s.svc.ListJobs(ctx, callingUser(ctx), f)
	if err != nil {
		return nil, inMethod(api.MethodJobList, err)
	}
	return mapSlice(jobs, func(j db.Job) api.Job { return apiJob(j, false) }), nil
}

func (s *Server) jobGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	id, err := jobID(p, 1)
	if err != nil {
		return nil, err
	}
	j, runs, err := s.svc.Job(ctx, callingUser(ctx), id)
	if err != nil {
		return nil, err
	}
	out := apiJob(j, true)
	out.Runs = mapSlice(runs, apiRun)
	return out, nil
}

func (s *Server) jobOutput(ctx context.Context, p xmlrpc.Params) (any, error) {
	id, err := jobID(p, 3)
	if err != nil {
		return nil, err
	}
	var client string
	if p.Has(1) {
		if client, err = p.String(1, "client"); err != nil {
			return nil, err
		}
	}
	var since map[int64]int64
	if p.Has(2) {
		if since, err = outputOffsets(p); err != nil {
			return nil, err
		}
	}
	runs, err := s.svc.JobOutput(ctx, callingUser(ctx), id, client, since)
	if err != nil {
		return nil, err
	}
	return mapSlice(runs, func(r db.Run) api.Output {
		return api.Output{RunID: strconv.FormatInt(r.ID, 10), Client: r.ClientName, State: string(r.State),
			ExitCode: r.ExitCode, Output: r.Output, Truncated: r.OutputTruncated,
			OmittedBytes: int(min(r.OutputOmitted, api.MaxOutputOffset)), Size: int(min(r.OutputSize, api.MaxOutputOffset))}
	}), nil
}

// outputOffsets reads job.output's options: {offsets: {run id: offset}}.
func outputOffsets(p xmlrpc.Params) (map[int64]int64, error) {
	in, err := p.Struct(2, "options")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("offsets"); err != nil {
		return nil, err
	}
	offs, ok, err := in.Struct("offsets")
	if err != nil || !ok {
		return nil, err
	}
	since := make(map[int64]int64, offs.Len())
	for key := range offs.Map() {
		run, err := strconv.ParseInt(key, 10, 64)
		if err != nil || run <= 0 {
			return nil, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: fmt.Sprintf("param 3 (options): offsets: %q is not a run id", key)}
		}
		n, _, err := offs.Int(key)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: fmt.Sprintf("param 3 (options): offsets: run %d: %d is negative", run, n)}
		}
		since[run] = n
	}
	return since, nil
}

func (s *Server) jobCancel(ctx context.Context, p xmlrpc.Params) (any, error) {
	id, err := jobID(p, 1)
	if err != nil {
		return nil, err
	}
	me := callingUser(ctx)
	changes, err := s.svc.CancelJob(ctx, me, id)
	if err != nil {
		return nil, err
	}
	s.log.Info("job cancelled", "request_id", requestFrom(ctx).ID, "job_id", id, "by", me.Name, "runs", len(changes))
	return api.CancelResult{JobID: strconv.FormatInt(id, 10), Cancelled: len(changes)}, nil
}

// jobID reads the job id that is the first of 1..max params.
func jobID(p xmlrpc.Params, max int) (int64, error) {
	if err := p.Count(1, max); err != nil {
		return 0, err
	}
	return p.ID(0, "job_id")
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
	apiRollout(&out, j)
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
		Client: r.ClientName, State: string(r.State), Canary: r.Canary, ExitCode: r.ExitCode, Attempts: r.Attempts, Reason: r.Reason,
		SentAt: optTime(r.SentAt), StartedAt: optTime(r.StartedAt), FinishedAt: optTime(r.FinishedAt),
	}
}

func (s *Server) jobDelete(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	ids, err := p.IDs(0, "job_ids")
	if err != nil {
		return nil, err
	}
	me := callingUser(ctx)
	res, err := s.svc.DeleteJobs(ctx, me, ids)
	if err != nil {
		return nil, inMethod(api.MethodJobDelete, err)
	}
	out := api.DeleteResult{JobIDs: []string{}, Jobs: res.Jobs, Runs: res.Runs}
	seen := map[int64]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out.JobIDs = append(out.JobIDs, strconv.FormatInt(id, 10))
		}
	}
	noteAudit(ctx, fmt.Sprintf("deleted %d jobs, %d runs", res.Jobs, res.Runs))
	s.log.Info("jobs deleted", "request_id", requestFrom(ctx).ID, "by", me.Name, "job_ids", out.JobIDs, "runs", res.Runs)
	return out, nil
}

func (s *Server) jobPrune(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	in, err := p.Struct(0, "options")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("older_than", "dry_run"); err != nil {
		return nil, err
	}
	age, err := ageMember(in, "older_than")
	if err != nil {
		return nil, err
	}
	dryRun, _, err := in.Bool("dry_run")
	if err != nil {
		return nil, err
	}
	at := time.Now().UTC()
	res, err := s.svc.PruneJobs(ctx, age, at, dryRun)
	if err != nil {
		if res.Jobs > 0 && !dryRun {
			noteAudit(ctx, fmt.Sprintf("deleted %d jobs, %d runs before it stopped", res.Jobs, res.Runs))
		}
		return nil, inMethod(api.MethodJobPrune, err)
	}
	if !dryRun {
		noteAudit(ctx, fmt.Sprintf("deleted %d jobs, %d runs", res.Jobs, res.Runs))
		s.log.Info("jobs pruned", "request_id", requestFrom(ctx).ID, "by", callingUser(ctx).Name, "older_than", api.FormatAge(age),
			"jobs", res.Jobs, "runs", res.Runs)
	}
	return api.PruneResult{OlderThan: api.FormatAge(age), Before: at.Add(-age), DryRun: dryRun, Jobs: res.Jobs, Runs: res.Runs}, nil
}

// ageMember reads a required member that is an age: a duration string
// as api.ParseAge reads it ("30d"), or an int of seconds.
func ageMember(in xmlrpc.Struct, key string) (time.Duration, error) {
	v, ok := in.Get(key)
	if !ok || v == nil {
		return 0, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: in.Label() + ": member \"" + key + "\" is required"}
	}
	var secs int64
	switch v := v.(type) {
	case int64:
		secs = v
	case int:
		secs = int64(v)
	case string:
		d, err := api.ParseAge(v)
		if err != nil {
			return 0, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: in.Label() + ": member \"" + key + "\": " + err.Error()}
		}
		return d, nil
	default:
		return 0, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: in.Label() + ": member \"" + key + "\": want a duration such as \"30d\" or int seconds"}
	}
	if secs < 0 || secs > int64(api.MaxAge/time.Second) {
		return 0, &xmlrpc.Fault{Code: xmlrpc.CodeInvalid, Message: fmt.Sprintf("%s: member %q: %d seconds is outside 0..%d", in.Label(), key, secs, int64(api.MaxAge/time.Second))}
	}
	return time.Duration(secs) * time.Second, nil
}
