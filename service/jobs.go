package service

import (
	"context"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runoutput"
	"github.com/scirectl/scirectl/runstate"
)

// The admin permissions the job operations check through Authz, for other
// users' jobs: one's own need none.
const (
	PermJobRead   = "job.read" // see other users' jobs
	PermJobCancel = "job.cancel"
)

// MaxJobLimit is the most jobs one ListJobs call returns.
const MaxJobLimit = 10000

// ListJobs lists jobs, newest first, those f selects; f.Limit is
// 1..MaxJobLimit. Everyone sees their own jobs; others' need job.read: a
// caller without it who names no submitter sees their own, and one who
// names another is refused.
func (s *Service) ListJobs(ctx context.Context, caller db.User, f db.JobFilter) ([]db.Job, error) {
	if f.Limit < 1 || f.Limit > MaxJobLimit {
		return nil, refuse(ErrInvalid, "limit: %d is outside 1..%d", f.Limit, MaxJobLimit)
	}
	if s.Authz != nil {
		policy, err := s.policy(ctx)
		if err != nil {
			return nil, err
		}
		if !policy.CheckServer(caller.Name, PermJobRead).Allowed {
			if f.SubmittedBy == "" {
				f.SubmittedBy = caller.Name
			} else if f.SubmittedBy != caller.Name {
				if err := s.authorize(ctx, PermJobRead); err != nil {
					return nil, err
				}
			}
		}
	}
	return s.Store.ListJobs(ctx, f)
}

// Job returns a job the caller may see (their own, or any with job.read)
// with its runs.
func (s *Service) Job(ctx context.Context, caller db.User, id int64) (db.Job, []db.Run, error) {
	j, err := s.readableJob(ctx, caller, id)
	if err != nil {
		return db.Job{}, nil, err
	}
	runs, err := s.Store.Runs(ctx, id)
	if err != nil {
		return db.Job{}, nil, err
	}
	return j, runs, nil
}

// JobOutput returns the runs of a job the caller may see, with their
// output — the final one, or while a run goes on what it streamed so far —
// all of them, or those on one client (by name or id) when client is not
// empty, which must have one. A run whose id is in since gets only what
// follows that offset of its output (a follower's next read).
func (s *Service) JobOutput(ctx context.Context, caller db.User, id int64, client string, since map[int64]int64) ([]db.Run, error) {
	if _, err := s.readableJob(ctx, caller, id); err != nil {
		return nil, err
	}
	max := s.Agents.MaxOutput
	if max <= 0 {
		max = runoutput.DefaultMax
	}
	runs, err := s.Store.RunOutputs(ctx, id, since, max)
	if err != nil || client == "" {
		return runs, err
	}
	out := runs[:0]
	for _, r := range runs {
		if client == r.ClientName || client == strconv.FormatInt(r.ClientID, 10) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, refuseWhole(ErrNotFound, "job %d has no run on client %q", id, client)
	}
	return out, nil
}

// readableJob returns a job the caller may see: their own, or any with
// job.read.
func (s *Service) readableJob(ctx context.Context, caller db.User, id int64) (db.Job, error) {
	j, err := s.Store.Job(ctx, id)
	if err != nil {
		return db.Job{}, err
	}
	if j.SubmittedBy != caller.Name {
		if err := s.authorize(ctx, PermJobRead); err != nil {
			return db.Job{}, err
		}
	}
	return j, nil
}

// PauseJob pauses (paused) or resumes a job: a paused job hands out no new
// run; runs already out finish. As for CancelJob, one's own jobs need no
// permission and others' need job.cancel. It says whether the job changed.
func (s *Service) PauseJob(ctx context.Context, caller db.User, id int64, paused bool) (bool, error) {
	if err := s.mayCancel(ctx, caller, id); err != nil {
		return false, err
	}
	return s.Store.PauseJob(ctx, id, paused)
}

// RerunJob submits job id again, as caller, through the submit path
// (fields, targets, ACL): the same script and settings, for every target
// of its runs or (failedOnly) those whose runs did not succeed, in the
// order of its runs (so the same canaries come first). The job must be
// one the caller may see. audit renders the call for the audit record.
func (s *Service) RerunJob(ctx context.Context, caller db.User, id int64, failedOnly bool, audit string) (Submission, error) {
	j, runs, err := s.Job(ctx, caller, id)
	if err != nil {
		return Submission{}, err
	}
	var targets []string
	for _, r := range runs {
		if !failedOnly || r.State != runstate.Succeeded {
			targets = append(targets, strconv.FormatInt(r.ClientID, 10))
		}
	}
	if len(targets) == 0 {
		return Submission{}, refuseWhole(ErrConflict, "job %d: every run succeeded; nothing to rerun", id)
	}
	interp, perm := j.Interpreter, j.Permission
	req := JobRequest{Script: j.Script, Targets: targets, Interpreter: &interp, Name: j.Name, Permission: &perm,
		Priority: int64(j.Priority), Timeout: int64(j.Timeout / time.Second), MaxAttempts: int64(j.MaxAttempts),
		Canary: int64(min(j.Rollout.Canary, max(len(targets)-1, 0))), RerunOf: id, Method: api.MethodJobRerun, Audit: audit}
	// The limits as resolved for the first job: a rerun of a few failed
	// machines keeps the window and budget it had, never a wider one.
	if j.Rollout.MaxParallel > 0 {
		req.MaxParallel = strconv.Itoa(j.Rollout.MaxParallel)
	}
	if j.Rollout.Budgeted {
		req.MaxFailures = strconv.Itoa(j.Rollout.MaxFailures)
	}
	if t := j.Rollout.Threshold(); t < 100 {
		req.SuccessThreshold = strconv.Itoa(t) + "%"
	}
	return s.PrepareJob(ctx, caller, req)
}

// mayCancel checks that caller may cancel, pause or resume job id: their
// own, or any with job.cancel.
func (s *Service) mayCancel(ctx context.Context, caller db.User, id int64) error {
	j, err := s.Store.Job(ctx, id)
	if err != nil {
		return err
	}
	if j.SubmittedBy != caller.Name {
		return s.authorize(ctx, PermJobCancel)
	}
	return nil
}

// CancelJob cancels a job: every run not yet final becomes cancelled (an
// agent holding one learns it on its next call). One's own jobs need no
// permission; others' need job.cancel. It returns the runs cancelled: none
// when cancelled again.
func (s *Service) CancelJob(ctx context.Context, caller db.User, id int64) ([]db.Change, error) {
	if err := s.mayCancel(ctx, caller, id); err != nil {
		return nil, err
	}
	return s.Store.CancelJob(ctx, id, time.Now().UTC(), "cancelled by "+caller.Name)
}
