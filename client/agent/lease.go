package agent

import (
	"context"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
)

// Held runs and the server's loss timer. The server declares a received run
// lost (failed, reason "lost") when nothing was heard of it for longer than
// its job's timeout plus the server's grace. A run acknowledged behind a long
// job waits in the queue for as long as that job runs, so the agent names
// the runs it holds — its queue: the runs waiting and the one running — in
// every agent.heartbeat, and the server restarts the loss timer of those
// still received (a running run's timer runs from its start report). While
// it holds runs the agent heartbeats at least every beatEveryMax between
// jobs and every keepAlive period while one runs, and more often when a held
// run's timeout is short: every third of the shortest timeout, at least
// minRenewEvery apart (renewEvery), so a held run is renewed three times
// within its timeout, well before timeout plus grace.
//
// The answer's lost list names the held runs the server declared lost all
// the same (the agent was cut off from the server for longer than that):
// they are stopped or dropped like cancelled runs (cancel.go), since the
// server keeps them failed and would refuse their results.
//
// A server older than the param answers fault 400 to a heartbeat that
// carries it; the agent then heartbeats without it from then on (the old
// loss rule applies: timeout plus grace from the ack).

// minRenewEvery bounds how often a run's short timeout makes the agent
// heartbeat.
const minRenewEvery = time.Second

// renewEvery is how often the held jobs need a heartbeat for their loss
// timers: a third of the shortest timeout, at least minRenewEvery; 0 when
// none has a timeout (nothing to renew).
func renewEvery(jobs []queuedJob) time.Duration {
	var shortest time.Duration
	for _, j := range jobs {
		if j.Timeout > 0 && (shortest == 0 || j.Timeout < shortest) {
			shortest = j.Timeout
		}
	}
	if shortest == 0 {
		return 0
	}
	return max(shortest/3, minRenewEvery)
}

// beatArgs is agent.heartbeat's param list naming the held runs, or none
// when there are none or the server refused the param.
func (a *agent) beatArgs(held []int64) []any {
	if len(held) == 0 || a.heldRefused.Load() {
		return nil
	}
	if len(held) > maxJobsPerCall {
		held = held[:maxJobsPerCall]
	}
	ids := make([]string, len(held))
	for i, id := range held {
		ids[i] = strconv.FormatInt(id, 10)
	}
	return []any{ids}
}

// callBeat calls agent.heartbeat naming the held runs. A server that
// refuses the param (fault 400: older than it) is asked again without it.
func (a *agent) callBeat(ctx context.Context, held []int64, hb *api.Heartbeat) error {
	args := a.beatArgs(held)
	err := a.rpc.Call(ctx, api.MethodHeartbeat, hb, args...)
	if len(args) > 0 && a.refusesHeld(err) {
		*hb = api.Heartbeat{}
		err = a.rpc.Call(ctx, api.MethodHeartbeat, hb)
	}
	return err
}

// refusesHeld says whether err, the outcome of a heartbeat that named held
// runs, is the refusal of an older server, and then stops naming them.
func (a *agent) refusesHeld(err error) bool {
	if api.FaultCode(err) != faultInvalid {
		return false
	}
	if !a.heldRefused.Swap(true) {
		a.log.Warn("the server does not take the held runs in agent.heartbeat (an older server); "+
			"runs waiting in the queue may be declared lost after their timeout", "err", err)
	}
	return true
}
