package gate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Options configures a Gate.
type Options struct {
	// MaxWait is how long Enter may wait (in the queue and for the cluster
	// lock together) before it refuses with *BusyError; 0 = wait until the
	// caller's context is done.
	MaxWait time.Duration
	// Cluster, when set, is the cluster-wide lock taken after local admission
	// and released before the local slot (see ClusterLock).
	Cluster ClusterLock
}

// Request describes who wants to pass.
type Request struct {
	Name   string // operation name, e.g. "job.submit"
	Class  Class
	User   string // who asks (user name, or "client:<id>" for agents)
	NoWait bool   // fail with *BusyError at once instead of queueing
}

// States of an operation as List reports them.
const (
	StateRunning = "running"
	StateWaiting = "waiting"
	StateDone    = "done" // only from Ticket.Info after Release; List never shows it
)

// OpInfo describes a running or waiting operation.
type OpInfo struct {
	ID    uint64 `json:"id"`
	Name  string `json:"name"`
	Class Class  `json:"class"`
	User  string `json:"user"`
	// Since is when it started for a running operation, when it arrived for
	// a waiting one.
	Since time.Time `json:"since"`
	State string    `json:"state"` // StateRunning or StateWaiting
}

// Stats are the gate's counters, for metrics.
type Stats struct {
	Admitted  uint64 // admissions (at once or after waiting)
	Waited    uint64 // of Admitted, those that waited in the queue first
	Busy      uint64 // refusals with *BusyError (no-wait, wait limit, cluster busy)
	Cancelled uint64 // operations cancelled by Cancel(id), running or waiting
	Abandoned uint64 // waiters whose own context ended before they started
	Readers   int    // non-modifiers holding the gate now
	Modifier  bool   // a modifier holds the gate now
	Waiting   int    // operations in the queue now
}

// Ticket is an admitted operation. Its holder must call Release (deferred)
// when the operation ends.
type Ticket struct {
	g       *Gate
	id      uint64
	name    string
	user    string
	class   Class
	arrived time.Time
	ctx     context.Context
	cancel  context.CancelCauseFunc

	// Guarded by g.mu.
	started    time.Time
	state      tstate
	queued     bool // waited in the queue
	cancelled  bool // by Gate.Cancel
	prev, next *Ticket
	ready      chan struct{} // closed when admitted from the queue
	unlock     func()        // cluster lock, while held
}

type tstate uint8

const (
	stWaiting   tstate = iota // in the queue
	stLocking                 // holds the local slot, taking the cluster lock
	stRunning                 // admitted; the operation runs
	stReleasing               // giving back the cluster lock, local slot still held
	stDone                    // released, refused or cancelled
)

// ID is the operation id shown by List and taken by Cancel.
func (t *Ticket) ID() uint64 { return t.id }

// Context is derived from the context given to Enter; it is cancelled by
// Gate.Cancel (cause ErrCancelled) and by Release.
func (t *Ticket) Context() context.Context { return t.ctx }

// Info describes the operation as List would (State is StateDone once it
// was released).
func (t *Ticket) Info() OpInfo {
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	return t.infoLocked()
}

// Release gives the slot back (and, first, the cluster lock). It is
// idempotent and safe to call from any goroutine; callers defer it right
// after a successful Enter so that a panic releases it too.
func (t *Ticket) Release() {
	if t == nil {
		return
	}
	g := t.g
	g.mu.Lock()
	if t.state != stRunning {
		g.mu.Unlock()
		return
	}
	if t.unlock == nil {
		g.releaseLocked(t)
		g.mu.Unlock()
		t.cancel(nil)
		return
	}
	// Cluster lock first, then the local slot (see ClusterLock). Meanwhile
	// the ticket keeps its local slot, so nothing local can slip in.
	unlock := t.unlock
	t.unlock = nil
	t.state = stReleasing
	g.mu.Unlock()
	t.cancel(nil)
	defer func() {
		g.mu.Lock()
		g.releaseLocked(t)
		g.mu.Unlock()
	}()
	unlock()
}

func (t *Ticket) infoLocked() OpInfo {
	i := OpInfo{ID: t.id, Name: t.name, Class: t.class, User: t.user, Since: t.arrived, State: StateWaiting}
	switch t.state {
	case stRunning, stReleasing:
		i.Since, i.State = t.started, StateRunning
	case stDone:
		i.Since, i.State = t.started, StateDone
	}
	return i
}

// tlist is an intrusive doubly linked list of tickets; a ticket is in at
// most one list (the queue or the running list) at a time.
type tlist struct {
	head, tail *Ticket
	n          int
}

func (l *tlist) push(t *Ticket) {
	t.prev, t.next = l.tail, nil
	if l.tail == nil {
		l.head = t
	} else {
		l.tail.next = t
	}
	l.tail = t
	l.n++
}

