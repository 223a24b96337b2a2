package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/api"
	scclient "github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/pki"
)

// The schedule tests (SPEC §13) run `@every 2s` schedules in real time on
// real daemons, one on SQLite or two on one PostgreSQL database, with
// real agents running the jobs, and call the schedule methods over
// XML-RPC (the schedule CLI is not used). The real-time tests let a known
// number of ticks pass, pause the schedule between two ticks, and then
// hold the history to exact rules:
//
//   - an @every tick is k whole intervals after the second the schedule
//     was created in (package schedule's Due), so the ticks recorded are
//     created+2s, created+4s, … without a gap or a repeat, and as many as
//     passed before the pause;
//   - each entry obeys schedule.Due at the instant of the pass that
//     handled it (its "at", to the second): a tick fired was the latest due, so it was
//     handled in [tick, tick+2s); a tick skipped under --catch-up latest
//     had a later one due, so it was handled at tick+2s or later;
//   - each tick fired made one job, and job.list has no other; each tick
//     has one audit record, in the job's transaction.
//
// TestSchedulePauseBeatsTick forces the race of a pause with a tick, and
// TestSchedulePython (testdata/schedules.py) calls every method from
// Python's standard library.

// scheduleEvery is the interval of the tests' schedules.
const scheduleEvery = 2 * time.Second

