package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
)

// events.list over TLS: the events of a job's life, filters, the next id
// to ask after, the long poll (woken by a submit, which the wait does not
// hold up), faults and the permission.
func TestEventsList(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	var res api.EventsResult
	mustCall(t, admin, api.MethodEventsList, &res)
	if len(res.Events) != 2 || res.Events[0].Type != "client.registered" || res.Events[1].Type != "client.accepted" || res.Events[1].Client != "web1" {
		t.Fatalf("enrollment events %+v", res)
	}
	start := res.Last
	id := h.submit(t, map[string]any{"script": "exit 3", "targets": []string{"web1"}})
	runs := getRuns(t, ag, 1)
	reportRun(t, ag, runs[0], "failed")
	mustCall(t, admin, api.MethodEventsList, &res, map[string]any{"since": start})
	var types []string
	for _, e := range res.Events {
		types = append(types, e.Type)
		if e.JobID != id {
			t.Fatalf("event of another job: %+v", e)
		}
	}
	if want := "job.submitted run.sent run.received run.failed job.finished"; strings.Join(types, " ") != want {
		t.Fatalf("events %q, want %q", strings.Join(types, " "), want)
	}
	if f := res.Events[3]; f.RunID != itoa(runs[0]) || f.Client != "web1" || f.ExitCode == nil || *f.ExitCode != 1 {
		t.Fatalf("run.failed %+v", f)
	}
	// A narrow filter moves on over what it skips.
	var fin api.EventsResult
	mustCall(t, admin, api.MethodEventsList, &fin, map[string]any{"since": start, "types": []string{"job.fin*"}})
	if len(fin.Events) != 1 || fin.Last != res.Last {
		t.Fatalf("job.fin*: %+v (last %s, want %s)", fin, fin.Last, res.Last)
	}
	var tail api.EventsResult
	mustCall(t, admin, api.MethodEventsList, &tail, map[string]any{"tail": 2})
	if len(tail.Events) != 2 || tail.Events[1].Type != "job.finished" {
		t.Fatalf("tail %+v", tail)
	}

	// The long poll: nothing new, then a submit during the wait (not held
	// up by it) ends it with the new job's event.
	got := make(chan api.EventsResult, 1)
	errc := make(chan error, 1)
	go func() {
		var r api.EventsResult
		err := admin.Call(ctx, api.MethodEventsList, &r, map[string]any{"since": res.Last, "wait": 10})
		errc <- err
		got <- r
	}()
	time.Sleep(300 * time.Millisecond)
	began := time.Now()
	next := h.submit(t, map[string]any{"script": "true", "targets": []string{"web1"}})
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("a submit during a long poll took %v", d)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	r := <-got
	if len(r.Events) == 0 || r.Events[0].Type != "job.submitted" || r.Events[0].JobID != next {
		t.Fatalf("long poll: %+v", r)
	}
	// A wait that sees nothing returns empty, with the same last.
	began = time.Now()
	var empty api.EventsResult
	mustCall(t, admin, api.MethodEventsList, &empty, map[string]any{"since": tail.Last, "types": []string{"client.revoked"}, "wait": 1})
	if len(empty.Events) != 0 || time.Since(began) < 900*time.Millisecond {
		t.Fatalf("an empty wait: %+v after %v", empty, time.Since(began))
	}

	wantFaultText(t, admin.Call(ctx, api.MethodEventsList, nil, map[string]any{"types": []string{"Run.*"}}), 400, "types", "lower case")
	wantFaultText(t, admin.Call(ctx, api.MethodEventsList, nil, map[string]any{"wait": 31}), 400, "wait")
	wantFaultText(t, admin.Call(ctx, api.MethodEventsList, nil, map[string]any{"limit": 5000}), 400, "limit")
	wantFaultText(t, admin.Call(ctx, api.MethodEventsList, nil, map[string]any{"since": "x"}), 400, "since")
	wantFaultText(t, admin.Call(ctx, api.MethodEventsList, nil, map[string]any{"since": -1}), 400, "since")
	// since "0", what last is while there is no event yet: from the first.
	for _, zero := range []any{"0", 0} {
		var all api.EventsResult
		mustCall(t, admin, api.MethodEventsList, &all, map[string]any{"since": zero, "limit": 1})
		if len(all.Events) != 1 || all.Events[0].ID != "1" {
			t.Fatalf("since %#v: %+v", zero, all)
		}
	}
	bob, _ := h.addUser(t, admin, "bob")
	wantFault(t, bob.Call(ctx, api.MethodEventsList, nil), 403)
	addRule(t, admin, "user:bob", PermEventsRead, "*", "allow")
	mustCall(t, bob, api.MethodEventsList, &res)
}
