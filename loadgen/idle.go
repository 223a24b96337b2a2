package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
)

// The idle mode: a fleet of agents with nothing to do, each doing what the
// reference agent (client/agent) does while it holds no run. Every cycle it
// calls agent.getJobs(max), which finds nothing, and schedules the next
// cycle PollInterval ±10% after the end of this one; after a failed getJobs
// it backs off 1s, 2s, 4s, … up to PollInterval, as the agent does. Every
// IdleHeartbeatEvery it calls agent.heartbeat too, first, in the same
// system.multicall request (an agent holding nothing has no cancel to
// learn; it heartbeats for the server's poll interval and clock). The
// agents' first cycles are spread evenly over one interval, and their last
// heartbeats over one IdleHeartbeatEvery before the window, as in a fleet
// started at random times and running for a while, rather than all
// arriving at once. The window opens after one interval of warm-up.

// idle runs the agents for Duration and measures the server meanwhile.
func (b *bench) idle(ctx context.Context) error {
	interval := b.o.PollInterval
	b.printf("idling for %s: %d agents, agent.getJobs(%d) every %s ±10%%, with agent.heartbeat in one system.multicall every %s",
		b.o.Duration, len(b.agents), b.o.Batch, interval, b.o.IdleHeartbeatEvery)
	if w := b.waitSeconds(); w > 0 {
		b.printf("daemon mode: between rounds each agent waits for work in agent.getJobs, %ds at a time", w)
	}
	cctx := b.countConns(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	n := int64(len(b.agents))
	now := time.Now()
	for i, a := range b.agents {
		first := time.Duration(int64(interval) * int64(i) / n)
		a.lastBeat = now.Add(-time.Duration(rand.Int64N(int64(b.o.IdleHeartbeatEvery))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.idleLoop(cctx, b, first, stop)
		}()
	}
	// The warm-up: one interval, in which every agent polls once, as in
	// a fleet that has been up for a while. The setup's registrations and
	// client.accept emptied the server's certificate cache (clientcache.go),
	// which a running fleet's polls do not find empty.
	b.printf("warming up for %s: every agent polls once, not measured", interval)
	warm := time.NewTimer(interval)
	select {
	case <-ctx.Done():
		warm.Stop()
		close(stop)
		wg.Wait()
		return fmt.Errorf("interrupted while warming up: %w", ctx.Err())
	case <-warm.C:
	}
	w := b.openWindow()
	b.measuring.Store(true)
	stopProgress := b.every(10*time.Second, func() {
		line := fmt.Sprintf("idle %s/%s: %d requests, %d errors", time.Since(w.start).Round(time.Second), b.o.Duration,
			b.requests.Load(), b.failures.Load())
		if w.haveSrv {
			if u, ok := b.t.meter.sample(); ok {
				line += fmt.Sprintf(", server CPU %.1f%% of one core, RSS %.0f MiB",
					100*(u.cpu-w.srv.cpu).Seconds()/time.Since(w.start).Seconds(), float64(u.rss)/(1<<20))
			}
		}
		b.printf("%s", line)
	})
	t := time.NewTimer(b.o.Duration)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	close(stop) // calls in flight finish; none starts
	wg.Wait()
	w.close()
	stopProgress()
	if err := ctx.Err(); err != nil {
		why := "interrupted"
		if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Sprintf("timed out after %s", b.o.Timeout)
		}
		return fmt.Errorf("%s after %s of the idle window", why, time.Since(w.start).Round(time.Second))
	}
	return nil
}

// idleLoop is one idle agent: its first cycle after first, then one every
// PollInterval ±10% until stop; in push mode (daemon mode) it waits for
// work in agent.getJobs instead, a cycle only when its heartbeat is due.
func (a *agent) idleLoop(ctx context.Context, b *bench, first time.Duration, stop <-chan struct{}) {
	if !a.idleWait(ctx, first, stop) {
		return
	}
	var backoff time.Duration
	for round := 0; ; round++ {
		if b.waitSeconds() > 0 && round > 0 && time.Since(a.lastBeat) < b.o.IdleHeartbeatEvery {
			// Daemon mode: as the reference agent, it waits for work in
			// agent.getJobs, and a wait that ends empty is its round's
			// poll; only the heartbeat, when due, makes a round of its
			// own (with its agent.getJobs, in one system.multicall).
			if !a.waitForWork(ctx, b, stop) {
				return
			}
			continue
		}
		next := jitter(b.o.PollInterval)
		if a.cycle(ctx, b) {
			backoff = 0
		} else {
			// The agent's backoff after a failed round (client/agent grow).
			backoff = min(max(2*backoff, time.Second), max(b.o.PollInterval, time.Second))
			next = jitter(backoff)
		}
		if b.waitSeconds() > 0 && backoff == 0 {
			continue // its wait is next
		}
		if !a.idleWait(ctx, next, stop) {
			return
		}
	}
}

// waitForWork is an idle daemon-mode agent's agent.getJobs with its wait
// (waitSeconds), ended early by stop; false when the window is over. The
// wait is counted as a call, not timed: its time is the wait's.
func (a *agent) waitForWork(ctx context.Context, b *bench, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
	}
	if b.measuring.Load() {
		a.calls[api.MethodGetJobs]++
		b.requests.Add(1)
	}
	var docs []string
	start := time.Now()
	err := a.getJobs(ctx, b, &docs, true, stop)
	select {
	case <-stop: // the wait was ended by it
		return false
	default:
	}
	switch {
	case ctx.Err() != nil:
		return false
	case err != nil:
		a.fail(api.MethodGetJobs, err)
		b.failures.Add(1)
		return a.idleWait(ctx, time.Second, stop) // the agent's first back-off step
	case len(docs) > 0:
		a.errs["agent.getJobs: unexpected job"] += int64(len(docs))
		b.failures.Add(int64(len(docs)))
	case time.Since(start) < time.Second:
		// Answered before its wait was over and empty: the window is
		// over, or the server is stopping.
		return a.idleWait(ctx, time.Second, stop)
	}
	return true
}

