package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
)

// Tests shared by the background services (heartbeat.go, lastseen.go,
// notbefore.go, startuppush.go, push.go): each is checked with
// checkLifecycle against a stubStore, and has its own test of RunOnce.

// stubStore answers the calls the background services make; any other
// method panics (the embedded Store is nil). With block set, each call
// first waits for block to close, ignoring its context: a store call that
// takes its time, the case where Stop must wait.
type stubStore struct {
	db.Store

	block   chan struct{}
	entered chan string // each call's name, when there is room

	mu       sync.Mutex
	calls    []string
	beats    map[int64]time.Time // HeartbeatServer
	touched  map[int64]time.Time // TouchClients
	windows  [][2]time.Time      // DueNotBefore's after and until
	due      []int64             // DueNotBefore's answer
	clients  []db.Client         // ListClients' answer
	touchErr error
}

func newStubStore() *stubStore {
	return &stubStore{entered: make(chan string, 64), beats: map[int64]time.Time{}, touched: map[int64]time.Time{}}
}

func (s *stubStore) call(name string) {
	s.mu.Lock()
	s.calls = append(s.calls, name)
	s.mu.Unlock()
	select {
	case s.entered <- name:
	default:
	}
	if s.block != nil {
		<-s.block
	}
}

func (s *stubStore) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (s *stubStore) HeartbeatServer(_ context.Context, id int64, at time.Time) error {
	s.call("HeartbeatServer")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beats[id] = at
	return nil
}

func (s *stubStore) TouchClients(_ context.Context, seen map[int64]time.Time) error {
	s.call("TouchClients")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.touchErr != nil {
		return s.touchErr
	}
	for id, at := range seen {
		s.touched[id] = at
	}
	return nil
}

func (s *stubStore) DueNotBefore(_ context.Context, after, until time.Time) ([]int64, time.Time, error) {
	s.call("DueNotBefore")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows = append(s.windows, [2]time.Time{after, until})
	return s.due, time.Time{}, nil
}

func (s *stubStore) ListClients(_ context.Context, _ db.ClientFilter) ([]db.Client, error) {
	s.call("ListClients")
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients, nil
}

func (s *stubStore) Client(_ context.Context, id int64) (db.Client, error) {
	s.call("Client")
	return db.Client{}, db.ErrNotFound
}

type lifecycleService interface {
	lifecycle.Service
	Running() bool
}

// checkLifecycle checks what every service promises. Stop without Start
// does nothing; Start twice starts one loop; once a pass is inside the
// store (the pass is made to start by kick, which may be nil when the
// service makes one soon after Start by itself), Stop does not return
// before the pass ends, then returns at once; a second Stop does nothing;
// started again, the service stops promptly.
func checkLifecycle(t *testing.T, svc lifecycleService, st *stubStore, call string, kick func()) {
	t.Helper()
	within(t, "Stop without Start", time.Second, svc.Stop)
	if svc.Running() {
		t.Fatal("running before Start")
	}

	st.block = make(chan struct{})
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if kick != nil {
		kick()
	}
	waitCall(t, st, call)
	stopped := make(chan struct{})
	go func() { svc.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatalf("Stop returned while a %s was under way", call)
	case <-time.After(50 * time.Millisecond):
	}
	// Counted while the pass is held: a second loop would have called too.
	if n := st.count(call); n != 1 {
		t.Errorf("%d %s calls under way, want 1 (two Starts make one loop)", n, call)
	}
	close(st.block)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return once the pass ended")
	}
	if svc.Running() {
		t.Fatal("running after Stop")
	}
	within(t, "a second Stop", time.Second, svc.Stop)

	// Started again, idle between passes: Stop is prompt.
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	within(t, "Stop of an idle service", time.Second, svc.Stop)
}

// waitCall waits until the store is called with name.
func waitCall(t *testing.T, st *stubStore, name string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-st.entered:
			if got == name {
				return
			}
		case <-deadline:
			t.Fatalf("no %s call", name)
		}
	}
}

// within fails the test if f takes longer than d.
func within(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s took longer than %v", what, d)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
