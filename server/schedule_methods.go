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

// The schedule operations (docs/protocol.md, "Schedules"). Adding and
// removing a schedule and running one now are modifiers, as job.submit and
// group.create are; pausing and resuming are one conditional update, a
// non-modifier that is audited, as job.pause is. The ticks themselves are
// the scheduler's (scheduler.go).
func (s *Server) scheduleOperations() []Operation {
	return []Operation{
		{Name: api.MethodScheduleAdd, Class: gate.Modifier, caller: byOperator, Permission: PermScheduleWrite, handler: s.scheduleAdd, keepsClients: true,
			Signature: []string{"struct", "struct"},
			Help: "Add a schedule: a job submitted at every tick of a cron expression, as the caller (its owner), through job.submit's checks. " +
				"Param: struct {name, cron (five fields, @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION), timezone (IANA name, default UTC), " +
				"catch_up (latest: one job for the latest tick missed while no daemon ran, the default; none: only on time), " +
				"overlap (skip: no job while the previous one has runs out, the default; allow), paused (boolean), job (job.submit's struct, " +
				"without not_before and expires_at)}. The job is checked now as job.submit checks it (fault 400 naming the member, 403 when the ACL " +
				"allows it on no target), but targets that match no active client now are accepted. Returns the schedule as schedule.get."},
		{Name: api.MethodScheduleList, Class: gate.NonModifier, caller: byOperator, Permission: PermScheduleRead, handler: s.scheduleList,
			Signature: []string{"array"},
			Help:      "List the schedules, by name, with their next tick, last tick, last job and its status (no scripts)."},
		{Name: api.MethodScheduleGet, Class: gate.NonModifier, caller: byOperator, Permission: PermScheduleRead, handler: s.scheduleGet,
			Signature: []string{"struct", "string"},
			Help:      "Get one schedule with its job's script. Param: name."},
		{Name: api.MethodScheduleRemove, Class: gate.Modifier, caller: byOperator, Permission: PermScheduleWrite, handler: s.scheduleRemove, keepsClients: true,
			Signature: []string{"struct", "string"},
			Help:      "Remove a schedule and its history; the jobs it made stay. Param: name. Returns the schedule as it was (as schedule.list shows it)."},
		{Name: api.MethodSchedulePause, Class: gate.NonModifier, Changes: true, caller: byOperator, Permission: PermScheduleWrite, handler: s.schedulePause(true),
			Signature: []string{"struct", "string"},
			Help:      "Pause a schedule: no tick makes a job until it is resumed. Param: name. Returns {name, paused: true, changed}."},
		{Name: api.MethodScheduleResume, Class: gate.NonModifier, Changes: true, caller: byOperator, Permission: PermScheduleWrite, handler: s.schedulePause(false),
			Signature: []string{"struct", "string"},
			Help:      "Resume a schedule; the ticks that passed while it was paused are not made up. Param: name. Returns {name, paused: false, changed}."},
		{Name: api.MethodScheduleRun, Class: gate.Modifier, caller: byOperator, Permission: PermScheduleWrite, handler: s.scheduleRun, keepsClients: true, auditsSuccess: true,
			Signature: []string{"struct", "string"},
			Help: "Submit a schedule's job now, outside its ticks, as the caller (the ACL checks the caller, not the owner), and record it in the " +
				"history as \"run\". Param: name. Returns {schedule, id, runs}."},
		{Name: api.MethodScheduleHistory, Class: gate.NonModifier, caller: byOperator, Permission: PermScheduleRead, handler: s.scheduleHistory,
			Signature: []string{"array", "string", "struct"},
			Help: "A schedule's history, newest first: each tick handled (fired, skipped, denied, failed, with the reason) and each schedule.run, " +
				"with the job and its status. Params: name, optional struct {limit (default 50, at most 1000), before (an entry id: page older)}."},
	}
}

func (s *Server) scheduleAdd(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	in, err := p.Struct(0, "schedule")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("name", "cron", "timezone", "catch_up", "overlap", "paused", "job"); err != nil {
		return nil, err
	}
	var req service.ScheduleRequest
	for _, m := range []struct {
		key string
		v   *string
	}{{"name", &req.Name}, {"cron", &req.Cron}, {"timezone", &req.Timezone}, {"catch_up", &req.CatchUp}, {"overlap", &req.Overlap}} {
		if *m.v, _, err = in.String(m.key); err != nil {
			return nil, err
		}
	}
	if req.Paused, _, err = in.Bool("paused"); err != nil {
		return nil, err
	}
	job, ok, err := in.Struct("job")
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: job: required: the job each tick submits (job.submit's struct)", api.MethodScheduleAdd)
	}
	if req.Job, err = jobMembers(job); err != nil {
		return nil, err
	}
	v, err := s.svc.AddSchedule(ctx, callingUser(ctx), req)
	if err != nil {
		s.logDenied(ctx, err)
		return nil, inMethod(api.MethodScheduleAdd, err)
	}
	s.schedules.Kick()
	s.log.Info("schedule added", "request_id", requestFrom(ctx).ID, "schedule", v.Name, "cron", v.Spec.String(), "by", v.Owner)
	return apiSchedule(v, true), nil
}

func (s *Server) scheduleList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	vs, err := s.svc.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Schedule, len(vs))
	for i, v := range vs {
		out[i] = apiSchedule(v, false)
	}
	return out, nil
}

// scheduleName reads the name param of the schedule methods.
func scheduleName(p xmlrpc.Params, max int) (string, error) {
	if err := p.Count(1, max); err != nil {
		return "", err
	}
	return p.String(0, "name")
}

