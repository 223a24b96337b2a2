package storetest

// Schedules: the schedule rows, and one job per tick whoever asks.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

func newSchedule(name string) db.NewSchedule {
	return db.NewSchedule{Name: name, Owner: "alice", Cron: "@every 2s", Timezone: "UTC", CatchUp: "latest", Overlap: "skip",
		Job: []byte(`{"script":"uptime","targets":["web1"]}`), CreatedAt: t0}
}

func tickJob(c db.Client, name string) db.NewJob {
	return db.NewJob{Name: name, Interpreter: "/bin/sh", Script: "uptime", Permission: "run", SubmittedBy: "alice",
		ClientIDs: []int64{c.ID}, Targets: []string{c.Name}, CreatedAt: t0}
}

func tickAudit(what string) db.AuditEntry {
	return db.AuditEntry{At: t0, Actor: "alice", Name: "schedule.tick", Target: what, Outcome: "ok"}
}

func testSchedules(t *testing.T, s db.Store) {
	ctx := context.Background()
	sc := must(s.CreateSchedule(ctx, newSchedule("nightly")))(t)
	if sc.ID == 0 || !sc.Since.Equal(t0) || !sc.LastTick.IsZero() || sc.LastJobID != 0 {
		t.Fatalf("created %+v", sc)
	}
	_, err := s.CreateSchedule(ctx, newSchedule("nightly"))
	wantErr(t, "a taken name", err, db.ErrConflict)
	_, err = s.CreateSchedule(ctx, newSchedule("42"))
	wantErr(t, "a name of digits", err, db.ErrInvalid)
	must(s.CreateSchedule(ctx, newSchedule("hourly")))(t)
	got := must(s.Schedule(ctx, "nightly"))(t)
	if got.Owner != "alice" || got.Cron != "@every 2s" || got.CatchUp != "latest" || got.Overlap != "skip" ||
		string(got.Job) != `{"script":"uptime","targets":["web1"]}` || got.Paused || !got.CreatedAt.Equal(t0) {
		t.Fatalf("read back %+v", got)
	}
	if l := must(s.ListSchedules(ctx))(t); len(l) != 2 || l[0].Name != "hourly" || l[1].Name != "nightly" {
		t.Fatalf("list %+v", l)
	}
	_, err = s.Schedule(ctx, "nope")
	wantErr(t, "an unknown schedule", err, db.ErrNotFound)

	// Pause, resume: resuming moves Since.
	if ch := must(s.PauseSchedule(ctx, "nightly", true, t0.Add(time.Hour)))(t); !ch {
		t.Fatal("pause changed nothing")
	}
	if ch := must(s.PauseSchedule(ctx, "nightly", true, t0.Add(time.Hour)))(t); ch {
		t.Fatal("pausing a paused schedule changed it")
	}
	if g := must(s.Schedule(ctx, "nightly"))(t); !g.Paused || !g.Since.Equal(t0) {
		t.Fatalf("paused: %+v", g)
	}
	resumed := t0.Add(2 * time.Hour)
	if ch := must(s.PauseSchedule(ctx, "nightly", false, resumed))(t); !ch {
		t.Fatal("resume changed nothing")
	}
	if g := must(s.Schedule(ctx, "nightly"))(t); g.Paused || !g.Since.Equal(resumed) {
		t.Fatalf("resumed: %+v", g)
	}
	_, err = s.PauseSchedule(ctx, "nope", true, t0)
	wantErr(t, "pausing an unknown schedule", err, db.ErrNotFound)

	// Delete: the history goes, the jobs stay.
	c := mustClient(t, s, "web1", true)
	tick := t0.Add(10 * time.Second)
	j, fired := mustFire(t, s, db.NewTick{ScheduleID: sc.ID, Tick: tick, At: t0, Outcome: db.TickFired, By: "alice"}, c)
	if !fired {
		t.Fatal("first fire of a tick did not fire")
	}
	ok(t, s.DeleteSchedule(ctx, "nightly"))
	wantErr(t, "deleting it again", s.DeleteSchedule(ctx, "nightly"), db.ErrNotFound)
	must(s.Job(ctx, j.ID))(t)
	if h := must(s.ScheduleTicks(ctx, sc.ID, db.TickFilter{}))(t); len(h) != 0 {
		t.Fatalf("history of a deleted schedule: %+v", h)
	}
	// The name is free again, and the tick with it.
	sc2 := must(s.CreateSchedule(ctx, newSchedule("nightly")))(t)
	if _, fired := mustFire(t, s, db.NewTick{ScheduleID: sc2.ID, Tick: tick, At: t0, Outcome: db.TickFired, By: "alice"}, c); !fired {
		t.Fatal("a new schedule's tick did not fire")
	}
}

