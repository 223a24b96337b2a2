package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// goldenSchedules are two schedules: one in Europe/Paris whose next tick is
// 03:00 there tomorrow (CET in November), with a job by selector; one
// paused, in UTC, that has made no job yet.
func goldenSchedules() []api.Schedule {
	return []api.Schedule{
		{Name: "nightly-apt", Owner: "alice", Cron: "0 3 * * *", Timezone: "Europe/Paris", CatchUp: "latest", Overlap: "skip",
			CreatedAt: goldenNow.Add(-72 * time.Hour), Next: ptr(goldenNow.Add(16 * time.Hour)), LastTick: ptr(goldenNow.Add(-8 * time.Hour)),
			LastJobID: "41", LastJobStatus: "succeeded",
			Job: api.ScheduleJob{Name: "apt upgrade", Script: "apt-get -y upgrade", Targets: []string{}, Groups: []string{},
				Selectors: []string{"role=web", "env=prod,tier=cache"}, Interpreter: "/bin/sh", Permission: "run", Timeout: 1800,
				MaxParallel: "10%", MaxFailures: "2", Canary: 1}},
		{Name: "disk-check", Owner: "bob", Cron: "@hourly", Timezone: "UTC", CatchUp: "none", Overlap: "allow", Paused: true,
			CreatedAt: goldenNow.Add(-time.Hour),
			Job: api.ScheduleJob{Targets: []string{"web1", "web2"}, Groups: []string{"web"}, Selectors: []string{}, Interpreter: "/bin/bash",
				Permission: "check", Priority: 5, MaxAttempts: 2}},
	}
}

// The job the schedule commands' job flags make, given a script and
// targets by selector, all else at job submit's defaults.
func scheduleJob(script string, sels ...string) api.SubmitRequest {
	return api.SubmitRequest{Script: script, Targets: []string{}, Groups: []string{}, Selectors: sels, Interpreter: "/bin/sh", Permission: "run"}
}

func TestScheduleFlags(t *testing.T) {
	a := parse(t, NewScheduleAddCmd, "nightly", "--cron", "0 3 * * *", "--timezone", "Europe/Paris", "--catch-up", "none",
		"--overlap", "allow", "--paused", "-t", "web1,web2", "-g", "web", "--selector", "env=prod,tier=web", "-c", "uptime",
		"--interpreter", "/bin/bash", "--name", "up", "--priority", "5", "--timeout", "10m", "--permission", "deploy",
		"--max-attempts", "3", "--max-parallel", "10%", "--max-failures", "2", "--canary", "1", "--success-threshold", "90%", "-o", "json")
	check(t, "schedule", []any{a.Schedule, a.Cron, a.Timezone, a.CatchUp, a.Overlap, a.Paused},
		[]any{"nightly", "0 3 * * *", "Europe/Paris", "none", "allow", true})
	check(t, "job", []any{a.Targets, a.Groups, a.Selectors, a.Command, a.Interpreter, a.Name, a.Priority, a.Timeout, a.Permission, a.MaxAttempts},
		[]any{[]string{"web1", "web2"}, []string{"web"}, []string{"env=prod,tier=web"}, "uptime", "/bin/bash", "up", 5, 10 * time.Minute, "deploy", 3})
	check(t, "rollout", []any{a.MaxParallel, a.MaxFailures, a.Canary, a.SuccessThreshold}, []any{"10%", "2", 1, "90%"})
	check(t, "out", a.out.Format, "json")

	a = parse(t, NewScheduleAddCmd, "nightly", "--cron", "@daily", "-t", "web1", "--script", "-")
	check(t, "defaults", []any{a.Timezone, a.CatchUp, a.Overlap, a.Paused, a.ScriptFile, a.Interpreter, a.Permission},
		[]any{"", "", "", false, "-", "/bin/sh", "run"})

	check(t, "list -q", parse(t, NewScheduleListCmd, "-q").out.Quiet, true)
	check(t, "show", parse(t, NewScheduleShowCmd, "nightly").Name, "nightly")
	check(t, "remove", parse(t, NewScheduleRemoveCmd, "a", "b").Names, []string{"a", "b"})
	p := parse(t, NewSchedulePauseCmd, "nightly")
	check(t, "pause", []any{p.Name, p.Pause}, []any{"nightly", true})
	p = parse(t, NewScheduleResumeCmd, "nightly")
	check(t, "resume", []any{p.Name, p.Pause}, []any{"nightly", false})
	r := parse(t, NewScheduleRunCmd, "nightly", "--wait", "--wait-interval", "2s", "-q")
	check(t, "run", []any{r.Name, r.Wait, r.watch.Interval, r.out.Quiet}, []any{"nightly", true, 2 * time.Second, true})
	h := parse(t, NewScheduleHistoryCmd, "nightly", "--limit", "10", "--before", "120")
	check(t, "history", []any{h.Name, h.Limit, h.Before}, []any{"nightly", 10, "120"})
	check(t, "history default limit", parse(t, NewScheduleHistoryCmd, "nightly").Limit, 50)
}