// idleWait sleeps d; false when the window is over.
func (a *agent) idleWait(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	select { // first: a select with a timer already fired picks at random
	case <-stop:
		return false
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	case <-a.wake: // push mode: agent.pollNow
		return true
	case <-t.C:
		return true
	}
}

// cycle is one idle round, one request: agent.getJobs, which finds
// nothing, alone or, every IdleHeartbeatEvery, after agent.heartbeat (whose
// failure the agent only logs) in one system.multicall. It returns whether
// the round (its getJobs) succeeded.
func (a *agent) cycle(ctx context.Context, b *bench) bool {
	var hb api.Heartbeat
	var docs []string
	beat := &client.Call{Method: api.MethodHeartbeat, Reply: &hb}
	get := &client.Call{Method: api.MethodGetJobs, Args: []any{b.o.Batch}, Reply: &docs}
	beats := time.Since(a.lastBeat) >= b.o.IdleHeartbeatEvery
	measured := b.measuring.Load() // not in the warm-up
	if measured {
		a.calls[get.Method]++
		b.requests.Add(1)
		if beats {
			a.calls[beat.Method]++
		}
	}
	t0 := time.Now()
	var err error
	if beats {
		err = a.c.Multicall(ctx, beat, get)
	} else {
		get.Err = a.c.Call(ctx, get.Method, get.Reply, get.Args...)
	}
	if measured {
		a.lat = append(a.lat, time.Since(t0))
	}
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		a.fail("system.multicall", err)
		b.failures.Add(1)
		return false
	}
	if beats {
		if beat.Err != nil {
			a.fail(beat.Method, beat.Err)
			b.failures.Add(1)
		} else {
			a.lastBeat = time.Now()
		}
	}
	if get.Err != nil {
		a.fail(get.Method, get.Err)
		b.failures.Add(1)
		return false
	}
	if len(docs) > 0 {
		// Nothing is submitted for the bench's agents; not acknowledged,
		// their lease hands them back.
		a.errs["agent.getJobs: unexpected job"] += int64(len(docs))
		b.failures.Add(int64(len(docs)))
		return true
	}
	if measured {
		a.empty++
	}
	return true
}

// jitter spreads d by ±10%, as the agent does.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// countConns returns ctx with a trace that counts the connections the
// agents open while measured (newConns): with each keeping its own alive,
// none. A count above zero is TLS handshakes paid on both sides.
func (b *bench) countConns(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if !i.Reused && b.measuring.Load() {
			b.newConns.Add(1)
		}
	}})
}
