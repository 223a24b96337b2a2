package server

import (
	"context"
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/push"
)

// idlePusher is a pusher that is never started: what is pushed stays in
// its queue, for the test to read.
func idlePusher(t *testing.T) *push.Pusher {
	t.Helper()
	return push.New(discardLog(), tls.Certificate{}, nil, func() int64 { return 1 }, push.Options{})
}

func TestNotBeforeWatcherLifecycle(t *testing.T) {
	st := newStubStore()
	p := idlePusher(t)
	w := newNotBeforeWatcher(st, p, func(context.Context, time.Time) bool { return true }, time.Hour, discardLog())
	// The interval is an hour: the pass is the one a job with a future
	// not_before wakes.
	checkLifecycle(t, w, st, "DueNotBefore", p.NotBeforeChanged)
}

// RunOnce pushes the clients whose runs came due since the last pass, when
// this daemon leads; the window moves on only after a pass that read it.
func TestNotBeforeWatcherRunOnce(t *testing.T) {
	st := newStubStore()
	st.due = []int64{4, 5}
	p := idlePusher(t)
	lead := false
	w := newNotBeforeWatcher(st, p, func(context.Context, time.Time) bool { return lead }, 0, discardLog())
	if w.interval != 5*time.Second {
		t.Errorf("default interval %v", w.interval)
	}
	start := w.after
	ctx := context.Background()
	t1 := start.Add(time.Second)
	if err := w.RunOnce(ctx, t1); err != nil || st.count("DueNotBefore") != 0 || len(p.Queued()) != 0 {
		t.Fatalf("not leading: %v, %d queries, queued %v", err, st.count("DueNotBefore"), p.Queued())
	}
	lead = true
	t2 := start.Add(2 * time.Second)
	if err := w.RunOnce(ctx, t2); err != nil {
		t.Fatal(err)
	}
	t3 := start.Add(3 * time.Second)
	if err := w.RunOnce(ctx, t3); err != nil {
		t.Fatal(err)
	}
	want := [][2]time.Time{{start, t2}, {t2, t3}}
	if !slices.Equal(st.windows, want) {
		t.Fatalf("windows %v, want %v", st.windows, want)
	}
	// Pushed twice each: the second Push of a queued client adds nothing.
	if q := p.Queued(); !slices.Equal(q, []int64{4, 5}) {
		t.Fatalf("queued %v", q)
	}
}
