package agent

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/jobxml"
)

// The idle polls: one that heartbeats, and one in between the idle
// heartbeats (IdleHeartbeatEvery).
const (
	idlePoll     = "system.multicall(agent.heartbeat,agent.getJobs)"
	idlePollBare = "agent.getJobs"
)

func (f *fakeServer) requestsSoFar() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// An idle agent's poll is one request: agent.heartbeat and agent.getJobs in
// one system.multicall, until a heartbeat succeeds; then agent.getJobs alone
// until IdleHeartbeatEvery has passed, since it holds nothing a cancel
// could reach. A failing heartbeat is only logged (the getJobs next to it
// still brings work), acknowledging and reporting stay requests of their
// own, in the durable order, and a 402 on getJobs sends the agent back to
// registering.
func TestAgentIdlePollIsOneRequest(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, filepath.Join(t.TempDir(), "state"))
	f.failBeat = -1
	a := newTestAgent(t, f)
	a.cfg.Once = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, a.cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	}()
	eventually(t, "four idle polls", func() bool { return len(f.requestsSoFar()) >= 5 })
	reqs := f.requestsSoFar()
	if reqs[0] != "agent.register" {
		t.Fatalf("first request %q, want agent.register", reqs[0])
	}
	for i, r := range reqs[1:] {
		if r != idlePoll {
			t.Fatalf("request %d is %q, want %q while heartbeats fail (all: %v)", i+2, r, idlePoll, reqs)
		}
	}

	f.addJob(jobxml.Job{ID: 1, Run: 71, Script: "echo polled"})
	eventually(t, "the job to be reported", func() bool { _, ok := f.final(71); return ok })
	if st, _ := f.final(71); st.Output != "polled\n" {
		t.Fatalf("report %+v", st)
	}
	f.mu.Lock()
	calls := slices.Clone(f.calls)
	noFile := slices.Clone(f.ackedNoFile)
	f.mu.Unlock()
	if len(noFile) != 0 {
		t.Fatalf("runs %v acknowledged before they were queued", noFile)
	}
	get := slices.Index(calls, "agent.getJobs")
	ack := slices.Index(calls, "agent.ackJobs")
	if ack < 0 || ack < get {
		t.Fatalf("calls %v: want agent.ackJobs after the getJobs that brought the run", calls)
	}
	reqs = f.requestsSoFar()
	if !slices.Contains(reqs, "agent.ackJobs") || !slices.Contains(reqs, "agent.reportStatus") {
		t.Fatalf("requests %v: acknowledgement and report should be requests of their own", reqs)
	}

	f.mu.Lock()
	f.failBeat = 0
	f.mu.Unlock()
	n := len(f.requestsSoFar())
	eventually(t, "bare idle polls once a heartbeat succeeded", func() bool {
		r := f.requestsSoFar()
		return len(r) >= n+3 && r[len(r)-1] == idlePollBare && r[len(r)-2] == idlePollBare
	})
	r := f.requestsSoFar()[n:]
	if beats := strings.Count(strings.Join(r, " "), "agent.heartbeat"); beats != 1 {
		t.Fatalf("requests %v after heartbeats succeed: %d heartbeats, want 1 (the next in %s)", r, beats, IdleHeartbeatEvery)
	}

	f.mu.Lock()
	f.status = "revoked"
	f.mu.Unlock()
	eventually(t, "the agent to register again after a 402 on getJobs", func() bool {
		r := f.requestsSoFar()
		return r[len(r)-1] == "agent.register" && strings.Contains(a.out.String(), "revoked")
	})
}
