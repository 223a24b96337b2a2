package server

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
)

// A received run that its agent names in agent.heartbeat is not declared
// lost while the agent heartbeats, however long it waits in the agent's
// queue; its neighbour, not named, is lost after timeout+grace as before.
// Once the agent falls silent, the named run is lost too, and the next
// heartbeat that names it says so.
func TestHeartbeatRenewsHeldRuns(t *testing.T) {
	ctx := context.Background()
	h := newHarnessConfig(t, func(c *Config) { c.LostGrace = time.Second; c.RescueInterval = 50 * time.Millisecond })
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	other, _ := h.activeClient(t, admin, "web2")

	var held, silent, foreign api.SubmitResult
	mustCall(t, admin, "job.submit", &held, map[string]any{"script": "true", "targets": []string{"web1"}, "timeout": 1})
	mustCall(t, admin, "job.submit", &silent, map[string]any{"script": "true", "targets": []string{"web1"}, "timeout": 1})
	mustCall(t, admin, "job.submit", &foreign, map[string]any{"script": "true", "targets": []string{"web2"}, "timeout": 1})
	take := func(c interface {
		Call(context.Context, string, any, ...any) error
	}) []string {
		var docs []string
		if err := c.Call(ctx, "agent.getJobs", &docs, 10); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range docs {
			j, err := jobxml.DecodeJob([]byte(d))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, itoa(j.Run))
		}
		if err := c.Call(ctx, "agent.ackJobs", nil, ids); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	mine, theirs := take(ag), take(other)
	if len(mine) != 2 || len(theirs) != 1 {
		t.Fatalf("took %v and %v", mine, theirs)
	}
	runState := func(job string) string {
		var j api.Job
		mustCall(t, admin, "job.get", &j, job)
		return j.Runs[0].State + "/" + j.Runs[0].Reason
	}

	// The old form, without the param, still works and renews nothing.
	var hb api.Heartbeat
	mustCall(t, ag, "agent.heartbeat", &hb)
	if len(hb.Lost) != 0 {
		t.Fatalf("heartbeat without param: lost = %v", hb.Lost)
	}
	// Forged and malformed params are faults; foreign and unknown ids are ignored.
	wantFault(t, ag.Call(ctx, "agent.heartbeat", nil, []string{"x"}), 400)
	wantFault(t, ag.Call(ctx, "agent.heartbeat", nil, make([]string, api.MaxJobsPerCall+1)), 400)
	wantFault(t, ag.Call(ctx, "agent.heartbeat", nil, []string{mine[0]}, 1), 400)

	// Timeout 1 s + grace 1 s: the held run's wait, 3 s, would lose it.
	names := []string{mine[0], theirs[0], "987654"}
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		hb = api.Heartbeat{}
		mustCall(t, ag, "agent.heartbeat", &hb, names)
		if len(hb.Lost) != 0 {
			t.Fatalf("heartbeat naming its runs: lost = %v, want none", hb.Lost)
		}
	}
	if st := runState(held.ID); st != "received/" {
		t.Fatalf("held run after 3 s of heartbeats = %s, want received", st)
	}
	if st := runState(silent.ID); st != "failed/lost" {
		t.Fatalf("run the agent did not name = %s, want failed/lost", st)
	}
	if st := runState(foreign.ID); st != "failed/lost" {
		t.Fatalf("another client's run named by web1 = %s, want failed/lost (not renewed)", st)
	}

	// The agent falls silent: the held run is lost in turn, and the next
	// heartbeat naming it (and the one lost before) says so.
	deadline := time.Now().Add(10 * time.Second)
	for runState(held.ID) != "failed/lost" {
		if time.Now().After(deadline) {
			t.Fatalf("held run of a silent agent = %s, want failed/lost", runState(held.ID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	hb = api.Heartbeat{}
	mustCall(t, ag, "agent.heartbeat", &hb, append(names, mine[1]))
	slices.SortFunc(mine, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	if !slices.Equal(hb.Lost, mine) {
		t.Fatalf("heartbeat after the losses: lost = %v, want %v (not web2's run)", hb.Lost, mine)
	}
	if !strings.Contains(h.srv.ops["agent.heartbeat"].Help, "lost") {
		t.Fatal("agent.heartbeat's help does not document the lost list")
	}
}
