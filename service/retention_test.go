package service_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// One's own jobs are deleted without a permission, others' need
// job.delete; a job with a run not final is refused, naming it, and
// nothing is deleted.
func TestDeleteJobs(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	authz := &refuser{}
	s.Authz = authz
	register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	allow(t, s, "bob", "run", "*")
	mine := submit(t, s, "alice", "web1").Job.ID
	theirs := submit(t, s, "bob", "web1").Job.ID
	for _, id := range []int64{mine, theirs} {
		if _, err := s.Store.CancelJob(ctx, id, time.Now().UTC(), "cancelled by test"); err != nil {
			t.Fatal(err)
		}
	}
	pending := submit(t, s, "alice", "web1").Job.ID

	_, err := s.DeleteJobs(ctx, user("alice"), []int64{mine, theirs})
	wantKind(t, err, service.ErrForbidden, "denied: job.delete")
	if _, err := s.DeleteJobs(ctx, user("alice"), []int64{mine, pending}); !errors.Is(err, service.ErrConflict) ||
		!strings.Contains(err.Error(), "job "+itoa(pending)+" has 1 run not final") {
		t.Fatalf("delete with a pending job: %v", err)
	}
	if _, err := s.DeleteJobs(ctx, user("alice"), []int64{mine, 999}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("delete with an unknown job: %v", err)
	}
	_, err = s.DeleteJobs(ctx, user("alice"), nil)
	wantKind(t, err, service.ErrInvalid, "no job id")
	_, err = s.DeleteJobs(ctx, user("alice"), make([]int64, api.MaxDeleteJobs+1))
	wantKind(t, err, service.ErrInvalid, "at most 1000")
	res, err := s.DeleteJobs(ctx, user("alice"), []int64{mine, mine})
	if err != nil || res.Jobs != 1 || res.Runs != 1 {
		t.Fatalf("delete her own job: %+v, %v", res, err)
	}
	if !reflect.DeepEqual(authz.asked, []string{"job.delete"}) {
		t.Fatalf("asked %v, want job.delete once (for bob's job)", authz.asked)
	}
	allow(t, s, "alice", "job.delete", "*")
	s.Authz = nil // the owner of a local store
	if res, err := s.DeleteJobs(ctx, user("alice"), []int64{theirs}); err != nil || res.Jobs != 1 {
		t.Fatalf("delete bob's job: %+v, %v", res, err)
	}
}

// PruneJobs deletes every final job older than the age, in batches, and
// the dry run counts the same without deleting.
func TestPruneJobs(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	c := register(t, s, fp(0), "web1", db.ClientActive)
	old := time.Now().Add(-40 * 24 * time.Hour).UTC()
	const n = db.DefaultPruneLimit + 20 // two batches
	js := make([]db.NewJob, n)
	for i := range js {
		js[i] = db.NewJob{Name: "old", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "alice", ClientIDs: []int64{c.ID}, CreatedAt: old}
	}
	jobs, err := s.Store.SubmitJobs(ctx, js, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs[:n-1] { // the last one stays pending
		if _, err := s.Store.CancelJob(ctx, j.ID, old, "cancelled by test"); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	if _, err := s.PruneJobs(ctx, -time.Hour, now, false); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("negative age: %v", err)
	}
	dry, err := s.PruneJobs(ctx, 30*24*time.Hour, now, true)
	if err != nil || dry.Jobs != n-1 || dry.Runs != n-1 {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	if none, err := s.PruneJobs(ctx, 60*24*time.Hour, now, false); err != nil || none.Jobs != 0 {
		t.Fatalf("older than 60 days: %+v, %v", none, err)
	}
	res, err := s.PruneJobs(ctx, 30*24*time.Hour, now, false)
	if err != nil || res.Jobs != n-1 || res.Runs != n-1 {
		t.Fatalf("prune: %+v, %v", res, err)
	}
	if left, _ := s.Store.ListJobs(ctx, db.JobFilter{Limit: 1000}); len(left) != 1 || left[0].ID != jobs[n-1].ID {
		t.Fatalf("jobs left: %+v", left)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PruneJobs(cctx, 0, now, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
