package api

import "time"

// Event is one state change (docs/events.md): what events.list returns,
// what `scirectl events -o json` prints, one per line, and the body a
// webhook receives. Members that do not apply to its type are absent.
type Event struct {
	ID       string    `xmlrpc:"id" json:"id"`
	Type     string    `xmlrpc:"type" json:"type"`
	Time     time.Time `xmlrpc:"time" json:"time"`
	JobID    string    `xmlrpc:"job_id,omitempty" json:"job_id,omitempty"`
	RunID    string    `xmlrpc:"run_id,omitempty" json:"run_id,omitempty"`
	ClientID string    `xmlrpc:"client_id,omitempty" json:"client_id,omitempty"`
	Client   string    `xmlrpc:"client,omitempty" json:"client,omitempty"` // its name
	Schedule string    `xmlrpc:"schedule,omitempty" json:"schedule,omitempty"`
	ExitCode *int      `xmlrpc:"exit_code,omitempty" json:"exit_code,omitempty"` // run.succeeded, run.failed
	// Reason is why a run ended as it did (denied, expired, cancelled,
	// skipped, requeued, lost) or why a job halted.
	Reason string `xmlrpc:"reason,omitempty" json:"reason,omitempty"`
	// Outcome is a schedule tick's: fired, skipped, denied, failed or run.
	Outcome string `xmlrpc:"outcome,omitempty" json:"outcome,omitempty"`
}

// EventsRequest is events.list's param.
type EventsRequest struct {
	// Since: only events with a greater id ("0": from the first).
	Since string `xmlrpc:"since,omitempty"`
	// Types are globs on the type ("run.*"); any matches. None: all.
	Types []string `xmlrpc:"types,omitempty"`
	// Tail, when positive, returns the last Tail events instead.
	Tail  int `xmlrpc:"tail,omitempty"`
	Limit int `xmlrpc:"limit,omitempty"` // default 100, at most 1000
	// Wait, in seconds (at most 30), holds the call until an event comes
	// when there is none yet: a follower's long poll.
	Wait int `xmlrpc:"wait,omitempty"`
}

// EventsResult is what events.list returns: the events and the id to ask
// after next (the last event's, or the newest there is when none matched:
// a follower never reads the same events twice).
type EventsResult struct {
	Events []Event `xmlrpc:"events" json:"events"`
	Last   string  `xmlrpc:"last" json:"last"`
}

// The event types (docs/events.md).
const (
	EventJobSubmitted     = "job.submitted"
	EventJobFinished      = "job.finished"
	EventJobHalted        = "job.halted"
	EventClientRegistered = "client.registered"
	EventClientAccepted   = "client.accepted"
	EventClientRejected   = "client.rejected"
	EventClientRevoked    = "client.revoked"
	EventScheduleTick     = "schedule.tick"
	// Run events are "run." and the state the run entered (run.sent,
	// run.succeeded, …), run.requeued when it went back to pending.
	EventRunPrefix = "run."
)
