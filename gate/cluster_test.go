package gate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCluster is an in-memory stand-in for PostgreSQL advisory locks: a
// readers-writers lock that, like PostgreSQL's lock queue, makes new shared
// requests wait behind a waiting exclusive one (the harsher case for
// deadlocks).
type fakeCluster struct {
	mu             sync.Mutex
	readers        int
	writer         bool
	writersWaiting int
	changed        chan struct{} // closed and replaced on every change

	fail     error       // returned by Lock when set
	onLock   func(Class) // called at the start of Lock
	onUnlock func(Class) // called at the start of unlock
	locks    atomic.Int64
}

func newFakeCluster() *fakeCluster { return &fakeCluster{changed: make(chan struct{})} }

func (f *fakeCluster) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeCluster) Lock(ctx context.Context, c Class, noWait bool) (func(), error) {
	if f.onLock != nil {
		f.onLock(c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	if c == Modifier {
		f.writersWaiting++
	}
	for {
		if c == Modifier && !f.writer && f.readers == 0 {
			f.writersWaiting--
			f.writer = true
			break
		}
		if c == NonModifier && !f.writer && f.writersWaiting == 0 {
			f.readers++
			break
		}
		if noWait || ctx.Err() != nil {
			if c == Modifier {
				f.writersWaiting--
				f.broadcastLocked() // readers held back by this writer may go
			}
			if noWait {
				return nil, fmt.Errorf("fake: %w", ErrClusterBusy)
			}
			return nil, ctx.Err()
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		f.mu.Lock()
	}
	f.locks.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if f.onUnlock != nil {
				f.onUnlock(c)
			}
			f.mu.Lock()
			if c == Modifier {
				f.writer = false
			} else {
				f.readers--
			}
			f.broadcastLocked()
			f.mu.Unlock()
		})
	}, nil
}

func (f *fakeCluster) free() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readers == 0 && !f.writer && f.writersWaiting == 0
}

// The cluster lock is taken after local admission and given back before the
// local slot.
func TestClusterOrdering(t *testing.T) {
	f := newFakeCluster()
	g := New(Options{Cluster: f})
	var events []string
	f.onLock = func(c Class) {
		s := g.Stats()
		events = append(events, fmt.Sprintf("lock %v: local readers=%d modifier=%v", c, s.Readers, s.Modifier))
	}
	f.onUnlock = func(c Class) {
		s := g.Stats()
		events = append(events, fmt.Sprintf("unlock %v: local readers=%d modifier=%v", c, s.Readers, s.Modifier))
	}
	for _, c := range []Class{NonModifier, Modifier} {
		tk, err := g.Enter(bg, rq("op", c))
		if err != nil {
			t.Fatal(err)
		}
		tk.Release()
		tk.Release()
	}
	want := []string{
		"lock non-modifier: local readers=1 modifier=false",
		"unlock non-modifier: local readers=1 modifier=false",
		"lock modifier: local readers=0 modifier=true",
		"unlock modifier: local readers=0 modifier=true",
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant\n%q", events, want)
	}
	if !f.free() || f.locks.Load() != 2 {
		t.Fatal("cluster lock not given back")
	}
	idle(t, g)
}

// A modifier on one server excludes operations on another.
func TestClusterExcludesOtherServer(t *testing.T) {
	f := newFakeCluster()
	a, b := New(Options{Cluster: f}), New(Options{Cluster: f})
	m := running(t, a, Request{Name: "db.backup", Class: Modifier, User: "alice"}, nil)

	_, err := b.Enter(bg, Request{Name: "job.list", Class: NonModifier, NoWait: true})
	var be *BusyError
	if !errors.As(err, &be) || !be.Cluster || !be.NoWait || be.Op != "job.list" {
		t.Fatalf("err = %v, want a cluster *BusyError", err)
	}
	if s := b.Stats(); s.Readers != 0 || s.Busy != 1 {
		t.Fatalf("refused op kept its local slot: %+v", s)
	}

	// A waiting one holds its local slot, shows as waiting, and gets in
	// when the other server's modifier ends.
	r := startOp(b, bg, rq("job.get", NonModifier), nil)
	queued(t, b, "job.get")
	if s := b.Stats(); s.Readers != 1 || s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}
	// A local modifier on b queues behind it.
	bm := startOp(b, bg, rq("job.submit", Modifier), nil)
	queued(t, b, "job.submit")
	if got := states(b); got != "job.get:waiting job.submit:waiting" {
		t.Fatalf("ops = %s", got)
	}
	m.finish(t)
	r.mustEnter(t)
	if got := states(b); got != "job.get:running job.submit:waiting" {
		t.Fatalf("ops = %s", got)
	}
	r.finish(t)
	bm.mustEnter(t)
	if _, err := a.Enter(bg, Request{Name: "x", Class: NonModifier, NoWait: true}); err == nil {
		t.Fatal("a admitted a reader beside b's modifier")
	}
	bm.finish(t)
	idle(t, a)
	idle(t, b)
	if !f.free() {
		t.Fatal("cluster lock leaked")
	}
}

