package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Concurrent writes share transactions, yet each keeps its own outcome: a
// write that fails leaves nothing behind, its neighbours in the batch
// commit.
func TestGroupCommitIsolatesEachWrite(t *testing.T) {
	ctx := context.Background()
	s, err := OpenFile(ctx, filepath.Join(t.TempDir(), "scire.db"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errBoom := errors.New("boom")
	const n = 400
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.tx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO users (name, created_at) VALUES (?, 1)`, fmt.Sprint("u", i)); err != nil {
					return err
				}
				if i%5 == 0 {
					return errBoom // after its insert: the insert must go
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if (i%5 == 0) != errors.Is(err, errBoom) {
			t.Fatalf("write %d: err = %v", i, err)
		}
	}
	var count int
	if err := s.r.QueryRow(`SELECT count(*) FROM users`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if count != n-n/5 {
		t.Fatalf("%d users stored, want %d", count, n-n/5)
	}
	var bad int
	s.r.QueryRow(`SELECT count(*) FROM users WHERE (CAST(substr(name, 2) AS INTEGER) % 5) = 0`).Scan(&bad)
	if bad != 0 {
		t.Fatalf("%d failed writes left rows behind", bad)
	}
	// A caller whose context is already done is not run.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := s.tx(cctx, func(*sql.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled caller: err %v, ran %v", err, ran)
	}
}

// A write after Close fails at once, however often it is tried (the
// request channel has room, and must not swallow it).
func TestWriteAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := OpenFile(ctx, filepath.Join(t.TempDir(), "scire.db"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for i := 0; i < 200; i++ {
		done := make(chan error, 1)
		go func() { done <- s.TouchClients(ctx, map[int64]time.Time{1: time.Now()}) }()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("write after Close succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("write %d after Close still waiting after 5s", i)
		}
	}
}
