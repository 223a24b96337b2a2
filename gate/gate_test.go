package gate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var bg = context.Background()

func TestClass(t *testing.T) {
	if NonModifier.String() != "non-modifier" || Modifier.String() != "modifier" || Class(7).String() != "Class(7)" {
		t.Fatalf("String: %q %q %q", NonModifier, Modifier, Class(7))
	}
	for in, want := range map[string]Class{"modifier": Modifier, "non-modifier": NonModifier, " Modifier\n": Modifier} {
		if c, err := ParseClass(in); err != nil || c != want {
			t.Errorf("ParseClass(%q) = %v, %v; want %v", in, c, err, want)
		}
	}
	for _, in := range []string{"", "writer", "nonmodifier", "0"} {
		if _, err := ParseClass(in); err == nil {
			t.Errorf("ParseClass(%q) accepted", in)
		}
	}
	b, err := json.Marshal(map[string]Class{"a": Modifier, "b": NonModifier})
	if err != nil || string(b) != `{"a":"modifier","b":"non-modifier"}` {
		t.Fatalf("json: %s %v", b, err)
	}
	var m map[string]Class
	if err := json.Unmarshal(b, &m); err != nil || m["a"] != Modifier || m["b"] != NonModifier {
		t.Fatalf("json back: %v %v", m, err)
	}
	if _, err := json.Marshal(Class(3)); err == nil {
		t.Fatal("invalid class marshalled")
	}
}

func TestEnterRefusesBadInput(t *testing.T) {
	g := New(Options{})
	if _, err := g.Enter(bg, Request{Name: "x", Class: Class(2)}); err == nil {
		t.Fatal("invalid class admitted")
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := g.Enter(ctx, rq("x", NonModifier)); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: %v", err)
	}
	if s := g.Stats(); s.Admitted != 0 {
		t.Fatalf("stats %+v", s)
	}
	idle(t, g)
}

