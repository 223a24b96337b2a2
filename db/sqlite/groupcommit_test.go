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
	s := openTestStore(t)
	errBoom := errors.New("boom")
	const n = 400
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
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
	if err := s.tx(cctx, func(context.Context, *sql.Tx) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled caller: err %v, ran %v", err, ran)
	}
}

// A write's statements run without its caller's cancellation (no watcher
// goroutine per statement), with its caller's values.
func TestWriteContextDetached(t *testing.T) {
	ctx := context.Background()
	s := openTestStore(t)
	type key struct{}
	cctx, cancel := context.WithCancel(context.WithValue(ctx, key{}, "v"))
	defer cancel()
	err := s.tx(cctx, func(wctx context.Context, tx *sql.Tx) error {
		if wctx.Done() != nil {
			t.Error("the write's context can be cancelled")
		}
		if wctx.Value(key{}) != "v" {
			t.Error("the write's context lost its caller's values")
		}
		cancel() // the caller gives up: the write goes on
		_, err := tx.ExecContext(wctx, `INSERT INTO users (name, created_at) VALUES ('late', 0)`)
		return err
	})
	if err != nil {
		t.Fatalf("write whose caller gave up midway: %v", err)
	}
	var n int
	s.r.QueryRow(`SELECT count(*) FROM users WHERE name = 'late'`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows of the write, want 1", n)
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