// TestScheduleAddRun checks schedule.add's param, the job in it made by
// the job flags job submit has too, and the checks made before any call.
func TestScheduleAddRun(t *testing.T) {
	added := goldenSchedules()[0]
	paused := goldenSchedules()[1]
	replies := func(s api.Schedule) map[string]func(xmlrpc.Params) any {
		return map[string]func(xmlrpc.Params) any{"schedule.add": fixed(s)}
	}
	add := func(flags ...string) []string {
		return append([]string{"schedule", "add", "nightly-apt", "--selector", "role=web", "-c", "apt-get -y upgrade"}, flags...)
	}
	runCases(t, []runCase{
		// A user's first try: the README's example.
		{args: add("--cron", "0 3 * * *", "--timezone", "Europe/Paris"), replies: replies(added),
			method: "schedule.add", params: []any{api.ScheduleAddRequest{Name: "nightly-apt", Cron: "0 3 * * *", Timezone: "Europe/Paris",
				Job: scheduleJob("apt-get -y upgrade", "role=web")}},
			out: "schedule nightly-apt added: 0 3 * * * (Europe/Paris), next tick in 16h (2026-11-23 03:00 CET)\n"},
		// Every flag: the schedule's, and job submit's job flags, the
		// rollout in the form the server reads; the script from standard
		// input; the expression with its blanks made single.
		{args: []string{"schedule", "add", "disk-check", "--cron", " @every   90m ", "--catch-up", "none", "--overlap", "allow", "--paused",
			"-t", "web1,web2", "-g", "web", "--selector", "env=prod", "--script", "-", "--interpreter", "/bin/bash", "--name", "disk",
			"--priority", "5", "--timeout", "10m", "--permission", "check", "--max-attempts", "2", "--max-parallel", " 5",
			"--max-failures", "10%", "--canary", "1", "--success-threshold", "90"}, stdin: "df -h /\n",
			replies: replies(paused), method: "schedule.add",
			params: []any{api.ScheduleAddRequest{Name: "disk-check", Cron: "@every 90m", CatchUp: "none", Overlap: "allow", Paused: true,
				Job: api.SubmitRequest{Script: "df -h /\n", Targets: []string{"web1", "web2"}, Groups: []string{"web"}, Selectors: []string{"env=prod"},
					Interpreter: "/bin/bash", Name: "disk", Priority: 5, Timeout: 600, Permission: "check", MaxAttempts: 2,
					MaxParallel: "5", MaxFailures: "10%", Canary: 1, SuccessThreshold: "90%"}}},
			out: "schedule disk-check added, paused: @hourly; no job until \"scirectl schedule resume disk-check\"\n"},
		{args: add("--cron", "@daily", "--catch-up", " latest", "--overlap", "skip"), replies: replies(added), method: "schedule.add",
			params: []any{api.ScheduleAddRequest{Name: "nightly-apt", Cron: "@daily", CatchUp: "latest", Overlap: "skip",
				Job: scheduleJob("apt-get -y upgrade", "role=web")}},
			contains: []string{"schedule nightly-apt added"}},
		{args: add("--cron", "0 3 * * *", "-o", "json"), replies: replies(added), method: "schedule.add",
			params:   []any{api.ScheduleAddRequest{Name: "nightly-apt", Cron: "0 3 * * *", Job: scheduleJob("apt-get -y upgrade", "role=web")}},
			contains: []string{`"name": "nightly-apt"`, `"next": "2026-11-23T02:00:00Z"`, `"selectors": [`, `"targets": []`}},

		// Mistakes are usage errors that reach no server.
		{args: add(), replies: replies(added), code: ExitUsage, errOut: "no --cron"},
		{args: add("--cron", " "), replies: replies(added), code: ExitUsage, errOut: "no --cron"},
		{args: add("--cron", "61 * * * *"), replies: replies(added), code: ExitUsage, errOut: `--cron: "61 * * * *": `},
		{args: add("--cron", "@every 500ms"), replies: replies(added), code: ExitUsage, errOut: "at least 1s"},
		{args: add("--cron", "0 3 * * *", "--timezone", "Mars/Olympus"), replies: replies(added), code: ExitUsage,
			errOut: `--timezone: unknown time zone "Mars/Olympus"`},
		{args: add("--cron", "0 3 * * *", "--timezone", "Local"), replies: replies(added), code: ExitUsage, errOut: "--timezone"},
		{args: add("--cron", "0 3 * * *", "--overlap", "sometimes"), replies: replies(added), code: ExitUsage,
			errOut: `--overlap: "sometimes" is not skip or allow`},
		{args: add("--cron", "0 3 * * *", "--catch-up", "all"), replies: replies(added), code: ExitUsage,
			errOut: `--catch-up: "all" is not latest or none`},
		// job submit's checks, from the shared job flags.
		{args: []string{"schedule", "add", "x", "--cron", "@daily", "-c", "true"}, replies: replies(added), code: ExitUsage, errOut: "no target"},
		{args: []string{"schedule", "add", "x", "--cron", "@daily", "-t", "web1"}, replies: replies(added), code: ExitUsage, errOut: "no script"},
		{args: add("--cron", "@daily", "--max-parallel", "ten"), replies: replies(added), code: ExitUsage, errOut: `--max-parallel: "ten" is not a number`},
		{args: add("--cron", "@daily", "--timeout", "1500ms"), replies: replies(added), code: ExitUsage, errOut: "whole"},
		{args: []string{"schedule", "add", "x", "--cron", "@daily", "--selector", "env in ()", "-c", "true"}, replies: replies(added),
			code: ExitUsage, errOut: "empty value list"},
		// A recurring job takes no fixed time.
		{args: add("--cron", "@daily", "--at", "10m"), replies: replies(added), code: ExitUsage, errOut: "unknown flag: --at"},
		{args: add("--cron", "@daily", "--expires", "1h"), replies: replies(added), code: ExitUsage, errOut: "unknown flag: --expires"},
		{args: []string{"schedule", "add", "--cron", "@daily", "-t", "x", "-c", "true"}, replies: replies(added), code: ExitUsage},
		{args: []string{"schedule", "add", " ", "--cron", "@daily", "-t", "x", "-c", "true"}, replies: replies(added), code: ExitUsage,
			errOut: "NAME is empty"},

		// The server's refusal.
		{args: add("--cron", "@daily"), replies: map[string]func(xmlrpc.Params) any{
			"schedule.add": fixed(&xmlrpc.Fault{Code: 409, Message: "schedule nightly-apt exists"})},
			method: "schedule.add", params: []any{api.ScheduleAddRequest{Name: "nightly-apt", Cron: "@daily", Job: scheduleJob("apt-get -y upgrade", "role=web")}},
			code: ExitConflict, errOut: "schedule nightly-apt exists"},
	})
}