func TestRule(t *testing.T) {
	g := New(Options{})
	// Non-modifiers run together.
	r1, err := g.Enter(bg, rq("r1", NonModifier))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := g.Enter(bg, Request{Name: "r2", Class: NonModifier, NoWait: true})
	if err != nil {
		t.Fatalf("second reader refused: %v", err)
	}
	if s := g.Stats(); s.Readers != 2 || s.Modifier {
		t.Fatalf("stats %+v", s)
	}
	// A modifier does not run beside them.
	if _, err := g.Enter(bg, Request{Name: "m", Class: Modifier, NoWait: true}); err == nil {
		t.Fatal("modifier admitted beside readers")
	}
	r1.Release()
	r2.Release()
	// A modifier runs alone: nothing else runs beside it.
	m, err := g.Enter(bg, Request{Name: "m", Class: Modifier, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Class{NonModifier, Modifier} {
		if _, err := g.Enter(bg, Request{Name: "x", Class: c, NoWait: true}); err == nil {
			t.Fatalf("%v admitted beside a modifier", c)
		}
	}
	if s := g.Stats(); s.Readers != 0 || !s.Modifier || s.Admitted != 3 || s.Busy != 3 {
		t.Fatalf("stats %+v", s)
	}
	m.Release()
	idle(t, g)
}

// M1 running; R1, R2, M2, R3 queue in that order. When M1 ends R1 and R2 run
// together, M2 waits for both, R3 waits for M2.
func TestFIFO(t *testing.T) {
	g := New(Options{})
	log := &admissions{}
	m1 := running(t, g, rq("M1", Modifier), log)
	ops := map[string]*op{}
	for _, r := range []Request{rq("R1", NonModifier), rq("R2", NonModifier), rq("M2", Modifier), rq("R3", NonModifier)} {
		ops[r.Name] = startOp(g, bg, r, log)
		queued(t, g, r.Name)
	}
	expect := func(want string) {
		t.Helper()
		if got := states(g); got != want {
			t.Fatalf("ops = %s\nwant  %s", got, want)
		}
	}
	expect("M1:running R1:waiting R2:waiting M2:waiting R3:waiting")

	m1.finish(t)
	ops["R1"].mustEnter(t)
	ops["R2"].mustEnter(t)
	expect("R1:running R2:running M2:waiting R3:waiting")

	ops["R1"].finish(t)
	expect("R2:running M2:waiting R3:waiting") // M2 waits for R2 too
	if ops["M2"].isEntered() {
		t.Fatal("M2 admitted while R2 runs")
	}

	ops["R2"].finish(t)
	ops["M2"].mustEnter(t)
	expect("M2:running R3:waiting")
	if ops["R3"].isEntered() {
		t.Fatal("R3 admitted while M2 runs")
	}

	ops["M2"].finish(t)
	ops["R3"].mustEnter(t)
	expect("R3:running")
	ops["R3"].finish(t)

	got := log.get()
	if len(got) != 5 || got[0] != "M1" || !slices.Contains(got[1:3], "R1") || !slices.Contains(got[1:3], "R2") || got[3] != "M2" || got[4] != "R3" {
		t.Fatalf("admission order %s, want M1 {R1 R2} M2 R3", fmtOrder(got))
	}
	if s := g.Stats(); s.Admitted != 5 || s.Waited != 4 {
		t.Fatalf("stats %+v", s)
	}
	idle(t, g)
}

// A continuous stream of overlapping non-modifiers must not starve a
// modifier: no reader that arrived after the modifier starts before it.
// Arrival order is the ticket id order (ids are given out under the gate's
// lock as requests arrive).
func TestModifierNotStarvedByReaders(t *testing.T) {
	g := New(Options{})
	anchor := running(t, g, rq("anchor", NonModifier), nil) // something always runs until the modifier is queued

	type rec struct {
		id               uint64
		modifierStarted  bool
		overlappedOthers bool
	}
	var (
		mu       sync.Mutex
		recs     []rec
		active   atomic.Int64
		mStarted atomic.Bool
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	reader := func() {
		defer wg.Done()
		tk, err := g.Enter(bg, rq("r", NonModifier))
		if err != nil {
			t.Error(err)
			return
		}
		defer tk.Release()
		r := rec{id: tk.ID(), modifierStarted: mStarted.Load(), overlappedOthers: active.Add(1) > 1}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
		for range rand.IntN(20) {
			runtime.Gosched()
		}
		active.Add(-1)
	}
	spawned := make(chan struct{})
	go func() { // the stream
		defer close(spawned)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			wg.Add(1)
			go reader()
			time.Sleep(20 * time.Microsecond)
		}
	}()
	waitUntil(t, "the stream runs", func() bool { return g.Stats().Admitted > 50 })

	m := startOp(g, bg, rq("M", Modifier), nil)
	queued(t, g, "M")
	// Let readers pile up behind it, then let the stream drain in front.
	w0 := g.Stats().Waiting
	waitUntil(t, "readers queue behind M", func() bool { return g.Stats().Waiting >= w0+20 })
	anchor.finish(t)
	m.mustEnter(t)
	mStarted.Store(true)
	mID := m.ticket.ID()
	if n := active.Load(); n != 0 {
		t.Errorf("%d readers run beside the modifier", n)
	}
	m.finish(t)
	close(stop)
	<-spawned
	wg.Wait()

	var overtook, after, overlapped int
	for _, r := range recs {
		if r.id > mID {
			after++
			if !r.modifierStarted {
				overtook++
			}
		}
		if r.overlappedOthers {
			overlapped++
		}
	}
	if overtook != 0 {
		t.Fatalf("%d readers that arrived after the modifier started before it", overtook)
	}
	if after < 19 {
		t.Fatalf("only %d readers arrived after the modifier: the test proved nothing", after)
	}
	if overlapped == 0 {
		t.Fatal("no readers overlapped: not a stream of concurrent readers")
	}
	idle(t, g)
}

// The reverse: a stream of modifiers must not starve a non-modifier.
func TestReaderNotStarvedByModifiers(t *testing.T) {
	g := New(Options{})
	anchor := running(t, g, rq("anchor", Modifier), nil)
	type rec struct {
		id            uint64
		readerStarted bool
	}
	var (
		mu       sync.Mutex
		recs     []rec
		rStarted atomic.Bool
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	modifier := func() {
		defer wg.Done()
		tk, err := g.Enter(bg, rq("m", Modifier))
		if err != nil {
			t.Error(err)
			return
		}
		defer tk.Release()
		mu.Lock()
		recs = append(recs, rec{tk.ID(), rStarted.Load()})
		mu.Unlock()
	}
	spawned := make(chan struct{})
	go func() {
		defer close(spawned)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			wg.Add(1)
			go modifier()
			time.Sleep(20 * time.Microsecond)
		}
	}()
	waitUntil(t, "modifiers queue", func() bool { return g.Stats().Waiting >= 5 })
	r := startOp(g, bg, rq("R", NonModifier), nil)
	queued(t, g, "R")
	w0 := g.Stats().Waiting
	waitUntil(t, "modifiers queue behind R", func() bool { return g.Stats().Waiting >= w0+20 })
	anchor.finish(t)
	r.mustEnter(t)
	rStarted.Store(true)
	rID := r.ticket.ID()
	r.finish(t)
	close(stop)
	<-spawned
	wg.Wait()
	var overtook, after int
	for _, m := range recs {
		if m.id > rID {
			after++
			if !m.readerStarted {
				overtook++
			}
		}
	}
	if overtook != 0 || after < 19 {
		t.Fatalf("%d of %d modifiers that arrived after the reader started before it", overtook, after)
	}
	idle(t, g)
}

func TestNoWaitNamesHolder(t *testing.T) {
	g := New(Options{})
	m := running(t, g, Request{Name: "db.backup", Class: Modifier, User: "alice"}, nil)
	mi := m.ticket.Info()

	_, err := g.Enter(bg, Request{Name: "job.list", Class: NonModifier, User: "bob", NoWait: true})
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BusyError", err)
	}
	if be.Op != "job.list" || be.Holder != mi || be.Holder.User != "alice" || be.Holder.State != StateRunning ||
		be.Holder.Since.IsZero() || !be.NoWait || be.Waited != 0 || be.Cluster {
		t.Fatalf("busy = %+v; holder should be %+v", be, mi)
	}
	want := fmt.Sprintf(`busy: "db.backup" (modifier, op %d) run by alice since %s holds the gate; "job.list" not started (no-wait)`,
		mi.ID, mi.Since.UTC().Format(time.RFC3339))
	if be.Error() != want {
		t.Fatalf("Error() = %s\nwant      %s", be.Error(), want)
	}
	m.finish(t)

	// Readers block a modifier: the oldest running operation is named.
	r1 := running(t, g, Request{Name: "job.get", Class: NonModifier, User: "bob"}, nil)
	r2 := running(t, g, Request{Name: "job.list", Class: NonModifier, User: "carol"}, nil)
	_, err = g.Enter(bg, Request{Name: "db.reset", Class: Modifier, NoWait: true})
	if !errors.As(err, &be) || be.Holder != r1.ticket.Info() {
		t.Fatalf("err = %v, want the oldest reader %+v", err, r1.ticket.Info())
	}

	// A reader behind a queued modifier (FIFO) is refused and told so.
	mw := startOp(g, bg, Request{Name: "job.submit", Class: Modifier, User: "dave"}, nil)
	queued(t, g, "job.submit")
	_, err = g.Enter(bg, Request{Name: "client.list", Class: NonModifier, NoWait: true})
	if !errors.As(err, &be) || be.Holder.Name != "job.submit" || be.Holder.State != StateWaiting || be.Holder.User != "dave" {
		t.Fatalf("err = %v, want the waiting modifier named", err)
	}
	r1.finish(t)
	r2.finish(t)
	mw.mustEnter(t)
	mw.finish(t)
	if s := g.Stats(); s.Busy != 3 {
		t.Fatalf("stats %+v", s)
	}
	idle(t, g)
}

func TestBusyErrorText(t *testing.T) {
	since := time.Date(2026, 11, 22, 11, 0, 0, 0, time.FixedZone("CET", 3600))
	for _, tc := range []struct {
		e    BusyError
		want string
	}{
		{BusyError{Op: "job.submit", Waited: 2*time.Second + 300*time.Microsecond,
			Holder: OpInfo{ID: 7, Name: "db.backup", Class: Modifier, User: "alice", Since: since, State: StateRunning}},
			`busy: "db.backup" (modifier, op 7) run by alice since 2026-11-22T10:00:00Z holds the gate; "job.submit" not started (waited 2s)`},
		{BusyError{Op: "db.reset", NoWait: true,
			Holder: OpInfo{ID: 8, Name: "job.list", Class: NonModifier, Since: since, State: StateRunning}},
			`busy: "job.list" (non-modifier, op 8) run by (unknown) since 2026-11-22T10:00:00Z is running; "db.reset" not started (no-wait)`},
		{BusyError{Op: "job.list", NoWait: true,
			Holder: OpInfo{ID: 9, Name: "job.submit", Class: Modifier, User: "bob", Since: since, State: StateWaiting}},
			`busy: "job.submit" (modifier, op 9) requested by bob at 2026-11-22T10:00:00Z is waiting ahead of it; "job.list" not started (no-wait)`},
		{BusyError{Op: "job.list", Cluster: true, Waited: 1500 * time.Millisecond},
			`busy: an operation on another server holds the cluster-wide gate; "job.list" not started (waited 1.5s)`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestMaxWait(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	g := New(Options{MaxWait: maxWait})
	m := running(t, g, Request{Name: "db.backup", Class: Modifier, User: "alice"}, nil)
	start := time.Now()
	_, err := g.Enter(bg, rq("job.list", NonModifier))
	elapsed := time.Since(start)
	var be *BusyError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want *BusyError", err)
	}
	// The timer cannot fire early; the upper bound is only a sanity margin.
	if be.Waited < maxWait || elapsed < maxWait || be.Waited > maxWait+patience {
		t.Fatalf("waited %v (elapsed %v), want ≈ %v", be.Waited, elapsed, maxWait)
	}
	if be.NoWait || be.Holder != m.ticket.Info() {
		t.Fatalf("busy = %+v", be)
	}
	if s := g.Stats(); s.Waiting != 0 || s.Busy != 1 {
		t.Fatalf("refused waiter left in the queue: %+v", s)
	}
	m.finish(t)
	idle(t, g)
}

// A waiter whose context ends leaves the queue, and those behind it move up.
func TestCtxCancelWhileWaitingFreesQueue(t *testing.T) {
	g := New(Options{})
	r0 := running(t, g, rq("R0", NonModifier), nil)
	ctx, cancel := context.WithCancel(bg)
	m := startOp(g, ctx, rq("M", Modifier), nil)
	queued(t, g, "M")
	r1 := startOp(g, bg, rq("R1", NonModifier), nil)
	queued(t, g, "R1")
	if r1.isEntered() {
		t.Fatal("R1 overtook the queued modifier")
	}
	cancel()
	<-m.entered
	var be *BusyError
	if !errors.Is(m.err, context.Canceled) || errors.As(m.err, &be) || m.ticket != nil {
		t.Fatalf("M: %v, want context.Canceled", m.err)
	}
	r1.mustEnter(t) // while R0 still runs
	if got := states(g); got != "R0:running R1:running" {
		t.Fatalf("ops = %s", got)
	}
	if s := g.Stats(); s.Abandoned != 1 {
		t.Fatalf("stats %+v", s)
	}
	r0.finish(t)
	r1.finish(t)
	idle(t, g)
}

func TestCancelRunning(t *testing.T) {
	g := New(Options{})
	r := running(t, g, rq("job.list", NonModifier), nil)
	id := r.ticket.ID()
	if g.Cancel(id + 1000) {
		t.Fatal("Cancel of an unknown id reported true")
	}
	if !g.Cancel(id) {
		t.Fatal("Cancel of a running op reported false")
	}
	ctx := r.ticket.Context()
	select {
	case <-ctx.Done():
	case <-time.After(patience):
		t.Fatal("context not cancelled")
	}
	if !errors.Is(ctx.Err(), context.Canceled) || context.Cause(ctx) != ErrCancelled || !errors.Is(ErrCancelled, context.Canceled) {
		t.Fatalf("err %v cause %v", ctx.Err(), context.Cause(ctx))
	}
	// The slot stays taken until the operation returns and releases.
	if got := states(g); got != "job.list:running" {
		t.Fatalf("ops = %s", got)
	}
	r.finish(t)
	if g.Cancel(id) {
		t.Fatal("Cancel of a finished op reported true")
	}
	if s := g.Stats(); s.Cancelled != 1 {
		t.Fatalf("stats %+v", s)
	}
	idle(t, g)
}

func TestCancelWaiting(t *testing.T) {
	g := New(Options{})
	r0 := running(t, g, rq("R0", NonModifier), nil)
	m := startOp(g, bg, rq("M", Modifier), nil)
	queued(t, g, "M")
	r1 := startOp(g, bg, rq("R1", NonModifier), nil)
	queued(t, g, "R1")
	var mID uint64
	for _, i := range g.List() {
		if i.Name == "M" {
			mID = i.ID
		}
	}
	if !g.Cancel(mID) {
		t.Fatal("Cancel of a waiting op reported false")
	}
	<-m.entered
	if !errors.Is(m.err, ErrCancelled) || !errors.Is(m.err, context.Canceled) || m.ticket != nil {
		t.Fatalf("M: %v", m.err)
	}
	r1.mustEnter(t) // the modifier's place is freed
	if got := states(g); got != "R0:running R1:running" {
		t.Fatalf("ops = %s", got)
	}
	if g.Cancel(mID) {
		t.Fatal("second Cancel reported true")
	}
	r0.finish(t)
	r1.finish(t)
	if s := g.Stats(); s.Cancelled != 1 || s.Abandoned != 0 {
		t.Fatalf("stats %+v", s)
	}
	idle(t, g)
}

func TestReleaseIdempotent(t *testing.T) {
	g := New(Options{})
	var nilTicket *Ticket
	nilTicket.Release()

	r1, _ := g.Enter(bg, rq("r1", NonModifier))
	r2, _ := g.Enter(bg, rq("r2", NonModifier))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); r1.Release() }()
	}
	wg.Wait()
	r1.Release()
	if r1.Context().Err() == nil {
		t.Fatal("Release did not cancel the context")
	}
	if s := g.Stats(); s.Readers != 1 {
		t.Fatalf("readers = %d after releasing one of two many times", s.Readers)
	}
	if _, err := g.Enter(bg, Request{Name: "m", Class: Modifier, NoWait: true}); err == nil {
		t.Fatal("modifier admitted while r2 runs")
	}
	r2.Release()
	r2.Release()
	if i := r2.Info(); i.State != StateDone || i.Name != "r2" {
		t.Fatalf("Info after Release = %+v", i)
	}
	idle(t, g)
	if s := g.Stats(); s.Readers != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPanicWithDeferredReleaseFreesGate(t *testing.T) {
	g := New(Options{})
	entered := make(chan struct{})
	boom := make(chan struct{})
	var w *op
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		tk, err := g.Enter(bg, rq("db.restore", Modifier))
		if err != nil {
			t.Fatal(err)
		}
		defer tk.Release()
		close(entered)
		w = startOp(g, bg, rq("job.list", NonModifier), nil)
		queued(t, g, "job.list")
		close(boom)
		panic("restore failed")
	}()
	<-entered
	<-boom
	w.mustEnter(t)
	w.finish(t)
	idle(t, g)
}