func (s *Server) scheduleGet(ctx context.Context, p xmlrpc.Params) (any, error) {
	name, err := scheduleName(p, 1)
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Schedule(ctx, name)
	if err != nil {
		return nil, err
	}
	return apiSchedule(v, true), nil
}

func (s *Server) scheduleRemove(ctx context.Context, p xmlrpc.Params) (any, error) {
	name, err := scheduleName(p, 1)
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Schedule(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.svc.RemoveSchedule(ctx, name); err != nil {
		return nil, err
	}
	s.log.Info("schedule removed", "request_id", requestFrom(ctx).ID, "schedule", name, "by", callingUser(ctx).Name)
	return apiSchedule(v, false), nil
}

func (s *Server) schedulePause(paused bool) xmlrpc.Handler {
	return func(ctx context.Context, p xmlrpc.Params) (any, error) {
		name, err := scheduleName(p, 1)
		if err != nil {
			return nil, err
		}
		changed, err := s.svc.PauseSchedule(ctx, name, paused)
		if err != nil {
			return nil, err
		}
		verb := "schedule paused"
		if !paused {
			verb = "schedule resumed"
			s.schedules.Kick()
		}
		s.log.Info(verb, "request_id", requestFrom(ctx).ID, "schedule", name, "by", callingUser(ctx).Name, "changed", changed)
		return api.SchedulePauseResult{Name: name, Paused: paused, Changed: changed}, nil
	}
}

func (s *Server) scheduleRun(ctx context.Context, p xmlrpc.Params) (any, error) {
	name, err := scheduleName(p, 1)
	if err != nil {
		return nil, err
	}
	done, err := s.svc.RunSchedule(ctx, callingUser(ctx), name)
	if err != nil {
		s.logDenied(ctx, err)
		return nil, inMethod(api.MethodScheduleRun, err)
	}
	res := s.submitted(done)
	s.log.Info("schedule run", "request_id", requestFrom(ctx).ID, "schedule", name, "job_id", done.Job.ID, "by", callingUser(ctx).Name)
	return api.ScheduleRunResult{Schedule: name, ID: res.ID, Runs: res.Runs}, nil
}

// Bounds of schedule.history's page.
const (
	defaultHistory = 50
	maxHistory     = 1000
)

func (s *Server) scheduleHistory(ctx context.Context, p xmlrpc.Params) (any, error) {
	name, err := scheduleName(p, 2)
	if err != nil {
		return nil, err
	}
	var f db.TickFilter
	if f.Limit, f.BeforeID, err = pageOptions(p, 1, api.MethodScheduleHistory, defaultHistory, maxHistory); err != nil {
		return nil, err
	}
	ts, err := s.svc.ScheduleHistory(ctx, name, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.ScheduleTick, len(ts))
	for i, t := range ts {
		out[i] = api.ScheduleTick{ID: strconv.FormatInt(t.ID, 10), Tick: optTime(t.NewTick.Tick), At: t.At, Outcome: t.Outcome,
			JobStatus: t.JobStatus, Reason: t.Reason, By: t.By}
		if t.JobID != 0 {
			out[i].JobID = strconv.FormatInt(t.JobID, 10)
		}
	}
	return out, nil
}

// pageOptions reads the optional struct {limit, before} of a history
// call at param i: the page size (def when not given, 1..max) and the id
// to page back from (0: the newest).
func pageOptions(p xmlrpc.Params, i int, method string, def, max int) (limit int, before int64, err error) {
	limit = def
	if !p.Has(i) {
		return limit, 0, nil
	}
	in, err := p.Struct(i, "options")
	if err != nil {
		return 0, 0, err
	}
	if err := in.Unknown("limit", "before"); err != nil {
		return 0, 0, err
	}
	if n, ok, err := in.Int("limit"); err != nil {
		return 0, 0, err
	} else if ok {
		if n < 1 || n > int64(max) {
			return 0, 0, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: limit: %d is outside 1..%d", method, n, max)
		}
		limit = int(n)
	}
	before, _, err = in.ID("before")
	return limit, before, err
}

// apiSchedule is a schedule as the API shows it; the script only when
// withScript.
func apiSchedule(v service.ScheduleView, withScript bool) api.Schedule {
	j := v.Job
	out := api.Schedule{Name: v.Name, Owner: v.Owner, Cron: v.Cron, Timezone: v.Timezone, CatchUp: v.CatchUp, Overlap: v.Overlap,
		Paused: v.Paused, CreatedAt: v.CreatedAt, Next: optTime(v.Next), LastTick: optTime(v.LastTick), LastJobStatus: v.LastJobStatus,
		Job: api.ScheduleJob{Name: j.Name, Targets: emptyIfNil(j.Targets), Groups: emptyIfNil(j.Groups), Selectors: emptyIfNil(j.Selectors),
			Interpreter: "/bin/sh", Permission: "run", Priority: int(j.Priority), Timeout: int(j.Timeout), MaxAttempts: int(j.MaxAttempts),
			MaxParallel: j.MaxParallel, MaxFailures: j.MaxFailures, Canary: int(j.Canary), SuccessThreshold: j.SuccessThreshold}}
	if v.LastJobID != 0 {
		out.LastJobID = strconv.FormatInt(v.LastJobID, 10)
	}
	if j.Interpreter != nil {
		out.Job.Interpreter = *j.Interpreter
	}
	if j.Permission != nil {
		out.Job.Permission = *j.Permission
	}
	if withScript {
		out.Job.Script = j.Script
	}
	return out
}

// emptyIfNil makes a list shown as [] rather than absent.
func emptyIfNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