// TestScheduleAddScriptFile checks that --script FILE sends the file.
func TestScheduleAddScriptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\npg_dumpall >/backup/all.sql\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{"schedule.add": fixed(goldenSchedules()[0])})
	if _, errOut, code := runFake(t, fake, "", "schedule", "add", "backup", "--cron", "30 1 * * *", "-t", "db1", "--script", path); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := api.ScheduleAddRequest{Name: "backup", Cron: "30 1 * * *", Job: api.SubmitRequest{Script: "#!/bin/sh\npg_dumpall >/backup/all.sql\n",
		Targets: []string{"db1"}, Groups: []string{}, Interpreter: "/bin/sh", Permission: "run"}}
	if got := fake.last(t); got.Method != "schedule.add" || !sameParams(t, got.Params, want) {
		t.Errorf("called %s%v, want schedule.add%v", got.Method, got.Params, wire(t, want))
	}
}

func TestScheduleListShowRun(t *testing.T) {
	list := map[string]func(xmlrpc.Params) any{"schedule.list": fixed(goldenSchedules())}
	get := map[string]func(xmlrpc.Params) any{"schedule.get": fixed(goldenSchedules()[0])}
	// A server that sends no lists: -o json still prints [].
	bare := goldenSchedules()[1]
	bare.Job.Targets, bare.Job.Groups, bare.Job.Selectors = nil, nil, nil
	runCases(t, []runCase{
		{args: []string{"schedule", "list"}, replies: list, method: "schedule.list",
			out: "NAME         CRON                      NEXT    LAST JOB  STATUS     OWNER\n" +
				"nightly-apt  0 3 * * * (Europe/Paris)  in 16h  41        succeeded  alice\n" +
				"disk-check   @hourly                   paused  -         -          bob\n"},
		{args: []string{"schedule", "list", "-o", "wide", "--no-headers"}, replies: list, method: "schedule.list",
			out: "nightly-apt  0 3 * * * (Europe/Paris)  in 16h  41  succeeded  alice  selector role=web; selector env=prod,tier=cache  latest  skip   8h ago\n" +
				"disk-check   @hourly                   paused  -   -          bob    web1,web2; group web                             none    allow  -\n"},
		{args: []string{"schedule", "list", "-q"}, replies: list, method: "schedule.list", out: "nightly-apt\ndisk-check\n"},
		{args: []string{"schedule", "list", "-o", "json"}, replies: list, method: "schedule.list",
			contains: []string{"[\n  {\n    \"name\": \"nightly-apt\",\n    \"owner\": \"alice\",\n    \"cron\": \"0 3 * * *\",\n    \"timezone\": \"Europe/Paris\"",
				`"next": "2026-11-23T02:00:00Z"`, `"last_tick": "2026-11-22T02:00:00Z"`, `"last_job_id": "41"`, `"last_job_status": "succeeded"`,
				`"paused": true`, `"max_parallel": "10%"`}},
		{args: []string{"schedule", "list", "-o", "json"}, replies: map[string]func(xmlrpc.Params) any{"schedule.list": fixed([]api.Schedule{bare})},
			method: "schedule.list", contains: []string{`"targets": [],`, `"groups": [],`, `"selectors": [],`}},
		{args: []string{"schedule", "list", "-o", "json"}, replies: map[string]func(xmlrpc.Params) any{"schedule.list": fixed([]api.Schedule{})},
			method: "schedule.list", out: "[]\n"},

		{args: []string{"schedule", "show", "nightly-apt"}, replies: get, method: "schedule.get", params: []any{"nightly-apt"},
			out: "Schedule nightly-apt: 0 3 * * * (Europe/Paris), owned by alice\n" +
				"next:          in 16h (2026-11-23 03:00 CET)\n" +
				"last tick:     8h ago (2026-11-22 03:00 CET)\n" +
				"last job:      41 (succeeded)\n" +
				"catch-up:      latest\n" +
				"overlap:       skip\n" +
				"created:       3d ago\n" +
				"job name:      apt upgrade\n" +
				"targets:       -\n" +
				"groups:        -\n" +
				"selectors:     role=web; env=prod,tier=cache\n" +
				"interpreter:   /bin/sh\n" +
				"permission:    run\n" +
				"priority:      0\n" +
				"timeout:       30m\n" +
				"max attempts:  no limit\n" +
				"rollout:       max-parallel 10%, max-failures 2, canary 1\n" +
				"\nscript:\napt-get -y upgrade\n"},
		{args: []string{"schedule", "show", "disk-check"}, replies: map[string]func(xmlrpc.Params) any{"schedule.get": fixed(goldenSchedules()[1])},
			method: "schedule.get", params: []any{"disk-check"},
			contains: []string{"Schedule disk-check: @hourly, owned by bob\n", "next:          none, paused (scirectl schedule resume disk-check)\n",
				"last tick:     -\n", "last job:      -\n", "targets:       web1,web2\n", "groups:        web\n", "timeout:       none\n",
				"max attempts:  2\n", "permission:    check\n"}},
		{args: []string{"schedule", "show", "nightly-apt", "-o", "json"}, replies: get, method: "schedule.get", params: []any{"nightly-apt"},
			contains: []string{`"script": "apt-get -y upgrade"`, `"selectors": [` + "\n      \"role=web\",\n      \"env=prod,tier=cache\"\n    ]"}},
		{args: []string{"schedule", "show", "ghost"}, replies: map[string]func(xmlrpc.Params) any{
			"schedule.get": fixed(&xmlrpc.Fault{Code: 404, Message: "no schedule ghost"})},
			method: "schedule.get", params: []any{"ghost"}, code: ExitNotFound, errOut: "no schedule ghost"},
		{args: []string{"schedule", "show"}, code: ExitUsage},
	})
}

