package storetest

// Database maintenance: backup, restore, reset, schema version.

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// snapshot is everything a store holds, as its own methods list it.
type snapshot struct {
	Clients      []db.Client
	Jobs         []db.Job
	Runs         map[int64][]db.Run
	Users        []db.User
	Tokens       map[string][]db.Token
	UserGroups   []db.Group
	ClientGroups []db.Group
	Rules        []db.ACLRule
	Servers      []db.ServerInfo
	Operations   []db.AuditEntry
	Policy       db.PolicyData
}

func takeSnapshot(t *testing.T, s db.Store) snapshot {
	t.Helper()
	ctx := context.Background()
	sn := snapshot{
		Clients:      must(s.ListClients(ctx, db.ClientFilter{}))(t),
		Jobs:         must(s.ListJobs(ctx, db.JobFilter{Limit: 100000}))(t),
		Runs:         map[int64][]db.Run{},
		Users:        must(s.ListUsers(ctx))(t),
		Tokens:       map[string][]db.Token{},
		UserGroups:   must(s.ListGroups(ctx, db.KindUserGroup))(t),
		ClientGroups: must(s.ListGroups(ctx, db.KindClientGroup))(t),
		Rules:        must(s.ListACLRules(ctx))(t),
		Servers:      must(s.ListServers(ctx))(t),
		Operations:   must(s.ListOperations(ctx, db.AuditFilter{Limit: 100000}))(t),
		Policy:       must(s.Policy(ctx))(t),
	}
	for _, j := range sn.Jobs {
		sn.Runs[j.ID] = must(s.Runs(ctx, j.ID))(t)
	}
	for _, u := range sn.Users {
		sn.Tokens[u.Name] = must(s.ListTokens(ctx, u.ID))(t)
	}
	return sn
}

func (sn snapshot) empty() bool {
	return len(sn.Clients)+len(sn.Jobs)+len(sn.Users)+len(sn.UserGroups)+len(sn.ClientGroups)+
		len(sn.Rules)+len(sn.Servers)+len(sn.Operations) == 0
}

// sameSnapshot fails when the store's contents differ from want.
func sameSnapshot(t *testing.T, what string, s db.Store, want snapshot) {
	t.Helper()
	got := takeSnapshot(t, s)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: the store changed:\n got %+v\nwant %+v", what, got, want)
	}
}

// fillStore puts one of everything in a store: clients (one with a run
// in flight), a job, users with a token, nested groups, rules, a server
// and audit entries.
func fillStore(t *testing.T, s db.Store, tag string) {
	t.Helper()
	ctx := context.Background()
	web := mustClient(t, s, tag+"web", true)
	mustClient(t, s, tag+"new", false)
	mustSubmit(t, s, tag+"job", 2, web.ID)
	if ds := claim(t, s, web.ID, 1); len(ds) != 1 {
		t.Fatalf("claim: %d runs, want 1", len(ds))
	}
	u := must(s.CreateUser(ctx, tag+"alice"))(t)
	must(s.CreateToken(ctx, u.ID, "laptop", []byte(tag+"hash")))(t)
	must(s.CreateGroup(ctx, db.KindUserGroup, tag+"ops", "operators"))(t)
	must(s.CreateGroup(ctx, db.KindUserGroup, tag+"all", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, tag+"ops", db.Member{User: tag + "alice"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, tag+"all", db.Member{Group: tag + "ops"}))
	must(s.CreateGroup(ctx, db.KindClientGroup, tag+"webs", ""))(t)
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, tag+"webs", db.Member{ClientID: web.ID}))
	must(s.AddACLRule(ctx, allowRule(db.KindUserGroup, tag+"all", "run", db.KindClientGroup, tag+"webs")))(t)
	must(s.AddACLRule(ctx, allowRule(db.KindUser, tag+"alice", "job.read", db.KindAny, "")))(t)
	must(s.RegisterServer(ctx, db.ServerInfo{Address: "127.0.0.1:7443", Hostname: tag + "host", Version: "v", StartedAt: t0}))(t)
	ok(t, s.RecordOperation(ctx, db.AuditEntry{At: t0, Actor: tag + "alice", Name: "job.submit", Outcome: "ok", Target: tag}))
}