func mustFire(t *testing.T, s db.Store, tk db.NewTick, c db.Client) (db.Job, bool) {
	t.Helper()
	j, fired, err := s.FireTick(context.Background(), tk, tickJob(c, "tick"), tickAudit("tick"))
	if err != nil {
		t.Fatal(err)
	}
	return j, fired
}

// testScheduleTicks: a tick makes one job, however many ask at once; the
// ticks without a job are recorded once with their audit records; the
// history reads newest first, by pages.
func testScheduleTicks(t *testing.T, s db.Store) {
	ctx := context.Background()
	sc := must(s.CreateSchedule(ctx, newSchedule("every")))(t)
	c := mustClient(t, s, "web1", true)
	tick := t0.Add(2 * time.Second)
	jobsBefore := len(must(s.ListJobs(ctx, db.JobFilter{Limit: 1000}))(t))

	// 12 daemons' worth of callers fire the same tick at once.
	const callers = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []db.Job
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			j, fired, err := s.FireTick(ctx, db.NewTick{ScheduleID: sc.ID, Tick: tick, At: t0, Outcome: db.TickFired, By: "alice"},
				tickJob(c, "tick"), tickAudit("every"))
			if err != nil {
				errs <- err
				return
			}
			if fired {
				mu.Lock()
				won = append(won, j)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(won) != 1 {
		t.Fatalf("%d callers fired the tick, want 1", len(won))
	}
	jobs := must(s.ListJobs(ctx, db.JobFilter{Limit: 1000}))(t)
	if len(jobs) != jobsBefore+1 {
		t.Fatalf("%d jobs after the tick, want %d: a loser's job was kept", len(jobs), jobsBefore+1)
	}
	if n := len(must(s.Runs(ctx, won[0].ID))(t)); n != 1 {
		t.Fatalf("the tick's job has %d runs", n)
	}
	audits := must(s.ListOperations(ctx, db.AuditFilter{Name: "schedule.tick"}))(t)
	if len(audits) != 1 {
		t.Fatalf("%d audit records of the tick, want 1", len(audits))
	}
	got := must(s.Schedule(ctx, "every"))(t)
	if !got.LastTick.Equal(tick) || got.LastJobID != won[0].ID {
		t.Fatalf("after the tick: last tick %v, last job %d", got.LastTick, got.LastJobID)
	}

	// Ticks without a job, recorded once.
	skipped := []db.NewTick{
		{ScheduleID: sc.ID, Tick: t0.Add(4 * time.Second), At: t0, Outcome: db.TickSkipped, Reason: "previous job still has runs out", By: "alice"},
		{ScheduleID: sc.ID, Tick: t0.Add(6 * time.Second), At: t0, Outcome: db.TickDenied, Reason: "alice may not \"run\" on web1", By: "alice"},
	}
	audit := []db.AuditEntry{
		{At: t0, Actor: "alice", Name: "schedule.tick", Target: "every", Outcome: "skipped"},
		{At: t0, Actor: "alice", Name: "schedule.tick", Target: "every", Outcome: "denied"},
	}
	if n := must(s.RecordTicks(ctx, skipped, audit))(t); n != 2 {
		t.Fatalf("stored %d ticks, want 2", n)
	}
	if n := must(s.RecordTicks(ctx, skipped, audit))(t); n != 0 {
		t.Fatalf("stored %d ticks again, want 0", n)
	}
	if n := len(must(s.ListOperations(ctx, db.AuditFilter{Name: "schedule.tick"}))(t)); n != 3 {
		t.Fatalf("%d audit records, want 3: a tick recorded twice was audited twice", n)
	}
	_, err := s.RecordTicks(ctx, skipped, audit[:1])
	wantErr(t, "ticks without their audit records", err, db.ErrInvalid)
	// A tick already recorded without a job does not fire.
	if _, fired := mustFire(t, s, db.NewTick{ScheduleID: sc.ID, Tick: t0.Add(6 * time.Second), At: t0, Outcome: db.TickFired, By: "alice"}, c); fired {
		t.Fatal("a denied tick fired later")
	}
	// schedule.run: no tick, no key; twice is twice.
	for range 2 {
		if _, fired := mustFire(t, s, db.NewTick{ScheduleID: sc.ID, At: t0, Outcome: db.TickRun, By: "bob"}, c); !fired {
			t.Fatal("schedule.run did not fire")
		}
	}
	got = must(s.Schedule(ctx, "every"))(t)
	if !got.LastTick.Equal(t0.Add(6*time.Second)) || got.LastJobID == won[0].ID {
		t.Fatalf("after the runs: last tick %v, last job %d", got.LastTick, got.LastJobID)
	}
	h := must(s.ScheduleTicks(ctx, sc.ID, db.TickFilter{}))(t)
	if len(h) != 5 {
		t.Fatalf("history of %d, want 5: %+v", len(h), h)
	}
	if h[0].Outcome != db.TickRun || !h[0].Tick.IsZero() || h[0].By != "bob" || h[0].JobID != got.LastJobID {
		t.Fatalf("newest entry %+v", h[0])
	}
	if h[2].Outcome != db.TickDenied || h[2].Reason != "alice may not \"run\" on web1" || h[2].JobID != 0 || !h[2].Tick.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("denied entry %+v", h[2])
	}
	if h[4].Outcome != db.TickFired || h[4].JobID != won[0].ID || !h[4].At.Equal(t0) {
		t.Fatalf("oldest entry %+v", h[4])
	}
	page := must(s.ScheduleTicks(ctx, sc.ID, db.TickFilter{Limit: 2, BeforeID: h[1].ID}))(t)
	if len(page) != 2 || page[0].ID != h[2].ID || page[1].ID != h[3].ID {
		t.Fatalf("page %+v", page)
	}
	// A tick of another schedule is another key.
	other := must(s.CreateSchedule(ctx, newSchedule("other")))(t)
	if _, fired := mustFire(t, s, db.NewTick{ScheduleID: other.ID, Tick: tick, At: t0, Outcome: db.TickFired, By: "alice"}, c); !fired {
		t.Fatal("the same instant of another schedule did not fire")
	}
	// A tick whose job cannot be stored records nothing.
	gone := db.Client{ID: 999999, Name: "gone"}
	_, _, err = s.FireTick(ctx, db.NewTick{ScheduleID: sc.ID, Tick: t0.Add(8 * time.Second), At: t0, Outcome: db.TickFired, By: "alice"},
		tickJob(gone, "tick"), tickAudit("every"))
	wantErr(t, "a tick's job for a missing client", err, db.ErrNotFound)
	if g := must(s.Schedule(ctx, "every"))(t); !g.LastTick.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("a failed fire recorded its tick: last tick %v", g.LastTick)
	}
}

