package commands

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

func ev(id, typ string, extra func(*api.Event)) api.Event {
	e := api.Event{ID: id, Type: typ, Time: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	if extra != nil {
		extra(&e)
	}
	return e
}

// The tail first, then nothing more without --follow; the text line and
// the JSON line of an event.
func TestEventsTail(t *testing.T) {
	code := 3
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{
		api.MethodEventsList: func(p xmlrpc.Params) any {
			in, _ := p.Struct(0, "options")
			if n, _, _ := in.Int("tail"); n > 0 {
				return api.EventsResult{Last: "12", Events: []api.Event{
					ev("11", "job.submitted", func(e *api.Event) { e.JobID = "4" }),
					ev("12", "run.failed", func(e *api.Event) { e.JobID, e.RunID, e.Client, e.ExitCode = "4", "9", "web1", &code }),
				}}
			}
			return api.EventsResult{Last: "12", Events: []api.Event{}}
		},
	})
	out, errOut, rc := runFake(t, fake, "", "events", "--tail", "2", "--type", "job.*,run.failed")
	if rc != 0 {
		t.Fatalf("exit %d: %s", rc, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "12  ") || !strings.Contains(lines[1], "run.failed  job=4  run=9  client=web1  exit=3") {
		t.Fatalf("output:\n%s", out)
	}
	calls := fake.calls
	if len(calls) != 2 || !sameParams(t, calls[0].Params, map[string]any{"types": []string{"job.*", "run.failed"}, "tail": 2}) ||
		!sameParams(t, calls[1].Params, map[string]any{"since": "12", "types": []string{"job.*", "run.failed"}, "limit": 1000}) {
		t.Fatalf("calls %+v", calls)
	}

	out, _, rc = runFake(t, fake, "", "events", "--tail", "2", "-o", "json")
	if rc != 0 {
		t.Fatalf("exit %d", rc)
	}
	lines = strings.Split(strings.TrimSpace(out), "\n")
	var e api.Event
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &e) != nil || e.ID != "12" || e.Client != "web1" || *e.ExitCode != 3 {
		t.Fatalf("json lines:\n%s", out)
	}
	if _, errOut, rc := runFake(t, fake, "", "events", "--type", "Run.*"); rc != ExitUsage || !strings.Contains(errOut, "lower case") {
		t.Fatalf("upper case type: exit %d, %s", rc, errOut)
	}
}

// --since reads every page up to the newest; --follow goes on with
// waiting reads, from the id each read returns.
func TestEventsSinceAndFollow(t *testing.T) {
	var n atomic.Int32
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{
		api.MethodEventsList: func(p xmlrpc.Params) any {
			in, _ := p.Struct(0, "options")
			since, _, _ := in.String("since")
			switch n.Add(1) {
			case 1:
				if since != "5" {
					return &xmlrpc.Fault{Code: 400, Message: "since " + since}
				}
				return api.EventsResult{Last: "6", Events: []api.Event{ev("6", "client.accepted", func(e *api.Event) { e.Client = "web2" })}}
			case 2:
				if w, _, _ := in.Int("wait"); w != int64(eventsWait) || since != "6" {
					return &xmlrpc.Fault{Code: 400, Message: "second read"}
				}
				return api.EventsResult{Last: "6", Events: []api.Event{}}
			case 3:
				return api.EventsResult{Last: "7", Events: []api.Event{ev("7", "job.finished", func(e *api.Event) { e.JobID = "8" })}}
			}
			return &xmlrpc.Fault{Code: 500, Message: "the server went away"}
		},
	})
	out, errOut, rc := runFake(t, fake, "", "events", "--since", "5", "-f")
	if rc == 0 || !strings.Contains(errOut, "the server went away") {
		t.Fatalf("exit %d, %s", rc, errOut)
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "client=web2") || !strings.Contains(lines[1], "job.finished  job=8") {
		t.Fatalf("followed:\n%s", out)
	}
	if n.Load() != 4 {
		t.Fatalf("%d reads, want 4", n.Load())
	}
	// Without --follow, one read (fewer than a page) and done.
	n.Store(0)
	if _, errOut, rc := runFake(t, fake, "", "events", "--since", "5"); rc != 0 || n.Load() != 1 {
		t.Fatalf("exit %d after %d reads: %s", rc, n.Load(), errOut)
	}
}
