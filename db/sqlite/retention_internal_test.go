package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// pragma reads an integer PRAGMA on q.
func pragma(t *testing.T, q interface {
	QueryRow(string, ...any) *sql.Row
}, name string) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(`PRAGMA ` + name).Scan(&n); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return n
}

const autoVacuumIncremental = 2 // PRAGMA auto_vacuum's value for INCREMENTAL

// A database made at schema version 7 (before retention) with data in it
// migrates to auto_vacuum=INCREMENTAL (the VACUUM outside a transaction)
// with the cleaner's index and every row; a new database has both too.
func TestMigrateVersion7ToIncrementalVacuum(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v7.db")
	conn, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := dbcore.NewMigrate(migrations, "sqlite", conn, migrateDriver)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Migrate(7); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO clients (id, fingerprint, name, status, registered_at, last_seen) VALUES (1, 'fp1', 'web', 'active', 1, 1)`,
		`INSERT INTO jobs (id, name, interpreter, script, submitted_by, created_at) VALUES (1, 'j', '/bin/sh', 'true', 'alice', 1)`,
		`INSERT INTO runs (id, job_id, client_id, state, priority, created_at, updated_at, output_size) VALUES (1, 1, 1, 'running', 0, 1, 1, 4)`,
		`INSERT INTO run_output (run_id, off, len, data) VALUES (1, 0, 4, 'abc' || char(10))`,
		`INSERT INTO operations (id, at, actor, name, outcome) VALUES (1, 1, 'admin', 'acl.add', 'ok')`,
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if av := pragma(t, conn, "auto_vacuum"); av != 0 {
		t.Fatalf("auto_vacuum at version 7 = %d, want 0 (none)", av)
	}
	m.Close()
	conn.Close()

	s, err := OpenFile(ctx, path, "FULL")
	if err != nil {
		t.Fatalf("migrate to version %d: %v", SchemaVersion, err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if v, dirty, err := s.SchemaVersion(ctx); err != nil || dirty || v != SchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v, %v", v, dirty, err)
	}
	if av := pragma(t, s.r, "auto_vacuum"); av != autoVacuumIncremental {
		t.Fatalf("auto_vacuum after the migration = %d, want %d (incremental)", av, autoVacuumIncremental)
	}
	for table, want := range map[string]int64{"clients": 1, "jobs": 1, "runs": 1, "run_output": 1, "operations": 1} {
		if n := pragmaCount(t, s.r, table); n != want {
			t.Errorf("%s: %d rows, want %d", table, n, want)
		}
	}
	var idx string
	if err := s.r.QueryRow(`SELECT sql FROM sqlite_master WHERE name = 'jobs_created'`).Scan(&idx); err != nil || !strings.Contains(idx, "created_at") {
		t.Fatalf("index jobs_created: %q, %v", idx, err)
	}

	fresh, err := OpenFile(ctx, filepath.Join(t.TempDir(), "new.db"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if av := pragma(t, fresh.r, "auto_vacuum"); av != autoVacuumIncremental {
		t.Fatalf("auto_vacuum of a new database = %d, want %d", av, autoVacuumIncremental)
	}
	// A backup (VACUUM INTO) keeps the mode: served as it is, it gives
	// space back too.
	bk := filepath.Join(t.TempDir(), "backup.db")
	if err := s.Backup(ctx, bk); err != nil {
		t.Fatal(err)
	}
	bconn, err := sql.Open("sqlite", "file:"+bk+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer bconn.Close()
	if av := pragma(t, bconn, "auto_vacuum"); av != autoVacuumIncremental {
		t.Fatalf("auto_vacuum of a backup = %d, want %d", av, autoVacuumIncremental)
	}

	// Down to 7 and up again: the mode goes and comes back.
	s.Close()
	closed = true
	conn2, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	m2, err := dbcore.NewMigrate(migrations, "sqlite", conn2, migrateDriver)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Migrate(7); err != nil {
		t.Fatalf("down to 7: %v", err)
	}
	if av := pragma(t, conn2, "auto_vacuum"); av != 0 {
		t.Fatalf("auto_vacuum after the down migration = %d, want 0", av)
	}
	if err := m2.Migrate(SchemaVersion); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if av := pragma(t, conn2, "auto_vacuum"); av != autoVacuumIncremental {
		t.Fatalf("auto_vacuum after migrating up again = %d", av)
	}
	m2.Close()
}

func pragmaCount(t *testing.T, q *sql.DB, table string) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// After the old jobs are pruned, their pages are free in the file;
// ReclaimSpace in steps gives them back: the free list empties, the page
// count drops, and after a checkpoint the file is smaller. Streamed output
// goes with its run.
func TestPruneThenReclaimShrinksTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	s, err := OpenFile(ctx, path, "NORMAL")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-365 * 24 * time.Hour).UTC()
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp", Name: "m", At: old})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	const n = 1500
	script := strings.Repeat("echo retention\n", 200) // 3 KiB
	for done := 0; done < n; done += 500 {
		js := make([]db.NewJob, 500)
		for i := range js {
			js[i] = db.NewJob{Name: "old", Interpreter: "/bin/sh", Script: script, SubmittedBy: "admin", ClientIDs: []int64{c.ID}, CreatedAt: old}
		}
		if _, err := s.SubmitJobs(ctx, js, nil); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.ClaimRuns(ctx, db.Claim{ClientID: c.ID, Max: n, At: old, Lease: time.Hour, ServerID: 1})
	if err != nil || len(ds) != n {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	// Half stream output and are cancelled (their chunks stay), half end
	// with a final output.
	var reps []db.Report
	var chunks []db.OutputChunk
	var cancel []int64
	for i, d := range ds {
		if i%2 == 0 {
			reps = append(reps, db.Report{RunID: d.Run.ID, State: runstate.Running, StartedAt: old})
			chunks = append(chunks, db.OutputChunk{RunID: d.Run.ID, Data: strings.Repeat("x", 2000) + "\n"})
			cancel = append(cancel, d.Job.ID)
			continue
		}
		code := 0
		reps = append(reps, db.Report{RunID: d.Run.ID, State: runstate.Succeeded, ExitCode: &code, StartedAt: old, Finished: old,
			Output: strings.Repeat("y", 2000) + "\n"})
	}
	if _, err := s.ReportRuns(ctx, c.ID, reps, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendOutput(ctx, c.ID, chunks, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, id := range cancel {
		if _, err := s.CancelJob(ctx, id, old, "cancelled by admin"); err != nil {
			t.Fatal(err)
		}
	}
	if got := pragmaCount(t, s.r, "run_output"); got != n/2 {
		t.Fatalf("%d chunks stored, want %d", got, n/2)
	}
	checkpoint(t, s)
	pagesBefore, sizeBefore := pragma(t, s.r, "page_count"), fileSize(t, path)

	var sum db.PruneResult
	for {
		r, err := s.PruneJobs(ctx, db.PruneOptions{Before: time.Now(), Limit: 200, After: sum.Next})
		if err != nil {
			t.Fatal(err)
		}
		sum.Add(r)
		if r.Examined < 200 {
			break
		}
	}
	if sum.Jobs != n || sum.Runs != n {
		t.Fatalf("pruned %+v, want %d jobs and runs", sum, n)
	}
	for _, table := range []string{"jobs", "runs", "run_output"} {
		if got := pragmaCount(t, s.r, table); got != 0 {
			t.Fatalf("%s: %d rows left", table, got)
		}
	}
	free := pragma(t, s.r, "freelist_count")
	if free < pagesBefore/2 {
		t.Fatalf("%d free pages of %d after the prune: the deletions freed too little", free, pagesBefore)
	}
	steps := 0
	var freed int64
	for {
		f, left, err := s.ReclaimSpace(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		steps++
		freed += f
		if f > 100 {
			t.Fatalf("a step of 100 pages freed %d", f)
		}
		if left == 0 || f == 0 {
			break
		}
	}
	if freed != free || steps < 2 {
		t.Fatalf("reclaimed %d pages in %d steps, want the %d free ones in several", freed, steps, free)
	}
	if left := pragma(t, s.r, "freelist_count"); left != 0 {
		t.Fatalf("%d free pages left", left)
	}
	checkpoint(t, s)
	pagesAfter, sizeAfter := pragma(t, s.r, "page_count"), fileSize(t, path)
	t.Logf("pages %d → %d, file %d → %d bytes, %d free pages given back in %d steps", pagesBefore, pagesAfter, sizeBefore, sizeAfter, freed, steps)
	if pagesAfter > pagesBefore-free+1 || sizeAfter >= sizeBefore/2 {
		t.Fatalf("pages %d → %d, file %d → %d bytes: the file did not shrink", pagesBefore, pagesAfter, sizeBefore, sizeAfter)
	}
	// Nothing left to give back: a step frees nothing.
	if f, left, err := s.ReclaimSpace(ctx, 100); err != nil || f != 0 || left != 0 {
		t.Fatalf("ReclaimSpace on a compact file = %d, %d, %v", f, left, err)
	}
}

// checkpoint copies the whole log into the database file and truncates
// the log, so that the file's size is the database's.
func checkpoint(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
