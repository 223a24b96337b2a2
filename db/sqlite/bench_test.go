package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// benchStore opens a store with one active client and backlog pending runs
// (jobs of one run each, as a fleet-wide submit produces per client).
func benchStore(b *testing.B, backlog int) (db.Store, int64) {
	b.Helper()
	ctx := context.Background()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "scire.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "bench", At: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < backlog; i++ {
		submit(b, s, c.ID, i)
	}
	return s, c.ID
}

func submit(b *testing.B, s db.Store, client int64, i int) {
	_, err := s.SubmitJob(context.Background(), db.NewJob{Name: "noop", Permission: "run", Interpreter: "/bin/sh",
		Script: "true", Priority: i % 7, SubmittedBy: "admin", ClientIDs: []int64{client}, CreatedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSubmit is one job.submit with one target: a write transaction.
func BenchmarkSubmit(b *testing.B) {
	s, client := benchStore(b, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		submit(b, s, client, i)
	}
}

// BenchmarkDispatchCycle is what the server does for a batch of jobs:
// claim (getJobs), acknowledge (ackJobs) and report them final
// (reportStatus), each one transaction, with the backlog kept constant by
// submitting as many jobs as were completed. jobs/s is per batch size and
// backlog: dispatch should stay O(log n) in the backlog.
func BenchmarkDispatchCycle(b *testing.B) {
	for _, backlog := range []int{1000, 50000} {
		if backlog > 1000 && testing.Short() {
			continue
		}
		// One store per backlog, shared by the runs of its sub-benchmarks
		// (each keeps the backlog constant), since filling it takes a while.
		s, client := benchStore(b, backlog)
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("backlog=%d/batch=%d", backlog, batch), func(b *testing.B) {
				ctx := context.Background()
				zero := 0
				b.ResetTimer()
				done := 0
				for done < b.N {
					now := time.Now()
					ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: batch, At: now, Lease: time.Minute, ServerID: 1})
					if err != nil || len(ds) == 0 {
						b.Fatalf("claim: %d runs, %v", len(ds), err)
					}
					ids := make([]int64, len(ds))
					reps := make([]db.Report, len(ds))
					for i, d := range ds {
						ids[i] = d.Run.ID
						reps[i] = db.Report{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &zero, StartedAt: now, Finished: now, Output: "ok " + strconv.Itoa(i)}
					}
					if _, err := s.AckRuns(ctx, client, ids, now); err != nil {
						b.Fatal(err)
					}
					if _, err := s.ReportRuns(ctx, client, reps, now); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					for i := range ds {
						submit(b, s, client, done+i)
					}
					b.StartTimer()
					done += len(ds)
				}
				b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkDispatchConcurrent is many agents at once, each claiming,
// acknowledging and reporting one job at a time (batch 1, as most peers
// work): what group commit is for.
func BenchmarkDispatchConcurrent(b *testing.B) {
	ctx := context.Background()
	s, err := db.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "scire.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const agents = 64
	clients := make(chan int64, agents)
	ids := make([]int64, agents)
	for i := range ids {
		c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprint("fp", i), Name: fmt.Sprint("a", i), At: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
		clients <- c.ID
	}
	// Enough work for every agent: b.N jobs spread over the agents,
	// submitted 500 per transaction (the setup is not what is measured).
	var batch []db.NewJob
	for i := 0; i < b.N+agents; i++ {
		batch = append(batch, db.NewJob{Name: "noop", Permission: "run", Interpreter: "/bin/sh", Script: "true",
			Priority: i % 7, SubmittedBy: "admin", ClientIDs: []int64{ids[i%agents]}, CreatedAt: time.Now()})
		if len(batch) == 500 || i == b.N+agents-1 {
			if _, err := s.SubmitJobs(ctx, batch, nil); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.SetParallelism(agents / 2) // 2 cores × 32 = 64 goroutines
	zero := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		client := <-clients
		for pb.Next() {
			now := time.Now()
			ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: 1, At: now, Lease: time.Minute, ServerID: 1})
			if err != nil {
				b.Error(err)
				return
			}
			for _, d := range ds {
				if _, err := s.AckRuns(ctx, client, []int64{d.Run.ID}, now); err != nil {
					b.Error(err)
					return
				}
				rep := []db.Report{{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &zero, StartedAt: now, Finished: now}}
				if _, err := s.ReportRuns(ctx, client, rep, now); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkClaimEmpty is an idle agent's agent.getJobs: a claim for a
// client with nothing pending, while another client has a backlog of
// 10,000 pending runs.
func BenchmarkClaimEmpty(b *testing.B) {
	s, busy := benchStore(b, 0)
	ctx := context.Background()
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-idle", Name: "idle", At: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		submit(b, s, busy, i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 10, At: time.Now(), Lease: time.Minute, ServerID: 1})
		if err != nil || len(ds) != 0 {
			b.Fatalf("claim = %d runs, %v", len(ds), err)
		}
	}
}
