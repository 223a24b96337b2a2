package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/maintenance"
	"github.com/scirectl/scirectl/runstate"
)

func (s *stubStore) TryLock(context.Context, string) (func(), error) {
	s.call("TryLock")
	return func() {}, nil
}

func (s *stubStore) PruneJobs(context.Context, db.PruneOptions) (db.PruneResult, error) {
	s.call("PruneJobs")
	return db.PruneResult{}, nil
}

func TestCleanerLifecycle(t *testing.T) {
	st := newStubStore()
	c := &maintenance.Cleaner{Store: st, Retain: DefaultRetain, Delay: time.Millisecond, Interval: 10 * time.Millisecond, Log: discardLog()}
	checkLifecycle(t, c, st, "TryLock", nil) // the first pass comes a Delay after Start
}

// The daemon's cleaner passes the gate as the non-modifier cleaner.clean
// (so it waits for a modifier such as db.restore), deletes what expired,
// and records the pass in the audit trail as this daemon's.
func TestCleanerOfTheDaemon(t *testing.T) {
	ctx := context.Background()
	h := newHarnessConfig(t, func(c *Config) { c.RetainAudit = -1 })
	st := h.srv.store
	if c := h.srv.cleaner(); c.Retain != DefaultRetain || c.RetainAudit != 0 || c.Describe() != "jobs 90d, audit records for ever" {
		t.Fatalf("cleaner keeps %s (retain %v, audit %v)", c.Describe(), c.Retain, c.RetainAudit)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(h.log.String(), `msg=retention keep="jobs 90d, audit records for ever"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no retention line in the log:\n%s", h.log.String())
		}
	}
	c, err := st.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-old", Name: "old", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-100 * 24 * time.Hour).UTC()
	for range 3 {
		if _, err := st.SubmitJob(ctx, db.NewJob{Name: "old", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
			ClientIDs: []int64{c.ID}, CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CancelJob(ctx, 1, old, "cancelled by admin"); err != nil {
		t.Fatal(err)
	}
	ds, err := st.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 10, At: old, Lease: time.Hour, ServerID: 1})
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	code := 0
	for _, d := range ds {
		if _, err := st.ReportRuns(ctx, c.ID, []db.Report{{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &code}}, old); err != nil {
			t.Fatal(err)
		}
	}

	mod, err := h.srv.gate.Enter(ctx, gate.Request{Name: "db.restore", Class: gate.Modifier, User: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan maintenance.CleanResult, 1)
	go func() {
		res, err := h.srv.cleaner().RunOnce(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		waiting := false
		for _, o := range h.srv.gate.List() {
			waiting = waiting || o.Name == maintenance.AuditClean && o.Class == gate.NonModifier
		}
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleaner is not at the gate: %+v", h.srv.gate.List())
		}
	}
	select {
	case res := <-done:
		t.Fatalf("the cleaner ran beside a modifier: %+v", res)
	case <-time.After(50 * time.Millisecond):
	}
	mod.Release()
	res := <-done
	if res.Jobs != 3 || res.Runs != 3 {
		t.Fatalf("pass: %+v, want 3 jobs and runs", res)
	}
	es, err := st.ListOperations(ctx, db.AuditFilter{Name: maintenance.AuditClean})
	if err != nil || len(es) != 1 || es[0].ServerID != h.srv.serverID() || es[0].Actor != "server" ||
		!strings.HasPrefix(es[0].Detail, "deleted 3 jobs, 3 runs, 0 audit rows") {
		t.Fatalf("audit of the pass: %+v, %v", es, err)
	}
}

// job.delete and job.prune over the wire: their permissions, refusals,
// results and audit records.
func TestJobDeleteAndPrune(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	alice, _ := h.addUser(t, admin, "alice")
	h.activeClient(t, admin, "web1")
	addRule(t, admin, "user:alice", "run", "*", "allow")
	submitCancelled := func(c interface {
		Call(context.Context, string, any, ...any) error
	}) string {
		var sub api.SubmitResult
		if err := c.Call(ctx, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Call(ctx, "job.cancel", nil, sub.ID); err != nil {
			t.Fatal(err)
		}
		return sub.ID
	}
	hers, theirs := submitCancelled(alice), submitCancelled(admin)
	var pending api.SubmitResult
	mustCall(t, alice, "job.submit", &pending, map[string]any{"script": "true", "targets": []string{"web1"}})

	// Her own jobs need no permission; others' need job.delete.
	wantFault(t, alice.Call(ctx, "job.delete", nil, []string{hers, theirs}), 403)
	wantFault(t, alice.Call(ctx, "job.delete", nil, []string{hers, pending.ID}), 409)
	wantFault(t, alice.Call(ctx, "job.delete", nil, []string{hers, "987654"}), 404)
	wantFault(t, alice.Call(ctx, "job.delete", nil, []string{}), 400)
	wantFault(t, alice.Call(ctx, "job.delete", nil, "not ids"), 400)
	var del api.DeleteResult
	mustCall(t, alice, "job.delete", &del, []string{hers})
	if del.Jobs != 1 || del.Runs != 1 || len(del.JobIDs) != 1 || del.JobIDs[0] != hers {
		t.Fatalf("job.delete = %+v", del)
	}
	wantFault(t, alice.Call(ctx, "job.get", nil, hers), 404)
	var es []api.AuditEntry
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "job.delete"})
	// Every call is recorded: the success, the four refusals, the denial.
	if len(es) != 6 || es[0].Actor != "alice" || es[0].Outcome != "ok" || es[0].Detail != "deleted 1 jobs, 1 runs" || es[0].Target != hers ||
		!strings.Contains(es[3].Detail, "job 987654: not found") || !strings.Contains(es[4].Detail, "job "+pending.ID+" has 1 run not final") ||
		es[5].Outcome != "denied" {
		t.Fatalf("audit of job.delete = %+v", es)
	}

	// job.prune needs job.delete; the jobs ended a moment ago, so an age
	// of 0 takes the final ones and a day none.
	wantFault(t, alice.Call(ctx, "job.prune", nil, map[string]any{"older_than": "30d"}), 403)
	for _, bad := range []map[string]any{{}, {"older_than": "soon"}, {"older_than": -5}, {"older_than": "1d", "force": true},
		{"older_than": true}} {
		wantFault(t, admin.Call(ctx, "job.prune", nil, bad), 400)
	}
	var pr api.PruneResult
	mustCall(t, admin, "job.prune", &pr, map[string]any{"older_than": "1d"})
	if pr.Jobs != 0 || pr.OlderThan != "1d" || pr.DryRun || time.Since(pr.Before) < 24*time.Hour {
		t.Fatalf("job.prune 1d = %+v", pr)
	}
	time.Sleep(10 * time.Millisecond)
	mustCall(t, admin, "job.prune", &pr, map[string]any{"older_than": 0, "dry_run": true})
	if pr.Jobs != 1 || pr.Runs != 1 || !pr.DryRun || pr.OlderThan != "0s" {
		t.Fatalf("job.prune dry run = %+v", pr)
	}
	mustCall(t, admin, "job.get", nil, theirs) // still there
	mustCall(t, admin, "job.prune", &pr, map[string]any{"older_than": "0s"})
	if pr.Jobs != 1 || pr.Runs != 1 || pr.DryRun {
		t.Fatalf("job.prune = %+v", pr)
	}
	wantFault(t, admin.Call(ctx, "job.get", nil, theirs), 404)
	mustCall(t, alice, "job.get", nil, pending.ID) // not final: kept
	mustCall(t, admin, "audit.list", &es, map[string]any{"operation": "job.prune", "outcome": "ok"})
	if len(es) != 3 || es[0].Detail != "deleted 1 jobs, 1 runs" || es[0].Target != "older_than=0s" ||
		!strings.Contains(es[1].Target, "dry_run=true") || es[1].Detail != "" {
		t.Fatalf("audit of job.prune = %+v", es)
	}

	// Both are modifiers: one job.delete waits for everything, and the
	// registry has them with the permission job.delete.
	for _, name := range []string{"job.delete", "job.prune"} {
		op := h.srv.ops[name]
		if op.Class != gate.Modifier || !op.keepsClients {
			t.Errorf("%s: %+v", name, op)
		}
	}
	if !slices.Contains(h.srv.AdminPermissions(), PermJobDelete) {
		t.Errorf("admin permissions %v lack job.delete", h.srv.AdminPermissions())
	}
}
