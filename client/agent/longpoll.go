package agent

import (
	"context"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
)

// The long poll of daemon mode (docs/protocol.md, "Waiting for work").
//
// A daemon-mode agent with nothing to do does not sleep until its next
// poll: it holds an agent.getJobs open with a wait, on the connection it
// already has, and the server answers it the moment there is work for it
// — no agent.pollNow, so no connection from the daemon and no TLS
// handshake, which were most of a daemon's cost of a job sent to
// thousands of machines at once. A wait lasts until the next contact is
// due (the heartbeat, the safety-net poll), at most maxLongPoll.
//
// The agent.pollNow listener stays: a daemon the agent is not waiting on
// (several daemons share a database) still pushes it. A push cancels the
// wait (closing that connection) and the agent talks to the server at
// once. An older server refuses the wait's param; the agent then sleeps
// between polls as before, until it stops.

// maxLongPoll bounds one wait: the server's bound. The call itself may
// take that and a call timeout more (client.WithTimeout), so that a wait
// can span a whole default --interval of 30 s: an idle agent's one call a
// cycle, as a polling agent's.
const maxLongPoll = api.MaxJobWait

// idle spends the time d until the next contact: waiting in agent.getJobs
// when it can (daemon mode, active, with nothing to report or to
// acknowledge, room in the queue and at least a second to wait), else
// sleeping, or until a push in daemon mode. It returns ctx's error when
// ctx is done.
func (a *agent) idle(ctx context.Context, d time.Duration) error {
	if a.wake == nil || a.noWait || !a.active || a.backoff > 0 || d < time.Second ||
		a.store.outboxLen() > 0 || len(a.pendingAck) > 0 {
		return a.sleepOrWake(ctx, d)
	}
	queued, err := a.store.queuedRuns()
	if err != nil || len(queued) >= a.cfg.MaxJobs {
		return a.sleepOrWake(ctx, d)
	}
	return a.longPoll(ctx, min(d, maxLongPoll), a.cfg.MaxJobs-len(queued))
}

// longPoll is one agent.getJobs(room, wait). What it brings is queued and
// acknowledged, and the next contact made due at once (to run it, then
// report); a push ends the wait early, and so does the end of ctx. A
// failure is logged and the rest of the time slept: the next contact
// deals with the server as usual.
func (a *agent) longPoll(ctx context.Context, wait time.Duration, room int) error {
	start := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		docs []string
		err  error
	}
	res := make(chan answer, 1)
	go func() {
		var docs []string
		err := a.call(client.WithTimeout(pctx, wait+callTimeout), api.MethodGetJobs, &docs, room, int(wait/time.Second))
		res <- answer{docs, err}
	}()
	var r answer
	select {
	case r = <-res:
	case <-a.wake:
		cancel()
		r = <-res
		a.nextContact = time.Time{}
		a.log.Debug("pushed by the server while waiting in agent.getJobs: polling now")
	case <-ctx.Done():
		cancel()
		r = <-res
	}
	if r.err == nil {
		// Taken even when the wait was cancelled: a run the server sent
		// would otherwise wait for its lease to come back.
		n, err := a.take(r.docs)
		if err != nil {
			a.log.Warn("cannot queue every job the wait brought", "err", err)
		}
		if n > 0 || len(a.pendingAck) > 0 {
			a.nextContact = time.Time{}
			if err := a.ackPending(ctx); err != nil {
				a.log.Warn("acknowledging the jobs the wait brought failed; acknowledging them again at the next contact", "err", err)
			}
			return ctx.Err()
		}
		if pctx.Err() == nil {
			// Answered empty before the wait was over (a server stopping,
			// a run cancelled as it was woken): nothing is coming, so the
			// rest of the time is slept, not spent asking again at once.
			if err := a.sleepOrWake(ctx, wait-time.Since(start)); err != nil {
				return err
			}
			// Nothing came until the next contact, or near it (within the
			// interval's jitter): unless a heartbeat is due there, the
			// wait was that contact's poll, and asking again at once
			// would only repeat it.
			if !a.nextContact.IsZero() && time.Until(a.nextContact) < max(time.Second, a.interval/10) && !a.beatDue(false) {
				a.nextContact = time.Now().Add(jitter(a.interval))
			}
		}
		return ctx.Err()
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if pctx.Err() != nil { // cancelled by a push: talk now
		return nil
	}
	if api.RefusesExtraParam(r.err) {
		a.noWait = true
		a.log.Info("the server does not take agent.getJobs' wait (an older server): waiting for agent.pollNow between polls instead", "err", r.err)
	} else {
		a.log.Debug("waiting in agent.getJobs", "err", r.err)
	}
	return a.sleepOrWake(ctx, wait-time.Since(start))
}
