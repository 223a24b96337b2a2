package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/db"
)

// schedHarness is a server with a daily schedule, whose ticks the test
// makes come by calling the scheduler with chosen times: the daemon's own
// loop, on the real clock, sees none of them due for a day.
type schedHarness struct {
	*harness
	admin *client.Client
	day0  time.Time // the first tick after the schedule was added: 03:00 UTC
}

func newSchedHarness(t *testing.T) *schedHarness {
	t.Helper()
	h := newHarness(t)
	return &schedHarness{harness: h, admin: h.operator(t)}
}

func (sh *schedHarness) add(t *testing.T, owner *client.Client, name string, m map[string]any) {
	t.Helper()
	req := map[string]any{"name": name, "cron": "0 3 * * *", "job": map[string]any{"script": "true", "targets": []string{"web1", "web2"}}}
	for k, v := range m {
		req[k] = v
	}
	var sc api.Schedule
	mustCall(t, owner, api.MethodScheduleAdd, &sc, req)
	sh.day0 = *sc.Next
}

// tick runs one scheduler pass at the n-th daily tick (from 0), plus d.
func (sh *schedHarness) tick(t *testing.T, n int, d time.Duration) {
	t.Helper()
	if _, err := sh.srv.schedules.RunOnce(context.Background(), sh.day0.AddDate(0, 0, n).Add(d)); err != nil {
		t.Fatal(err)
	}
}

func (sh *schedHarness) history(t *testing.T, name string) []api.ScheduleTick {
	t.Helper()
	var hist []api.ScheduleTick
	mustCall(t, sh.admin, api.MethodScheduleHistory, &hist, name)
	return hist
}

func outcomes(hist []api.ScheduleTick) string {
	var out []string
	for i := len(hist) - 1; i >= 0; i-- {
		out = append(out, hist[i].Outcome)
	}
	return strings.Join(out, " ")
}

// A tick fires once however often it is handled; --overlap skip passes
// over a tick while the previous job has runs out, and records why;
// --catch-up latest fires the latest tick missed and records the others
// as skipped, none skips them all.
func TestSchedulerTicks(t *testing.T) {
	sh := newSchedHarness(t)
	ag1, _ := sh.activeClient(t, sh.admin, "web1")
	sh.activeClient(t, sh.admin, "web2")
	sh.add(t, sh.admin, "nightly", nil)

	sh.tick(t, 0, -time.Second) // before the tick: nothing
	if h := sh.history(t, "nightly"); len(h) != 0 {
		t.Fatalf("history before the first tick: %+v", h)
	}
	sh.tick(t, 0, 0)
	sh.tick(t, 0, 0)
	sh.tick(t, 0, 30*time.Second)
	h := sh.history(t, "nightly")
	if outcomes(h) != "fired" || h[0].Tick == nil || !h[0].Tick.Equal(sh.day0) || h[0].By != "admin" {
		t.Fatalf("after the first tick: %+v", h)
	}
	var j api.Job
	mustCall(t, sh.admin, "job.get", &j, h[0].JobID)
	if j.SubmittedBy != "admin" || len(j.Runs) != 2 {
		t.Fatalf("the tick's job %+v", j)
	}
	// Its runs are pending, not out: the next tick fires.
	sh.tick(t, 1, 0)
	// Now one run of the day-1 job goes out: day 2 is skipped.
	if runs := getRuns(t, ag1, 10); len(runs) != 2 {
		t.Fatalf("web1 got %d runs, want 2", len(runs))
	}
	sh.tick(t, 2, 0)
	h = sh.history(t, "nightly")
	if outcomes(h) != "fired fired skipped" || !strings.Contains(h[0].Reason, "previous job "+h[1].JobID+" still has runs out") {
		t.Fatalf("overlap: %+v", h)
	}
	// Five days later (no daemon ran): one job for the latest tick, the
	// four before it skipped; the runs of day 1 are still out, but
	// --overlap allow does not care.
	var pr api.SchedulePauseResult
	mustCall(t, sh.admin, api.MethodScheduleRemove, nil, "nightly")
	sh.add(t, sh.admin, "nightly", map[string]any{"overlap": "allow"})
	sh.tick(t, 4, 10*time.Minute)
	h = sh.history(t, "nightly")
	if outcomes(h) != "skipped skipped skipped skipped fired" || !h[0].Tick.Equal(sh.day0.AddDate(0, 0, 4)) {
		t.Fatalf("catch-up latest: %s %+v", outcomes(h), h)
	}
	// --catch-up none: a tick 10 minutes late is not fired.
	sh.add(t, sh.admin, "strict", map[string]any{"catch_up": "none"})
	sh.tick(t, 0, 10*time.Minute)
	sh.tick(t, 1, 0)
	if o := outcomes(sh.history(t, "strict")); o != "skipped fired" {
		t.Fatalf("catch-up none: %s", o)
	}
	// Paused: no tick; resumed: counts from the resume, not before.
	mustCall(t, sh.admin, api.MethodSchedulePause, &pr, "strict")
	sh.tick(t, 2, 0)
	if o := outcomes(sh.history(t, "strict")); o != "skipped fired" {
		t.Fatalf("a paused schedule ticked: %s", o)
	}
	// The audit trail has every tick, as its owner.
	var audit []api.AuditEntry
	mustCall(t, sh.admin, "audit.list", &audit, map[string]any{"operation": "schedule.tick", "limit": 100})
	byOutcome := map[string]int{}
	for _, a := range audit {
		if a.Actor != "admin" {
			t.Fatalf("a tick audited as %q", a.Actor)
		}
		byOutcome[a.Outcome]++
	}
	if byOutcome["ok"] != 4 || byOutcome["skipped"] != 6 {
		t.Fatalf("audit of ticks: %v", byOutcome)
	}
}

