package storetest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// The store's dispatch path, benchmarked the same way on every driver
// (each driver's bench_test.go names them, so `go test -bench` finds them
// per driver), without the network, TLS and XML of the server: `scirectl
// bench` measures the whole. Open returns an empty store the benchmark may
// close.

// BenchClient registers and accepts a client named name.
func BenchClient(b *testing.B, s db.Store, name string) int64 {
	b.Helper()
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

func benchJob(client int64, i int) db.NewJob {
	return db.NewJob{Name: "noop", Permission: "run", Interpreter: "/bin/sh", Script: "true", Priority: i % 7,
		SubmittedBy: "admin", ClientIDs: []int64{client}, CreatedAt: time.Now()}
}

// BenchSubmitJob submits job number i, with one target.
func BenchSubmitJob(b *testing.B, s db.Store, client int64, i int) {
	if _, err := s.SubmitJob(context.Background(), benchJob(client, i)); err != nil {
		b.Fatal(err)
	}
}

// BenchStore opens a store with one active client and backlog pending runs
// (jobs of one run each, as a fleet-wide submit produces per client).
func BenchStore(b *testing.B, open func(testing.TB) db.Store, backlog int) (db.Store, int64) {
	b.Helper()
	s := open(b)
	c := BenchClient(b, s, "bench")
	for i := 0; i < backlog; i++ {
		BenchSubmitJob(b, s, c, i)
	}
	return s, c
}

// BenchSubmit is one job.submit with one target: a write transaction.
func BenchSubmit(b *testing.B, open func(testing.TB) db.Store) {
	s, client := BenchStore(b, open, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		BenchSubmitJob(b, s, client, i)
	}
}

// BenchDispatchCycle is what the server does for a batch of jobs: claim
// (getJobs), acknowledge (ackJobs) and report them final (reportStatus),
// with the backlog kept constant by submitting as many jobs as were
// completed (not timed). jobs/s is per batch size and backlog: dispatch
// should stay O(log n) in the backlog.
func BenchDispatchCycle(b *testing.B, open func(testing.TB) db.Store) {
	for _, backlog := range []int{1000, 50000} {
		if backlog > 1000 && testing.Short() {
			continue
		}
		s, client := BenchStore(b, open, backlog)
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
						BenchSubmitJob(b, s, client, done+i)
					}
					b.StartTimer()
					done += len(ds)
				}
				b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchDispatchConcurrent is 64 agents at once, each claiming,
// acknowledging and reporting one job at a time (batch 1).
func BenchDispatchConcurrent(b *testing.B, open func(testing.TB) db.Store) {
	ctx := context.Background()
	s := open(b)
	const agents = 64
	clients := make(chan int64, agents)
	ids := make([]int64, agents)
	for i := range ids {
		ids[i] = BenchClient(b, s, fmt.Sprint("a", i))
		clients <- ids[i]
	}
	// Enough work for every agent: b.N jobs spread over the agents,
	// submitted 500 per transaction (the setup is not what is measured).
	var batch []db.NewJob
	for i := 0; i < b.N+agents; i++ {
		batch = append(batch, benchJob(ids[i%agents], i))
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

// BenchClaimEmpty is an idle agent's agent.getJobs: a claim for a client
// with nothing pending, while another client has a backlog of 10,000
// pending runs.
func BenchClaimEmpty(b *testing.B, open func(testing.TB) db.Store) {
	s, _ := BenchStore(b, open, 10000)
	idle := BenchClient(b, s, "idle")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: idle, Max: 10, At: time.Now(), Lease: time.Minute, ServerID: 1})
		if err != nil || len(ds) != 0 {
			b.Fatalf("claim = %d runs, %v", len(ds), err)
		}
	}
}

// BenchAppendOutput is agent.output at the store: one call of 8 chunks (8
// running runs of one agent) of size bytes each, appended at the end of
// their streams, past the 1 MiB bound once they have grown (so each call
// also deletes the chunks the bound no longer keeps). MB/s is the output
// stored per second.
func BenchAppendOutput(b *testing.B, open func(testing.TB) db.Store) {
	for _, size := range []int{1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("chunk=%dKiB", size>>10), func(b *testing.B) {
			ctx := context.Background()
			s := open(b)
			client := BenchClient(b, s, "streamer")
			const runs = 8
			for i := 0; i < runs; i++ {
				BenchSubmitJob(b, s, client, i)
			}
			ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: client, Max: runs, At: time.Now(), Lease: time.Hour, ServerID: 1})
			if err != nil || len(ds) != runs {
				b.Fatalf("claim: %d runs, %v", len(ds), err)
			}
			line := "a line of output, as a build log would have it, with a number: "
			data := make([]byte, 0, size)
			for len(data) < size {
				data = append(data, line...)
				data = strconv.AppendInt(data, int64(len(data)), 10)
				data = append(data, '\n')
			}
			chunk := string(data[:size])
			offsets := make([]int64, runs)
			b.SetBytes(int64(size * runs))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				chunks := make([]db.OutputChunk, runs)
				for k, d := range ds {
					chunks[k] = db.OutputChunk{RunID: d.Run.ID, Offset: offsets[k], Data: chunk}
				}
				res, err := s.AppendOutput(ctx, client, chunks, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				for k, r := range res {
					if !r.Accepted {
						b.Fatalf("chunk %d: %+v", k, r)
					}
					offsets[k] = r.Offset
				}
			}
		})
	}
}
