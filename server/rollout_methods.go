package server

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

// The rollout operations (docs/protocol.md, "Rollouts"). job.pause and
// job.resume are non-modifiers that change state, as job.cancel is: one
// conditional update of one job, which needs no exclusion from the other
// operations, and is audited. job.rerun submits a job, so it is a
// modifier like job.submit, and stores its audit record with the job.
func (s *Server) rolloutOperations() []Operation {
	return []Operation{
		{Name: api.MethodJobPause, Class: gate.NonModifier, Changes: true, caller: byOperator, handler: s.jobPause, Checks: []string{PermJobCancel},
			Signature: []string{"struct", "string"},
			Help: "Pause a job: it hands out no new run, on any daemon; runs already out finish. Param: job id. " +
				"As for job.cancel, one's own jobs need no permission, others' need job.cancel. Fault 409 when no run is left to hand out. " +
				"Returns {job_id, paused: true, changed}; pausing a paused job changes nothing."},
		{Name: api.MethodJobResume, Class: gate.NonModifier, Changes: true, caller: byOperator, handler: s.jobResume, Checks: []string{PermJobCancel},
			Signature: []string{"struct", "string"},
			Help: "Resume a paused job: its runs go out again, within its rollout's limits. Param: job id. " +
				"Permissions as for job.pause. Returns {job_id, paused: false, changed}."},
		{Name: api.MethodJobRerun, Class: gate.Modifier, caller: byOperator, handler: s.jobRerun, Checks: []string{PermJobRead},
			keepsClients: true, auditsSuccess: true,
			Signature: []string{"struct", "string", "struct"},
			Help: "Submit a job again as a new job naming the old (rerun_of): the same script and settings, for every target of its runs, " +
				"or with {failed: true} only those whose runs did not succeed. Params: job id, optional struct {failed (boolean)}. " +
				"The new job goes through job.submit's checks (active targets, the ACL). Others' jobs need job.read. Returns {id, runs, rerun_of}."},
	}
}

func (s *Server) jobPause(ctx context.Context, p xmlrpc.Params) (any, error) {
	return s.pauseOrResume(ctx, p, true)
}

func (s *Server) jobResume(ctx context.Context, p xmlrpc.Params) (any, error) {
	return s.pauseOrResume(ctx, p, false)
}

func (s *Server) pauseOrResume(ctx context.Context, p xmlrpc.Params, paused bool) (any, error) {
	id, err := jobID(p, 1)
	if err != nil {
		return nil, err
	}
	me := callingUser(ctx)
	changed, err := s.svc.PauseJob(ctx, me, id, paused)
	if err != nil {
		return nil, err
	}
	verb := "job paused"
	if !paused {
		verb = "job resumed"
		s.rollouts.Wake(id) // its daemon-mode clients need not wait for a poll
	}
	s.log.Info(verb, "request_id", requestFrom(ctx).ID, "job_id", id, "by", me.Name, "changed", changed)
	return api.PauseResult{JobID: strconv.FormatInt(id, 10), Paused: paused, Changed: changed}, nil
}

func (s *Server) jobRerun(ctx context.Context, p xmlrpc.Params) (any, error) {
	id, err := jobID(p, 2)
	if err != nil {
		return nil, err
	}
	var failed bool
	if p.Has(1) {
		in, err := p.Struct(1, "options")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("failed"); err != nil {
			return nil, err
		}
		if failed, _, err = in.Bool("failed"); err != nil {
			return nil, err
		}
	}
	sub, err := s.svc.RerunJob(ctx, callingUser(ctx), id, failed, describeParams(p))
	if err != nil {
		if d := s.logDenied(ctx, err); d != nil {
			return nil, inMethod(api.MethodJobRerun, err)
		}
		return nil, err
	}
	done, err := s.svc.SubmitJob(ctx, sub)
	if err != nil {
		return nil, err
	}
	res := s.submitted(done)
	res.RerunOf = strconv.FormatInt(id, 10)
	return res, nil
}

// rolloutRequest reads job.submit's rollout members into req: max_parallel
// and max_failures are "N", "P%" or an int N; success_threshold "P%" or
// an int P; canary an int. The service checks the values.
func rolloutRequest(in xmlrpc.Struct, req *service.JobRequest) error {
	var err error
	if req.MaxParallel, err = limitMember(in, "max_parallel"); err != nil {
		return err
	}
	if req.MaxFailures, err = limitMember(in, "max_failures"); err != nil {
		return err
	}
	if req.SuccessThreshold, err = limitMember(in, "success_threshold"); err != nil {
		return err
	}
	req.Canary, _, err = in.Int("canary")
	return err
}

// limitMember reads a member that is a string or an int (rendered as
// decimal); absent, "".
func limitMember(in xmlrpc.Struct, key string) (string, error) {
	if v, ok := in.Get(key); ok {
		switch v := v.(type) {
		case int64:
			return strconv.FormatInt(v, 10), nil
		case int:
			return strconv.Itoa(v), nil
		}
	}
	v, _, err := in.String(key)
	return v, err
}

// apiRollout fills in the rollout fields of a job's API form.
func apiRollout(out *api.Job, j db.Job) {
	r := j.Rollout
	if r.MaxParallel > 0 {
		n := r.MaxParallel
		out.MaxParallel = &n
	}
	if r.Budgeted {
		n := r.MaxFailures
		out.MaxFailures = &n
	}
	out.Canary, out.CanaryPhase, out.SuccessThreshold = r.Canary, string(j.CanaryPhase), r.Threshold()
	out.Paused, out.Halted, out.HaltReason = j.Paused, j.Halted(), j.HaltReason
	if j.RerunOf != 0 {
		out.RerunOf = strconv.FormatInt(j.RerunOf, 10)
	}
}
