package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/testtool"
)

func TestSeenRecorder(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	store, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var ids []int64
	for _, name := range []string{"a", "b"} {
		c, err := store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	lastSeen := func(s db.Store, id int64) time.Time {
		t.Helper()
		c, err := s.Client(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c.LastSeen
	}

	var r seenRecorder
	if err := r.flush(ctx, store); err != nil {
		t.Fatalf("empty flush: %v", err)
	}
	r.saw(ids[0], t0.Add(2*time.Second))
	r.saw(ids[0], t0.Add(time.Second)) // older: ignored
	r.saw(ids[1], t0.Add(3*time.Second))
	if got := lastSeen(store, ids[0]); !got.Equal(t0) {
		t.Fatalf("written before a flush: %v", got)
	}
	if n := r.count(t0.Add(2 * time.Second)); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	if err := r.flush(ctx, store); err != nil {
		t.Fatal(err)
	}
	if a, b := lastSeen(store, ids[0]), lastSeen(store, ids[1]); !a.Equal(t0.Add(2*time.Second)) || !b.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after flush: a %v, b %v", a, b)
	}

	// A failed write keeps the times for the next flush.
	r.saw(ids[0], t0.Add(5*time.Second))
	store.Close()
	if err := r.flush(ctx, store); err == nil {
		t.Fatal("flush to a closed store succeeded")
	}
	store, err = db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := r.flush(ctx, store); err != nil {
		t.Fatal(err)
	}
	if got := lastSeen(store, ids[0]); !got.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("after a failed flush and a good one: %v", got)
	}

	r.forget()
	if n := r.count(time.Time{}); n != 0 {
		t.Fatalf("count after forget = %d", n)
	}
	if err := r.flush(ctx, store); err != nil {
		t.Fatal(err)
	}
}

func TestLastSeenWriterLifecycle(t *testing.T) {
	st := newStubStore()
	var seen seenRecorder
	w := newLastSeenWriter(&seen, st, discardLog())
	w.interval = 5 * time.Millisecond
	seen.saw(1, time.Now())
	checkLifecycle(t, w, st, "TouchClients", nil)
}

// RunOnce writes what is pending; Stop writes what came since the last
// write, so nothing an agent was answered is lost; a write that fails at
// stop is said so.
func TestLastSeenWriterWritesAtStop(t *testing.T) {
	st := newStubStore()
	var seen seenRecorder
	logs := &testtool.SyncBuffer{}
	w := newLastSeenWriter(&seen, st, slog.New(slog.NewTextHandler(logs, nil)))
	w.interval = time.Hour // only RunOnce and Stop write
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	seen.saw(1, t0)
	if err := w.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !st.touched[1].Equal(t0) || seen.pending() != 0 {
		t.Fatalf("after RunOnce: touched %v, %d pending", st.touched, seen.pending())
	}

	w.Start(context.Background())
	seen.saw(2, t0.Add(time.Second))
	seen.saw(1, t0.Add(2*time.Second))
	w.Stop()
	if !st.touched[1].Equal(t0.Add(2*time.Second)) || !st.touched[2].Equal(t0.Add(time.Second)) {
		t.Fatalf("after Stop: touched %v", st.touched)
	}
	if st.count("TouchClients") != 2 {
		t.Fatalf("%d writes, want 2", st.count("TouchClients"))
	}

	st.touchErr = errors.New("disk full")
	w.Start(context.Background())
	seen.saw(3, t0)
	w.Stop()
	if !strings.Contains(logs.String(), "not written") || !strings.Contains(logs.String(), "clients=1") {
		t.Fatalf("a failed write at stop is not logged:\n%s", logs.String())
	}
}
