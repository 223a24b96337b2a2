package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/postgres"
	"github.com/scirectl/scirectl/db/storetest"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/runstate"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T) db.Store {
	t.Helper()
	return openURL(t, pgtest.Start(t))
}

// openURL opens another store (another pool: another daemon) on a database.
func openURL(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.(*postgres.Store)
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// Two daemons (two stores, two pools) on one database race for the
// leases of webhooks: one claim wins, and their workers deliver a backlog
// together, each event once, in order.
func TestWebhookLeaseTwoStores(t *testing.T) {
	url := pgtest.Start(t)
	storetest.WebhookLeaseRace(t, openURL(t, url), openURL(t, url))
}

func TestOpenSchemesAndErrors(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	alt := "postgresql" + strings.TrimPrefix(url, "postgres")
	s := openURL(t, alt+"&lock_pool_max_conns=3&pool_max_conns=2")
	if err := s.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if v, dirty, err := s.SchemaVersion(ctx); err != nil || dirty || v != postgres.LatestVersion {
		t.Fatalf("SchemaVersion = %d, %v, %v; want %d", v, dirty, err, postgres.LatestVersion)
	}
	for _, bad := range []string{
		url + "&lock_pool_max_conns=0",
		url + "&lock_pool_max_conns=many",
		"postgres://postgres@127.0.0.1:1/nope?sslmode=disable&connect_timeout=5", // nothing listens on port 1
	} {
		start := time.Now()
		if s, err := db.Open(ctx, bad); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", bad)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("error shows the password: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open(%q) took %v", bad, d)
		}
	}
	// The password never shows in errors.
	_, err := db.Open(ctx, "postgres://u:secret@127.0.0.1:1/x?sslmode=disable&lock_pool_max_conns=x")
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v, want one without the password", err)
	}
}

// Daemons starting together on a new database all migrate it, one after
// the other, and all open.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	url := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() {
			s, err := db.Open(context.Background(), url)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Ready(context.Background())
			s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Two stores on one database, as two daemons, claim concurrently from the
// same client's backlog: every run is handed out exactly once, by the
// daemon whose claim returned it.
func TestTwoDaemonsNeverClaimTheSameRun(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := a.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-c", Name: "c", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 3000
	var sub sync.WaitGroup
	subErr := make(chan error, 8)
	for w := range 8 {
		sub.Go(func() {
			s := []*postgres.Store{a, b}[w%2]
			for i := w; i < runs; i += 8 {
				_, err := s.SubmitJob(ctx, db.NewJob{Name: fmt.Sprint("j", i), Interpreter: "/bin/sh", Script: "true",
					Priority: i % 7, SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: t0})
				if err != nil {
					subErr <- err
					return
				}
			}
		})
	}
	sub.Wait()
	close(subErr)
	for err := range subErr {
		t.Fatal(err)
	}

	var mu sync.Mutex
	owner := map[int64]int64{} // run id → server that claimed it
	dup := 0
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			server := int64(w%2 + 1)
			s := []*postgres.Store{a, b}[w%2]
			for {
				ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 1 + rand.IntN(25), At: t0, Lease: time.Minute, ServerID: server})
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					if _, seen := owner[d.Run.ID]; seen {
						dup++
					}
					owner[d.Run.ID] = server
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Fatalf("%d runs handed out twice", dup)
	}
	if len(owner) != runs {
		t.Fatalf("%d runs handed out, want %d", len(owner), runs)
	}
	perServer := map[int64]int{}
	jobs, err := a.ListJobs(ctx, db.JobFilter{Limit: runs})
	if err != nil || len(jobs) != runs {
		t.Fatalf("ListJobs: %d jobs, %v", len(jobs), err)
	}
	for _, j := range jobs {
		rs, err := b.Runs(ctx, j.ID)
		if err != nil || len(rs) != 1 {
			t.Fatalf("runs of job %d: %+v, %v", j.ID, rs, err)
		}
		r := rs[0]
		if r.State != runstate.Sent || r.Attempts != 1 || r.ServerID != owner[r.ID] {
			t.Fatalf("run %+v: want sent once, by server %d", r, owner[r.ID])
		}
		perServer[r.ServerID]++
	}
	t.Logf("runs per daemon: %v", perServer)
}

// A claim does not wait for another daemon's claim of the same client: the
// rows that one holds are skipped.
func TestClaimSkipsRunsLockedElsewhere(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := a.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-c", Name: "c", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := a.SubmitJob(ctx, db.NewJob{Name: fmt.Sprint("j", i), Interpreter: "/bin/sh", Script: "true",
			SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	// Daemon a's claim stops inside its transaction, in Decide, holding the
	// two runs it locked; daemon b claims meanwhile.
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	done := make(chan []db.Dispatch)
	go func() {
		ds, err := a.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 2, At: t0, Lease: time.Minute, ServerID: 1,
			Decide: func(db.Job, int64) (bool, string) {
				once.Do(func() { close(inside); <-release })
				return true, ""
			}})
		if err != nil {
			t.Error(err)
		}
		done <- ds
	}()
	<-inside
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bs, err := b.ClaimRuns(cctx, db.Claim{ClientID: c.ID, Max: 10, At: t0, Lease: time.Minute, ServerID: 2})
	close(release)
	as := <-done
	if err != nil {
		t.Fatalf("claim beside a claim in progress: %v", err)
	}
	if len(as) != 2 || len(bs) != 2 {
		t.Fatalf("claims got %d and %d runs, want 2 and 2", len(as), len(bs))
	}
	for _, x := range as {
		for _, y := range bs {
			if x.Run.ID == y.Run.ID {
				t.Fatalf("run %d claimed by both", x.Run.ID)
			}
		}
	}
	if as[0].Job.Name != "j0" || bs[0].Job.Name != "j2" {
		t.Fatalf("claims = %s…, %s…; want j0 (first claim) and j2 (the next free)", as[0].Job.Name, bs[0].Job.Name)
	}
}

