package db

import (
	"context"
	"time"
)

// EventStore reads the events (docs/events.md). The events themselves are
// written by the schema's triggers, in the transaction of each change.
type EventStore interface {
	// Events lists events oldest first: those after f.After, or the last
	// f.Tail of them.
	Events(ctx context.Context, f EventFilter) ([]Event, error)
	// LastEventID is the id of the newest event a reader can see; 0 when
	// there is none.
	LastEventID(ctx context.Context) (int64, error)
}

// EventFilter narrows Events.
type EventFilter struct {
	// After: only events with a greater id; Until, when positive, only
	// those up to it.
	After, Until int64
	// Types are globs on the event type ("run.*", "job.finished"); an
	// event matching any is listed. None: every type.
	Types []string
	// Tail, when positive, lists the last Tail events matching, whatever
	// After says.
	Tail  int
	Limit int // 0: driver default (100)
}

// Event is one state change.
type Event struct {
	ID         int64
	Type       string
	At         time.Time
	JobID      int64
	RunID      int64
	ClientID   int64
	Client     string // the client's name, "" when it has none or is gone
	ScheduleID int64
	Schedule   string // the schedule's name, "" when it is gone
	ExitCode   *int
	// Detail is the reason of a run's end or a halt, or a tick's outcome.
	Detail string
}
