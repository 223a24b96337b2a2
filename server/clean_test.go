package server

import (
	"context"
	"strings"
	"testing"
	"time"

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