func TestSchedulePauseRunHistory(t *testing.T) {
	pause := func(paused, changed bool) map[string]func(xmlrpc.Params) any {
		res := fixed(api.SchedulePauseResult{Name: "nightly-apt", Paused: paused, Changed: changed})
		return map[string]func(xmlrpc.Params) any{"schedule.pause": res, "schedule.resume": res}
	}
	started := map[string]func(xmlrpc.Params) any{"schedule.run": fixed(api.ScheduleRunResult{Schedule: "nightly-apt", ID: "42", Runs: 3})}
	done := api.Job{ID: "42", Name: "apt upgrade", Status: "succeeded", CreatedAt: goldenNow, Counts: map[string]int{"succeeded": 3},
		SuccessThreshold: 100}
	startedWait := map[string]func(xmlrpc.Params) any{"schedule.run": started["schedule.run"], "job.get": fixed(done)}
	ticks := []api.ScheduleTick{
		{ID: "120", Tick: ptr(goldenNow.Add(-8 * time.Hour)), At: goldenNow.Add(-8 * time.Hour), Outcome: api.TickFired, JobID: "41",
			JobStatus: "succeeded", By: "alice"},
		{ID: "119", At: goldenNow.Add(-20 * time.Hour), Outcome: api.TickRun, JobID: "40", JobStatus: "failed", By: "bob"},
		{ID: "118", Tick: ptr(goldenNow.Add(-32 * time.Hour)), At: goldenNow.Add(-32 * time.Hour), Outcome: api.TickSkipped,
			Reason: "previous job 39 still has runs out", By: "alice"},
	}
	history := map[string]func(xmlrpc.Params) any{"schedule.history": fixed(ticks)}
	runCases(t, []runCase{
		{args: []string{"schedule", "pause", "nightly-apt"}, replies: pause(true, true), method: "schedule.pause", params: []any{"nightly-apt"},
			out: "schedule nightly-apt paused\n"},
		{args: []string{"schedule", "pause", "nightly-apt"}, replies: pause(true, false), method: "schedule.pause", params: []any{"nightly-apt"},
			out: "schedule nightly-apt was already paused\n"},
		{args: []string{"schedule", "resume", "nightly-apt"}, replies: pause(false, true), method: "schedule.resume", params: []any{"nightly-apt"},
			out: "schedule nightly-apt resumed\n"},
		{args: []string{"schedule", "resume", "nightly-apt"}, replies: pause(false, false), method: "schedule.resume", params: []any{"nightly-apt"},
			out: "schedule nightly-apt was not paused\n"},
		{args: []string{"schedule", "pause", "nightly-apt", "-o", "json"}, replies: pause(true, false), method: "schedule.pause",
			params: []any{"nightly-apt"}, out: "{\n  \"name\": \"nightly-apt\",\n  \"paused\": true,\n  \"changed\": false\n}\n"},

		{args: []string{"schedule", "run", "nightly-apt"}, replies: started, method: "schedule.run", params: []any{"nightly-apt"},
			out: "schedule nightly-apt: job 42 submitted (3 runs)\n"},
		{args: []string{"schedule", "run", "nightly-apt", "-q"}, replies: started, method: "schedule.run", params: []any{"nightly-apt"}, out: "42\n"},
		{args: []string{"schedule", "run", "nightly-apt", "-o", "json"}, replies: started, method: "schedule.run", params: []any{"nightly-apt"},
			out: "{\n  \"schedule\": \"nightly-apt\",\n  \"id\": \"42\",\n  \"runs\": 3\n}\n"},
		// --wait follows the job as job submit --wait does.
		{args: []string{"schedule", "run", "nightly-apt", "--wait", "--wait-interval", "1ms"}, replies: startedWait,
			method: "job.get", params: []any{"42"}, contains: []string{"Job 42 \"apt upgrade\": succeeded"},
			errOut: "schedule nightly-apt: job 42 submitted (3 runs), waiting…\n"},
		{args: []string{"schedule", "run", "nightly-apt", "--wait-timeout", "1m"}, replies: started, code: ExitUsage,
			errOut: "--wait-timeout only applies with --wait"},

		{args: []string{"schedule", "history", "nightly-apt"}, replies: history, method: "schedule.history",
			params: []any{"nightly-apt", api.ScheduleHistoryRequest{Limit: 50}},
			out: "ID   TICK     OUTCOME  JOB  STATUS     REASON\n" +
				"120  8h ago   fired    41   succeeded  -\n" +
				"119  -        run      40   failed     -\n" +
				"118  32h ago  skipped  -    -          previous job 39 still has runs out\n"},
		{args: []string{"schedule", "history", "nightly-apt", "--limit", "10", "--before", "121", "-o", "wide", "--no-headers"}, replies: history,
			method: "schedule.history", params: []any{"nightly-apt", api.ScheduleHistoryRequest{Limit: 10, Before: "121"}},
			out: "120  8h ago   fired    41  succeeded  -                                   8h ago   alice\n" +
				"119  -        run      40  failed     -                                   20h ago  bob\n" +
				"118  32h ago  skipped  -   -          previous job 39 still has runs out  32h ago  alice\n"},
		{args: []string{"schedule", "history", "nightly-apt", "-q"}, replies: history, method: "schedule.history",
			params: []any{"nightly-apt", api.ScheduleHistoryRequest{Limit: 50}}, out: "120\n119\n118\n"},
		{args: []string{"schedule", "history", "nightly-apt", "-o", "json"}, replies: history, method: "schedule.history",
			params: []any{"nightly-apt", api.ScheduleHistoryRequest{Limit: 50}},
			contains: []string{"\"id\": \"120\",\n    \"tick\": \"2026-11-22T02:00:00Z\",\n    \"at\": \"2026-11-22T02:00:00Z\",\n    \"outcome\": \"fired\"",
				"\"id\": \"119\",\n    \"at\": \"2026-11-21T14:00:00Z\",\n    \"outcome\": \"run\"", `"reason": "previous job 39 still has runs out"`}},
		{args: []string{"schedule", "history", "nightly-apt", "-o", "json"}, replies: map[string]func(xmlrpc.Params) any{
			"schedule.history": fixed([]api.ScheduleTick{})}, method: "schedule.history",
			params: []any{"nightly-apt", api.ScheduleHistoryRequest{Limit: 50}}, out: "[]\n"},
		{args: []string{"schedule", "history", "nightly-apt", "--limit", "0"}, replies: history, code: ExitUsage, errOut: "--limit 0: want 1 to 1000"},
		{args: []string{"schedule", "history", "nightly-apt", "--limit", "1001"}, replies: history, code: ExitUsage, errOut: "--limit"},
		{args: []string{"schedule", "history", "nightly-apt", "--before", "x"}, replies: history, code: ExitUsage,
			errOut: `--before "x": want a positive number`},
	})
}

