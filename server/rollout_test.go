package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/jobxml"
)

// reportRun reports one run of agent ag final.
func reportRun(t *testing.T, ag *client.Client, run int64, st jobxml.State) {
	t.Helper()
	code := 0
	if st == jobxml.StateFailed {
		code = 1
	}
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{{Run: run, State: st, Exit: &code, Finished: time.Now().UTC()}})
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, ag, "agent.reportStatus", nil, string(doc))
}

// getRuns claims up to max runs for agent ag and acknowledges them.
func getRuns(t *testing.T, ag *client.Client, max int) []int64 {
	t.Helper()
	var docs []string
	mustCall(t, ag, "agent.getJobs", &docs, max)
	var ids []string
	var runs []int64
	for _, d := range docs {
		j, err := jobxml.DecodeJob([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		runs, ids = append(runs, j.Run), append(ids, itoa(j.Run))
	}
	if len(ids) > 0 {
		mustCall(t, ag, "agent.ackJobs", nil, ids)
	}
	return runs
}

// The rollout through XML-RPC and TLS: job.submit's members (string and
// int forms, faults naming the member), job.get's fields, the window at
// dispatch, the halt by the rollout keeper, and the audit of each step.
func TestRolloutOperations(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	var agents []*client.Client
	var names []string
	for _, n := range []string{"r1", "r2", "r3", "r4"} {
		ag, _ := h.activeClient(t, admin, n)
		agents, names = append(agents, ag), append(names, n)
	}
	for _, tc := range []struct {
		job   map[string]any
		parts []string
	}{
		{map[string]any{"max_parallel": "ten"}, []string{"max_parallel", `"ten"`}},
		{map[string]any{"max_parallel": 0}, []string{"max_parallel", "at least 1"}},
		{map[string]any{"max_failures": "120%"}, []string{"max_failures", "100%"}},
		{map[string]any{"success_threshold": "0%"}, []string{"success_threshold"}},
		{map[string]any{"canary": 4}, []string{"canary", "4 canaries for 4 runs"}},
		{map[string]any{"canary": "one"}, []string{"canary"}},
	} {
		job := map[string]any{"script": "true", "targets": names}
		for k, v := range tc.job {
			job[k] = v
		}
		wantFaultText(t, admin.Call(ctx, "job.submit", nil, job), 400, tc.parts...)
	}
	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": names,
		"max_parallel": "50%", "max_failures": 0, "success_threshold": 75})
	var j api.Job
	mustCall(t, admin, "job.get", &j, sub.ID)
	if j.MaxParallel == nil || *j.MaxParallel != 2 || j.MaxFailures == nil || *j.MaxFailures != 0 || j.SuccessThreshold != 75 || j.Halted || j.Paused {
		t.Fatalf("job.get rollout: %+v", j)
	}
	// The window: two of the four agents get their run.
	var out [][]int64
	got := 0
	for _, ag := range agents {
		rs := getRuns(t, ag, 5)
		out = append(out, rs)
		got += len(rs)
	}
	if got != 2 {
		t.Fatalf("window of 2 handed out %d runs", got)
	}
	// A failure with a budget of 0 halts the job within the keeper's pass.
	for i, rs := range out {
		if len(rs) == 1 {
			reportRun(t, agents[i], rs[0], jobxml.StateFailed)
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for mustCall(t, admin, "job.get", &j, sub.ID); !j.Halted && time.Now().Before(deadline); mustCall(t, admin, "job.get", &j, sub.ID) {
		time.Sleep(20 * time.Millisecond)
	}
	if !j.Halted || j.HaltReason != "failure budget exceeded: 1 of 4 failed" || j.Counts["skipped"] != 2 {
		t.Fatalf("after a failure with no budget left: %+v", j)
	}
	for _, r := range j.Runs {
		if r.State == "skipped" && r.Reason != "job halted: failure budget exceeded: 1 of 4 failed" {
			t.Fatalf("skipped run %+v", r)
		}
	}
	var ops []api.AuditEntry
	mustCall(t, admin, "audit.list", &ops, map[string]any{"operation": "rollout.halt"})
	if len(ops) != 1 || ops[0].Target != "job "+sub.ID {
		t.Fatalf("audit of the halt: %+v", ops)
	}
}

func TestPauseResumeRerun(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	ag1, _ := h.activeClient(t, admin, "p1")
	ag2, _ := h.activeClient(t, admin, "p2")
	bob, _ := h.addUser(t, admin, "bob")
	addRule(t, admin, "user:bob", "run", "*", "allow")

	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"p1", "p2"}, "canary": 1})
	// Pausing another user's job needs job.cancel.
	wantFault(t, bob.Call(ctx, "job.pause", nil, sub.ID), 403)
	var pr api.PauseResult
	mustCall(t, admin, "job.pause", &pr, sub.ID)
	if !pr.Paused || !pr.Changed || pr.JobID != sub.ID {
		t.Fatalf("pause: %+v", pr)
	}
	mustCall(t, admin, "job.pause", &pr, sub.ID)
	if pr.Changed {
		t.Fatalf("second pause changed the job: %+v", pr)
	}
	if rs := getRuns(t, ag1, 5); len(rs) != 0 {
		t.Fatalf("paused job handed out %v", rs)
	}
	mustCall(t, admin, "job.resume", &pr, sub.ID)
	if pr.Paused || !pr.Changed {
		t.Fatalf("resume: %+v", pr)
	}
	if rs := getRuns(t, ag2, 5); len(rs) != 0 {
		t.Fatalf("a non-canary went before the canary: %v", rs)
	}
	c := getRuns(t, ag1, 5)
	if len(c) != 1 {
		t.Fatalf("canary: %v", c)
	}
	reportRun(t, ag1, c[0], jobxml.StateSucceeded)
	o := getRuns(t, ag2, 5)
	if len(o) != 1 {
		t.Fatalf("after the canary: %v", o)
	}
	reportRun(t, ag2, o[0], jobxml.StateFailed)
	wantFault(t, admin.Call(ctx, "job.pause", nil, sub.ID), 409)
	wantFault(t, admin.Call(ctx, "job.pause", nil, "999999"), 404)

	// Rerun the failed target only: a new job naming the old.
	var re api.SubmitResult
	mustCall(t, admin, "job.rerun", &re, sub.ID, map[string]any{"failed": true})
	if re.Runs != 1 || re.RerunOf != sub.ID || re.ID == sub.ID {
		t.Fatalf("rerun --failed: %+v", re)
	}
	var j api.Job
	mustCall(t, admin, "job.get", &j, re.ID)
	if j.RerunOf != sub.ID || len(j.Runs) != 1 || j.Runs[0].Client != "p2" || j.Canary != 0 {
		t.Fatalf("rerun job: %+v", j)
	}
	mustCall(t, admin, "job.rerun", &re, sub.ID)
	if re.Runs != 2 {
		t.Fatalf("rerun of all targets: %+v", re)
	}
	wantFaultText(t, admin.Call(ctx, "job.rerun", nil, sub.ID, map[string]any{"colour": "red"}), 400, "colour")
	// bob may not see admin's job: rerunning it needs job.read.
	wantFault(t, bob.Call(ctx, "job.rerun", nil, sub.ID), 403)
	var ops []api.AuditEntry
	mustCall(t, admin, "audit.list", &ops, map[string]any{"operation": "job.*", "outcome": "ok"})
	seen := map[string]int{}
	for _, op := range ops {
		seen[op.Name]++
	}
	if seen["job.pause"] != 2 || seen["job.resume"] != 1 || seen["job.rerun"] != 2 {
		t.Fatalf("audit: %v", seen)
	}
	if !strings.Contains(strings.Join(h.srv.AdminPermissions(), " "), "job.cancel") {
		t.Fatal("job.cancel is not an admin permission")
	}
}

// A periodic pass that takes a kicked scope enforces it too: a job whose
// last run just failed has no run left active, so the periodic scope (the
// active rollouts) would not see it.
func TestRolloutKeeperPeriodicPassKeepsTheKick(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "k1")
	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"k1"}, "max_failures": 0})
	runs := getRuns(t, ag, 1)
	h.srv.rollouts.Stop() // the pass below is the only one
	reportRun(t, ag, runs[0], jobxml.StateFailed)
	if err := h.srv.rollouts.RunOnce(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	var j api.Job
	mustCall(t, admin, "job.get", &j, sub.ID)
	if !j.Halted || j.HaltReason != "failure budget exceeded: 1 of 1 failed" {
		t.Fatalf("after a periodic pass: %+v", j)
	}
}
