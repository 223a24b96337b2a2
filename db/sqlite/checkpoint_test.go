package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

// Commits past checkpointEvery start a passive checkpoint on the
// checkpointer's connection, which copies the log into the database file;
// the writer's own automatic checkpoint is moved out of the way to
// writerAutoCheckpoint pages, and what was written reads back after a
// reopen.
func TestCheckpointerCopiesTheLogOffTheWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	s, err := OpenFile(ctx, path, "FULL")
	if err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
		t.Fatal(err)
	}
	if auto != writerAutoCheckpoint {
		t.Fatalf("writer wal_autocheckpoint = %d, want %d", auto, writerAutoCheckpoint)
	}
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	const n = 2*checkpointEvery + 1
	for i := range n {
		if _, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprintf("fp%d", i), Name: fmt.Sprintf("c%d", i), At: at}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.ckpt.runs.Load() == 0 || s.ckpt.copied.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d commits: %d checkpoints copied %d pages, want some", n, s.ckpt.runs.Load(), s.ckpt.copied.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenFile(ctx, path, "FULL")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.ListClients(ctx, db.ClientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != n {
		t.Fatalf("after reopening: %d clients, want %d", len(cs), n)
	}
}
