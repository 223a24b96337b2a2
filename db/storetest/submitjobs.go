package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// submitOp is the audit record of a job.submit, as the server writes it.
func submitOp(i int) db.AuditEntry {
	return db.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), ServerID: 7, Actor: "alice", Name: "job.submit",
		Target: fmt.Sprintf("script=echo %d targets=a", i), Outcome: "ok"}
}

// wantOps checks that the audit trail holds exactly want (oldest first).
func wantOps(t *testing.T, s db.Store, want []db.AuditEntry) {
	t.Helper()
	got, err := s.ListOperations(context.Background(), db.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("audit trail has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[len(got)-1-i] // newest first
		if g.ID == 0 || !g.At.Equal(w.At) || g.ServerID != w.ServerID || g.Actor != w.Actor || g.Name != w.Name ||
			g.Target != w.Target || g.Outcome != w.Outcome || g.Detail != w.Detail {
			t.Errorf("audit entry %d = %+v, want %+v", i+1, g, w)
		}
	}
}

// testSubmitJobs: several jobs and their audit records in one call; what
// SubmitJobs returns is what Job reads back, in order, ids increasing.
func testSubmitJobs(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b, c := mustClient(t, s, "a", true), mustClient(t, s, "b", true), mustClient(t, s, "c", true)
	before := mustSubmit(t, s, "before", 0, c.ID)
	local := time.FixedZone("east", 5*3600)
	njs := []db.NewJob{
		{Name: "first", Interpreter: "/bin/sh", Script: "echo 'hi' ]]> \r\n", Priority: 3, SubmittedBy: "alice",
			ClientIDs: []int64{a.ID, b.ID, a.ID}, Targets: []string{"a", "b"}, CreatedAt: t0,
			Timeout: 90 * time.Second, MaxAttempts: 2, ExpiresAt: t0.Add(time.Hour)},
		{Name: "second", Permission: "deploy", Interpreter: "/bin/bash", Script: "true", Priority: -4, SubmittedBy: "alice",
			ClientIDs: []int64{b.ID}, Targets: []string{"group:web", "b"}, CreatedAt: time.Now().In(local),
			NotBefore: t0.Add(time.Minute + 7).In(local), ExpiresAt: t0.Add(2 * time.Hour), Timeout: 1500 * time.Millisecond, MaxAttempts: 5},
		{Name: "third", Interpreter: "/bin/sh", Script: "echo 3", SubmittedBy: "alice",
			ClientIDs: []int64{a.ID, b.ID, c.ID}, Targets: []string{"a", "b", "c"}, CreatedAt: t0.Add(time.Second)},
	}
	audit := []db.AuditEntry{submitOp(1), submitOp(2), submitOp(3)}
	js, err := s.SubmitJobs(ctx, njs, audit)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != len(njs) {
		t.Fatalf("SubmitJobs returned %d jobs for %d", len(js), len(njs))
	}
	last := before.ID
	for i, j := range js {
		if j.ID <= last {
			t.Errorf("job %d has id %d, not above the previous %d: ids must increase in order", i+1, j.ID, last)
		}
		last = j.ID
		if j.Name != njs[i].Name || j.Script != njs[i].Script {
			t.Errorf("job %d = %+v, want the job submitted %d-th (%q)", i+1, j, i+1, njs[i].Name)
		}
		back, err := s.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, j) {
			t.Errorf("SubmitJobs returned\n%+v\nJob reads back\n%+v", j, back)
		}
	}
	if js[0].Counts[runstate.Pending] != 2 || js[1].Counts[runstate.Pending] != 1 || js[2].Counts[runstate.Pending] != 3 ||
		js[0].Permission != "run" || js[1].Permission != "deploy" || js[0].Timeout != 90*time.Second {
		t.Errorf("jobs = %+v", js)
	}
	for i, want := range [][]string{{"a", "b"}, {"b"}, {"a", "b", "c"}} {
		runs, err := s.Runs(ctx, js[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range runs {
			names = append(names, r.ClientName)
			if r.State != runstate.Pending {
				t.Errorf("job %d: run %d is %s, want pending", i+1, r.ID, r.State)
			}
		}
		if !reflect.DeepEqual(names, want) {
			t.Errorf("job %d runs on %q, want %q", i+1, names, want)
		}
	}
	jobs, err := s.ListJobs(ctx, db.JobFilter{})
	if err != nil || len(jobs) != 4 || jobs[0].ID != js[2].ID || jobs[3].ID != before.ID {
		t.Fatalf("ListJobs = %+v, %v", jobs, err)
	}
	wantOps(t, s, audit)

	// Without audit records (nil or empty), and one job with its record.
	for _, audit := range [][]db.AuditEntry{nil, {}} {
		more, err := s.SubmitJobs(ctx, []db.NewJob{
			{Name: "x", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "bob", ClientIDs: []int64{a.ID}, CreatedAt: t0},
			{Name: "y", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "bob", ClientIDs: []int64{b.ID}, CreatedAt: t0},
		}, audit)
		if err != nil || len(more) != 2 || more[0].ID <= last || more[1].ID <= more[0].ID {
			t.Fatalf("SubmitJobs without audit records (%#v) = %+v, %v", audit, more, err)
		}
		last = more[1].ID
		one, err := s.SubmitJobs(ctx, []db.NewJob{
			{Name: "z", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "bob", ClientIDs: []int64{c.ID}, CreatedAt: t0},
		}, audit)
		if err != nil || len(one) != 1 || one[0].ID <= last || one[0].Counts[runstate.Pending] != 1 {
			t.Fatalf("SubmitJobs of one job without audit records (%#v) = %+v, %v", audit, one, err)
		}
		last = one[0].ID
		for _, j := range append(more, one...) {
			if back, err := s.Job(ctx, j.ID); err != nil || !reflect.DeepEqual(back, j) {
				t.Errorf("SubmitJobs returned\n%+v\nJob reads back\n%+v, %v", j, back, err)
			}
		}
	}
	wantOps(t, s, audit)
	one, err := s.SubmitJobs(ctx, []db.NewJob{
		{Name: "w", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "alice", ClientIDs: []int64{a.ID}, CreatedAt: t0},
	}, []db.AuditEntry{submitOp(4)})
	if err != nil || len(one) != 1 || one[0].ID <= last {
		t.Fatalf("SubmitJobs of one job with its record = %+v, %v", one, err)
	}
	wantOps(t, s, append(audit, submitOp(4)))
}

// testSubmitJobsAllOrNothing: a job that cannot be stored stores none of
// the batch, and no audit record; the error names the job.
func testSubmitJobsAllOrNothing(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	before := mustSubmit(t, s, "before", 0, a.ID)
	if err := s.RecordOperation(ctx, submitOp(0)); err != nil {
		t.Fatal(err)
	}
	job := func(name string, clients ...int64) db.NewJob {
		return db.NewJob{Name: name, Interpreter: "/bin/sh", Script: "echo " + name, SubmittedBy: "alice",
			ClientIDs: clients, CreatedAt: t0}
	}
	const missing = 777777
	// unchanged checks that only what was there before is there.
	unchanged := func(what string) {
		t.Helper()
		jobs, err := s.ListJobs(ctx, db.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].ID != before.ID {
			t.Errorf("%s: a failed SubmitJobs left jobs %+v", what, jobs)
		}
		wantOps(t, s, []db.AuditEntry{submitOp(0)})
	}
	for _, tc := range []struct {
		name    string
		jobs    []db.NewJob
		audit   []db.AuditEntry
		wantErr error
		wantMsg string
	}{
		{"missing client in job 2 of 3", []db.NewJob{job("j1", a.ID), job("j2", b.ID, missing), job("j3", b.ID)},
			[]db.AuditEntry{submitOp(1), submitOp(2), submitOp(3)}, db.ErrNotFound, "job 2 of 3"},
		{"missing client in job 3 of 3", []db.NewJob{job("j1", a.ID), job("j2", b.ID), job("j3", missing, a.ID)},
			[]db.AuditEntry{submitOp(1), submitOp(2), submitOp(3)}, db.ErrNotFound, "job 3 of 3"},
		{"missing client in job 1 of 2", []db.NewJob{job("j1", missing), job("j2", b.ID)},
			[]db.AuditEntry{submitOp(1), submitOp(2)}, db.ErrNotFound, "job 1 of 2"},
		{"missing client, one job with its record", []db.NewJob{job("j1", a.ID, missing)},
			[]db.AuditEntry{submitOp(1)}, db.ErrNotFound, "submit job: "},
		{"missing client, one job without records", []db.NewJob{job("j1", missing)},
			nil, db.ErrNotFound, "submit job: "},
		{"no target clients in job 2 of 3", []db.NewJob{job("j1", a.ID), job("j2"), job("j3", b.ID)},
			[]db.AuditEntry{submitOp(1), submitOp(2), submitOp(3)}, db.ErrInvalid, "job 2 of 3"},
		{"no target clients in job 1 of 1", []db.NewJob{job("j1")},
			[]db.AuditEntry{submitOp(1)}, db.ErrInvalid, "submit job: "},
	} {
		js, err := s.SubmitJobs(ctx, tc.jobs, tc.audit)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: SubmitJobs = %+v, %v; want an error wrapping %v", tc.name, js, err, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("%s: error %q does not name %q", tc.name, err, tc.wantMsg)
		}
		if len(tc.jobs) == 1 && strings.Contains(err.Error(), " of ") {
			t.Errorf("%s: error %q numbers the only job", tc.name, err)
		}
		unchanged(tc.name)
	}
	// No run either: a's only pending run is before's, b has none.
	ds := claim(t, s, a.ID, 10)
	if len(ds) != 1 || ds[0].Job.ID != before.ID {
		t.Fatalf("a claims jobs %v after failed batches, want only %d", jobIDs(ds), before.ID)
	}
	if ds := claim(t, s, b.ID, 10); len(ds) != 0 {
		t.Fatalf("b claims jobs %v after failed batches, want none", jobIDs(ds))
	}
	// The store is still usable, and the batch stores once fixed.
	js, err := s.SubmitJobs(ctx, []db.NewJob{job("j1", a.ID), job("j2", b.ID), job("j3", b.ID)},
		[]db.AuditEntry{submitOp(1), submitOp(2), submitOp(3)})
	if err != nil || len(js) != 3 || js[0].ID <= before.ID || js[1].ID <= js[0].ID || js[2].ID <= js[1].ID {
		t.Fatalf("SubmitJobs after failures = %+v, %v", js, err)
	}
	wantOps(t, s, []db.AuditEntry{submitOp(0), submitOp(1), submitOp(2), submitOp(3)})
	if ds := claim(t, s, b.ID, 10); len(ds) != 2 || ds[0].Job.ID != js[1].ID || ds[1].Job.ID != js[2].ID {
		t.Fatalf("b claims jobs %v, want %d and %d", jobIDs(ds), js[1].ID, js[2].ID)
	}
}
