package lifecycle

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ticker is a service counting its loops' passes.
type ticker struct {
	Base
	starts atomic.Int32
	ended  atomic.Bool
}

func (s *ticker) Start(ctx context.Context) error {
	s.StartLoop(ctx, func(ctx context.Context) {
		s.starts.Add(1)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // a last write, say
		s.ended.Store(true)
	})
	return nil
}

func TestStopWaitsForTheLoop(t *testing.T) {
	var s ticker
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !s.Running() {
		t.Fatal("not running after Start")
	}
	s.Stop()
	if !s.ended.Load() {
		t.Fatal("Stop returned before the loop ended")
	}
	if s.Running() {
		t.Fatal("running after Stop")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
}

func TestStartIsIdempotent(t *testing.T) {
	var s ticker
	ctx := context.Background()
	for range 3 {
		s.Start(ctx)
	}
	waitFor(t, func() bool { return s.starts.Load() >= 1 })
	time.Sleep(10 * time.Millisecond)
	if n := s.starts.Load(); n != 1 {
		t.Fatalf("three Starts ran %d loops", n)
	}
	s.Stop()
	s.Stop() // a second Stop: nothing
	// Started again after a stop: a new loop.
	s.Start(ctx)
	waitFor(t, func() bool { return s.starts.Load() == 2 })
	s.Stop()
}

func TestStopWithoutStart(t *testing.T) {
	var s ticker
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop without Start blocked")
	}
	if s.Running() {
		t.Fatal("a service never started runs")
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done of a service never started is not closed")
	}
}

func TestParentContextEndsTheLoop(t *testing.T) {
	var s ticker
	ctx, cancel := context.WithCancel(context.Background())
	s.Start(ctx)
	cancel()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the loop outlived its context")
	}
	s.Stop() // after the loop ended by itself: returns at once
}

func TestConcurrentStops(t *testing.T) {
	var s ticker
	s.Start(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s.Stop()
			if !s.ended.Load() {
				t.Error("a Stop returned before the loop ended")
			}
		})
	}
	wg.Wait()
}

// recorder is a service that notes its starts and stops in a shared log.
type recorder struct {
	name string
	log  *[]string
	mu   *sync.Mutex
	fail error
}

func (r recorder) note(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.log = append(*r.log, what+" "+r.name)
}
func (r recorder) Start(context.Context) error {
	if r.fail != nil {
		return r.fail
	}
	r.note("start")
	return nil
}
func (r recorder) Stop() { r.note("stop") }

func TestGroupStopsInReverseOrder(t *testing.T) {
	var (
		log []string
		mu  sync.Mutex
		g   Group
	)
	ctx := context.Background()
	for _, name := range []string{"a", "b", "c"} {
		if err := g.Start(ctx, name, recorder{name: name, log: &log, mu: &mu}); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	if err := g.Start(ctx, "d", recorder{name: "d", log: &log, mu: &mu, fail: boom}); !errors.Is(err, boom) || err.Error() != "start d: boom" {
		t.Fatalf("a failed start: %v", err)
	}
	if got := g.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Names = %v", got)
	}
	g.Stop()
	g.Stop()
	want := []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"}
	if !slices.Equal(log, want) {
		t.Fatalf("log = %v, want %v", log, want)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