func testBackupRestore(t *testing.T, s db.Store) {
	ctx := context.Background()
	fillStore(t, s, "")
	want := takeSnapshot(t, s)
	dir := t.TempDir()
	path := filepath.Join(dir, "scire backup 1.db") // a space: paths are not URIs
	ok(t, s.Backup(ctx, path))
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file: %v, %v", fi, err)
	}
	wantErr(t, "backup to an existing file", s.Backup(ctx, path), db.ErrConflict)
	wantErr(t, "backup into a missing directory", s.Backup(ctx, filepath.Join(dir, "nope", "b.db")), db.ErrNotFound)
	if _, err := os.Stat(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("a failed backup created its directory")
	}

	// Change everything: add, delete, move.
	fillStore(t, s, "later-")
	clients := must(s.ListClients(ctx, db.ClientFilter{Name: "new"}))(t)
	must(s.SetClientStatus(ctx, clients[0].ID, db.ClientActive))(t)
	for _, r := range want.Rules {
		must(s.RemoveACLRule(ctx, r.ID))(t)
	}
	must(s.DeleteUser(ctx, "alice"))(t)
	for _, j := range want.Jobs {
		for _, r := range want.Runs[j.ID] {
			must(s.ReportRuns(ctx, r.ClientID, []db.Report{{RunID: r.ID, State: runstate.Running, StartedAt: t0}}, t0))(t)
		}
	}
	if reflect.DeepEqual(takeSnapshot(t, s), want) {
		t.Fatal("the changes changed nothing")
	}

	ok(t, s.Restore(ctx, path))
	sameSnapshot(t, "after restore", s, want)
	if _, err := s.UserByName(ctx, "later-alice"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("a user added after the backup survived the restore: %v", err)
	}
	if v, dirty, err := s.SchemaVersion(ctx); err != nil || dirty || v == 0 {
		t.Fatalf("schema version after restore = %d, %v, %v", v, dirty, err)
	}
	ok(t, s.Ready(ctx))

	// The restored store works: the run in flight is acknowledged, new
	// rows get fresh ids, and the backup restores again.
	web := must(s.ListClients(ctx, db.ClientFilter{Name: "web"}))(t)[0]
	runID := want.Runs[want.Jobs[0].ID][0].ID
	if res := must(s.AckRuns(ctx, web.ID, []int64{runID}, t0))(t); res.Acknowledged != 1 {
		t.Fatalf("ack after restore = %+v", res)
	}
	j := mustSubmit(t, s, "after", 1, web.ID)
	for _, old := range want.Jobs {
		if j.ID == old.ID {
			t.Fatalf("new job reuses id %d", j.ID)
		}
	}
	ok(t, s.Restore(ctx, path))
	sameSnapshot(t, "after a second restore", s, want)
}

func testRestoreRefusals(t *testing.T, s db.Store) {
	ctx := context.Background()
	fillStore(t, s, "")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	ok(t, s.Backup(ctx, good))
	fillStore(t, s, "more-")
	want := takeSnapshot(t, s)

	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("notes.txt", []byte("this is not a database\n"))
	wantErrText(t, "restore of a text file", s.Restore(ctx, text), db.ErrInvalid, text)
	empty := write("empty.db", nil)
	wantErrText(t, "restore of an empty file", s.Restore(ctx, empty), db.ErrInvalid, empty)
	wantErr(t, "restore of a directory", s.Restore(ctx, dir), db.ErrInvalid)
	missing := filepath.Join(dir, "missing.db")
	wantErrText(t, "restore of a missing file", s.Restore(ctx, missing), db.ErrNotFound, missing)
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("restore created the missing file")
	}
	sameSnapshot(t, "after refused restores", s, want)

	// Backups of another version and foreign SQLite files: the driver's
	// backups are SQLite files here, which the test can edit.
	if sqliteBackup(t, good) {
		v, _, err := s.SchemaVersion(ctx)
		ok(t, err)
		other := copyFile(t, good, filepath.Join(dir, "other-version.db"))
		sqliteExec(t, other, `UPDATE schema_migrations SET version = ?`, v+98)
		wantErrText(t, "restore of another schema version", s.Restore(ctx, other), db.ErrInvalid,
			fmt.Sprintf("backup has schema version %d, this server has %d", v+98, v))
		dirty := copyFile(t, good, filepath.Join(dir, "dirty.db"))
		sqliteExec(t, dirty, `UPDATE schema_migrations SET dirty = 1`)
		wantErrText(t, "restore of a dirty backup", s.Restore(ctx, dirty), db.ErrInvalid, "dirty")
		foreign := filepath.Join(dir, "foreign.db")
		sqliteExec(t, foreign, `CREATE TABLE recipes (name TEXT)`)
		wantErrText(t, "restore of another application's database", s.Restore(ctx, foreign), db.ErrInvalid, foreign)
		altered := copyFile(t, good, filepath.Join(dir, "altered.db"))
		sqliteExec(t, altered, `ALTER TABLE jobs ADD COLUMN colour TEXT`)
		wantErr(t, "restore of a backup with other columns", s.Restore(ctx, altered), db.ErrInvalid)
		broken := copyFile(t, good, filepath.Join(dir, "broken.db"))
		sqliteExec(t, broken, `DELETE FROM jobs`) // runs now point nowhere
		wantErr(t, "restore of a backup whose rows break foreign keys", s.Restore(ctx, broken), db.ErrInvalid)
		sameSnapshot(t, "after refused restores of SQLite files", s, want)
	}

	// The refusals left the store working, and the good backup restores.
	ok(t, s.Restore(ctx, good))
	if got := takeSnapshot(t, s); len(got.Clients) != 2 {
		t.Fatalf("after restoring the good backup: %d clients, want 2", len(got.Clients))
	}
	fillStore(t, s, "again-")
}

