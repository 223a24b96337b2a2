package postgres_test

import (
	"os"
	"testing"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/storetest"
	"github.com/scirectl/scirectl/internal/pgtest"
)

// The store's benchmarks (db/storetest/bench.go), on the test server of
// internal/pgtest (a PostgreSQL of default settings: every commit is
// fsynced); `scirectl bench --db postgres://…` measures the whole.
// SCIRE_PG_BENCH_URL runs them on another server instead: the URL of an
// empty database, one per benchmark (they do not clean up).

func benchOpen(t testing.TB) db.Store {
	u := os.Getenv("SCIRE_PG_BENCH_URL")
	if u == "" {
		u = pgtest.Start(t)
	}
	return openURL(t, u)
}

func BenchmarkSubmit(b *testing.B)             { storetest.BenchSubmit(b, benchOpen) }
func BenchmarkDispatchCycle(b *testing.B)      { storetest.BenchDispatchCycle(b, benchOpen) }
func BenchmarkDispatchConcurrent(b *testing.B) { storetest.BenchDispatchConcurrent(b, benchOpen) }
func BenchmarkClaimEmpty(b *testing.B)         { storetest.BenchClaimEmpty(b, benchOpen) }
func BenchmarkAppendOutput(b *testing.B)       { storetest.BenchAppendOutput(b, benchOpen) }
