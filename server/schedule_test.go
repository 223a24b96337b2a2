package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
)

// The schedule operations through XML-RPC and TLS: faults naming the
// member, the permissions, what list and get show, run, pause, remove,
// and the audit of each.
func TestScheduleOperations(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	h.activeClient(t, admin, "web2")
	job := map[string]any{"script": "apt-get -y upgrade # secret", "targets": []string{"web*"}, "timeout": 600, "max_parallel": "50%"}
	add := func(m map[string]any) map[string]any {
		out := map[string]any{"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris", "job": job}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		req   map[string]any
		parts []string
	}{
		{add(map[string]any{"cron": "61 * * * *"}), []string{"schedule.add", "cron", "61"}},
		{add(map[string]any{"cron": ""}), []string{"cron: empty"}},
		{add(map[string]any{"timezone": "Mars/Olympus"}), []string{"timezone", "Mars/Olympus"}},
		{add(map[string]any{"catch_up": "all"}), []string{"catch_up", `"all"`}},
		{add(map[string]any{"overlap": "queue"}), []string{"overlap", `"queue"`}},
		{add(map[string]any{"name": "42"}), []string{"name", "digits"}},
		{add(map[string]any{"job": nil}), []string{"job: required"}},
		{add(map[string]any{"job": map[string]any{"targets": []string{"web1"}}}), []string{"job: script"}},
		{add(map[string]any{"job": map[string]any{"script": "true", "targets": []string{"web1"}, "max_parallel": "ten"}}), []string{"job: max_parallel"}},
		{add(map[string]any{"job": map[string]any{"script": "true", "targets": []string{"web1"}, "not_before": time.Now().Add(time.Hour)}}), []string{"not_before"}},
		{add(map[string]any{"job": map[string]any{"script": "true", "selectors": []string{"env in (prod"}}}), []string{"position 12"}},
		{add(map[string]any{"every": "day"}), []string{"every"}},
	} {
		if tc.req["job"] == nil {
			delete(tc.req, "job")
		}
		wantFaultText(t, admin.Call(ctx, api.MethodScheduleAdd, nil, tc.req), 400, tc.parts...)
	}
	var sc api.Schedule
	mustCall(t, admin, api.MethodScheduleAdd, &sc, add(nil))
	if sc.Name != "nightly" || sc.Owner != "admin" || sc.Timezone != "Europe/Paris" || sc.CatchUp != "latest" || sc.Overlap != "skip" ||
		sc.Next == nil || sc.Job.Script == "" || sc.Job.MaxParallel != "50%" || sc.Job.Timeout != 600 || sc.Job.Interpreter != "/bin/sh" {
		t.Fatalf("added %+v", sc)
	}
	if h := sc.Next.In(mustZone(t, "Europe/Paris")).Hour(); h != 3 || !sc.Next.After(time.Now()) {
		t.Fatalf("next tick %v: want 03:00 Paris time, in the future", sc.Next)
	}
	wantFaultText(t, admin.Call(ctx, api.MethodScheduleAdd, nil, add(nil)), 409, "taken")
	// Targets matching no machine now are accepted: machines come and go.
	mustCall(t, admin, api.MethodScheduleAdd, nil, add(map[string]any{"name": "later", "cron": "@every 1h", "overlap": "allow", "catch_up": "none", "paused": true,
		"job": map[string]any{"script": "true", "selectors": []string{"role=db"}}}))

	var list []api.Schedule
	mustCall(t, admin, api.MethodScheduleList, &list)
	if len(list) != 2 || list[0].Name != "later" || list[1].Name != "nightly" || list[1].Job.Script != "" || list[0].Next != nil ||
		!list[0].Paused || list[0].CatchUp != "none" || list[0].Job.Selectors[0] != "role=db" {
		t.Fatalf("list %+v", list)
	}
	var got api.Schedule
	mustCall(t, admin, api.MethodScheduleGet, &got, "nightly")
	if got.Job.Script != "apt-get -y upgrade # secret" || got.LastJobID != "" {
		t.Fatalf("get %+v", got)
	}
	wantFault(t, admin.Call(ctx, api.MethodScheduleGet, nil, "nope"), 404)

	// run: a job now, as the caller, in the history.
	var run api.ScheduleRunResult
	mustCall(t, admin, api.MethodScheduleRun, &run, "nightly")
	if run.Schedule != "nightly" || run.ID == "" || run.Runs != 2 {
		t.Fatalf("run %+v", run)
	}
	var j api.Job
	mustCall(t, admin, "job.get", &j, run.ID)
	if j.SubmittedBy != "admin" || j.Timeout != 600 || j.MaxParallel == nil || *j.MaxParallel != 1 {
		t.Fatalf("the run's job %+v", j)
	}
	var hist []api.ScheduleTick
	mustCall(t, admin, api.MethodScheduleHistory, &hist, "nightly")
	if len(hist) != 1 || hist[0].Outcome != api.TickRun || hist[0].JobID != run.ID || hist[0].Tick != nil || hist[0].By != "admin" || hist[0].JobStatus != "pending" {
		t.Fatalf("history %+v", hist)
	}
	mustCall(t, admin, api.MethodScheduleGet, &got, "nightly")
	if got.LastJobID != run.ID || got.LastJobStatus != "pending" {
		t.Fatalf("after run: %+v", got)
	}
	wantFaultText(t, admin.Call(ctx, api.MethodScheduleHistory, nil, "nightly", map[string]any{"limit": 0}), 400, "limit")
	wantFault(t, admin.Call(ctx, api.MethodScheduleRun, nil, "later"), 409) // role=db matches no machine

	// pause, resume.
	var pr api.SchedulePauseResult
	mustCall(t, admin, api.MethodSchedulePause, &pr, "nightly")
	if !pr.Paused || !pr.Changed {
		t.Fatalf("pause %+v", pr)
	}
	mustCall(t, admin, api.MethodSchedulePause, &pr, "nightly")
	if pr.Changed {
		t.Fatal("pausing a paused schedule changed it")
	}
	mustCall(t, admin, api.MethodScheduleResume, &pr, "nightly")
	if pr.Paused || !pr.Changed {
		t.Fatalf("resume %+v", pr)
	}

	// Permissions: schedule.read to look, schedule.write to change.
	bob, _ := h.addUser(t, admin, "bob")
	wantFault(t, bob.Call(ctx, api.MethodScheduleList, nil), 403)
	addRule(t, admin, "user:bob", "schedule.read", "*", "allow")
	mustCall(t, bob, api.MethodScheduleList, &list)
	for _, m := range []struct {
		name string
		args []any
	}{{api.MethodScheduleAdd, []any{add(map[string]any{"name": "bobs"})}}, {api.MethodScheduleRemove, []any{"nightly"}},
		{api.MethodSchedulePause, []any{"nightly"}}, {api.MethodScheduleResume, []any{"nightly"}}, {api.MethodScheduleRun, []any{"nightly"}}} {
		wantFault(t, bob.Call(ctx, m.name, nil, m.args...), 403)
	}
	// schedule.write, but no right to run the job on any target: the
	// schedule is refused as job.submit would be.
	addRule(t, admin, "user:bob", "schedule.write", "*", "allow")
	wantFaultText(t, bob.Call(ctx, api.MethodScheduleAdd, nil, add(map[string]any{"name": "bobs"})), 403, "bob may not")
	wantFaultText(t, bob.Call(ctx, api.MethodScheduleRun, nil, "nightly"), 403, "bob may not")

	mustCall(t, admin, api.MethodScheduleRemove, nil, "nightly")
	wantFault(t, admin.Call(ctx, api.MethodScheduleRemove, nil, "nightly"), 404)
	mustCall(t, admin, "job.get", &j, run.ID) // its jobs stay

	var audit []api.AuditEntry
	mustCall(t, admin, "audit.list", &audit, map[string]any{"operation": "schedule.*", "limit": 100})
	seen := map[string]int{}
	for _, a := range audit {
		seen[a.Name+" "+a.Outcome]++
		if strings.Contains(a.Target, "secret") || strings.Contains(a.Detail, "secret") {
			t.Fatalf("the script in the audit trail: %+v", a)
		}
	}
	for _, want := range []string{"schedule.add ok", "schedule.run ok", "schedule.pause ok", "schedule.resume ok", "schedule.remove ok", "schedule.add denied", "schedule.run denied"} {
		if seen[want] == 0 {
			t.Errorf("no audit record %q in %v", want, seen)
		}
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