// Two daemons sweeping and cancelling at once change each run once: its
// lease ends, and it fails (its only attempt is used) or is cancelled.
func TestConcurrentMaintenanceAcrossDaemons(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := a.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-c", Name: "c", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []int64
	for i := range 200 {
		j, err := a.SubmitJob(ctx, db.NewJob{Name: fmt.Sprint("j", i), Interpreter: "/bin/sh", Script: "true",
			SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: t0, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j.ID)
	}
	if ds, err := a.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 200, At: t0, Lease: time.Second, ServerID: 1}); err != nil || len(ds) != 200 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	var mu sync.Mutex
	changed := map[int64]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	record := func(cs []db.Change) {
		mu.Lock()
		defer mu.Unlock()
		for _, ch := range cs {
			changed[ch.RunID]++
		}
	}
	for w := range 4 {
		s := []*postgres.Store{a, b}[w%2]
		wg.Go(func() {
			for {
				cs, err := s.Sweep(ctx, db.SweepOptions{At: t0.Add(time.Minute), Limit: 7})
				if err != nil {
					errs <- err
					return
				}
				if len(cs) == 0 {
					return
				}
				record(cs)
			}
		})
		wg.Go(func() {
			for i := w; i < len(jobs); i += 8 { // half the jobs, each by two goroutines
				cs, err := s.CancelJob(ctx, jobs[i], t0.Add(time.Minute), "cancelled")
				if err != nil {
					errs <- err
					return
				}
				record(cs)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id, n := range changed {
		if n != 1 {
			t.Fatalf("run %d changed %d times", id, n)
		}
	}
	if len(changed) != 200 {
		t.Fatalf("%d runs changed, want 200", len(changed))
	}
}

func TestRestoreIsAtomicForOtherSessions(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	for i := range 50 {
		if _, err := a.CreateUser(ctx, fmt.Sprint("u", i)); err != nil {
			t.Fatal(err)
		}
	}
	path := t.TempDir() + "/b.db"
	if err := a.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if _, err := a.CreateUser(ctx, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	// b reads the users again and again while a restores: it sees the 100
	// users of before or the 50 of the backup, never anything between.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			us, err := b.ListUsers(ctx)
			if err != nil {
				bad = err
				return
			}
			if n := len(us); n != 100 && n != 50 {
				bad = fmt.Errorf("a reader saw %d users during the restore", n)
				return
			}
		}
	})
	time.Sleep(20 * time.Millisecond)
	err := a.Restore(ctx, path)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if bad != nil {
		t.Fatal(bad)
	}
	if _, err := b.UserByName(ctx, "v1"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("user added after the backup: %v", err)
	}
}

// PostgreSQL text holds neither NUL nor invalid UTF-8: what agents report
// about a run, and the audit trail, keep such bytes as U+FFFD instead of
// refusing the report (the agent would send it again for ever).
func TestReportWithBytesPostgresCannotStore(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "c", At: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitJob(ctx, db.NewJob{Name: "j", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{c.ID}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: 1, At: t0, Lease: time.Minute})
	if err != nil || len(ds) != 1 {
		t.Fatalf("claim: %v, %v", ds, err)
	}
	res, err := s.ReportRuns(ctx, c.ID, []db.Report{{RunID: ds[0].Run.ID, State: runstate.Failed, Output: "a\x00b\xffc", Reason: "x\x00"}}, t0)
	if err != nil || !res[0].Accepted {
		t.Fatalf("report = %+v, %v", res, err)
	}
	r, err := s.Run(ctx, ds[0].Run.ID)
	if err != nil || r.Output != "a\uFFFDb\uFFFDc" || r.Reason != "x\uFFFD" || r.State != runstate.Failed {
		t.Fatalf("run = %+v, %v", r, err)
	}
	if err := s.RecordOperation(ctx, db.AuditEntry{At: t0, Actor: "a", Name: "job.get", Target: "\x00\xfe", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	// Names are input and are refused instead.
	if _, err := s.EnsureUser(ctx, "nul\x00"); !errors.Is(err, db.ErrInvalid) {
		t.Fatalf("user name with NUL: err = %v, want ErrInvalid", err)
	}
}

// The metrics' aggregate counts agree with SQLite's for the same contents.
func TestCountsLikeSQLite(t *testing.T) {
	ctx := context.Background()
	pg, lite := open(t), openSQLite(t)
	fill(t, pg)
	fill(t, lite)
	for _, since := range []time.Time{{}, t0.Add(time.Second), t0.Add(time.Hour)} {
		pr, err1 := pg.RunCounts(ctx)
		lr, err2 := lite.RunCounts(ctx)
		pc, ps, err3 := pg.ClientCounts(ctx, since)
		lc, ls, err4 := lite.ClientCounts(ctx, since)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(pr, lr) || !reflect.DeepEqual(pc, lc) || ps != ls {
			t.Fatalf("since %v: PostgreSQL %v %v %d, SQLite %v %v %d", since, pr, pc, ps, lr, lc, ls)
		}
		if len(pr) < 4 || pc[db.ClientActive] != 2 {
			t.Fatalf("counts %v %v: the fill has runs in several states and two active clients", pr, pc)
		}
	}
}

// Connection parameters with spaces (options=-c name=value) reach
// PostgreSQL intact, not with the "+" url.Values would put in.
func TestURLParametersWithSpaces(t *testing.T) {
	url := pgtest.Start(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	s := openURL(t, url+sep+"options=-c%20statement_timeout%3D12345")
	if err := s.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
}
