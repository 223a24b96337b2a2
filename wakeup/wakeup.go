// Package wakeup keeps the agents that wait in agent.getJobs on this daemon
// (its long poll: docs/protocol.md, "Waiting for work"), so that news of
// work for one of them wakes it where it waits.
//
// Why. A daemon-mode agent used to learn of new work by agent.pollNow: the
// daemon dialled the agent's listener, a mutual-TLS handshake per push,
// and the agent then called back. For a job on thousands of machines those
// handshakes were most of the daemon's work. An agent that holds an
// agent.getJobs open on its own kept-alive connection needs neither: the
// daemon wakes the waiting call, which claims the work and answers with it.
//
// A wake is a hint, as a push is: it carries nothing, and a waiter woken
// for work another call took finds nothing and waits on. Each waiter has a
// channel of capacity one, so a wake that comes while the waiter is not yet
// (or no longer) blocked on it is kept for its next look, and a burst of
// wakes costs it one claim.
package wakeup

import "sync"

// Board is the set of waiting agents of one daemon, by client id. The zero
// Board is ready to use; it is safe for concurrent use.
type Board struct {
	mu     sync.Mutex
	byID   map[int64][]chan struct{}
	n      int
	closed bool
}

// Wait registers a waiter for client id and returns the channel it is woken
// on and the func that removes it, to be called when it stops waiting
// (exactly once). A waiter registered before it looks for work misses no
// wake: one that comes meanwhile is kept in the channel. After Close, the
// channel returned is closed.
func (b *Board) Wait(id int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	if b.byID == nil {
		b.byID = map[int64][]chan struct{}{}
	}
	b.byID[id] = append(b.byID[id], ch)
	b.n++
	return ch, func() { b.remove(id, ch) }
}

func (b *Board) remove(id int64, ch chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.byID[id]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			b.n--
			break
		}
	}
	if len(list) == 0 {
		delete(b.byID, id)
	} else {
		b.byID[id] = list
	}
}

// Wake wakes every waiter of client id and reports whether there was one:
// if not, the caller tells the client some other way (a push).
func (b *Board) Wake(id int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	list := b.byID[id]
	for _, ch := range list {
		select {
		case ch <- struct{}{}:
		default: // already woken: one wake is as good as two
		}
	}
	return len(list) > 0
}

// Waiting is how many waiters there are now.
func (b *Board) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

// Close wakes every waiter for good (its channel is closed, so it stays
// readable), and every later one at once: the daemon is stopping, and a
// call waiting for work must answer (with what it has) for the server to
// finish its in-flight requests.
func (b *Board) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, list := range b.byID {
		for _, ch := range list {
			close(ch)
		}
	}
	b.byID, b.n = nil, 0
}

// Closed says whether Close was called: a waiter woken then stops waiting.
func (b *Board) Closed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
