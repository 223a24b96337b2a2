package server

import (
	"context"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
)

// Live output over XML-RPC and TLS: an agent streams chunks (agent.output)
// while its run goes on, resends are recognised, a gap is refused with the
// offset to resume from, a follower reads from its offset (job.output's
// offsets), another client's run is refused whole, and the final report's
// output is the run's.
func TestAgentOutputAndFollow(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "s1")
	other, _ := h.activeClient(t, admin, "s2")
	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "long", "targets": []string{"s1"}})
	runs := getRuns(t, ag, 1)
	if len(runs) != 1 {
		t.Fatalf("runs %v", runs)
	}
	run := itoa(runs[0])
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{{Run: runs[0], State: jobxml.StateRunning}})
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, ag, "agent.reportStatus", nil, string(doc))

	var acks []api.OutputAck
	mustCall(t, ag, "agent.output", &acks, []api.OutputChunk{{RunID: run, Offset: 0, Data: "line 1\n"}, {RunID: run, Offset: 7, Data: "line 2\n"}})
	if len(acks) != 2 || !acks[1].Accepted || acks[1].Offset != 14 {
		t.Fatalf("acks %+v", acks)
	}
	mustCall(t, ag, "agent.output", &acks, []api.OutputChunk{{RunID: run, Offset: 7, Data: "line 2\n"}, {RunID: run, Offset: 30, Data: "x"}})
	if !acks[0].Accepted || acks[0].Offset != 14 || acks[1].Accepted || acks[1].Offset != 14 || acks[1].Error == "" {
		t.Fatalf("resend and gap: %+v", acks)
	}
	wantFault(t, other.Call(ctx, "agent.output", nil, []api.OutputChunk{{RunID: run, Offset: 14, Data: "no"}}), 409)
	wantFaultText(t, ag.Call(ctx, "agent.output", nil, []api.OutputChunk{{RunID: "x", Offset: 0, Data: "a"}}), 400, "run_id")
	wantFaultText(t, ag.Call(ctx, "agent.output", nil, []map[string]any{{"run_id": run, "offset": 0, "data": "a", "colour": 1}}), 400, "colour")

	var out []api.Output
	mustCall(t, admin, "job.output", &out, sub.ID)
	if len(out) != 1 || out[0].Output != "line 1\nline 2\n" || out[0].State != "running" || out[0].Size != 14 {
		t.Fatalf("live output: %+v", out)
	}
	mustCall(t, admin, "job.output", &out, sub.ID, "", map[string]any{"offsets": map[string]any{run: 7}})
	if out[0].Output != "line 2\n" || out[0].Size != 14 {
		t.Fatalf("since 7: %+v", out)
	}
	mustCall(t, admin, "job.output", &out, sub.ID, "", map[string]any{"offsets": map[string]any{run: 14}})
	if out[0].Output != "" {
		t.Fatalf("since the end: %+v", out)
	}
	wantFaultText(t, admin.Call(ctx, "job.output", nil, sub.ID, "", map[string]any{"offsets": map[string]any{"abc": 1}}), 400, "abc")

	zero := 0
	doc, err = jobxml.EncodeStatuses([]jobxml.Status{{Run: runs[0], State: jobxml.StateSucceeded, Exit: &zero, Finished: time.Now().UTC(), Output: "line 1\nline 2\nline 3\n"}})
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, ag, "agent.reportStatus", nil, string(doc))
	mustCall(t, admin, "job.output", &out, sub.ID, "", map[string]any{"offsets": map[string]any{run: 14}})
	if out[0].Output != "line 3\n" || out[0].State != "succeeded" || out[0].Size != 21 {
		t.Fatalf("final since 14: %+v", out)
	}
	mustCall(t, ag, "agent.output", &acks, []api.OutputChunk{{RunID: run, Offset: 14, Data: "late"}})
	if !acks[0].Stop {
		t.Fatalf("chunk of a final run: %+v", acks)
	}
}
