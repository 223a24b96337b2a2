// Package storetest is the conformance suite every db.Store driver must pass.
// A driver's test calls Run with a function that opens a fresh, empty store;
// the same behaviour is then demanded of SQLite and PostgreSQL alike.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// Opener returns a new empty store; the suite closes it.
type Opener func(t *testing.T) db.Store

// Run runs the whole suite.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s db.Store)
	}{
		{"ClientRegistration", testClientRegistration},
		{"ClientLifecycle", testClientLifecycle},
		{"TouchClients", testTouchClients},
		{"ClientNameUniqueAmongActive", testClientNameUnique},
		{"LiteralNames", testLiteralNames},
		{"UsersAndTokens", testUsersAndTokens},
		{"SubmitAndList", testSubmitAndList},
		{"SubmitUnknownClientChangesNothing", testSubmitUnknownClient},
		{"SubmitJobs", testSubmitJobs}, {"SubmitJobsAllOrNothing", testSubmitJobsAllOrNothing},
		{"DispatchOrder", testDispatchOrder},
		{"DispatchDenyAndExpire", testDispatchDenyExpire},
		{"DispatchNotBefore", testDispatchNotBefore},
		{"IdleClaim", testIdleClaim},
		{"AckIdempotentAndOwned", testAck},
		{"ReportIdempotentAndOwned", testReport},
		{"ReportNeverSentRefused", testReportNeverSent},
		{"BatchReportsAndAcks", testBatchReports},
		{"ConcurrentClaimsNeverDuplicate", testConcurrentClaims},
		{"Servers", testServers},
		{"Operations", testOperations},
		{"UserAdmin", testUserAdmin},
		{"Groups", testGroups},
		{"ACLRules", testACLRules},
		{"DeleteClient", testDeleteClient},
		{"IDsNeverReused", testIDsNeverReused},
		{"RestoreKeepsBackupSequences", testRestoreKeepsBackupSequences},
		{"NamesThatLookLikeIDs", testNamesThatLookLikeIDs},
		{"AccessLiteralNames", testAccessLiteralNames},
		{"OperationFilters", testOperationFilters},
		{"PolicyNesting", testPolicyNesting},
		{"BackupRestore", testBackupRestore},
		{"RestoreRefusalsChangeNothing", testRestoreRefusals},
		{"BackupDuringWritesIsConsistent", testBackupDuringWrites},
		{"Reset", testReset},
		{"SchemaVersion", testSchemaVersion},
		{"SweepLeaseExpiry", testSweepLease},
		{"SweepLostRuns", testSweepLost},
		{"RenewedRunsAreNotLost", testRenewRuns},
		{"SweepExpiry", testSweepExpire},
		{"SweepDryRun", testSweepDryRun},
		{"ConcurrentSweepsChangeEachRunOnce", testSweepConcurrent},
		{"RequeueServer", testRequeueServer},
		{"CancelJob", testCancelJob},
		{"CancelledRuns", testCancelledRuns},
		{"DueNotBefore", testDueNotBefore},
		{"Counts", testCounts},
		{"RolloutWindow", testRolloutWindow},
		{"RolloutWindowConcurrent", testRolloutWindowConcurrent},
		{"RolloutBudget", testRolloutBudget},
		{"RolloutCanary", testRolloutCanary},
		{"RolloutPause", testRolloutPause},
		{"RolloutHaltedRequeue", testRolloutHaltedRequeue},
		{"RolloutWake", testRolloutWake},
		{"RolloutThreshold", testRolloutThreshold},
		{"OutputAppend", testOutputAppend},
		{"OutputBound", testOutputBound},
		{"OutputCancelled", testOutputCancelled},
		{"FactsAndLabels", testFactsAndLabels},
		{"DynamicGroups", testDynamicGroups},
		{"Schedules", testSchedules},
		{"ScheduleTicks", testScheduleTicks},
		{"ScheduleTicksPaused", testScheduleTicksPaused},
		{"Events", testEvents},
		{"EventsConcurrent", testEventsConcurrent},
		{"EventsBatch", testEventsBatch},
		{"IdempotencyKeys", testIdempotencyKeys},
		{"IdempotencyConcurrent", testIdempotencyConcurrent},
		{"ClientsVersion", testClientsVersion},
		{"ClientTraits", testClientTraits},
		{"Webhooks", testWebhooks},
		{"WebhookQueue", testWebhookQueue},
		{"WebhookLeaseRace", testWebhookLeaseRace},
		{"Capabilities", testCapabilities},
		{"PruneJobs", testPruneJobs},
		{"DeleteJobs", testDeleteJobs},
		{"PruneOperations", testPruneOperations},
		{"PruneEventsAndKeys", testPruneEventsAndKeys},
		{"TryLock", testTryLock},
		{"Ready", func(t *testing.T, s db.Store) {
			if err := s.Ready(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func mustClient(t *testing.T, s db.Store, name string, active bool) db.Client {
	t.Helper()
	c, err := s.RegisterClient(context.Background(), db.ClientRegistration{
		Fingerprint: "fp-" + name, Name: name, Hostname: name, OS: "linux", Arch: "amd64", Version: "test", At: t0,
	})
	if err != nil {
		t.Fatal(err)
	}
	if active {
		if c, err = s.SetClientStatus(context.Background(), c.ID, db.ClientActive); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func mustSubmit(t *testing.T, s db.Store, name string, prio int, clients ...int64) db.Job {
	t.Helper()
	j, err := s.SubmitJob(context.Background(), db.NewJob{
		Name: name, Interpreter: "/bin/sh", Script: "echo " + name, Priority: prio,
		SubmittedBy: "admin", ClientIDs: clients, CreatedAt: t0, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func claim(t *testing.T, s db.Store, clientID int64, max int) []db.Dispatch {
	t.Helper()
	ds, err := s.ClaimRuns(context.Background(), db.Claim{ClientID: clientID, Max: max, At: t0, Lease: time.Minute, ServerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func runState(t *testing.T, s db.Store, id int64) runstate.State {
	t.Helper()
	r, err := s.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func testClientRegistration(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "web1", false)
	if c.Status != db.ClientPending || c.ID == 0 || c.Mode != db.ModePoll {
		t.Fatalf("new client = %+v, want pending poll client with id", c)
	}
	again, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-web1", Name: "web1", OS: "freebsd", At: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != c.ID || again.OS != "freebsd" || !again.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("re-registration = %+v, want same id, updated facts", again)
	}
	got, err := s.ClientByFingerprint(ctx, "fp-web1")
	if err != nil || got.ID != c.ID {
		t.Fatalf("ClientByFingerprint = %+v, %v", got, err)
	}
	if _, err := s.ClientByFingerprint(ctx, "nope"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown fingerprint: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Client(ctx, 999999); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrNotFound", err)
	}
	if _, err := s.RegisterClient(ctx, db.ClientRegistration{Name: "x", At: t0}); !errors.Is(err, db.ErrInvalid) {
		t.Fatalf("empty fingerprint: err = %v, want ErrInvalid", err)
	}
}

func testTouchClients(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b, c := mustClient(t, s, "a", true), mustClient(t, s, "b", false), mustClient(t, s, "c", true)
	if err := s.TouchClients(ctx, nil); err != nil {
		t.Fatalf("nothing to touch: %v", err)
	}
	later := t0.Add(90*time.Second + 123)
	err := s.TouchClients(ctx, map[int64]time.Time{
		a.ID:      later,
		b.ID:      t0.Add(-time.Hour), // older than the stored time: kept
		c.ID + 99: later,              // no such client: skipped
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   int64
		want time.Time
	}{{a.ID, later}, {b.ID, t0}, {c.ID, t0}} {
		got, err := s.Client(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastSeen.Equal(tc.want) {
			t.Errorf("client %s last seen %v, want %v", got.Name, got.LastSeen, tc.want)
		}
	}
}

func testClientLifecycle(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "db1", false)
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientRevoked); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("revoke pending: err = %v, want ErrConflict", err)
	}
	a, err := s.SetClientStatus(ctx, c.ID, db.ClientActive)
	if err != nil || a.Status != db.ClientActive {
		t.Fatalf("accept = %+v, %v", a, err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatalf("repeated accept: %v", err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientRejected); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("reject active: err = %v, want ErrConflict", err)
	}
	// Registering again never changes the status.
	r, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-db1", Name: "renamed", At: t0})
	if err != nil || r.Status != db.ClientActive || r.Name != "db1" {
		t.Fatalf("re-register active = %+v, %v; want active, name kept", r, err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientRevoked); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListClients(ctx, db.ClientFilter{Status: db.ClientRevoked})
	if err != nil || len(list) != 1 || list[0].ID != c.ID {
		t.Fatalf("list revoked = %+v, %v", list, err)
	}
}

func testClientNameUnique(t *testing.T, s db.Store) {
	ctx := context.Background()
	a := mustClient(t, s, "same", true)
	b, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-other", Name: "same", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, b.ID, db.ClientActive); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("accept duplicate name: err = %v, want ErrConflict", err)
	}
	if _, err := s.SetClientStatus(ctx, a.ID, db.ClientRevoked); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, b.ID, db.ClientActive); err != nil {
		t.Fatalf("accept after revoking holder: %v", err)
	}
}

func testLiteralNames(t *testing.T, s db.Store) {
	ctx := context.Background()
	names := []string{`it's "quoted"`, `100% _x_`, `ünïcødé ☃ 日本`, `'; DROP TABLE clients; --`, `a\b`}
	for i, n := range names {
		c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprint("lit", i), Name: n, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.ListClients(ctx, db.ClientFilter{Name: n})
		if err != nil || len(got) != 1 || got[0].ID != c.ID || got[0].Name != n {
			t.Fatalf("name %q: list = %+v, %v", n, got, err)
		}
		u, err := s.EnsureUser(ctx, n)
		if err != nil || u.Name != n {
			t.Fatalf("user %q = %+v, %v", n, u, err)
		}
	}
	all, _ := s.ListClients(ctx, db.ClientFilter{})
	if len(all) != len(names) {
		t.Fatalf("%d clients, want %d (a name matched as a pattern?)", len(all), len(names))
	}
}

func testUsersAndTokens(t *testing.T, s db.Store) {
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u2, err := s.EnsureUser(ctx, "alice")
	if err != nil || u2.ID != u.ID {
		t.Fatalf("EnsureUser twice: %+v %v", u2, err)
	}
	tok, err := s.CreateToken(ctx, u.ID, "laptop", []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	gt, gu, err := s.TokenByID(ctx, tok.ID)
	if err != nil || gu.Name != "alice" || string(gt.Hash) != string([]byte{1, 2, 3}) || gt.Revoked {
		t.Fatalf("TokenByID = %+v %+v %v", gt, gu, err)
	}
	if _, _, err := s.TokenByID(ctx, tok.ID+100); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

func testSubmitAndList(t *testing.T, s db.Store) {
	ctx := context.Background()
	a, b := mustClient(t, s, "a", true), mustClient(t, s, "b", true)
	j, err := s.SubmitJob(ctx, db.NewJob{
		Name: "hello", Interpreter: "/bin/sh", Script: "echo 'hi' ]]> \r\n", Priority: 3, SubmittedBy: "alice",
		ClientIDs: []int64{a.ID, b.ID, a.ID}, Targets: []string{"a", "b"}, CreatedAt: t0,
		Timeout: 90 * time.Second, MaxAttempts: 2, ExpiresAt: t0.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID == 0 || j.Counts[runstate.Pending] != 2 || j.Status() != "pending" || j.Script != "echo 'hi' ]]> \r\n" ||
		j.Timeout != 90*time.Second || j.MaxAttempts != 2 || !j.ExpiresAt.Equal(t0.Add(time.Hour)) || len(j.Targets) != 2 {
		t.Fatalf("job = %+v", j)
	}
	// What SubmitJob returns is what Job reads back, to the nanosecond
	// (in a local zone and with a monotonic reading on the way in).
	local := time.FixedZone("east", 5*3600)
	j2, err := s.SubmitJob(ctx, db.NewJob{
		Name: "every field", Permission: "run", Interpreter: "/bin/bash", Script: "true", Priority: -4, SubmittedBy: "bob",
		ClientIDs: []int64{b.ID}, Targets: []string{"group:web", "b"}, CreatedAt: time.Now().In(local),
		NotBefore: t0.Add(time.Minute + 7).In(local), ExpiresAt: t0.Add(2 * time.Hour), Timeout: 1500 * time.Millisecond, MaxAttempts: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []db.Job{j, j2} {
		back, err := s.Job(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("SubmitJob returned\n%+v\nJob reads back\n%+v", want, back)
		}
	}
	runs, err := s.Runs(ctx, j.ID)
	if err != nil || len(runs) != 2 || runs[0].ClientName != "a" || runs[1].ClientName != "b" {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	mustSubmit(t, s, "second", 0, a.ID)
	jobs, err := s.ListJobs(ctx, db.JobFilter{})
	if err != nil || len(jobs) != 3 || jobs[0].Name != "second" || jobs[2].Counts[runstate.Pending] != 2 {
		t.Fatalf("list = %+v, %v", jobs, err)
	}
	if _, err := s.Job(ctx, 424242); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
}

func testSubmitUnknownClient(t *testing.T, s db.Store) {
	ctx := context.Background()
	a := mustClient(t, s, "a", true)
	_, err := s.SubmitJob(ctx, db.NewJob{Name: "x", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin", ClientIDs: []int64{a.ID, 777}})
	if !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	jobs, _ := s.ListJobs(ctx, db.JobFilter{})
	if len(jobs) != 0 {
		t.Fatalf("a failed submit left %d jobs", len(jobs))
	}
}

func testDispatchOrder(t *testing.T, s db.Store) {
	c := mustClient(t, s, "c", true)
	other := mustClient(t, s, "other", true)
	low := mustSubmit(t, s, "low", 1, c.ID)
	high := mustSubmit(t, s, "high", 9, c.ID)
	low2 := mustSubmit(t, s, "low2", 1, c.ID)
	mustSubmit(t, s, "theirs", 50, other.ID)
	ds := claim(t, s, c.ID, 2)
	if len(ds) != 2 || ds[0].Job.ID != high.ID || ds[1].Job.ID != low.ID {
		t.Fatalf("first claim = %v, want high then low", jobIDs(ds))
	}
	if ds[0].Run.State != runstate.Sent || ds[0].Run.Attempts != 1 || ds[0].Job.Script != "echo high" || ds[0].Job.Timeout != time.Minute {
		t.Fatalf("dispatch = %+v", ds[0])
	}
	ds = claim(t, s, c.ID, 10)
	if len(ds) != 1 || ds[0].Job.ID != low2.ID {
		t.Fatalf("second claim = %v, want low2", jobIDs(ds))
	}
	if ds := claim(t, s, c.ID, 10); len(ds) != 0 {
		t.Fatalf("third claim = %v, want nothing", jobIDs(ds))
	}
	if st := runState(t, s, ds[0].Run.ID); st != runstate.Sent {
		t.Fatalf("state = %s", st)
	}
}

func jobIDs(ds []db.Dispatch) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Job.ID)
	}
	return out
}

func testDispatchDenyExpire(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	denied := mustSubmit(t, s, "secret", 5, c.ID)
	ok := mustSubmit(t, s, "fine", 1, c.ID)
	exp, err := s.SubmitJob(ctx, db.NewJob{Name: "old", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{c.ID}, CreatedAt: t0, ExpiresAt: t0.Add(-time.Second), Priority: 9})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 1, At: t0, Lease: time.Minute, Decide: func(j db.Job, _ int64) (bool, string) {
		return j.Name != "secret", "rule 7 denies"
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Job.ID != ok.ID {
		t.Fatalf("claim = %v, want only %d (denied and expired runs skipped, max still filled)", jobIDs(ds), ok.ID)
	}
	runs, _ := s.Runs(ctx, denied.ID)
	if runs[0].State != runstate.Denied || runs[0].Reason != "rule 7 denies" {
		t.Fatalf("denied run = %+v", runs[0])
	}
	runs, _ = s.Runs(ctx, exp.ID)
	if runs[0].State != runstate.Expired {
		t.Fatalf("expired run = %+v", runs[0])
	}
	j, _ := s.Job(ctx, denied.ID)
	if j.Status() != "failed" {
		t.Fatalf("job of denied run status = %s", j.Status())
	}
}

func testDispatchNotBefore(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	_, err := s.SubmitJob(ctx, db.NewJob{Name: "later", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{c.ID}, CreatedAt: t0, NotBefore: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if ds := claim(t, s, c.ID, 5); len(ds) != 0 {
		t.Fatalf("claimed a run before not_before: %v", jobIDs(ds))
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 5, At: t0.Add(2 * time.Hour), Lease: time.Minute})
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim after not_before = %v, %v", jobIDs(ds), err)
	}
}

func testAck(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	other := mustClient(t, s, "o", true)
	mustSubmit(t, s, "a", 0, c.ID)
	mustSubmit(t, s, "b", 0, c.ID)
	oj := mustSubmit(t, s, "theirs", 0, other.ID)
	ds := claim(t, s, c.ID, 10)
	ids := []int64{ds[0].Run.ID, ds[1].Run.ID}
	res, err := s.AckRuns(ctx, c.ID, ids, t0)
	if err != nil || res.Acknowledged != 2 || len(res.Stale) != 0 {
		t.Fatalf("ack = %+v, %v", res, err)
	}
	res, err = s.AckRuns(ctx, c.ID, ids, t0)
	if err != nil || res.Acknowledged != 2 {
		t.Fatalf("repeated ack = %+v, %v", res, err)
	}
	if st := runState(t, s, ids[0]); st != runstate.Received {
		t.Fatalf("state after ack = %s", st)
	}
	// Another client's run: conflict, and nothing changes for the caller's own ids in the same call.
	ojRuns, _ := s.Runs(ctx, oj.ID)
	claim(t, s, other.ID, 1)
	mustSubmit(t, s, "c3", 0, c.ID)
	ds3 := claim(t, s, c.ID, 1)
	_, err = s.AckRuns(ctx, c.ID, []int64{ds3[0].Run.ID, ojRuns[0].ID}, t0)
	if !errors.Is(err, db.ErrConflict) {
		t.Fatalf("ack of another client's run: err = %v, want ErrConflict", err)
	}
	if st := runState(t, s, ds3[0].Run.ID); st != runstate.Sent {
		t.Fatalf("own run changed by a refused ack: %s", st)
	}
	if st := runState(t, s, ojRuns[0].ID); st != runstate.Sent {
		t.Fatalf("other's run changed: %s", st)
	}
	if _, err := s.AckRuns(ctx, c.ID, []int64{987654}, t0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("ack of unknown run: err = %v, want ErrNotFound", err)
	}
	// A pending run (never sent) is stale, not acknowledged.
	p := mustSubmit(t, s, "pend", 0, c.ID)
	pr, _ := s.Runs(ctx, p.ID)
	res, err = s.AckRuns(ctx, c.ID, []int64{pr[0].ID}, t0)
	if err != nil || res.Acknowledged != 0 || len(res.Stale) != 1 {
		t.Fatalf("ack of pending run = %+v, %v", res, err)
	}
}

func testReport(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	other := mustClient(t, s, "o", true)
	j := mustSubmit(t, s, "a", 0, c.ID)
	ds := claim(t, s, c.ID, 1)
	id := ds[0].Run.ID
	if _, err := s.AckRuns(ctx, c.ID, []int64{id}, t0); err != nil {
		t.Fatal(err)
	}
	res, err := s.ReportRuns(ctx, c.ID, []db.Report{{RunID: id, State: runstate.Running, StartedAt: t0}}, t0)
	if err != nil || !res[0].Accepted {
		t.Fatalf("running report = %+v, %v", res, err)
	}
	three := 3
	fin := []db.Report{{RunID: id, State: runstate.Failed, ExitCode: &three, StartedAt: t0, Finished: t0.Add(time.Second), Output: "hello\n"}}
	res, err = s.ReportRuns(ctx, c.ID, fin, t0)
	if err != nil || !res[0].Accepted || res[0].Note != "" {
		t.Fatalf("final report = %+v, %v", res, err)
	}
	r, _ := s.Run(ctx, id)
	if r.State != runstate.Failed || r.ExitCode == nil || *r.ExitCode != 3 || r.Output != "hello\n" || !r.FinishedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("run after report = %+v", r)
	}
	// The same report again: accepted, no second transition.
	res, err = s.ReportRuns(ctx, c.ID, fin, t0.Add(time.Minute))
	if err != nil || !res[0].Accepted || res[0].Note == "" {
		t.Fatalf("repeated report = %+v, %v", res, err)
	}
	r2, _ := s.Run(ctx, id)
	if !r2.UpdatedAt.Equal(r.UpdatedAt) {
		t.Fatalf("repeated report changed the run: %v -> %v", r.UpdatedAt, r2.UpdatedAt)
	}
	// A different final state keeps the first one.
	zero := 0
	res, err = s.ReportRuns(ctx, c.ID, []db.Report{{RunID: id, State: runstate.Succeeded, ExitCode: &zero}}, t0)
	if err != nil || !res[0].Accepted || !strings.Contains(res[0].Note, "already failed") {
		t.Fatalf("conflicting final report = %+v, %v", res, err)
	}
	if st := runState(t, s, id); st != runstate.Failed {
		t.Fatalf("first final state lost: %s", st)
	}
	jj, _ := s.Job(ctx, j.ID)
	if jj.Status() != "failed" {
		t.Fatalf("job status = %s", jj.Status())
	}
	// Another client's run: conflict; the whole report changes nothing.
	mustSubmit(t, s, "b", 0, c.ID)
	mine := claim(t, s, c.ID, 1)[0].Run.ID
	oj := mustSubmit(t, s, "theirs", 0, other.ID)
	theirs, _ := s.Runs(ctx, oj.ID)
	_, err = s.ReportRuns(ctx, c.ID, []db.Report{{RunID: mine, State: runstate.Running}, {RunID: theirs[0].ID, State: runstate.Running}}, t0)
	if !errors.Is(err, db.ErrConflict) {
		t.Fatalf("report on another client's run: err = %v, want ErrConflict", err)
	}
	if st := runState(t, s, mine); st != runstate.Sent {
		t.Fatalf("refused report changed own run: %s", st)
	}
	// A report straight from sent (ack reply lost) is accepted.
	res, err = s.ReportRuns(ctx, c.ID, []db.Report{{RunID: mine, State: runstate.Succeeded, ExitCode: &zero}}, t0)
	if err != nil || !res[0].Accepted {
		t.Fatalf("report from sent = %+v, %v", res, err)
	}
}

func testConcurrentClaims(t *testing.T, s db.Store) {
	ctx := context.Background()
	c := mustClient(t, s, "c", true)
	const jobs = 200
	for i := 0; i < jobs; i++ {
		mustSubmit(t, s, fmt.Sprint("j", i), i%5, c.ID)
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 7, At: t0, Lease: time.Minute})
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.Run.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != jobs {
		t.Fatalf("%d runs dispatched, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("run %d dispatched %d times", id, n)
		}
	}
}

func testServers(t *testing.T, s db.Store) {
	ctx := context.Background()
	si, err := s.RegisterServer(ctx, db.ServerInfo{Address: "127.0.0.1:7443", Hostname: "h", Version: "v", StartedAt: t0})
	if err != nil || si.ID == 0 {
		t.Fatalf("register = %+v, %v", si, err)
	}
	if err := s.HeartbeatServer(ctx, si.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.HeartbeatServer(ctx, si.ID+99, t0); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("heartbeat unknown: %v", err)
	}
	list, err := s.ListServers(ctx)
	if err != nil || len(list) != 1 || !list[0].HeartbeatAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("list = %+v, %v", list, err)
	}
}

func testOperations(t *testing.T, s db.Store) {
	ctx := context.Background()
	for i, who := range []string{"alice", "bob", "alice"} {
		if err := s.RecordOperation(ctx, db.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Actor: who, Name: "job.submit", Outcome: "ok", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ops, err := s.ListOperations(ctx, db.AuditFilter{Actor: "alice"})
	if err != nil || len(ops) != 2 || ops[0].Target != "2" || !ops[0].At.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("ops = %+v, %v", ops, err)
	}
}
