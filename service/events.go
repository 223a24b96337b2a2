package service

import (
	"context"
	"strconv"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
)

// Limits of an events read.
const (
	DefaultEvents   = 100
	MaxEvents       = 1000
	MaxEventGlobs   = 20
	maxEventGlobLen = 64
)

// EventQuery is a read of the events: after an id, or the last Tail; of
// the types Types (globs) match.
type EventQuery struct {
	After int64
	Types []string
	Tail  int
	Limit int
}

// Events reads events, and returns with them the id the next read goes
// on from: the last event's when the page is full, else the newest event
// there was when the read began, matching or not, so that a follower with
// a narrow filter does not scan the same events again. Events committed
// meanwhile have greater ids and come in the next read.
func (s *Service) Events(ctx context.Context, q EventQuery) ([]db.Event, int64, error) {
	if err := CheckEventTypes(q.Types); err != nil {
		return nil, 0, err
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultEvents
	case q.Limit < 1 || q.Limit > MaxEvents:
		return nil, 0, refuse(ErrInvalid, "limit: %d is outside 1..%d", q.Limit, MaxEvents)
	}
	if q.Tail < 0 || q.Tail > MaxEvents {
		return nil, 0, refuse(ErrInvalid, "tail: %d is outside 0..%d", q.Tail, MaxEvents)
	}
	if q.After < 0 {
		return nil, 0, refuse(ErrInvalid, "since: %d is negative", q.After)
	}
	newest, err := s.Store.LastEventID(ctx)
	if err != nil {
		return nil, 0, err
	}
	evs, err := s.Store.Events(ctx, db.EventFilter{After: q.After, Until: newest, Types: q.Types, Tail: q.Tail, Limit: q.Limit})
	if err != nil {
		return nil, 0, err
	}
	next := max(newest, q.After)
	if q.Tail == 0 && len(evs) == q.Limit {
		next = evs[len(evs)-1].ID
	}
	return evs, next, nil
}

// CheckEventTypes checks globs on event types: lower-case letters,
// digits, '.', '_', '-', '*' and '?', at most MaxEventGlobs of them.
func CheckEventTypes(globs []string) error { return checkEventGlobs("types", globs) }

// checkEventGlobs is CheckEventTypes for the member named member.
func checkEventGlobs(member string, globs []string) error {
	if len(globs) > MaxEventGlobs {
		return refuse(ErrInvalid, "%s: %d globs, at most %d", member, len(globs), MaxEventGlobs)
	}
	for _, g := range globs {
		if g == "" || len(g) > maxEventGlobLen {
			return refuse(ErrInvalid, "%s: %q: want 1..%d characters", member, g, maxEventGlobLen)
		}
		for _, r := range g {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' || r == '*' || r == '?') {
				return refuse(ErrInvalid, "%s: %q: %q is not allowed (event types are lower case, such as run.failed; * and ? are wildcards)", member, g, r)
			}
		}
	}
	return nil
}

// EventObject is an event as the API, the CLI's JSON and webhooks show it.
func EventObject(e db.Event) api.Event {
	id := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	out := api.Event{ID: id(e.ID), Type: e.Type, Time: e.At, JobID: id(e.JobID), RunID: id(e.RunID), ClientID: id(e.ClientID),
		Client: e.Client, Schedule: e.Schedule, ExitCode: e.ExitCode}
	if e.Type == api.EventScheduleTick {
		out.Outcome = e.Detail
	} else {
		out.Reason = e.Detail
	}
	return out
}