func TestClusterMaxWait(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	f := newFakeCluster()
	a, b := New(Options{Cluster: f}), New(Options{Cluster: f, MaxWait: maxWait})
	m := running(t, a, rq("db.backup", Modifier), nil)
	_, err := b.Enter(bg, rq("job.list", NonModifier))
	var be *BusyError
	if !errors.As(err, &be) || !be.Cluster || be.NoWait || be.Waited < maxWait || be.Waited > maxWait+patience {
		t.Fatalf("err = %v (%+v), want a cluster *BusyError after %v", err, be, maxWait)
	}
	m.finish(t)
	idle(t, b)
	idle(t, a)
	if !f.free() {
		t.Fatal("cluster lock leaked")
	}
}

func TestClusterCancelWhileLocking(t *testing.T) {
	f := newFakeCluster()
	a, b := New(Options{Cluster: f}), New(Options{Cluster: f})
	m := running(t, a, rq("db.backup", Modifier), nil)
	r := startOp(b, bg, rq("job.list", NonModifier), nil)
	queued(t, b, "job.list")
	if !b.Cancel(b.List()[0].ID) {
		t.Fatal("Cancel reported false")
	}
	<-r.entered
	if !errors.Is(r.err, ErrCancelled) {
		t.Fatalf("err = %v, want ErrCancelled", r.err)
	}
	if s := b.Stats(); s.Readers != 0 || s.Cancelled != 1 {
		t.Fatalf("stats %+v", s)
	}
	// And through the caller's context.
	ctx, cancel := context.WithCancel(bg)
	r = startOp(b, ctx, rq("job.get", NonModifier), nil)
	queued(t, b, "job.get")
	cancel()
	<-r.entered
	if !errors.Is(r.err, context.Canceled) || errors.Is(r.err, ErrCancelled) {
		t.Fatalf("err = %v, want context.Canceled", r.err)
	}
	m.finish(t)
	idle(t, b)
	idle(t, a)
	if !f.free() {
		t.Fatal("cluster lock leaked")
	}
}

func TestClusterError(t *testing.T) {
	f := newFakeCluster()
	f.fail = errors.New("connection refused")
	g := New(Options{Cluster: f})
	_, err := g.Enter(bg, rq("job.list", NonModifier))
	var be *BusyError
	if err == nil || errors.As(err, &be) || !errors.Is(err, f.fail) {
		t.Fatalf("err = %v", err)
	}
	// A ClusterLock that names the remote holder is passed through.
	f.fail = &BusyError{Holder: OpInfo{ID: 3, Name: "db.reset", Class: Modifier, User: "root", State: StateRunning}}
	_, err = g.Enter(bg, Request{Name: "job.get", Class: NonModifier, NoWait: true})
	if !errors.As(err, &be) || be.Op != "job.get" || be.Holder.Name != "db.reset" || !be.Cluster || !be.NoWait {
		t.Fatalf("err = %v", err)
	}
	f.fail = nil
	idle(t, g)
}

// Several servers, random operations: a modifier anywhere never overlaps
// anything anywhere, and nothing deadlocks or leaks.
func TestClusterStress(t *testing.T) {
	const servers, workers, perWorker = 3, 6, 120
	f := newFakeCluster()
	var gates []*Gate
	for range servers {
		gates = append(gates, New(Options{Cluster: f}))
	}
	var (
		readers, modifiers, maxReaders atomic.Int64
		violations                     atomic.Int64
		firstViolation                 atomic.Value
		wg                             sync.WaitGroup
	)
	violate := func(format string, args ...any) {
		violations.Add(1)
		firstViolation.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	for s := range servers {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := gates[s]
				for i := range perWorker {
					r := Request{Name: fmt.Sprintf("s%d.w%d.%d", s, w, i), Class: NonModifier}
					if rand.IntN(100) < 10 {
						r.Class = Modifier
					}
					ctx, cancel := bg, context.CancelFunc(func() {})
					switch k := rand.IntN(100); {
					case k < 5:
						r.NoWait = true
					case k < 10:
						ctx, cancel = context.WithTimeout(bg, time.Duration(rand.IntN(300))*time.Microsecond)
					}
					tk, err := g.Enter(ctx, r)
					if err != nil {
						var be *BusyError
						if !(errors.As(err, &be) && r.NoWait) && !(errors.Is(err, context.DeadlineExceeded) && ctx != bg) {
							violate("%s: unexpected error %v", r.Name, err)
						}
						cancel()
						continue
					}
					if r.Class == Modifier {
						if n := modifiers.Add(1); n != 1 || readers.Load() != 0 {
							violate("modifier beside others")
						}
					} else {
						n := readers.Add(1)
						if modifiers.Load() != 0 {
							violate("reader beside a modifier")
						}
						for {
							old := maxReaders.Load()
							if n <= old || maxReaders.CompareAndSwap(old, n) {
								break
							}
						}
					}
					if rand.IntN(2) == 0 {
						runtime.Gosched()
					} else {
						time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
					}
					if r.Class == Modifier {
						modifiers.Add(-1)
					} else {
						readers.Add(-1)
					}
					tk.Release()
					cancel()
				}
			}()
		}
	}
	wg.Wait()
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d violations; first: %v", v, firstViolation.Load())
	}
	if maxReaders.Load() < 2 {
		t.Fatal("non-modifiers never overlapped across the cluster")
	}
	for _, g := range gates {
		idle(t, g)
	}
	if !f.free() {
		t.Fatal("cluster lock leaked")
	}
}