func (l *tlist) remove(t *Ticket) {
	if t.prev == nil {
		l.head = t.next
	} else {
		t.prev.next = t.next
	}
	if t.next == nil {
		l.tail = t.prev
	} else {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	l.n--
}

// Gate is the readers-writers gate with a FIFO queue. Make one with New.
type Gate struct {
	maxWait time.Duration
	cluster ClusterLock

	mu       sync.Mutex
	nextID   uint64
	readers  int     // non-modifiers holding a local slot
	modifier *Ticket // the modifier holding the local slot
	running  tlist   // tickets holding a local slot, in admission order
	queue    tlist   // waiting tickets, FIFO
	st       Stats   // counters only; live fields are filled by Stats()
}

// New returns a gate.
func New(opts Options) *Gate {
	return &Gate{maxWait: opts.MaxWait, cluster: opts.Cluster}
}

// Enter admits the operation or waits (FIFO) until it may run, the wait
// limit passes, or ctx is done. The Ticket's Context is derived from ctx.
// On refusal it returns a *BusyError (no-wait, wait limit, or the cluster
// lock held elsewhere), or an error wrapping ctx's error (for Gate.Cancel of
// a waiting operation: ErrCancelled, which wraps context.Canceled).
func (g *Gate) Enter(ctx context.Context, r Request) (*Ticket, error) {
	if !r.Class.valid() {
		return nil, fmt.Errorf("gate: %q: invalid class %d", r.Name, int(r.Class))
	}
	if err := ctx.Err(); err != nil {
		return nil, notStarted(r.Name, err)
	}
	now := time.Now()
	t := &Ticket{g: g, name: r.Name, user: r.User, class: r.Class, arrived: now}
	t.ctx, t.cancel = context.WithCancelCause(ctx)

	g.mu.Lock()
	g.nextID++
	t.id = g.nextID
	// Admit at once only if nobody queues: a non-modifier arriving behind a
	// queued modifier must not overtake it, or readers could starve it.
	if g.queue.head == nil && g.freeLocked(r.Class) {
		g.startLocked(t, now)
		g.mu.Unlock()
		if g.cluster == nil {
			return t, nil
		}
		return g.lockCluster(t, r.NoWait)
	}
	if r.NoWait {
		g.st.Busy++
		err := &BusyError{Op: r.Name, Holder: g.holderLocked(r.Class), NoWait: true}
		g.mu.Unlock()
		t.cancel(nil)
		return nil, err
	}
	t.state = stWaiting
	t.queued = true
	t.ready = make(chan struct{})
	g.queue.push(t)
	g.mu.Unlock()
	return g.wait(t)
}

// wait blocks a queued ticket until it is admitted, its context ends, or the
// wait limit passes.
func (g *Gate) wait(t *Ticket) (*Ticket, error) {
	var expired <-chan time.Time
	if g.maxWait > 0 {
		tm := time.NewTimer(g.maxWait - time.Since(t.arrived))
		defer tm.Stop()
		expired = tm.C
	}
	timedOut := false
	select {
	case <-t.ready:
	case <-t.ctx.Done():
	case <-expired:
		timedOut = true
	}

	g.mu.Lock()
	switch t.state {
	case stWaiting:
		// Still queued: leave, and let those behind move up (a modifier
		// that gives up may unblock the readers queued after it).
		g.queue.remove(t)
		t.state = stDone
		g.admitLocked()
		var err error
		if timedOut && t.ctx.Err() == nil {
			g.st.Busy++
			err = &BusyError{Op: t.name, Holder: g.holderLocked(t.class), Waited: time.Since(t.arrived)}
		} else {
			g.st.Abandoned++
			err = notStarted(t.name, t.ctx.Err())
		}
		g.mu.Unlock()
		t.cancel(nil)
		return nil, err
	case stDone:
		// Gate.Cancel took it out of the queue (and counted it).
		g.mu.Unlock()
		return nil, notStarted(t.name, ErrCancelled)
	}
	// Admitted. If its context ended at the same moment, give back what it
	// was given rather than start an operation nobody waits for.
	if err := t.ctx.Err(); err != nil {
		if t.cancelled {
			err = ErrCancelled
		} else {
			g.st.Abandoned++
		}
		g.releaseLocked(t)
		g.mu.Unlock()
		t.cancel(nil)
		return nil, notStarted(t.name, err)
	}
	g.mu.Unlock()
	if g.cluster == nil {
		return t, nil
	}
	return g.lockCluster(t, false)
}

// lockCluster takes the cluster lock for a locally admitted ticket (state
// stLocking); on failure it gives the local slot back.
func (g *Gate) lockCluster(t *Ticket, noWait bool) (*Ticket, error) {
	ctx := t.ctx
	if g.maxWait > 0 && !noWait {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, t.arrived.Add(g.maxWait))
		defer cancel()
	}
	unlock, err := g.cluster.Lock(ctx, t.class, noWait)
	if err == nil && t.ctx.Err() != nil {
		// Granted just as it was cancelled: give it back, cluster first.
		unlock()
		err = t.ctx.Err()
	}
	g.mu.Lock()
	if err == nil {
		t.unlock = unlock
		g.runningLocked(t)
		g.mu.Unlock()
		return t, nil
	}
	cancelled := t.cancelled
	g.releaseLocked(t)
	var be *BusyError
	switch {
	case cancelled:
		err = notStarted(t.name, ErrCancelled)
	case t.ctx.Err() != nil:
		g.st.Abandoned++
		err = notStarted(t.name, t.ctx.Err())
	case errors.As(err, &be):
		g.st.Busy++
		be.Op, be.Waited, be.NoWait, be.Cluster = t.name, time.Since(t.arrived), noWait, true
		err = be
	case errors.Is(err, ErrClusterBusy) || ctx.Err() != nil:
		g.st.Busy++
		err = &BusyError{Op: t.name, Waited: time.Since(t.arrived), NoWait: noWait, Cluster: true}
	default:
		err = fmt.Errorf("gate: %q: cluster lock: %w", t.name, err)
	}
	g.mu.Unlock()
	t.cancel(nil)
	return nil, err
}

