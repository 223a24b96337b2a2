package server

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// The pusher as a service: Stop waits for a push in flight (here, its
// client lookup), Stop without Start does nothing, and pushes asked for
// before Start are sent once it runs.
func TestPusherLifecycle(t *testing.T) {
	st := newStubStore()
	p := newPusher(discardLog(), newPushEnv(t).cert, st.Client, func() int64 { return 1 }, pushOptions{Workers: 2})
	checkLifecycle(t, p, st, "Client", func() { p.Push(1) })
	// Stopped: pushes are dropped, not queued for a pusher that is gone.
	p.Push(2)
	if q := p.queued(); len(q) != 0 {
		t.Fatalf("a stopped pusher queued %v", q)
	}
}

// RunOnce sends what is queued on the caller's goroutine, without Start.
func TestPusherRunOnce(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	e.agent(t, 1, func() { wakes.Add(1) })
	e.agent(t, 2, func() { wakes.Add(1) })
	p := newPusher(discardLog(), e.cert, e.lookup, func() int64 { return 9 }, pushOptions{})
	if n := p.RunOnce(context.Background()); n != 0 {
		t.Fatalf("RunOnce with nothing queued sent %d", n)
	}
	p.Push(1)
	p.Push(2)
	p.Push(1)
	if n := p.RunOnce(context.Background()); n != 2 {
		t.Fatalf("RunOnce sent %d, want 2", n)
	}
	// The agent wakes after it answered: give it a moment.
	waitFor(t, "both agents woken", func() bool { return wakes.Load() == 2 })
	if r, ok := p.lastPush(2); !ok || r.Result != pushOK {
		t.Fatalf("last push to 2 = %+v, %v", r, ok)
	}
	if !p.idle() {
		t.Fatal("pushes left pending after RunOnce")
	}
	time.Sleep(10 * time.Millisecond)
	p.conns.close()
}
