package service

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scirectl/scirectl/acl"
	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/selector"
)

// Limits on submitted jobs.
const (
	MaxScriptBytes = 1 << 20
	MaxTargets     = 10000
	MaxTimeout     = 7 * 24 * time.Hour
	// MaxIdempotencyKey bounds an idempotency key: room for a UUID, a
	// hostname and a date, not for a document.
	MaxIdempotencyKey = 200
)

// JobRequest is a job as an operator submits it. Interpreter and
// Permission are nil when not given (then /bin/sh and run); given, they
// must not be empty. The numbers are checked against their ranges; zero is
// their default.
type JobRequest struct {
	Script      string
	Targets     []string // clients, by id, name or fingerprint; names may be * and ? globs
	Groups      []string // client groups, resolved to their active members now
	Selectors   []string // selectors (package selector): the active clients any matches, now
	Interpreter *string
	Name        string // empty: the script's first line
	Permission  *string
	Priority    int64
	Timeout     int64 // seconds; 0: none
	MaxAttempts int64
	NotBefore   time.Time
	ExpiresAt   time.Time
	// The rollout, as written: "N" or "P%" for MaxParallel and
	// MaxFailures, "P%" for SuccessThreshold; empty, not given.
	MaxParallel      string
	MaxFailures      string
	Canary           int64
	SuccessThreshold string
	// RerunOf is the job a rerun repeats (RerunJob), 0 for a new job.
	RerunOf int64
	// IdempotencyKey: see db.NewJob.IdempotencyKey; at most
	// MaxIdempotencyKey bytes of printable ASCII.
	IdempotencyKey string
	// Method names the operation in the audit record and the refusal
	// (job.submit when empty).
	Method string
	// Audit is what the audit record of the submission names as its
	// target: the daemon's rendering of the call, which shows the script
	// only as its length and SHA-256.
	Audit string
}

// Submission is a checked job, ready to be stored (SubmitJob, SubmitJobs).
type Submission struct {
	Job     db.NewJob
	Clients []db.Client   // the targets, each once
	Audit   db.AuditEntry // the record of the submission, stored with the job
}

// Submitted is a stored job.
type Submitted struct {
	Job db.Job
	// Clients are its targets, and NotBefore when they may start it: the
	// daemon tells those in daemon mode (push).
	Clients   []db.Client
	NotBefore time.Time
}

// Runs is how many runs the job has: one per target.
func (s Submitted) Runs() int {
	total := 0
	for _, n := range s.Job.Counts {
		total += n
	}
	return total
}

// Denied is the refusal of work by the ACL (a forbidden refusal:
// errors.Is(err, ErrForbidden)): a job no target may run. Record is its
// audit record, which the caller writes with its own log line: the refusal
// is recorded once, where it is decided.
type Denied struct {
	Refusal    *Error
	Permission string
	Reason     string // the ACL's, for the log
	Record     db.AuditEntry
}

func (d *Denied) Error() string { return d.Refusal.Msg }
func (d *Denied) Unwrap() error { return d.Refusal }