// A tick the owner may no longer submit is recorded as denied, with the
// reason, audited, and the schedule goes on: the ACL, the blacklist, a
// deleted owner; a job refused for another reason is failed.
func TestSchedulerDenied(t *testing.T) {
	sh := newSchedHarness(t)
	sh.activeClient(t, sh.admin, "web1")
	sh.activeClient(t, sh.admin, "web2")
	bob, _ := sh.addUser(t, sh.admin, "bob")
	addRule(t, sh.admin, "user:bob", "schedule.write", "*", "allow")
	addRule(t, sh.admin, "user:bob", "schedule.read", "*", "allow")
	rule := addRule(t, sh.admin, "user:bob", "run", "*", "allow")
	sh.add(t, bob, "bobs", nil)
	sh.tick(t, 0, 0)
	mustCall(t, sh.admin, "acl.remove", nil, rule)
	sh.tick(t, 1, 0)
	sh.tick(t, 2, 0)
	h := sh.history(t, "bobs")
	if outcomes(h) != "fired denied denied" || !strings.Contains(h[0].Reason, "bob may not") || h[0].JobID != "" {
		t.Fatalf("after the rule went: %+v", h)
	}
	addRule(t, sh.admin, "user:bob", "run", "*", "allow")
	mustCall(t, sh.admin, "blacklist.add", nil, []string{"job.submit"})
	sh.tick(t, 3, 0)
	mustCall(t, sh.admin, "blacklist.remove", nil, []string{"job.submit"})
	sh.tick(t, 4, 0)
	h = sh.history(t, "bobs")
	if outcomes(h) != "fired denied denied denied fired" || !strings.Contains(h[1].Reason, "blacklisted") {
		t.Fatalf("blacklist: %+v", h)
	}
	// A machine gone: the job is refused, the tick failed.
	mustCall(t, sh.admin, "client.revoke", nil, []string{"web1"})
	mustCall(t, sh.admin, "client.revoke", nil, []string{"web2"})
	sh.tick(t, 5, 0)
	h = sh.history(t, "bobs")
	if h[0].Outcome != "failed" || !strings.Contains(h[0].Reason, "not active") {
		t.Fatalf("targets gone: %+v", h[0])
	}
	mustCall(t, sh.admin, "user.delete", nil, "bob")
	sh.tick(t, 6, 0)
	h = sh.history(t, "bobs")
	if h[0].Outcome != "denied" || !strings.Contains(h[0].Reason, `user "bob", no longer exists`) {
		t.Fatalf("owner gone: %+v", h[0])
	}
	var audit []api.AuditEntry
	mustCall(t, sh.admin, "audit.list", &audit, map[string]any{"operation": "schedule.tick", "outcome": "denied", "limit": 100})
	if len(audit) != 4 {
		t.Fatalf("%d denied ticks audited, want 4: %+v", len(audit), audit)
	}
	if !strings.Contains(sh.log.String(), "schedule tick without a job") {
		t.Fatal("no log line for the refused ticks")
	}
}

func (s *stubStore) ListSchedules(context.Context) ([]db.Schedule, error) {
	s.call("ListSchedules")
	return nil, nil
}

// The scheduler keeps the promises of every service; a pass reads the
// schedules, and Kick makes one at once.
func TestSchedulerLifecycle(t *testing.T) {
	st := newStubStore()
	sc := &scheduler{store: st, now: func() time.Time { return time.Now().UTC() }, interval: time.Hour, log: discardLog(), kick: make(chan struct{}, 1)}
	checkLifecycle(t, sc, st, "ListSchedules", nil) // the first pass comes at Start
	if err := sc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer sc.Stop()
	waitCall(t, st, "ListSchedules")
	sc.Kick()
	waitCall(t, st, "ListSchedules") // an hour before the timer's
}
