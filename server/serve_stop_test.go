package server

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/testtool"
)

// guardStore wraps a daemon's store to see what its background services
// do around Close: it notes every call they make after Close, and it can
// hold one rescuer sweep until released (a sweep the store is slow to
// finish, whatever its context says).
type guardStore struct {
	db.Store

	closed atomic.Bool
	mu     sync.Mutex
	late   []string // calls after Close

	holdSweep atomic.Bool   // the next Sweep waits for release
	inSweep   chan struct{} // told when it does
	release   chan struct{}
}

func (g *guardStore) check(name string) {
	if g.closed.Load() {
		g.mu.Lock()
		g.late = append(g.late, name)
		g.mu.Unlock()
	}
}

func (g *guardStore) lateCalls() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.late...)
}

func (g *guardStore) Close() error {
	g.closed.Store(true)
	return g.Store.Close()
}

func (g *guardStore) Sweep(ctx context.Context, o db.SweepOptions) ([]db.Change, error) {
	g.check("Sweep")
	if g.holdSweep.CompareAndSwap(true, false) {
		g.inSweep <- struct{}{}
		<-g.release
	}
	return g.Store.Sweep(ctx, o)
}

func (g *guardStore) HeartbeatServer(ctx context.Context, id int64, at time.Time) error {
	g.check("HeartbeatServer")
	return g.Store.HeartbeatServer(ctx, id, at)
}

func (g *guardStore) TouchClients(ctx context.Context, seen map[int64]time.Time) error {
	g.check("TouchClients")
	return g.Store.TouchClients(ctx, seen)
}

func (g *guardStore) ListServers(ctx context.Context) ([]db.ServerInfo, error) {
	g.check("ListServers")
	return g.Store.ListServers(ctx)
}

func (g *guardStore) RequeueServer(ctx context.Context, id int64, at time.Time, dryRun bool) ([]db.Change, error) {
	g.check("RequeueServer")
	return g.Store.RequeueServer(ctx, id, at, dryRun)
}

func (g *guardStore) DueNotBefore(ctx context.Context, after, until time.Time) ([]int64, time.Time, error) {
	g.check("DueNotBefore")
	return g.Store.DueNotBefore(ctx, after, until)
}

func (g *guardStore) ListClients(ctx context.Context, f db.ClientFilter) ([]db.Client, error) {
	g.check("ListClients")
	return g.Store.ListClients(ctx, f)
}

func (g *guardStore) Client(ctx context.Context, id int64) (db.Client, error) {
	g.check("Client")
	return g.Store.Client(ctx, id)
}

// Serve stops its background services, and waits for each, before it
// closes the store: with a rescuer sweep under way when the daemon is told
// to stop, Serve returns only after the sweep ended, and no service calls
// the store afterwards. The last-seen time recorded just before the stop
// is in the database.
func TestServeWaitsForServicesBeforeClosingTheStore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Config{DataDir: dir, Listener: ln, Listen: ln.Addr().String(),
		Log: slog.New(slog.NewTextHandler(&testtool.SyncBuffer{}, nil)), RescueInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := &guardStore{Store: s.store, inSweep: make(chan struct{}, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(g.release) }) }
	defer release()
	s.store = g
	c, err := s.store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "web1", At: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	testtool.WaitFor(t, "the daemon to serve", s.ready.Load)
	g.holdSweep.Store(true)
	select {
	case <-g.inSweep:
	case <-time.After(10 * time.Second):
		t.Fatal("no rescuer sweep")
	}
	seenAt := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	s.seen.saw(c.ID, seenAt) // an agent.heartbeat answered just before the stop

	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while the rescuer's sweep was under way: the store was closed under it", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return after the sweep ended")
	}
	time.Sleep(50 * time.Millisecond) // a service still running would call the store now
	if late := g.lateCalls(); len(late) > 0 {
		t.Fatalf("store called after Close: %v", late)
	}

	store, err := db.Open(context.Background(), "sqlite://"+datadir.Paths{Dir: dir}.DB())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.Client(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeen.Equal(seenAt) {
		t.Fatalf("last seen %v, want %v (recorded before the stop)", got.LastSeen, seenAt)
	}
}
