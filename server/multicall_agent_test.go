package server

import (
	"context"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/jobxml"
)

// The agent's idle poll, agent.heartbeat and agent.getJobs in one
// system.multicall (client.Multicall), against the real server: each call
// is authenticated and answered on its own, as when sent alone.
func TestAgentPollAsMulticall(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	ag, fp := h.agentClient(t)
	register(t, ag, "web1")

	type heartbeat struct {
		ServerTime   time.Time `xmlrpc:"server_time"`
		PollInterval int       `xmlrpc:"poll_interval"`
		Cancel       []any     `xmlrpc:"cancel"`
	}
	poll := func() (heartbeat, []string, *client.Call, *client.Call) {
		t.Helper()
		var hb heartbeat
		var docs []string
		beat := &client.Call{Method: "agent.heartbeat", Reply: &hb}
		get := &client.Call{Method: "agent.getJobs", Args: []any{10}, Reply: &docs}
		if err := ag.Multicall(ctx, beat, get); err != nil {
			t.Fatalf("Multicall: %v", err)
		}
		return hb, docs, beat, get
	}

	// Pending: both calls refused, each with its own 402.
	_, _, beat, get := poll()
	wantFault(t, beat.Err, 402)
	wantFault(t, get.Err, 402)

	if err := op.Call(ctx, "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	hb, docs, beat, get := poll()
	if beat.Err != nil || get.Err != nil {
		t.Fatalf("accepted agent: heartbeat %v, getJobs %v", beat.Err, get.Err)
	}
	if hb.PollInterval != 30 || time.Since(hb.ServerTime) > time.Minute || len(docs) != 0 {
		t.Fatalf("idle poll: heartbeat %+v, %d documents", hb, len(docs))
	}

	var sub api.SubmitResult
	if err := op.Call(ctx, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"}}); err != nil {
		t.Fatal(err)
	}
	_, docs, beat, get = poll()
	if beat.Err != nil || get.Err != nil || len(docs) != 1 {
		t.Fatalf("poll with a job: heartbeat %v, getJobs %v, %d documents", beat.Err, get.Err, len(docs))
	}
	if j, err := jobxml.DecodeJob([]byte(docs[0])); err != nil || j.ID == 0 {
		t.Fatalf("job document %q: %v", docs[0], err)
	}

	// A bad argument faults its call only.
	var hb2 heartbeat
	beat = &client.Call{Method: "agent.heartbeat", Reply: &hb2}
	get = &client.Call{Method: "agent.getJobs", Args: []any{"many"}, Reply: &docs}
	if err := ag.Multicall(ctx, beat, get); err != nil {
		t.Fatal(err)
	}
	if beat.Err != nil || hb2.ServerTime.IsZero() {
		t.Fatalf("heartbeat next to a bad getJobs: %v, %+v", beat.Err, hb2)
	}
	wantFault(t, get.Err, 400)
}