// testScheduleTicksPaused: a paused schedule's ticks are not recorded and
// make no job, though the caller read the schedule before the pause;
// schedule.run's entries are recorded all the same.
func testScheduleTicksPaused(t *testing.T, s db.Store) {
	ctx := context.Background()
	sc := must(s.CreateSchedule(ctx, newSchedule("paused")))(t) // read before the pause
	c := mustClient(t, s, "web1", true)
	must(s.PauseSchedule(ctx, "paused", true, t0.Add(time.Second)))(t)
	jobsBefore := len(must(s.ListJobs(ctx, db.JobFilter{Limit: 1000}))(t))
	tick := db.NewTick{ScheduleID: sc.ID, Tick: t0.Add(2 * time.Second), At: t0, Outcome: db.TickFired, By: "alice"}
	if _, fired := mustFire(t, s, tick, c); fired {
		t.Fatal("a tick of a paused schedule fired")
	}
	skipped := db.NewTick{ScheduleID: sc.ID, Tick: t0.Add(4 * time.Second), At: t0, Outcome: db.TickSkipped, By: "alice"}
	if n := must(s.RecordTicks(ctx, []db.NewTick{skipped}, []db.AuditEntry{tickAudit("paused")}))(t); n != 0 {
		t.Fatalf("recorded %d ticks of a paused schedule", n)
	}
	if n := len(must(s.ListJobs(ctx, db.JobFilter{Limit: 1000}))(t)); n != jobsBefore {
		t.Fatalf("%d jobs after a paused schedule's tick, want %d", n, jobsBefore)
	}
	if n := len(must(s.ListOperations(ctx, db.AuditFilter{Name: "schedule.tick"}))(t)); n != 0 {
		t.Fatalf("%d audit records of a paused schedule's ticks", n)
	}
	if _, fired := mustFire(t, s, db.NewTick{ScheduleID: sc.ID, At: t0, Outcome: db.TickRun, By: "bob"}, c); !fired {
		t.Fatal("schedule.run of a paused schedule did not fire")
	}
	must(s.PauseSchedule(ctx, "paused", false, t0.Add(time.Second)))(t)
	if _, fired := mustFire(t, s, tick, c); !fired {
		t.Fatal("the tick did not fire once the schedule was resumed")
	}
	if h := must(s.ScheduleTicks(ctx, sc.ID, db.TickFilter{}))(t); len(h) != 2 || h[0].Outcome != db.TickFired || h[1].Outcome != db.TickRun {
		t.Fatalf("history %+v; want the run, then the tick fired after the resume", h)
	}
}