func TestList(t *testing.T) {
	g := New(Options{})
	if l := g.List(); len(l) != 0 {
		t.Fatalf("List = %v", l)
	}
	m := running(t, g, Request{Name: "db.backup", Class: Modifier, User: "alice"}, nil)
	before := time.Now()
	r := startOp(g, bg, Request{Name: "job.list", Class: NonModifier, User: "client:42"}, nil)
	queued(t, g, "job.list")
	m2 := startOp(g, bg, Request{Name: "job.submit", Class: Modifier, User: "bob"}, nil)
	queued(t, g, "job.submit")
	l := g.List()
	if len(l) != 3 {
		t.Fatalf("List = %+v", l)
	}
	want := []OpInfo{
		{Name: "db.backup", Class: Modifier, User: "alice", State: StateRunning},
		{Name: "job.list", Class: NonModifier, User: "client:42", State: StateWaiting},
		{Name: "job.submit", Class: Modifier, User: "bob", State: StateWaiting},
	}
	for i, w := range want {
		got := l[i]
		if got.Name != w.Name || got.Class != w.Class || got.User != w.User || got.State != w.State || got.ID == 0 || got.Since.IsZero() {
			t.Errorf("List[%d] = %+v, want %+v", i, got, w)
		}
	}
	if !(l[0].ID < l[1].ID && l[1].ID < l[2].ID) || l[0].Since.After(before) || l[1].Since.Before(before) {
		t.Errorf("ids/since out of order: %+v", l)
	}
	if l[0] != m.ticket.Info() {
		t.Errorf("List[0] = %+v, Info = %+v", l[0], m.ticket.Info())
	}
	m.finish(t)
	r.mustEnter(t)
	l = g.List()
	if len(l) != 2 || l[0].Name != "job.list" || l[0].State != StateRunning || l[0].Since.Before(l[1].Since) || l[1].State != StateWaiting {
		t.Fatalf("List = %+v", l)
	}
	r.finish(t)
	m2.mustEnter(t)
	m2.finish(t)
	idle(t, g)
}