// TestScheduleRemove checks that remove makes one call per name, in order,
// and stops at the first the server refuses.
func TestScheduleRemove(t *testing.T) {
	fixClock(t, goldenNow)
	replies := map[string]func(xmlrpc.Params) any{"schedule.remove": func(p xmlrpc.Params) any {
		name, _ := p[0].(string)
		if name == "ghost" {
			return &xmlrpc.Fault{Code: 404, Message: "no schedule ghost"}
		}
		s := goldenSchedules()[1]
		s.Name = name
		s.Job.Targets, s.Job.Groups, s.Job.Selectors = nil, nil, nil
		return s
	}}
	for _, c := range []struct {
		args      []string
		code      int
		out       string
		contains  []string
		wantNames []string
	}{
		{args: []string{"nightly-apt", "disk-check"}, out: "removed schedule nightly-apt\nremoved schedule disk-check\n",
			wantNames: []string{"nightly-apt", "disk-check"}},
		{args: []string{"nightly-apt", "ghost", "disk-check"}, code: ExitNotFound, out: "removed schedule nightly-apt\n",
			wantNames: []string{"nightly-apt", "ghost"}},
		{args: []string{"nightly-apt", "disk-check", "-o", "json"},
			contains:  []string{"[\n  {\n    \"name\": \"nightly-apt\"", "\"name\": \"disk-check\"", `"targets": []`},
			wantNames: []string{"nightly-apt", "disk-check"}},
		{args: []string{"nightly-apt", "ghost", "-o", "json"}, code: ExitNotFound, contains: []string{"[\n  {\n    \"name\": \"nightly-apt\""},
			wantNames: []string{"nightly-apt", "ghost"}},
	} {
		fake := newFakeAPI(replies)
		out, errOut, code := runFake(t, fake, "", append([]string{"schedule", "remove"}, c.args...)...)
		if code != c.code {
			t.Errorf("remove %v: exit %d, want %d (%s)", c.args, code, c.code, errOut)
		}
		if c.contains == nil && out != c.out {
			t.Errorf("remove %v: stdout %q, want %q", c.args, out, c.out)
		}
		for _, w := range c.contains {
			if !strings.Contains(out, w) {
				t.Errorf("remove %v: stdout lacks %q:\n%s", c.args, w, out)
			}
		}
		var names []string
		for _, call := range fake.calls {
			if call.Method != "schedule.remove" || len(call.Params) != 1 {
				t.Errorf("remove %v: called %s%v, want schedule.remove with one param", c.args, call.Method, call.Params)
				continue
			}
			name, _ := call.Params[0].(string)
			names = append(names, name)
		}
		check(t, "remove "+strings.Join(c.args, " "), names, c.wantNames)
	}
}