// opClient is an operator (the admin) calling the daemons srvs, in
// failover order. It is a new connection: after a restart, make another.
func opClient(t *testing.T, srvs ...*testServer) *scclient.Client {
	t.Helper()
	pool, err := pki.CertPool(srvs[0].caFile())
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, s := range srvs {
		urls = append(urls, s.url)
	}
	c, err := scclient.New(scclient.Options{Servers: urls, RootCAs: pool, Token: srvs[0].token(t), Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rpc calls method and fails the test on an error.
func rpc(t *testing.T, c *scclient.Client, method string, reply any, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Call(ctx, method, reply, args...); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}

// addEverySchedule adds schedule name, `@every 2s` with --overlap allow
// (a slow run must not turn a tick into a skip), whose job runs script on
// targets, and checks what schedule.add returns.
func addEverySchedule(t *testing.T, c *scclient.Client, name, script string, targets []string) api.Schedule {
	t.Helper()
	var sc api.Schedule
	rpc(t, c, api.MethodScheduleAdd, &sc, map[string]any{"name": name, "cron": "@every 2s", "overlap": "allow",
		"job": map[string]any{"script": script, "targets": targets, "name": name + " job", "timeout": 60}})
	first := sc.CreatedAt.Truncate(time.Second).Add(scheduleEvery)
	if sc.Name != name || sc.Owner != "admin" || sc.CatchUp != "latest" || sc.Overlap != "allow" || sc.Paused ||
		sc.Next == nil || !sc.Next.Equal(first) || sc.LastTick != nil || sc.LastJobID != "" || sc.Job.Script != script {
		t.Fatalf("schedule.add = %+v; want %s, latest, allow, not paused, next %s (created %s + 2s)", sc, name,
			first.Format(time.RFC3339), sc.CreatedAt.Format(time.RFC3339))
	}
	return sc
}

// tickOf is the k-th tick (k ≥ 1) of an @every 2s schedule created at
// created: k intervals after created's second.
func tickOf(created time.Time, k int) time.Time {
	return created.Truncate(time.Second).Add(time.Duration(k) * scheduleEvery)
}

// nextTickAfter is the index of the first tick of the schedule created
// at created that is later than at.
func nextTickAfter(created, at time.Time) int {
	k := 1
	for !tickOf(created, k).After(at) {
		k++
	}
	return k
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// pauseAt pauses schedule name at the instant at (give or take the
// sleep), and returns when the call was made and when it returned.
func pauseAt(t *testing.T, c *scclient.Client, name string, at time.Time) (time.Time, time.Time) {
	t.Helper()
	sleepUntil(at)
	start := time.Now()
	var pr api.SchedulePauseResult
	rpc(t, c, api.MethodSchedulePause, &pr, name)
	end := time.Now()
	if pr.Name != name || !pr.Paused || !pr.Changed {
		t.Fatalf("schedule.pause = %+v; want paused, changed", pr)
	}
	return start, end
}

// afterPause waits until the first tick after the pause would have been
// handled: had the pause not held, the history would show it.
func afterPause(created, pauseEnd time.Time) {
	sleepUntil(tickOf(created, nextTickAfter(created, pauseEnd)).Add(time.Second))
}

// scheduleHistory is the schedule's whole history, newest first.
func scheduleHistory(t *testing.T, c *scclient.Client, name string) []api.ScheduleTick {
	t.Helper()
	var hist []api.ScheduleTick
	rpc(t, c, api.MethodScheduleHistory, &hist, name, map[string]any{"limit": 1000})
	return hist
}

// tickLag is how late a daemon may handle a tick and still be counted as
// on time: the scheduler wakes just after the tick's instant, but the
// machine may be busy.
const tickLag = 1500 * time.Millisecond

// checkTicks holds the history of an @every 2s schedule created at
// created and paused between pauseStart and pauseEnd to the rules above
// (skipped ticks only when allowSkipped, else every tick fired), and
// returns its entries oldest first.
func checkTicks(t *testing.T, hist []api.ScheduleTick, created, pauseStart, pauseEnd time.Time, allowSkipped bool) []api.ScheduleTick {
	t.Helper()
	ticks := slices.Clone(hist)
	for _, e := range ticks {
		if e.Tick == nil {
			t.Fatalf("history entry %+v has no tick; no schedule.run was made", e)
		}
	}
	slices.SortFunc(ticks, func(a, b api.ScheduleTick) int { return a.Tick.Compare(*b.Tick) })
	ids, jobs := map[string]bool{}, map[string]bool{}
	for i, e := range ticks {
		tick := *e.Tick
		if want := tickOf(created, i+1); !tick.Equal(want) {
			t.Fatalf("history entry %d (oldest first) is for tick %s, want %s (created %s + %d×2s): a tick missing, repeated or off the grid\n%s",
				i, tick.Format(time.RFC3339), want.Format(time.RFC3339), created.Format(time.RFC3339Nano), i+1, formatTicks(ticks))
		}
		if ids[e.ID] {
			t.Fatalf("history entry id %s twice:\n%s", e.ID, formatTicks(ticks))
		}
		ids[e.ID] = true
		if e.By != "admin" {
			t.Errorf("tick %s by %q, want admin (the owner)", tick.Format(time.RFC3339), e.By)
		}
		switch e.Outcome {
		case api.TickFired:
			// The latest tick due at the pass: handled in [tick, tick+2s).
			if e.At.Before(tick) || !e.At.Before(tick.Add(scheduleEvery)) {
				t.Errorf("tick %s fired at %s: not the latest tick due then", tick.Format(time.RFC3339), e.At.Format(time.RFC3339))
			}
			if e.JobID == "" || jobs[e.JobID] {
				t.Fatalf("tick %s fired with job %q: none, or another tick's:\n%s", tick.Format(time.RFC3339), e.JobID, formatTicks(ticks))
			}
			jobs[e.JobID] = true
		case api.TickSkipped:
			if !allowSkipped {
				t.Fatalf("tick %s was skipped (%s): a daemon ran all along, it should have fired\n%s",
					tick.Format(time.RFC3339), e.Reason, formatTicks(ticks))
			}
			// Passed over for a later tick due at the same pass.
			if e.At.Before(tick.Add(scheduleEvery)) || e.JobID != "" || !strings.Contains(e.Reason, "missed while no daemon ran") {
				t.Errorf("tick %s skipped at %s (job %q, %q): a tick is skipped only when a later one is due",
					tick.Format(time.RFC3339), e.At.Format(time.RFC3339), e.JobID, e.Reason)
			}
		default:
			t.Fatalf("tick %s: outcome %s (%s)", tick.Format(time.RFC3339), e.Outcome, e.Reason)
		}
	}
	// As many ticks as passed before the pause: the ticks a lagging
	// daemon had time to handle before it, at least, and none after it.
	lo, hi := nextTickAfter(created, pauseStart.Add(-tickLag))-1, nextTickAfter(created, pauseEnd)-1
	if n := len(ticks); n < lo || n > hi {
		t.Fatalf("%d ticks in the history; between the creation (%s) and the pause (%s–%s) %d to %d ticks passed\n%s",
			n, created.Format(time.RFC3339Nano), pauseStart.Format("15:04:05.000"), pauseEnd.Format("15:04:05.000"), lo, hi, formatTicks(ticks))
	}
	t.Logf("%d ticks, %d to %d expected from the times (created %s, paused %s)", len(ticks), lo, hi,
		created.Format("15:04:05.000"), pauseStart.Format("15:04:05.000"))
	return ticks
}

func formatTicks(ticks []api.ScheduleTick) string {
	var b strings.Builder
	for _, e := range ticks {
		tick := "-"
		if e.Tick != nil {
			tick = e.Tick.Format("15:04:05")
		}
		fmt.Fprintf(&b, "  id %s tick %s at %s %s job %s %s %s\n", e.ID, tick, e.At.Format("15:04:05"), e.Outcome, e.JobID, e.JobStatus, e.Reason)
	}
	return b.String()
}

// jobGaps shows, for each fired tick, its job id and how many job ids
// before it no job kept: on PostgreSQL, a job inserted and rolled back
// (the daemon that lost the race for the tick, or one killed before its
// commit) uses an id of the sequence all the same.
func jobGaps(ticks []api.ScheduleTick) string {
	var b strings.Builder
	prev := int64(0)
	for i, e := range ticks {
		if e.Outcome != api.TickFired {
			continue
		}
		id, _ := strconv.ParseInt(e.JobID, 10, 64)
		fmt.Fprintf(&b, " %d:%d", i+1, id)
		if prev > 0 && id-prev > 1 {
			fmt.Fprintf(&b, "(+%d)", id-prev-1)
		}
		prev = id
	}
	return strings.TrimSpace(b.String())
}

// jobID is the id of the job of a fired tick.
func jobID(t *testing.T, e api.ScheduleTick) int64 {
	t.Helper()
	id, err := strconv.ParseInt(e.JobID, 10, 64)
	if err != nil {
		t.Fatalf("tick %v: job id %q", e.Tick, e.JobID)
	}
	return id
}

// firedJobs are the job ids of the fired entries, oldest first.
func firedJobs(ticks []api.ScheduleTick) []string {
	var out []string
	for _, e := range ticks {
		if e.Outcome == api.TickFired {
			out = append(out, e.JobID)
		}
	}
	return out
}

// checkJobList checks that job.list holds exactly the jobs ids, each
// named jobName: no tick made a second job, rolled back or not.
func checkJobList(t *testing.T, c *scclient.Client, ids []string, jobName string) {
	t.Helper()
	var jobs []api.Job
	rpc(t, c, api.MethodJobList, &jobs, map[string]any{"limit": 1000})
	var listed []string
	for _, j := range jobs {
		listed = append(listed, j.ID)
		if j.Name != jobName || j.SubmittedBy != "admin" {
			t.Errorf("job %s is %q by %s, want %q by admin", j.ID, j.Name, j.SubmittedBy, jobName)
		}
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Fatalf("job.list has jobs %v; the fired ticks made %v", listed, want)
	}
}

// checkTickAudit checks that each history entry has exactly one
// schedule.tick audit record (ok for a fired tick, skipped for a skipped
// one) and that there are no others, and returns how many fired ticks
// each server recorded.
func checkTickAudit(t *testing.T, c *scclient.Client, name string, ticks []api.ScheduleTick) map[string]int {
	t.Helper()
	var audit []api.AuditEntry
	rpc(t, c, api.MethodAuditList, &audit, map[string]any{"operation": "schedule.tick", "limit": 1000})
	byTarget := map[string][]api.AuditEntry{}
	for _, a := range audit {
		byTarget[a.Target] = append(byTarget[a.Target], a)
	}
	fired := map[string]int{}
	for _, e := range ticks {
		target := fmt.Sprintf("schedule %s tick %s", name, e.Tick.UTC().Format(time.RFC3339))
		want := e.Outcome
		if want == api.TickFired {
			want = "ok"
		}
		as := byTarget[target]
		if len(as) != 1 || as[0].Outcome != want || as[0].Actor != "admin" {
			t.Fatalf("audit records of %q: %+v; want one, %s by admin", target, as, want)
		}
		if e.Outcome == api.TickFired {
			fired[as[0].ServerID]++
		}
	}
	if len(audit) != len(ticks) {
		t.Fatalf("%d schedule.tick audit records for %d ticks: %+v", len(audit), len(ticks), audit)
	}
	return fired
}

// waitJobsSucceeded waits until each job's runs, one per agent of names,
// succeeded.
func waitJobsSucceeded(t *testing.T, c *scclient.Client, ids []string, names []string) {
	t.Helper()
	for _, id := range ids {
		var j api.Job
		eventually(t, 30*time.Second, "job "+id+" to succeed", func() bool {
			rpc(t, c, api.MethodJobGet, &j, id)
			// The status, not the runs: job.get reads the counts and the
			// runs one after the other, and a report may land between.
			return j.Status != "pending" && j.Status != "running"
		})
		var clients []string
		for _, r := range j.Runs {
			clients = append(clients, r.Client)
			if r.State != "succeeded" || r.ExitCode == nil || *r.ExitCode != 0 || r.Attempts != 1 {
				t.Errorf("job %s: run %+v; want succeeded, exit 0, after 1 attempt", id, r)
			}
		}
		slices.Sort(clients)
		if j.Status != "succeeded" || !slices.Equal(clients, names) {
			t.Fatalf("job %s is %s with runs on %v; want succeeded on %v", id, j.Status, clients, names)
		}
	}
}

// checkScheduleAfter checks what schedule.get shows of a paused schedule
// whose latest entry is last.
func checkScheduleAfter(t *testing.T, c *scclient.Client, name string, last api.ScheduleTick, status string) {
	t.Helper()
	var sc api.Schedule
	rpc(t, c, api.MethodScheduleGet, &sc, name)
	if !sc.Paused || sc.Next != nil || sc.LastTick == nil || !sc.LastTick.Equal(*last.Tick) || sc.LastJobID != last.JobID ||
		(status != "" && sc.LastJobStatus != status) {
		t.Fatalf("schedule.get = %+v; want paused, no next, last tick %s, last job %s %s", sc, last.Tick.Format(time.RFC3339), last.JobID, status)
	}
}

// TestScheduleRealTime: one daemon (SQLite) and two real agents; an
// `@every 2s` schedule runs for five ticks and is paused between the
// fifth and the sixth. The history holds exactly the ticks created+2s … created+10s
// (computed from the actual times of the creation and the pause), each
// fired once with its own job; job.list has those jobs and no other;
// each ran on both agents and succeeded; nothing fired after the pause.
func TestScheduleRealTime(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, fleetNames("sched", 2), nil)
	startFleet(t, srv, agents)
	names := []string{agents[0].name, agents[1].name}
	op := opClient(t, srv)

	const name = "realtime"
	sc := addEverySchedule(t, op, name, "echo tick", names)
	created := sc.CreatedAt
	pauseStart, pauseEnd := pauseAt(t, op, name, tickOf(created, 5).Add(1600*time.Millisecond))

	hist := scheduleHistory(t, op, name)
	waitJobsSucceeded(t, op, firedJobs(checkTicks(t, hist, created, pauseStart, pauseEnd, false)), names)
	// A tick after the pause would have fired by now.
	afterPause(created, pauseEnd)
	ticks := checkTicks(t, scheduleHistory(t, op, name), created, pauseStart, pauseEnd, false)
	if len(ticks) != len(hist) {
		t.Fatalf("%d ticks after the pause, %d at it", len(ticks), len(hist))
	}
	for _, e := range ticks {
		if e.JobStatus != "succeeded" {
			t.Errorf("tick %s: job %s is %q in the history, want succeeded", e.Tick.Format(time.RFC3339), e.JobID, e.JobStatus)
		}
	}
	jobs := firedJobs(ticks)
	checkJobList(t, op, jobs, name+" job")
	checkTickAudit(t, op, name, ticks)
	checkScheduleAfter(t, op, name, ticks[len(ticks)-1], "succeeded")
	t.Logf("%d jobs, %d runs succeeded; done in %v", len(jobs), 2*len(jobs), time.Since(began).Round(time.Millisecond))
}

// countTickLogs counts the "schedule tick" lines of schedule name in a
// daemon's log: the ticks it fired.
func countTickLogs(log, name string) int {
	return strings.Count(log, `msg="schedule tick" schedule=`+name+" ")
}

// loggedFired says whether a daemon's log says it fired schedule name's
// tick.
func loggedFired(log, name string, tick time.Time) bool {
	return strings.Contains(log, `msg="schedule tick" schedule=`+name+" tick="+tick.UTC().Format("2006-01-02T15:04:05"))
}

// TestScheduleTwoDaemonsPostgres: two daemons on one PostgreSQL database,
// both running their schedulers, both waking at every tick; an `@every 2s`
// schedule added through daemon A, paused through daemon B after five
// ticks. Every tick is in the history once, with no gap; each made one
// job (job.list has no other: a daemon that lost the race rolled its job
// back, and the ids it used show that there were races); one audit record
// each; the two daemons' logs of fired ticks add up to the ticks.
func TestScheduleTwoDaemonsPostgres(t *testing.T) {
	began := time.Now()
	url := pgtest.Start(t)
	dir := t.TempDir()
	daemons := startPGCluster(t, url, dir, 2, "")
	a, b := daemons[0], daemons[1]
	agents := newFleet(a, dir, []string{a.url, b.url}, []string{"pg-sched"}, nil)
	startFleet(t, a, agents)
	opA, opB := opClient(t, a), opClient(t, b)

	const name = "two-daemons"
	sc := addEverySchedule(t, opA, name, "echo tick", []string{"pg-sched"})
	created := sc.CreatedAt
	pauseStart, pauseEnd := pauseAt(t, opB, name, tickOf(created, 5).Add(1600*time.Millisecond))
	afterPause(created, pauseEnd)

	ticks := checkTicks(t, scheduleHistory(t, opB, name), created, pauseStart, pauseEnd, false)
	if other := scheduleHistory(t, opA, name); len(other) != len(ticks) {
		t.Fatalf("daemon A shows %d entries, daemon B %d", len(other), len(ticks))
	}
	jobs := firedJobs(ticks)
	checkJobList(t, opA, jobs, name+" job")
	byServer := checkTickAudit(t, opB, name, ticks)
	logA, logB := countTickLogs(a.log.String(), name), countTickLogs(b.log.String(), name)
	if logA+logB != len(ticks) {
		t.Fatalf("daemon A logged %d ticks fired, daemon B %d; %d ticks", logA, logB, len(ticks))
	}
	// Both schedulers handled the ticks: each fired some, or the loser of
	// a tick inserted its job before finding the tick taken, and rolled it
	// back, leaving a job id unused (both wake 5 ms after a tick, and the
	// winner takes tens of ms to commit).
	if first, last := jobID(t, ticks[0]), jobID(t, ticks[len(ticks)-1]); (logA == 0 || logB == 0) && last-first+1 == int64(len(jobs)) {
		t.Fatalf("one daemon fired every tick, and job ids %d…%d have no gap: the other never raced for a tick; are both schedulers running?",
			first, last)
	}
	waitJobsSucceeded(t, opB, jobs, []string{"pg-sched"})
	checkScheduleAfter(t, opA, name, ticks[len(ticks)-1], "succeeded")
	t.Logf("ticks fired by daemon A: %d, by B: %d (audit by server id: %v); tick:job id (+ids rolled back before it): %s; done in %v",
		logA, logB, byServer, jobGaps(ticks), time.Since(began).Round(time.Millisecond))
}

// servingID is the server id a daemon's log gave when it started.
var servingID = regexp.MustCompile(`msg=serving .*server_id=(\d+)`)

func serverIDOf(t *testing.T, s *testServer) string {
	t.Helper()
	m := servingID.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no server_id in the serving line:\n%s", s.log.String())
	}
	return m[1]
}

// signal sends sig to a daemon.
func signal(t *testing.T, s *testServer, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// How daemon A of TestScheduleDaemonKilledAtTickPostgres is killed.
const (
	killBRuns   = iota // at an offset from a tick, daemon B running
	killBStops         // at an offset from a tick, B stopped
	killInTheTx        // B stopped, A blocked inserting its tick, its job inserted
)

// TestScheduleDaemonKilledAtTickPostgres: two daemons on one PostgreSQL
// database, an `@every 2s` schedule; daemon A is killed with SIGKILL at or
// near a tick, and restarted, seven times:
//
//   - while daemon B runs on, 50 ms before a tick, at it, and 20 ms after
//     it (both wake 5 ms after a tick and race for it);
//   - with B stopped (SIGSTOP) from 300 ms before the tick until A is
//     dead, 10 and 40 ms after it: A alone handles the tick, and the kill
//     lands in its pass, before its commit or after it;
//   - twice with B stopped and the test holding a lock on schedule_ticks
//     that makes A's pass wait at the insert of its tick, its job and audit
//     record already inserted: A dies inside the transaction of its tick
//     (PostgreSQL then finishes the insert for the dead session when the
//     lock goes, and rolls it back on finding the client gone, while B,
//     continued, inserts the same tick).
//
// Every tick from the first to the last is in the history once, fired,
// with one job each and no other job: what A had not committed was rolled
// back, and what it had, B did not make again. A tick A logged it fired
// before it died is A's; a tick A died in the transaction of is B's, and
// A's job for it used a job id that no job has.
func TestScheduleDaemonKilledAtTickPostgres(t *testing.T) {
	began := time.Now()
	url := pgtest.Start(t)
	ctx := context.Background()
	pg, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dir := t.TempDir()
	daemons := startPGCluster(t, url, dir, 2, "")
	a, b := daemons[0], daemons[1]
	idB := serverIDOf(t, b)
	agents := newFleet(b, dir, []string{b.url}, []string{"pg-kill"}, nil)
	startFleet(t, b, agents)
	// The agent waits out the kills: B is to hold no lock when it stops.
	agents[0].proc.stop(t)
	op := opClient(t, b)

	// stopB stops B, at a moment it holds no cluster lock nor transaction
	// that A's pass could wait for.
	stopB := func() {
		t.Helper()
		for deadline := time.Now().Add(time.Second); ; {
			signal(t, b, syscall.SIGSTOP)
			var n int
			if err := pg.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') +
				(SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid())`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			signal(t, b, syscall.SIGCONT)
			if time.Now().After(deadline) {
				t.Fatal("daemon B or A held a cluster lock or a transaction for a second")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	const name = "killed"
	sc := addEverySchedule(t, op, name, "echo tick", []string{"pg-kill"})
	created := sc.CreatedAt
	type kill struct {
		tick   int
		how    int
		id     string // A's server id
		logged bool   // A logged the tick fired before it died
	}
	var kills []kill
	for _, c := range []struct {
		how int
		off time.Duration
	}{{killBRuns, -50 * time.Millisecond}, {killBRuns, 0}, {killBRuns, 20 * time.Millisecond},
		{killBStops, 10 * time.Millisecond}, {killBStops, 40 * time.Millisecond}, {killInTheTx, 0}, {killInTheTx, 0}} {
		// The first tick far enough ahead to be aimed at.
		k := nextTickAfter(created, time.Now().Add(400*time.Millisecond))
		tick := tickOf(created, k)
		var at time.Time
		switch c.how {
		case killBRuns:
			sleepUntil(tick.Add(c.off))
			at = time.Now()
			killNine(t, a.proc)
		case killBStops:
			sleepUntil(tick.Add(-300 * time.Millisecond))
			stopB()
			sleepUntil(tick.Add(c.off))
			at = time.Now()
			killNine(t, a.proc)
			signal(t, b, syscall.SIGCONT)
		case killInTheTx:
			sleepUntil(tick.Add(-300 * time.Millisecond))
			stopB()
			tx, err := pg.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `LOCK TABLE schedule_ticks IN SHARE MODE`); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "daemon A to wait at the insert of its tick", func() bool {
				var n int
				if err := pg.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()
					AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO schedule_ticks%'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n == 1
			})
			at = time.Now()
			killNine(t, a.proc)
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			signal(t, b, syscall.SIGCONT)
		}
		kl := kill{tick: k, how: c.how, id: serverIDOf(t, a), logged: loggedFired(a.log.String(), name, tick)}
		kills = append(kills, kl)
		a = startPGServer(t, url, a.dataDir, a.addr)
		t.Logf("daemon A (server %s) killed %v from tick %d (%s); it had logged the tick fired: %v; back in %v", kl.id,
			at.Sub(tick).Round(time.Millisecond), k, [...]string{"B runs", "B stopped", "in its tick's transaction, B stopped"}[c.how],
			kl.logged, time.Since(at).Round(time.Millisecond))
		if c.how == killInTheTx && kl.logged {
			t.Fatalf("daemon A logged tick %d fired while it waited to insert it", k)
		}
	}
	// One more tick with both daemons up.
	k := nextTickAfter(created, time.Now().Add(300*time.Millisecond))
	pauseStart, pauseEnd := pauseAt(t, op, name, tickOf(created, k).Add(1600*time.Millisecond))
	afterPause(created, pauseEnd)

	ticks := checkTicks(t, scheduleHistory(t, op, name), created, pauseStart, pauseEnd, false)
	jobs := firedJobs(ticks)
	checkJobList(t, op, jobs, name+" job")
	byServer := checkTickAudit(t, op, name, ticks)
	var audit []api.AuditEntry
	rpc(t, op, api.MethodAuditList, &audit, map[string]any{"operation": "schedule.tick", "outcome": "ok", "limit": 1000})
	firedBy := map[string]string{}
	for _, e := range audit {
		firedBy[e.Target] = e.ServerID
	}
	jobOf := func(k int) int64 { return jobID(t, ticks[k-1]) }
	byA, byB := 0, 0
	for _, kl := range kills {
		by := firedBy[fmt.Sprintf("schedule %s tick %s", name, tickOf(created, kl.tick).Format(time.RFC3339))]
		switch {
		case kl.how == killInTheTx:
			if by != idB {
				t.Errorf("tick %d: daemon A died in its transaction, yet server %s recorded it, not B (%s)", kl.tick, by, idB)
			}
			// The ids of the jobs of the ticks before and of this one
			// leave out the id of A's job, rolled back.
			if kl.tick > 1 && jobOf(kl.tick)-jobOf(kl.tick-1) < 2 {
				t.Errorf("tick %d: job %d right after tick %d's job %d: daemon A's job for it was never inserted", kl.tick,
					jobOf(kl.tick), kl.tick-1, jobOf(kl.tick-1))
			}
			byB++
		case by == kl.id:
			byA++
		case kl.logged:
			t.Errorf("tick %d: the killed daemon A (server %s) logged it fired, but server %s recorded it", kl.tick, kl.id, by)
		case kl.how == killBStops:
			byB++
		}
	}
	agents[0].start(t)
	waitJobsSucceeded(t, op, jobs, []string{"pg-kill"})
	checkScheduleAfter(t, op, name, ticks[len(ticks)-1], "succeeded")
	t.Logf("ticks at a kill fired by the killed daemon before it died: %d; by B after A died in its pass or transaction: %d; "+
		"fired by server id: %v; tick:job id (+ids rolled back before it): %s; done in %v", byA, byB, byServer, jobGaps(ticks),
		time.Since(began).Round(time.Millisecond))
}

// TestScheduleDaemonKilledAtTickSQLite: the only daemon (SQLite) is killed
// with SIGKILL at a tick's instant twice: restarted at once the first
// time, after 2.5 s the second, so that the next tick passes while no
// daemon runs. With --catch-up latest the tick missed is fired once after
// the restart — or, had a later one come before the restarted daemon's
// first pass, skipped for it, as schedule.Due says — and never twice; the
// tick at the kill was fired before it or is handled after the restart.
func TestScheduleDaemonKilledAtTickSQLite(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	addr := freeLoopbackAddr(t)
	srv := startServerAt(t, dataDir, addr)
	agents := newFleet(srv, dir, nil, []string{"lite-kill"}, nil)
	startFleet(t, srv, agents)
	op := opClient(t, srv)

	const name = "killed-lite"
	sc := addEverySchedule(t, op, name, "echo tick", []string{"lite-kill"})
	created := sc.CreatedAt

	// At a tick, back at once.
	k1 := nextTickAfter(created, time.Now().Add(300*time.Millisecond))
	sleepUntil(tickOf(created, k1))
	killNine(t, srv.proc)
	killed1 := time.Now()
	firedBefore1 := loggedFired(srv.log.String(), name, tickOf(created, k1))
	srv = startServerAt(t, dataDir, addr)
	back1 := time.Now()
	t.Logf("killed at tick %d +%v (it had logged it fired: %v); back in %v", k1, killed1.Sub(tickOf(created, k1)).Round(time.Millisecond),
		firedBefore1, back1.Sub(killed1).Round(time.Millisecond))

	// The tick at the kill fired once: before it, or after the restart
	// (or, had the restart taken past the next tick, skipped for it).
	k1Fired := back1.Add(500 * time.Millisecond).Before(tickOf(created, k1+1))

	// At a tick, down for 2.5 s: tick k2+1 passes while no daemon runs.
	k2 := nextTickAfter(created, time.Now().Add(300*time.Millisecond))
	sleepUntil(tickOf(created, k2))
	killNine(t, srv.proc)
	killed2 := time.Now()
	firedBefore2 := loggedFired(srv.log.String(), name, tickOf(created, k2))
	sleepUntil(tickOf(created, k2).Add(2500 * time.Millisecond))
	restart2 := time.Now()
	srv = startServerAt(t, dataDir, addr)
	back2 := time.Now()
	t.Logf("killed at tick %d +%v (it had logged it fired: %v); restarted %v later, up in %v", k2, killed2.Sub(tickOf(created, k2)).Round(time.Millisecond),
		firedBefore2, restart2.Sub(killed2).Round(time.Millisecond), back2.Sub(restart2).Round(time.Millisecond))

	op = opClient(t, srv)
	k := nextTickAfter(created, time.Now().Add(300*time.Millisecond))
	pauseStart, pauseEnd := pauseAt(t, op, name, tickOf(created, k).Add(1600*time.Millisecond))
	afterPause(created, pauseEnd)

	ticks := checkTicks(t, scheduleHistory(t, op, name), created, pauseStart, pauseEnd, true)
	t.Logf("history:\n%s", formatTicks(ticks))
	entry := func(k int) api.ScheduleTick { return ticks[k-1] }
	if e := entry(k1); k1Fired && e.Outcome != api.TickFired {
		t.Errorf("tick %d (the first kill's) was %s; the daemon was back long before the next tick", k1, e.Outcome)
	} else if e.Outcome == api.TickFired && firedBefore1 && !e.At.Before(killed1) {
		t.Errorf("tick %d was logged fired before the kill at %s, but recorded at %s", k1, killed1.Format("15:04:05.000"), e.At.Format(time.RFC3339))
	}
	// The tick at the second kill: fired before it, or handled after the
	// restart, where a later tick was due: skipped.
	if e := entry(k2); e.Outcome == api.TickFired && !e.At.Before(killed2) {
		t.Errorf("tick %d (the kill's) fired at %s, after the kill at %s: tick %d was due then", k2, e.At.Format(time.RFC3339),
			killed2.Format("15:04:05.000"), k2+1)
	}
	// The tick missed while no daemon ran, handled by the restarted one:
	// fired, or skipped if a later one came before its first pass.
	if e := entry(k2 + 1); e.At.Before(restart2.Truncate(time.Second)) {
		t.Errorf("tick %d, missed while no daemon ran, was handled at %s, before the restart at %s", k2+1, e.At.Format(time.RFC3339),
			restart2.Format("15:04:05.000"))
	} else if e.Outcome != api.TickFired && back2.Add(500*time.Millisecond).Before(tickOf(created, k2+2)) {
		// Its first pass comes before it serves.
		t.Errorf("tick %d, missed while no daemon ran, was %s although the daemon was back before tick %d", k2+1, e.Outcome, k2+2)
	}
	jobs := firedJobs(ticks)
	checkJobList(t, op, jobs, name+" job")
	checkTickAudit(t, op, name, ticks)
	waitJobsSucceeded(t, op, jobs, []string{"lite-kill"})
	checkScheduleAfter(t, op, name, ticks[len(ticks)-1], "")
	t.Logf("%d ticks, %d fired; done in %v", len(ticks), len(jobs), time.Since(began).Round(time.Millisecond))
}

// TestSchedulePython drives every schedule method from Python's
// xmlrpc.client (testdata/schedules.py): the members and their wire
// types, schedule.run, the history with and without its options, a tick
// fired in real time, and the faults.
func TestSchedulePython(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	pythonCommand(t, srv, "schedules.py", []string{"testdata/schedules.py"})
}

// TestSchedulePauseBeatsTick: a daemon's pass reads the schedules, and
// then waits for the gate while a schedule.pause holds it; the pause
// commits and returns; the tick it had found due must then make no job:
// "no tick makes a job until it is resumed". The test makes the race
// certain by holding SQLite's write lock across the tick, from before the
// pause is sent: the pause waits for it inside the gate, the daemon's
// pass reads the schedule (reads do not wait) and waits at the gate.
func TestSchedulePauseBeatsTick(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"pause-race"}, nil)
	startFleet(t, srv, agents)
	op := opClient(t, srv)
	const name = "pause-race"
	sc := addEverySchedule(t, op, name, "echo tick", []string{"pause-race"})

	w, err := sql.Open("sqlite", "file:"+filepath.Join(srv.dataDir, "scire.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	conn, err := w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tick := *sc.Next
	sleepUntil(tick.Add(-300 * time.Millisecond))
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	paused := make(chan error, 1)
	go func() {
		var pr api.SchedulePauseResult
		err := op.Call(ctx, api.MethodSchedulePause, &pr, name)
		if err == nil && (!pr.Paused || !pr.Changed) {
			err = fmt.Errorf("schedule.pause = %+v", pr)
		}
		paused <- err
	}()
	sleepUntil(tick.Add(300 * time.Millisecond))
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := <-paused; err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	if !strings.Contains(srv.log.String(), `msg="schedule paused"`) {
		t.Fatal("the pause was not logged")
	}
	// The pass that read the schedule before the pause has gone by.
	sleepUntil(returned.Add(time.Second))
	if hist := scheduleHistory(t, op, name); len(hist) != 0 {
		t.Fatalf("schedule.pause returned at %s, yet the history has:\n%s", returned.Format("15:04:05.000"), formatTicks(hist))
	}
	checkJobList(t, op, nil, name+" job")
	var got api.Schedule
	rpc(t, op, api.MethodScheduleGet, &got, name)
	if !got.Paused || got.LastTick != nil || got.LastJobID != "" {
		t.Fatalf("schedule.get = %+v; want paused, no tick, no job", got)
	}
}