func testBackupDuringWrites(t *testing.T, s db.Store) {
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		ids = append(ids, mustClient(t, s, fmt.Sprint("c", i), true).ID)
	}
	var (
		mu        sync.Mutex
		submitted int
		failed    error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := s.SubmitJob(ctx, db.NewJob{Name: fmt.Sprint("w", w, "-", i), Interpreter: "/bin/sh", Script: "true",
					SubmittedBy: "admin", ClientIDs: ids, CreatedAt: t0})
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
				}
				submitted++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return submitted }
	for deadline := time.Now().Add(10 * time.Second); count() < 20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	before := count()
	path := filepath.Join(t.TempDir(), "busy.db")
	err := s.Backup(ctx, path)
	close(stop)
	wg.Wait()
	ok(t, err)
	if failed != nil {
		t.Fatalf("a write during the backup failed: %v", failed)
	}
	total := count()

	ok(t, s.Restore(ctx, path))
	jobs := must(s.ListJobs(ctx, db.JobFilter{Limit: 100000}))(t)
	if len(jobs) < before || len(jobs) > total {
		t.Fatalf("backup holds %d jobs; %d were submitted before it started, %d in all", len(jobs), before, total)
	}
	for _, j := range jobs {
		if n := len(must(s.Runs(ctx, j.ID))(t)); n != len(ids) {
			t.Fatalf("job %d has %d runs in the backup, want %d: the copy caught a half-written job", j.ID, n, len(ids))
		}
	}
	if len(must(s.ListClients(ctx, db.ClientFilter{}))(t)) != len(ids) {
		t.Fatal("clients missing from the backup")
	}
}

func testReset(t *testing.T, s db.Store) {
	ctx := context.Background()
	fillStore(t, s, "")
	v0, _, err := s.SchemaVersion(ctx)
	ok(t, err)
	ok(t, s.Reset(ctx))
	if sn := takeSnapshot(t, s); !sn.empty() {
		t.Fatalf("after reset the store still holds %+v", sn)
	}
	if _, err := s.ClientByFingerprint(ctx, "fp-web"); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("client after reset: %v", err)
	}
	if v, dirty, err := s.SchemaVersion(ctx); err != nil || dirty || v != v0 {
		t.Fatalf("schema version after reset = %d, %v, %v; want %d", v, dirty, err, v0)
	}
	ok(t, s.Ready(ctx))
	ok(t, s.Reset(ctx)) // resetting an empty store is fine

	// Everything works again, names included.
	fillStore(t, s, "")
	web := must(s.ListClients(ctx, db.ClientFilter{Name: "web"}))(t)[0]
	mustSubmit(t, s, "after-reset", 1, web.ID)
	if ds := claim(t, s, web.ID, 5); len(ds) != 1 || ds[0].Job.Name != "after-reset" {
		t.Fatalf("claim after reset = %+v", ds)
	}
	must(s.EnsureUser(ctx, "admin"))(t)
}

func testSchemaVersion(t *testing.T, s db.Store) {
	v, dirty, err := s.SchemaVersion(context.Background())
	if err != nil || dirty || v == 0 {
		t.Fatalf("SchemaVersion = %d, %v, %v; want a clean version > 0", v, dirty, err)
	}
	if lv := s.LatestVersion(); lv != v {
		t.Fatalf("a fresh store is at version %d, its driver's latest is %d", v, lv)
	}
}

// sqliteBackup reports whether a backup file is an SQLite database the
// test can open (the "sqlite" database/sql driver is linked in).
func sqliteBackup(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.HasPrefix(b, []byte("SQLite format 3\x00")) && slices.Contains(sql.Drivers(), "sqlite")
}

func sqliteExec(t *testing.T, path, stmt string, args ...any) {
	t.Helper()
	d, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(stmt, args...); err != nil {
		t.Fatalf("%s on %s: %v", stmt, path, err)
	}
}

func copyFile(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}