// PrepareJob checks a job for caller — its fields and limits, its targets
// and groups (resolved to the clients now: a machine added to a group
// later does not receive it), the early ACL check — and returns it ready
// to be stored. A job no target may run is refused with a *Denied.
// Refusals that name a field read "field: why"; the daemon puts the
// method's name in front.
func (s *Service) PrepareJob(ctx context.Context, caller db.User, req JobRequest) (Submission, error) {
	bad := func(field, format string, args ...any) error {
		return refuse(ErrInvalid, "%s: "+format, append([]any{field}, args...)...)
	}
	now := time.Now().UTC()
	nj := db.NewJob{SubmittedBy: caller.Name, CreatedAt: now, Interpreter: "/bin/sh", Permission: "run",
		Script: req.Script, Name: req.Name}
	if nj.Script == "" {
		return Submission{}, bad("script", "required and must not be empty")
	}
	if len(nj.Script) > MaxScriptBytes {
		return Submission{}, bad("script", "%d bytes, at most %d", len(nj.Script), MaxScriptBytes)
	}
	if req.Interpreter != nil {
		nj.Interpreter = *req.Interpreter
	}
	if req.Permission != nil {
		nj.Permission = *req.Permission
	}
	for _, f := range []struct{ key, v string }{{"script", nj.Script}, {"interpreter", nj.Interpreter}, {"name", nj.Name}, {"permission", nj.Permission}} {
		if err := jobxml.ValidateText(f.key, f.v); err != nil {
			return Submission{}, refuse(ErrInvalid, "%v", err)
		}
	}
	if nj.Interpreter == "" || strings.ContainsAny(nj.Interpreter, "\n\r") {
		return Submission{}, bad("interpreter", "must be a non-empty path")
	}
	if nj.Permission == "" || len(nj.Permission) > 64 {
		return Submission{}, bad("permission", "must be 1..64 characters")
	}
	if err := s.Namespaces.CheckJobPermission(nj.Permission); err != nil {
		return Submission{}, bad("permission", "%v", err)
	}
	if nj.Name == "" {
		nj.Name = defaultJobName(nj.Script)
	} else if len(nj.Name) > 200 {
		return Submission{}, bad("name", "longer than 200 bytes")
	}
	if v := req.Priority; v < -1000000 || v > 1000000 {
		return Submission{}, bad("priority", "%d is outside -1000000..1000000", v)
	}
	nj.Priority = int(req.Priority)
	if v := req.Timeout; v < 0 || time.Duration(v)*time.Second > MaxTimeout {
		return Submission{}, bad("timeout", "%d seconds is outside 0..%d", v, int(MaxTimeout/time.Second))
	}
	nj.Timeout = time.Duration(req.Timeout) * time.Second
	if v := req.MaxAttempts; v < 0 || v > 1000 {
		return Submission{}, bad("max_attempts", "%d is outside 0..1000", v)
	}
	nj.MaxAttempts = int(req.MaxAttempts)
	nj.NotBefore, nj.ExpiresAt = req.NotBefore, req.ExpiresAt
	if err := jobxml.CheckTime(nj.NotBefore); err != nil && !nj.NotBefore.IsZero() {
		return Submission{}, bad("not_before", "%v", err)
	}
	if err := jobxml.CheckTime(nj.ExpiresAt); err != nil && !nj.ExpiresAt.IsZero() {
		return Submission{}, bad("expires_at", "%v", err)
	}
	if !nj.ExpiresAt.IsZero() && !nj.ExpiresAt.After(now) {
		return Submission{}, bad("expires_at", "%s is not in the future", nj.ExpiresAt.Format(time.RFC3339))
	}
	clients, targets, err := s.jobTargets(ctx, req.Targets, req.Groups, req.Selectors)
	if err != nil {
		return Submission{}, err
	}
	if nj.Rollout, err = rolloutSpec(req, len(clients)); err != nil {
		return Submission{}, refuse(ErrInvalid, "%v", err)
	}
	nj.RerunOf = req.RerunOf
	if err := checkIdempotencyKey(req.IdempotencyKey); err != nil {
		return Submission{}, err
	}
	nj.IdempotencyKey = req.IdempotencyKey
	method := req.Method
	if method == "" {
		method = api.MethodJobSubmit
	}
	// Early ACL check: refuse a job no target could run. Each run is
	// checked again at dispatch, so a rule changed meanwhile still applies.
	policy, err := s.policy(ctx)
	if err != nil {
		return Submission{}, err
	}
	var last acl.Decision
	allowed := 0
	for _, c := range clients {
		d := policy.Check(nj.SubmittedBy, nj.Permission, acl.Client{ID: c.ID, Name: c.Name, Labels: c.Labels})
		if d.Allowed {
			allowed++
		} else {
			last = d
		}
	}
	if allowed == 0 {
		return Submission{}, &Denied{
			Refusal:    &Error{Kind: ErrForbidden, Msg: fmt.Sprintf("%s may not %q on any target: %s", nj.SubmittedBy, nj.Permission, last.Reason)},
			Permission: nj.Permission, Reason: last.Reason,
			Record: db.AuditEntry{At: now, Actor: nj.SubmittedBy, Name: method,
				Target: strings.Join(targets, ","), Outcome: "denied", Detail: last.Reason},
		}
	}
	nj.Targets = targets
	nj.ClientIDs = make([]int64, len(clients))
	for i, c := range clients {
		nj.ClientIDs[i] = c.ID
	}
	audit := db.AuditEntry{At: now, ServerID: s.serverID(), Actor: nj.SubmittedBy, Name: method, Target: req.Audit, Outcome: "ok"}
	return Submission{Job: nj, Clients: clients, Audit: audit}, nil
}

