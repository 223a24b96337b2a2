package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/runstate"
)

// The store's dispatch path on the test server of internal/pgtest (a
// PostgreSQL of default settings: every commit is fsynced), without the
// network, TLS and XML of the server: `scirectl bench --db postgres://…`
// measures the whole. Same benchmarks as db/sqlite's, to compare.
// SCIRE_PG_BENCH_URL runs them on another server instead: the URL of an
// empty database, one per benchmark (they do not clean up).

func benchURL(b *testing.B) string {
	if u := os.Getenv("SCIRE_PG_BENCH_URL"); u != "" {
		return u
	}
	return pgtest.Start(b)
}

// benchStore opens a store with one active client and backlog pending runs
// (jobs of one run each, as a fleet-wide submit produces per client).
func benchStore(b *testing.B, backlog int) (db.Store, int64) {
	b.Helper()
	s := openURL(b, benchURL(b))
	c := benchClient(b, s, "bench")
	for i := 0; i < backlog; i++ {
		submit(b, s, c, i)
	}
	return s, c
}

func benchClient(b *testing.B, s db.Store, name string) int64 {
	ctx := context.Background()
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, At: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		b.Fatal(err)
	}
	return c.ID
}

func submit(b *testing.B, s db.Store, client int64, i int) {
	_, err := s.SubmitJob(context.Background(), db.NewJob{Name: "noop", Permission: "run", Interpreter: "/bin/sh",
		Script: "true", Priority: i % 7, SubmittedBy: "admin", ClientIDs: []int64{client}, CreatedAt: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSubmit is one job.submit with one target.
func BenchmarkSubmit(b *testing.B) {
	s, client := benchStore(b, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		submit(b, s, client, i)
	}
}

// BenchmarkDispatchCycle is what the server does for a batch of jobs:
// claim (getJobs), acknowledge (ackJobs) and report them final
// (reportStatus), with the backlog kept constant by submitting as many
// jobs as were completed (not timed).
func BenchmarkDispatchCycle(b *testing.B) {
	for _, backlog := range []int{1000, 50000} {
		if backlog > 1000 && testing.Short() {
			continue
		}
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

// BenchmarkDispatchConcurrent is 64 agents at once, each claiming,
// acknowledging and reporting one job at a time (batch 1).
func BenchmarkDispatchConcurrent(b *testing.B) {
	ctx := context.Background()
	s := openURL(b, benchURL(b))
	const agents = 64
	clients := make(chan int64, agents)
	ids := make([]int64, agents)
	for i := range ids {
		ids[i] = benchClient(b, s, fmt.Sprint("a", i))
		clients <- ids[i]
	}
	for i := 0; i < b.N+agents; i++ {
		submit(b, s, ids[i%agents], i)
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
				if _, err := s.ReportRuns(ctx, client, []db.Report{{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &zero, StartedAt: now, Finished: now}}, now); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