// TestScheduleCompletion checks that the NAME of the schedule commands
// completes from schedule.list, as the shell scripts ask.
func TestScheduleCompletion(t *testing.T) {
	fixClock(t, goldenNow)
	_, conn := startFake(t, map[string]func(xmlrpc.Params) any{
		"schedule.list": fixed(goldenSchedules()),
		"client.list":   fixed(goldenClients()),
		"group.list":    fixed([]api.Group{{Kind: "client", Name: "web"}}),
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"schedule", "show", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "show", "nightly-apt", ""}, ""},
		{[]string{"schedule", "pause", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "resume", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "run", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "history", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "remove", ""}, "nightly-apt disk-check"},
		{[]string{"schedule", "remove", "nightly-apt", ""}, "disk-check"},
		{[]string{"schedule", "add", ""}, ""},
		{[]string{"schedule", "add", "x", "--target", ""}, "web1"},
		{[]string{"schedule", "add", "x", "--group", ""}, "web"},
		{[]string{"schedule", "add", "x", "--catch-up", ""}, "latest none"},
		{[]string{"schedule", "add", "x", "--overlap", ""}, "skip allow"},
	} {
		if got := strings.Join(complete(t, conn, c.args...), " "); got != c.want {
			t.Errorf("complete %q: %q, want %q", c.args, got, c.want)
		}
	}
	// The description says the expression, and whether it is paused.
	out, _, _ := run(t, "", append([]string{"__complete", "schedule", "show"}, append(conn, "")...)...)
	for _, w := range []string{"nightly-apt\t0 3 * * * (Europe/Paris)\n", "disk-check\t@hourly, paused\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("completion lacks %q:\n%s", w, out)
		}
	}
}