// rolloutSpec reads a job's rollout (package rollout) and resolves its
// limits against the job's number of runs.
func rolloutSpec(req JobRequest, runs int) (rollout.Spec, error) {
	var spec rollout.Spec
	par, err := rollout.ParseLimit("max_parallel", req.MaxParallel)
	if err != nil {
		return spec, err
	}
	if par.Set && par.N == 0 {
		return spec, fmt.Errorf("max_parallel: %s lets no run out; give at least 1 (or 1%%)", par)
	}
	fail, err := rollout.ParseLimit("max_failures", req.MaxFailures)
	if err != nil {
		return spec, err
	}
	if spec.SuccessThreshold, err = rollout.ParseThreshold("success_threshold", req.SuccessThreshold); err != nil {
		return spec, err
	}
	if req.Canary < 0 || req.Canary > MaxTargets {
		return spec, fmt.Errorf("canary: %d is outside 0..%d", req.Canary, MaxTargets)
	}
	spec.MaxParallel = par.Parallel(runs)
	spec.MaxFailures, spec.Budgeted = fail.Failures(runs)
	spec.Canary = int(req.Canary)
	return spec, spec.Validate(runs)
}

// jobTargets resolves a job's targets, groups and selectors to the active
// clients that run it, each once, in the order given, and returns them
// with the job's targets as stored: the references as given, then
// group:NAME for each group and selector:SEL for each selector. A target
// with * or ? that is no client's exact name is a glob on the active
// clients' names, and must match one.
func (s *Service) jobTargets(ctx context.Context, refs, groups, selectors []string) ([]db.Client, []string, error) {
	bad := func(format string, args ...any) error {
		return refuse(ErrInvalid, "targets: "+format, args...)
	}
	if len(refs) == 0 && len(groups) == 0 && len(selectors) == 0 {
		return nil, nil, bad("required: at least one client name, id or fingerprint, a client group in groups, or a selector in selectors")
	} else if len(refs)+len(groups)+len(selectors) > MaxTargets {
		return nil, nil, bad("%d targets, groups and selectors, at most %d", len(refs)+len(groups)+len(selectors), MaxTargets)
	}
	var sel selector.Union
	if len(selectors) > 0 {
		var err error
		if sel, err = selector.ParseUnion(selectors); err != nil {
			return nil, nil, refuse(ErrInvalid, "selectors: %v", err)
		}
	}
	// take is the clients p picks now, no more than MaxTargets, chosen
	// from one set for every glob and the selectors.
	var set *clientSet
	take := func(p pick, exact string) ([]db.Client, error) {
		if set == nil {
			var err error
			if set, err = s.clientSet(ctx); err != nil {
				return nil, err
			}
		}
		ms := set.choose(p, nil)
		// An active client whose name happens to hold * or ? is that
		// client alone (Client: the active one of its name).
		if i := slices.IndexFunc(ms, func(m db.ClientTraits) bool { return exact != "" && m.Name == exact }); i >= 0 {
			ms = ms[i : i+1]
		}
		if len(ms) > MaxTargets {
			return nil, bad("%d clients, at most %d", len(ms), MaxTargets)
		}
		return s.current(ctx, set, ms, p)
	}
	var clients []db.Client
	for _, ref := range refs {
		if !selector.IsGlob(ref) {
			c, err := s.Client(ctx, ref)
			if err != nil {
				return nil, nil, err
			}
			if c.Status != db.ClientActive {
				return nil, nil, refuse(ErrConflict, "target %q: client %d is %s, not active", c.Name, c.ID, c.Status)
			}
			clients = append(clients, c)
			continue
		}
		cs, err := take(active(func(name string, _ db.ClientStatus, _, _ map[string]string) bool {
			return selector.MatchName(ref, name)
		}), ref)
		if err != nil {
			return nil, nil, err
		}
		if len(cs) == 0 {
			return nil, nil, refuse(ErrConflict, "target %q matches no active client", ref)
		}
		clients = append(clients, cs...)
	}
	members, err := s.GroupClients(ctx, groups)
	if err != nil {
		return nil, nil, err
	}
	clients = append(clients, members...)
	if sel != nil {
		picked, err := take(active(selected(sel)), "")
		if err != nil {
			return nil, nil, err
		}
		if len(picked) == 0 {
			return nil, nil, refuse(ErrConflict, "selectors %s match no active client", strings.Join(selectors, " | "))
		}
		clients = append(clients, picked...)
	}
	seen := make(map[int64]bool, len(clients))
	out := clients[:0]
	for _, c := range clients {
		if !seen[c.ID] {
			seen[c.ID] = true
			out = append(out, c)
		}
	}
	clients = out
	if len(clients) == 0 {
		return nil, nil, refuse(ErrConflict, "groups %s have no active client", strings.Join(groups, ", "))
	}
	if len(clients) > MaxTargets {
		return nil, nil, bad("%d clients, at most %d", len(clients), MaxTargets)
	}
	targets := refs[:len(refs):len(refs)] // appended to: never into the caller's array
	for _, g := range groups {
		targets = append(targets, "group:"+g)
	}
	for _, sl := range sel {
		targets = append(targets, "selector:"+sl.String())
	}
	return clients, targets, nil
}

