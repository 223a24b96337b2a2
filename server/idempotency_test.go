package server

import (
	"context"
	"testing"

	"github.com/scirectl/scirectl/api"
)

// job.submit's idempotency_key over TLS: a retry returns the first job,
// also inside one multicall; another key, or another user, is another
// job; a bad key is refused naming the member.
func TestSubmitIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	h.activeClient(t, admin, "web1")
	h.activeClient(t, admin, "web2")
	job := map[string]any{"script": "backup", "targets": []string{"web1", "web2"}, "idempotency_key": "backup-2026-12-07"}
	var first, again api.SubmitResult
	mustCall(t, admin, api.MethodJobSubmit, &first, job)
	mustCall(t, admin, api.MethodJobSubmit, &again, job)
	if first.Duplicate || !again.Duplicate || again.ID != first.ID || again.Runs != 2 {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	var jobs []api.Job
	mustCall(t, admin, api.MethodJobList, &jobs)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	// In one multicall: one job for the key, and its duplicates.
	keyed := map[string]any{"script": "true", "targets": []string{"web1"}, "idempotency_key": "mc"}
	res := multicall(t, admin, submitCall(keyed), submitCall(keyed), submitCall(map[string]any{"script": "true", "targets": []string{"web1"}}))
	ids := make([]string, 3)
	for i, e := range res {
		ids[i] = entryID(t, i, e)
	}
	if ids[0] != ids[1] || ids[2] == ids[0] {
		t.Fatalf("multicall ids %v", ids)
	}
	if dup, _ := res[1].([]any)[0].(map[string]any)["duplicate"].(bool); !dup {
		t.Fatalf("the second entry is not marked duplicate: %#v", res[1])
	}
	mustCall(t, admin, api.MethodJobList, &jobs)
	if len(jobs) != 3 {
		t.Fatalf("%d jobs after the multicall, want 3", len(jobs))
	}
	// Another user's same key is another job.
	bob, _ := h.addUser(t, admin, "bob")
	addRule(t, admin, "user:bob", "run", "*", "allow")
	var bobs api.SubmitResult
	mustCall(t, bob, api.MethodJobSubmit, &bobs, job)
	if bobs.Duplicate || bobs.ID == first.ID {
		t.Fatalf("bob's submit %+v", bobs)
	}
	for _, bad := range []string{"with space", string(make([]byte, 201))} {
		j := map[string]any{"script": "true", "targets": []string{"web1"}, "idempotency_key": bad}
		wantFaultText(t, admin.Call(ctx, api.MethodJobSubmit, nil, j), 400, "idempotency_key")
	}
}
