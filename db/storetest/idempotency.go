package storetest

// Idempotency keys: a key names one job of its user for 24 hours, whatever
// the races; a duplicate stores nothing.

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

func keyedJob(c int64, user, key string, at time.Time) db.NewJob {
	return db.NewJob{Name: "k", Interpreter: "/bin/sh", Script: "true", SubmittedBy: user, ClientIDs: []int64{c}, CreatedAt: at, IdempotencyKey: key}
}

func jobCount(t *testing.T, s db.Store) int {
	t.Helper()
	return len(must(s.ListJobs(context.Background(), db.JobFilter{Limit: 10000}))(t))
}

func testIdempotencyKeys(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "k1", true).ID
	first := must(s.SubmitJob(ctx, keyedJob(c, "alice", "deploy-42", t0)))(t)
	if first.Duplicate {
		t.Fatal("the first submit is a duplicate")
	}
	again := must(s.SubmitJob(ctx, keyedJob(c, "alice", "deploy-42", t0.Add(time.Hour))))(t)
	if !again.Duplicate || again.ID != first.ID || again.Counts["pending"] != 1 || again.SubmittedBy != "alice" {
		t.Fatalf("the duplicate %+v, first %+v", again, first)
	}
	if n := jobCount(t, s); n != 1 {
		t.Fatalf("%d jobs after a duplicate, want 1", n)
	}
	// Another user's key, or no key, is another job.
	if j := must(s.SubmitJob(ctx, keyedJob(c, "bob", "deploy-42", t0)))(t); j.Duplicate || j.ID == first.ID {
		t.Fatalf("bob's job %+v", j)
	}
	must(s.SubmitJob(ctx, keyedJob(c, "alice", "", t0)))(t)
	// After 24 hours the key names the next job.
	later := must(s.SubmitJob(ctx, keyedJob(c, "alice", "deploy-42", t0.Add(db.IdempotencyWindow+time.Second))))(t)
	if later.Duplicate || later.ID == first.ID {
		t.Fatalf("after the window: %+v", later)
	}
	if j := must(s.SubmitJob(ctx, keyedJob(c, "alice", "deploy-42", t0.Add(db.IdempotencyWindow+time.Minute))))(t); j.ID != later.ID || !j.Duplicate {
		t.Fatalf("the key now names %d, want %d", j.ID, later.ID)
	}
	// In one batch: the second names the first.
	before := jobCount(t, s)
	js := must(s.SubmitJobs(ctx, []db.NewJob{keyedJob(c, "carol", "b", t0), keyedJob(c, "carol", "b", t0), keyedJob(c, "carol", "c", t0)}, nil))(t)
	if js[0].Duplicate || !js[1].Duplicate || js[1].ID != js[0].ID || js[2].Duplicate || js[2].ID == js[0].ID {
		t.Fatalf("batch %+v", js)
	}
	if n := jobCount(t, s); n != before+2 {
		t.Fatalf("%d jobs after the batch, want %d", n, before+2)
	}
}

// testIdempotencyConcurrent: the same key from many connections at once
// makes one job, and every submit gets it.
func testIdempotencyConcurrent(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "kc", true).ID
	before := jobCount(t, s)
	const n, keys = 8, 10
	for k := range keys {
		key := fmt.Sprintf("retry-me-%d", k)
		ids := make([]int64, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				j, err := s.SubmitJob(ctx, keyedJob(c, "dave", key, t0))
				ids[i], errs[i] = j.ID, err
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if ids[i] != ids[0] {
				t.Fatalf("key %s: submit %d got job %d, submit 0 job %d", key, i, ids[i], ids[0])
			}
		}
	}
	if got := jobCount(t, s); got != before+keys {
		t.Fatalf("%d jobs made by %d keys submitted %d times each, want %d", got-before, keys, n, keys)
	}
}