// SubmitJob stores a prepared job, with the audit record of its submission
// in the same transaction.
func (s *Service) SubmitJob(ctx context.Context, sub Submission) (Submitted, error) {
	js, err := s.Store.SubmitJobs(ctx, []db.NewJob{sub.Job}, []db.AuditEntry{sub.Audit})
	if err != nil {
		return Submitted{}, err
	}
	return submitted(sub, js[0]), nil
}

// SubmitJobs stores prepared jobs in one transaction, one commit for all,
// each with the audit record of its submission. Should the transaction
// fail, each job is stored alone, so that one job's failure is not the
// others': the result and the error of each job are at its index.
func (s *Service) SubmitJobs(ctx context.Context, subs []Submission) ([]Submitted, []error) {
	out, errs := make([]Submitted, len(subs)), make([]error, len(subs))
	if len(subs) == 0 {
		return out, errs
	}
	jobs, audit := make([]db.NewJob, len(subs)), make([]db.AuditEntry, len(subs))
	for k, sub := range subs {
		jobs[k], audit[k] = sub.Job, sub.Audit
	}
	js, err := s.Store.SubmitJobs(ctx, jobs, audit)
	if err == nil {
		for k, sub := range subs {
			out[k] = submitted(sub, js[k])
		}
		return out, errs
	}
	if len(subs) == 1 {
		errs[0] = err
		return out, errs
	}
	for k, sub := range subs {
		out[k], errs[k] = s.SubmitJob(ctx, sub)
	}
	return out, errs
}

func submitted(sub Submission, j db.Job) Submitted {
	return Submitted{Job: j, Clients: sub.Clients, NotBefore: sub.Job.NotBefore}
}

// checkIdempotencyKey refuses a key that is too long or not printable
// ASCII (it is compared byte for byte, and shown in logs).
func checkIdempotencyKey(k string) error {
	if len(k) > MaxIdempotencyKey {
		return refuse(ErrInvalid, "idempotency_key: %d bytes, at most %d", len(k), MaxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return refuse(ErrInvalid, "idempotency_key: byte %d is not printable ASCII (letters, digits, punctuation; no spaces)", i+1)
		}
	}
	return nil
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