// A waiter admitted at the very moment its context ends must give back what
// it was given. Run the race many times; whatever the outcome, nothing leaks.
func TestAdmitCancelRace(t *testing.T) {
	g := New(Options{})
	admittedDespiteCancel := 0
	for i := range 300 {
		class := Class(i % 2)
		holder, err := g.Enter(bg, rq("holder", Modifier))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(bg)
		w := startOp(g, ctx, rq("w", class), nil)
		queued(t, g, "w")
		behind := startOp(g, bg, rq("behind", class), nil)
		queued(t, g, "behind")
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); <-start; holder.Release() }()
		go func() { defer wg.Done(); <-start; cancel() }()
		close(start)
		wg.Wait()
		<-w.entered
		if w.err == nil {
			admittedDespiteCancel++
			w.finish(t)
		} else if !errors.Is(w.err, context.Canceled) {
			t.Fatalf("w: %v", w.err)
		}
		behind.mustEnter(t)
		behind.finish(t)
		idle(t, g)
	}
	t.Logf("admitted before the cancellation was seen: %d of 300", admittedDespiteCancel)
}

// Thousands of random operations from many goroutines; each checks the rule
// while it runs.
func TestStress(t *testing.T) {
	const workers, perWorker = 16, 250
	g := New(Options{})
	var (
		readers, modifiers, maxReaders atomic.Int64
		violations                     atomic.Int64
		firstViolation                 atomic.Value
		ok, busy, gaveUp, cancelled    atomic.Int64
		wg                             sync.WaitGroup
		stopCanceller                  = make(chan struct{})
	)
	violate := func(format string, args ...any) {
		violations.Add(1)
		firstViolation.CompareAndSwap(nil, fmt.Sprintf(format, args...))
	}
	// An operator cancelling random operations now and then.
	cancellerDone := make(chan struct{})
	go func() {
		defer close(cancellerDone)
		for n := 0; n < 60; {
			select {
			case <-stopCanceller:
				return
			default:
			}
			if l := g.List(); len(l) > 0 && g.Cancel(l[rand.IntN(len(l))].ID) {
				n++
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				r := Request{Name: fmt.Sprintf("w%d.%d", w, i), Class: NonModifier}
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
					switch {
					case errors.As(err, &be) && r.NoWait:
						busy.Add(1)
					case errors.Is(err, ErrCancelled):
						cancelled.Add(1)
					case errors.Is(err, context.DeadlineExceeded) && ctx != bg:
						gaveUp.Add(1)
					default:
						violate("%s: unexpected error %v", r.Name, err)
					}
					cancel()
					continue
				}
				ok.Add(1)
				if r.Class == Modifier {
					if n := modifiers.Add(1); n != 1 {
						violate("%d modifiers at once", n)
					}
					if n := readers.Load(); n != 0 {
						violate("modifier beside %d readers", n)
					}
				} else {
					n := readers.Add(1)
					if m := modifiers.Load(); m != 0 {
						violate("reader beside a modifier")
					}
					for {
						old := maxReaders.Load()
						if n <= old || maxReaders.CompareAndSwap(old, n) {
							break
						}
					}
				}
				switch rand.IntN(3) {
				case 0:
				case 1:
					runtime.Gosched()
				case 2:
					time.Sleep(time.Duration(rand.IntN(100)) * time.Microsecond)
				}
				if r.Class == Modifier {
					modifiers.Add(-1)
				} else {
					readers.Add(-1)
				}
				tk.Release()
				if rand.IntN(10) == 0 {
					tk.Release()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(stopCanceller)
	<-cancellerDone
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d violations; first: %v", v, firstViolation.Load())
	}
	if m := maxReaders.Load(); m < 2 {
		t.Fatalf("max concurrent readers %d: non-modifiers never overlapped", m)
	}
	s := g.Stats()
	t.Logf("ok %d, no-wait busy %d, gave up %d, cancelled waiting %d, max readers %d; stats %+v",
		ok.Load(), busy.Load(), gaveUp.Load(), cancelled.Load(), maxReaders.Load(), s)
	if total := ok.Load() + busy.Load() + gaveUp.Load() + cancelled.Load(); total != workers*perWorker {
		t.Fatalf("accounted for %d of %d operations", total, workers*perWorker)
	}
	if s.Admitted < uint64(ok.Load()) || s.Busy != uint64(busy.Load()) {
		t.Fatalf("stats %+v disagree with ok %d busy %d", s, ok.Load(), busy.Load())
	}
	idle(t, g)
}
