// Package runstate is the one place where the life of a run (one job on one
// client) is defined. Stores enforce transitions with the source-state sets
// returned here, so the rules of docs/protocol.md, "Run states" live in a single table instead of in
// every query that moves a run.
//
//	pending ──dispatch──▶ sent ──ack──▶ received ──start──▶ running ──▶ succeeded | failed
//	   │                   │ lease expires: back to pending (attempts+1), or failed at max_attempts
//	   ├──ACL refuses──▶ denied          any non-final state ──▶ cancelled (operator)
//	   ├──expires_at passes──▶ expired   received/running silent past timeout+grace ──▶ failed (lost)
//	   └──its job halts (rollout)──▶ skipped
//
// A rollout (docs/protocol.md, "Rollouts") halts a job when its failure
// budget is spent or a canary does not succeed: the job's runs still
// pending become skipped, a final state, and are never sent. Runs already
// out finish.
//
// The Lose rule: a run's loss timer starts at its last sign of life, the
// ack for a received run and the start report for a running one. An agent
// that still holds a received run (queued behind other jobs) renews it with
// each agent.heartbeat (the Renew event), so a run waiting in the queue of a
// live agent is never lost; a run whose agent falls silent is lost once
// timeout+grace have passed since its last sign of life. A running run is
// not renewed: the agent stops it at its timeout and reports it, and the
// grace covers that report.
package runstate

import (
	"fmt"
	"slices"
)

// State is the state of a run.
type State string

// The states of docs/protocol.md, "Run states".
const (
	Pending   State = "pending"
	Sent      State = "sent"
	Received  State = "received"
	Running   State = "running"
	Succeeded State = "succeeded"
	Failed    State = "failed"
	Denied    State = "denied"
	Expired   State = "expired"
	Cancelled State = "cancelled"
	Skipped   State = "skipped"
)

// All lists every state in lifecycle order; tables and metrics use it so a
// state added here shows up everywhere.
var All = []State{Pending, Sent, Received, Running, Succeeded, Failed, Denied, Expired, Cancelled, Skipped}

