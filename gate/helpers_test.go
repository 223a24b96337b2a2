package gate

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Ordering assertions in these tests use handshakes (channels, and polling
// of the gate's own List/Stats until a state is reached), never sleeps. The
// only deadline is waitUntil's generous one, which fails a test that would
// otherwise hang.

const patience = 30 * time.Second

// waitUntil polls cond until it holds, failing the test after patience.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// admissions records the order in which operations were admitted.
type admissions struct {
	mu    sync.Mutex
	names []string
}

func (a *admissions) add(name string) {
	a.mu.Lock()
	a.names = append(a.names, name)
	a.mu.Unlock()
}

func (a *admissions) get() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.names...)
}

// op is an operation run in its own goroutine: it enters the gate, records
// its admission, holds the gate until told to end, then releases.
type op struct {
	name    string
	ticket  *Ticket
	err     error
	entered chan struct{} // closed when Enter returned (ticket or err set)
	end     chan struct{} // close to make the operation end
	done    chan struct{} // closed after Release
}

func startOp(g *Gate, ctx context.Context, r Request, log *admissions) *op {
	o := &op{name: r.Name, entered: make(chan struct{}), end: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		t, err := g.Enter(ctx, r)
		if err == nil && log != nil {
			log.add(r.Name)
		}
		o.ticket, o.err = t, err
		close(o.entered)
		if err != nil {
			return
		}
		defer t.Release()
		<-o.end
	}()
	return o
}

// running starts an operation and waits until it runs.
func running(t testing.TB, g *Gate, r Request, log *admissions) *op {
	t.Helper()
	o := startOp(g, context.Background(), r, log)
	o.mustEnter(t)
	return o
}

func (o *op) mustEnter(t testing.TB) {
	t.Helper()
	select {
	case <-o.entered:
	case <-time.After(patience):
		t.Fatalf("%s: not admitted", o.name)
	}
	if o.err != nil {
		t.Fatalf("%s: Enter: %v", o.name, o.err)
	}
}

func (o *op) isEntered() bool {
	select {
	case <-o.entered:
		return true
	default:
		return false
	}
}

func (o *op) finish(t testing.TB) {
	t.Helper()
	close(o.end)
	select {
	case <-o.done:
	case <-time.After(patience):
		t.Fatalf("%s: did not end", o.name)
	}
}

// queued waits until the operation named name waits in g's queue.
func queued(t testing.TB, g *Gate, name string) {
	t.Helper()
	waitUntil(t, name+" waits in the queue", func() bool {
		for _, i := range g.List() {
			if i.Name == name && i.State == StateWaiting {
				return true
			}
		}
		return false
	})
}

// states renders List as "name:state" items.
func states(g *Gate) string {
	var s []string
	for _, i := range g.List() {
		s = append(s, i.Name+":"+i.State)
	}
	return strings.Join(s, " ")
}

func rq(name string, c Class) Request { return Request{Name: name, Class: c, User: "u-" + name} }

// idle checks that g has nothing running or waiting and that a modifier
// gets in at once — i.e. no slot leaked.
func idle(t testing.TB, g *Gate) {
	t.Helper()
	waitUntil(t, "the gate is idle", func() bool {
		s := g.Stats()
		return s.Readers == 0 && !s.Modifier && s.Waiting == 0
	})
	tk, err := g.Enter(context.Background(), Request{Name: "probe", Class: Modifier, NoWait: true})
	if err != nil {
		t.Fatalf("gate leaked a slot: %v (ops: %s)", err, states(g))
	}
	tk.Release()
}

func fmtOrder(names []string) string { return fmt.Sprint(names) }
