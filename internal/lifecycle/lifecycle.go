// Package lifecycle gives the daemon's background services a start and a
// stop. A service embeds Base, which runs its loop on a goroutine of its
// own and knows whether it runs; Stop cancels the loop and waits for it to
// end, so whoever stops a service (scirectl serve, before it closes the
// database) knows the service touches nothing afterwards. Group starts
// services in order and stops them in the reverse one.
//
// The shape follows River's startstop package, smaller: no started
// channel, no separate stop hooks. A loop that must do something when it
// stops (a last write, closing connections) does it before it returns.
package lifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Service is a background loop with a start and a stop.
type Service interface {
	// Start starts the service and returns without waiting for it. It is
	// idempotent: starting a running service does nothing. The service
	// runs until Stop, or until ctx is done.
	Start(ctx context.Context) error
	// Stop asks the service to end and waits until it has. Stopping a
	// service that was never started, or is stopped already, does nothing.
	Stop()
}

// Base is the state of one service's loop. Its zero value is a service
// that has not started; embed it and call StartLoop from Start.
type Base struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{} // closed when the loop of the last start has ended; nil before a start
}

// StartLoop runs loop on a goroutine of its own, with a context that Stop
// cancels (and that ends with ctx). It reports whether it started it:
// while a loop runs, a second StartLoop does nothing. Once the loop has
// ended (stopped, or returned by itself), StartLoop starts it again.
func (b *Base) StartLoop(ctx context.Context, loop func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		select {
		case <-b.done:
		default:
			return false // running
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.cancel, b.done = cancel, done
	go func() {
		defer close(done)
		defer cancel()
		loop(ctx)
	}()
	return true
}

// Stop cancels the loop's context and waits for the loop to return. It
// does nothing when no loop was started, and returns at once when the
// loop has ended already. Several goroutines may call it together: each
// returns once the loop has ended.
func (b *Base) Stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
}

// closed is the done channel of a service that never started.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Done is closed when the loop of the last start has ended; for a service
// never started it is closed already.
func (b *Base) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done == nil {
		return closed
	}
	return b.done
}

// Running reports whether the loop runs now.
func (b *Base) Running() bool {
	select {
	case <-b.Done():
		return false
	default:
		return true
	}
}

// Group starts services in order and stops them in the reverse order,
// each fully before the next: a service may use those started before it
// for as long as it runs. The zero value is ready; Log may be nil.
type Group struct {
	Log *slog.Logger

	mu      sync.Mutex
	started []named
}

type named struct {
	name string
	svc  Service
}

// Start starts svc and adds it to the group under name. A service that
// fails to start is not added, and the error names it.
func (g *Group) Start(ctx context.Context, name string, svc Service) error {
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	g.mu.Lock()
	g.started = append(g.started, named{name, svc})
	g.mu.Unlock()
	g.log().Debug("service started", "service", name)
	return nil
}

// Stop stops every service started, the last started first, waiting for
// each; the group is then empty, so a second Stop does nothing.
func (g *Group) Stop() {
	g.mu.Lock()
	started := g.started
	g.started = nil
	g.mu.Unlock()
	for i := len(started) - 1; i >= 0; i-- {
		begin := time.Now()
		started[i].svc.Stop()
		g.log().Debug("service stopped", "service", started[i].name, "took", time.Since(begin).Round(time.Millisecond).String())
	}
}

// Names lists the services started and not yet stopped, in start order.
func (g *Group) Names() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]string, len(g.started))
	for i, n := range g.started {
		out[i] = n.name
	}
	return out
}

func (g *Group) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}
