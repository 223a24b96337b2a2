package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/storetest"
)

// The store's benchmarks (db/storetest/bench.go), on a SQLite file of
// default durability (every commit fsynced).

func benchOpen(t testing.TB) db.Store {
	s, err := db.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func BenchmarkSubmit(b *testing.B)             { storetest.BenchSubmit(b, benchOpen) }
func BenchmarkDispatchCycle(b *testing.B)      { storetest.BenchDispatchCycle(b, benchOpen) }
func BenchmarkDispatchConcurrent(b *testing.B) { storetest.BenchDispatchConcurrent(b, benchOpen) }
func BenchmarkClaimEmpty(b *testing.B)         { storetest.BenchClaimEmpty(b, benchOpen) }
func BenchmarkAppendOutput(b *testing.B)       { storetest.BenchAppendOutput(b, benchOpen) }