// freeLocked reports whether an operation of class c may run now, ignoring
// the queue.
func (g *Gate) freeLocked(c Class) bool {
	if g.modifier != nil {
		return false
	}
	return c == NonModifier || g.readers == 0
}

// startLocked gives t a local slot.
func (g *Gate) startLocked(t *Ticket, now time.Time) {
	t.started = now
	if t.class == Modifier {
		g.modifier = t
	} else {
		g.readers++
	}
	g.running.push(t)
	if g.cluster == nil {
		g.runningLocked(t)
	} else {
		t.state = stLocking
	}
}

func (g *Gate) runningLocked(t *Ticket) {
	t.state = stRunning
	g.st.Admitted++
	if t.queued {
		g.st.Waited++
	}
}

// releaseLocked takes back t's local slot and re-evaluates the queue.
func (g *Gate) releaseLocked(t *Ticket) {
	g.running.remove(t)
	if t.class == Modifier {
		g.modifier = nil
	} else {
		g.readers--
	}
	t.state = stDone
	g.admitLocked()
}

// admitLocked admits from the head of the queue: a modifier if nothing
// runs, or the whole run of non-modifiers up to the next modifier if no
// modifier runs.
func (g *Gate) admitLocked() {
	var now time.Time
	for t := g.queue.head; t != nil; t = g.queue.head {
		if !g.freeLocked(t.class) {
			return
		}
		if now.IsZero() {
			now = time.Now()
		}
		g.queue.remove(t)
		g.startLocked(t, now)
		close(t.ready)
	}
}

// holderLocked names the operation that keeps an operation of class c out.
func (g *Gate) holderLocked(c Class) OpInfo {
	if g.modifier != nil {
		return g.modifier.infoLocked()
	}
	if c == Modifier && g.running.head != nil {
		return g.running.head.infoLocked()
	}
	// A non-modifier kept out with no modifier running is behind a queued
	// modifier (which waits for the running non-modifiers).
	for t := g.queue.head; t != nil; t = t.next {
		if t.class == Modifier {
			return t.infoLocked()
		}
	}
	if g.running.head != nil {
		return g.running.head.infoLocked()
	}
	return OpInfo{}
}

// List returns the running operations (oldest first), then the waiting ones
// in queue order; operations that hold their local slot but still wait for
// the cluster lock come first among the waiting.
func (g *Gate) List() []OpInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]OpInfo, 0, g.running.n+g.queue.n)
	for t := g.running.head; t != nil; t = t.next {
		if t.state != stLocking {
			out = append(out, t.infoLocked())
		}
	}
	for t := g.running.head; t != nil; t = t.next {
		if t.state == stLocking {
			out = append(out, t.infoLocked())
		}
	}
	for t := g.queue.head; t != nil; t = t.next {
		out = append(out, t.infoLocked())
	}
	return out
}

// Cancel cancels operation id: a running one has its Context cancelled
// (cause ErrCancelled; the operation should notice and return), a waiting
// one leaves the queue and its Enter returns an error wrapping ErrCancelled
// and context.Canceled. It reports false if no such operation runs or waits.
func (g *Gate) Cancel(id uint64) bool {
	g.mu.Lock()
	t := g.findLocked(id)
	if t == nil {
		g.mu.Unlock()
		return false
	}
	if t.state == stWaiting {
		g.queue.remove(t)
		t.state = stDone
		g.admitLocked()
	}
	if !t.cancelled {
		t.cancelled = true
		g.st.Cancelled++
	}
	g.mu.Unlock()
	t.cancel(ErrCancelled)
	return true
}

func (g *Gate) findLocked(id uint64) *Ticket {
	for t := g.running.head; t != nil; t = t.next {
		if t.id == id {
			return t
		}
	}
	for t := g.queue.head; t != nil; t = t.next {
		if t.id == id {
			return t
		}
	}
	return nil
}

// Stats returns the counters and the current occupation.
func (g *Gate) Stats() Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.st
	s.Readers = g.readers
	s.Modifier = g.modifier != nil
	s.Waiting = g.queue.n
	return s
}