// Final reports whether no transition leaves s.
func (s State) Final() bool {
	switch s {
	case Succeeded, Failed, Denied, Expired, Cancelled, Skipped:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool { return slices.Contains(All, s) }

// Event is something that happens to a run.
type Event string

// Events that move runs. Report events carry the agent's view; the server's
// maintenance services produce the others.
const (
	Dispatch     Event = "dispatch"      // handed to the agent in getJobs
	Deny         Event = "deny"          // the ACL refused it at dispatch
	Ack          Event = "ack"           // agent acknowledged durable receipt
	Start        Event = "start"         // agent reports running
	Succeed      Event = "succeed"       // agent reports succeeded
	Fail         Event = "fail"          // agent reports failed
	LeaseExpired Event = "lease-expired" // sent but not acknowledged in time
	Lose         Event = "lose"          // received/running silent past timeout+grace
	Renew        Event = "renew"         // agent still holds a received run: its loss timer restarts
	Expire       Event = "expire"        // expires_at passed before dispatch
	Cancel       Event = "cancel"        // operator cancelled
	Skip         Event = "skip"          // its job halted (rollout) before it was sent
)

// transitions maps an event to the states it may start from and the state it
// leads to. LeaseExpired is special: it leads to Pending, or to Failed when
// the run has used its attempts; the store decides which with Requeue.
var transitions = map[Event]struct {
	from []State
	to   State
}{
	Dispatch: {[]State{Pending}, Sent},
	Deny:     {[]State{Pending}, Denied},
	// A report may overtake an ack whose reply was lost, so a sent run may
	// go straight to running or final. A run whose lease expired went back to
	// pending, but a run belongs to one client only: if that client reports
	// it, the work was done, and refusing the report would lose a result.
	// Report events from Pending carry a guard (neverSent): only a run that
	// was sent before (attempts > 0) may be reported from pending.
	Ack:          {[]State{Sent}, Received},
	Start:        {[]State{Pending, Sent, Received}, Running},
	Succeed:      {[]State{Pending, Sent, Received, Running}, Succeeded},
	Fail:         {[]State{Pending, Sent, Received, Running}, Failed},
	LeaseExpired: {[]State{Sent}, Pending},
	Lose:         {[]State{Received, Running}, Failed},
	Renew:        {[]State{Received}, Received},
	Expire:       {[]State{Pending}, Expired},
	Cancel:       {[]State{Pending, Sent, Received, Running}, Cancelled},
	Skip:         {[]State{Pending}, Skipped},
}

// From returns the states event ev may start from. Stores put them in the
// WHERE clause of the UPDATE that performs the transition, which makes the
// check and the change one atomic step.
func From(ev Event) []State {
	t, ok := transitions[ev]
	if !ok {
		panic(fmt.Sprintf("runstate: unknown event %q", ev))
	}
	return t.from
}

// Next returns the state ev leads to from s, or an error naming both when the
// transition is not allowed. It knows the state alone: for a report event
// from Pending, which also depends on whether the run was ever sent, use
// NextRun.
func Next(s State, ev Event) (State, error) {
	t, ok := transitions[ev]
	if !ok {
		return "", fmt.Errorf("unknown event %q", ev)
	}
	if !slices.Contains(t.from, s) {
		return "", &TransitionError{From: s, Event: ev}
	}
	return t.to, nil
}

// NeedsSent reports whether ev may leave s only for a run that was sent to
// its client at least once (attempts > 0). It holds for the agent's reports
// from Pending: a run whose lease expired went back to pending after it was
// sent, and its client's report is accepted (the work was done); a run never
// sent is not the agent's to report, since accepting it would skip
// not_before and turn the dispatch-time ACL check into a formality. Stores
// add the condition to the WHERE clause of the transition (db.StateIn).
func NeedsSent(s State, ev Event) bool {
	if s != Pending {
		return false
	}
	switch ev {
	case Start, Succeed, Fail:
		return true
	}
	return false
}

// NextRun is Next for a run that has been handed out attempts times: it
// also refuses the transitions NeedsSent reserves for runs sent before.
func NextRun(s State, attempts int, ev Event) (State, error) {
	to, err := Next(s, ev)
	if err != nil {
		return "", err
	}
	if attempts <= 0 && NeedsSent(s, ev) {
		return "", &TransitionError{From: s, Event: ev, NeverSent: true}
	}
	return to, nil
}

// ReportEvent maps an agent-reported state to its event.
func ReportEvent(reported State) (Event, error) {
	switch reported {
	case Running:
		return Start, nil
	case Succeeded:
		return Succeed, nil
	case Failed:
		return Fail, nil
	}
	return "", fmt.Errorf("state %q cannot be reported by an agent (want running, succeeded or failed)", reported)
}

// TransitionError says a run cannot take an event in its current state.
type TransitionError struct {
	From  State
	Event Event
	// NeverSent: the run is pending and was never sent (NeedsSent).
	NeverSent bool
}

func (e *TransitionError) Error() string {
	if e.NeverSent {
		return fmt.Sprintf("run is %s and was never sent: %s not allowed", e.From, e.Event)
	}
	return fmt.Sprintf("run is %s: %s not allowed", e.From, e.Event)
}

// Requeue decides where an expired lease leads: back to pending while the
// run has attempts left, else failed. maxAttempts <= 0 means unlimited.
func Requeue(attempts, maxAttempts int) State {
	if maxAttempts > 0 && attempts >= maxAttempts {
		return Failed
	}
	return Pending
}

// Out reports whether a run in state s is out with its agent: sent,
// received or running. A rollout's max-parallel limit counts these.
func (s State) Out() bool { return s == Sent || s == Received || s == Running }

// JobStatus derives a job's status from the states of its runs: the job is
// as far along as its least advanced run, and once all are final it is
// succeeded only if every run succeeded.
func JobStatus(counts map[State]int) string { return JobStatusAt(counts, 100) }

// JobStatusAt is JobStatus for a job whose success threshold is threshold
// percent of its runs (a rollout's --success-threshold; 100 or less than 1:
// all): once all runs are final, the job succeeded when at least that share
// of them did. Runs skipped by a halt count as not succeeded.
func JobStatusAt(counts map[State]int, threshold int) string {
	total, final := 0, 0
	for s, n := range counts {
		total += n
		if s.Final() {
			final += n
		}
	}
	if threshold < 1 || threshold > 100 {
		threshold = 100
	}
	switch {
	case total == 0:
		return "empty"
	case final < total:
		if counts[Pending] == total {
			return "pending"
		}
		return "running"
	case counts[Succeeded] == total:
		return "succeeded"
	case counts[Succeeded]*100 >= threshold*total:
		return "succeeded"
	case counts[Cancelled] == total:
		return "cancelled"
	default:
		return "failed"
	}
}
