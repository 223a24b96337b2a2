package server

import (
	"context"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/xmlrpc"
)

// PermEventsRead reads the events: every job's, run's and client's changes.
const PermEventsRead = "events.read"

// MaxEventWait bounds events.list's long poll.
const MaxEventWait = 30 * time.Second

func (s *Server) eventOperations() []Operation {
	return []Operation{
		{Name: api.MethodEventsList, Class: gate.NonModifier, gatesItself: true, caller: byOperator, Permission: PermEventsRead, handler: s.eventsList,
			Signature: []string{"struct", "struct"},
			Help: "Read the events (docs/events.md), oldest first. Optional param: struct {since (an event id: those after it; default 0), " +
				"types (array of globs on the type: run.*, job.finished), tail (the last N instead), limit (default 100, at most 1000), " +
				"wait (seconds, at most 30: when none is there yet, wait for one)}. Returns {events, last}: ask again with since = last. " +
				"A wait holds no place in the gate."},
	}
}

func (s *Server) eventsList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 1); err != nil {
		return nil, err
	}
	var q service.EventQuery
	var wait time.Duration
	if p.Has(0) {
		in, err := p.Struct(0, "options")
		if err != nil {
			return nil, err
		}
		if err := in.Unknown("since", "types", "tail", "limit", "wait"); err != nil {
			return nil, err
		}
		// since 0 is "from the first": what last says while there is
		// no event yet.
		if v, ok := in.Get("since"); ok && v != "0" && v != int64(0) {
			if q.After, _, err = in.ID("since"); err != nil {
				return nil, err
			}
		}
		if q.Types, _, err = in.StringSlice("types"); err != nil {
			return nil, err
		}
		var n int64
		if n, _, err = in.Int("tail"); err != nil {
			return nil, err
		}
		q.Tail = int(n)
		var given bool
		if n, given, err = in.Int("limit"); err != nil {
			return nil, err
		} else if given && n < 1 {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: limit: %d is outside 1..%d", api.MethodEventsList, n, service.MaxEvents)
		}
		q.Limit = int(n)
		if n, _, err = in.Int("wait"); err != nil {
			return nil, err
		}
		if n < 0 || time.Duration(n)*time.Second > MaxEventWait {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: wait: %d is outside 0..%d seconds", api.MethodEventsList, n, int(MaxEventWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(s.boundWait(wait))
	for {
		evs, next, err := s.readEvents(ctx, q)
		if err != nil {
			return nil, inMethod(api.MethodEventsList, err)
		}
		if len(evs) > 0 || q.Tail > 0 || !time.Now().Before(deadline) {
			out := api.EventsResult{Events: make([]api.Event, len(evs)), Last: strconv.FormatInt(next, 10)}
			for i, e := range evs {
				out.Events[i] = service.EventObject(e)
			}
			return out, nil
		}
		// Nothing yet: wait, outside the gate, for a newer event.
		q.After = next
		wctx, cancel := context.WithDeadline(ctx, deadline)
		again := s.yieldSlot()
		s.events.Wait(wctx, next)
		again()
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// readEvents is one read of events.list, inside the gate.
func (s *Server) readEvents(ctx context.Context, q service.EventQuery) ([]db.Event, int64, error) {
	t, err := s.enterAs(ctx, api.MethodEventsList)
	if err != nil {
		return nil, 0, err
	}
	defer t.Release()
	return s.svc.Events(t.Context(), q)
}
