package server

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
)

func TestJobCancel(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	ag, _ := h.activeClient(t, admin, "web1")
	addRule(t, admin, "user:alice", "run", "*", "allow")

	var sub api.SubmitResult
	mustCall(t, admin, "job.submit", &sub, map[string]any{"script": "sleep 100", "targets": []string{"web1"}})
	var docs []string
	mustCall(t, ag, "agent.getJobs", &docs, 10)
	j, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	run := itoa(j.Run)
	mustCall(t, ag, "agent.ackJobs", nil, []string{run})

	// Someone else's job needs job.cancel.
	wantFault(t, alice.Call(ctx, "job.cancel", nil, sub.ID), 403)
	var res api.CancelResult
	mustCall(t, admin, "job.cancel", &res, sub.ID)
	if res.Cancelled != 1 || res.JobID != sub.ID {
		t.Fatalf("job.cancel = %+v", res)
	}
	mustCall(t, admin, "job.cancel", &res, sub.ID)
	if res.Cancelled != 0 {
		t.Fatalf("second job.cancel = %+v, want 0", res)
	}
	wantFault(t, admin.Call(ctx, "job.cancel", nil, "999"), 404)

	// The agent learns it from its heartbeat...
	var hb api.Heartbeat
	mustCall(t, ag, "agent.heartbeat", &hb)
	if len(hb.Cancel) != 1 || hb.Cancel[0] != run {
		t.Fatalf("heartbeat cancel = %v, want [%s]", hb.Cancel, run)
	}
	// ...and from a report, which is accepted and changes nothing.
	doc, _ := jobxml.EncodeStatuses([]jobxml.Status{{Run: j.Run, State: jobxml.StateRunning, Started: time.Now().UTC()}})
	var rep []api.ReportResult
	mustCall(t, ag, "agent.reportStatus", &rep, string(doc))
	if len(rep) != 1 || !rep[0].Accepted || !rep[0].Cancelled {
		t.Fatalf("report on a cancelled run = %+v", rep)
	}
	var job api.Job
	mustCall(t, admin, "job.get", &job, sub.ID)
	if job.Status != "cancelled" || job.Runs[0].State != "cancelled" || !strings.Contains(job.Runs[0].Reason, "admin") {
		t.Fatalf("job after cancel = %+v", job)
	}
	// Her own job, alice cancels without a permission; it is audited.
	mustCall(t, alice, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"}})
	mustCall(t, alice, "job.cancel", &res, sub.ID)
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "job.cancel", "outcome": "ok"})
	if len(es) != 3 || es[0].Actor != "alice" || es[0].Target != sub.ID {
		t.Fatalf("audit of job.cancel = %+v", es)
	}
}

// A run sent before a crash and never acknowledged goes back to the queue
// when the server starts again, before it accepts any connection.
func TestStartupRecovery(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	h := newHarnessConfig(t, func(c *Config) { c.DataDir = dir; c.Lease = 100 * time.Millisecond; c.RescueInterval = time.Hour })
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}})
	var docs []string
	mustCall(t, ag, "agent.getJobs", &docs, 10)
	if len(docs) != 1 {
		t.Fatalf("got %d jobs", len(docs))
	}
	h.cancel()
	<-h.done
	h.done <- nil                      // for the harness cleanup
	time.Sleep(150 * time.Millisecond) // the lease ends while the server is down

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testtool.SyncBuffer{}
	sctx, stop := context.WithCancel(ctx)
	s, err := New(sctx, Config{DataDir: dir, Listener: ln, Listen: ln.Addr().String(), Log: slog.New(slog.NewTextHandler(logs, nil)), RescueInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "msg=serving") {
		if time.Now().After(deadline) {
			t.Fatalf("no serving line:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := logs.String()
	rec, serving := strings.Index(out, "startup recovery"), strings.Index(out, "msg=serving")
	if rec < 0 || rec > serving || !strings.Contains(out[rec:serving], "1 requeued") {
		t.Fatalf("want a startup recovery line with 1 requeued before serving:\n%s", out)
	}
}

func TestServerListAndStatus(t *testing.T) {
	h := newHarness(t)
	admin := h.operator(t)
	var ss []api.ServerInfo
	mustCall(t, admin, "server.list", &ss)
	if len(ss) != 1 || !ss[0].Alive || ss[0].ID != itoa(h.srv.serverID()) {
		t.Fatalf("server.list = %+v", ss)
	}
	var st api.ServerStatus
	mustCall(t, admin, "server.status", &st)
	if st.ID != ss[0].ID || st.SchemaVersion < 1 || st.Gate.Admitted < 1 || !strings.HasPrefix(st.Database, "sqlite://") {
		t.Fatalf("server.status = %+v", st)
	}
}
