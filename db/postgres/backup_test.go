package postgres_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/runstate"
)

// Backups move between the engines: SQLite → PostgreSQL (a fleet outgrows
// the embedded default), PostgreSQL → SQLite, and back.

func openSQLite(t *testing.T) db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		ok(t, err)
		return v
	}
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fill puts a bit of everything in a store, every column type and flag
// value included: runs in every state, exit codes, truncated output, rules
// allowing and denying, active and not, revoked tokens, nested groups.
func fill(t *testing.T, s db.Store) {
	t.Helper()
	ctx := context.Background()
	var clients []db.Client
	for i, name := range []string{"web1", "web2", "db1", "ünïcødé 'x'"} {
		c := must(s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprint("fp", i), Name: name, Hostname: name,
			OS: "linux", Arch: "amd64", Version: "1.0", Mode: []string{db.ModePoll, db.ModeDaemon}[i%2],
			CallbackURL: "https://" + name + ":7444", At: t0.Add(time.Duration(i) * time.Second)}))(t)
		if i < 3 {
			c = must(s.SetClientStatus(ctx, c.ID, db.ClientActive))(t)
		}
		clients = append(clients, c)
	}
	must(s.SetClientStatus(ctx, clients[2].ID, db.ClientRevoked))(t)
	ids := []int64{clients[0].ID, clients[1].ID}
	for i := range 6 {
		must(s.SubmitJob(ctx, db.NewJob{Name: fmt.Sprint("job", i), Interpreter: "/bin/sh", Script: "echo ]]> \x01 \r\n 日本",
			Priority: i % 3, SubmittedBy: "alice", ClientIDs: ids, Targets: []string{"web1", "web2"}, CreatedAt: t0,
			NotBefore: t0.Add(-time.Hour), ExpiresAt: t0.Add(time.Duration(i) * time.Hour), Timeout: time.Minute, MaxAttempts: i}))(t)
	}
	ds := must(s.ClaimRuns(ctx, db.Claim{ClientID: clients[0].ID, Max: 4, At: t0, Lease: time.Minute, ServerID: 3,
		Decide: func(j db.Job, _ int64) (bool, string) { return j.Name != "job5", "rule 9 denies" }}))(t)
	must(s.AckRuns(ctx, clients[0].ID, []int64{ds[0].Run.ID, ds[1].Run.ID}, t0.Add(time.Second)))(t)
	three := 3
	must(s.ReportRuns(ctx, clients[0].ID, []db.Report{
		{RunID: ds[0].Run.ID, State: runstate.Failed, ExitCode: &three, StartedAt: t0, Finished: t0.Add(2 * time.Second),
			Output: "out\tput\n… [truncated]", Truncated: true},
		{RunID: ds[1].Run.ID, State: runstate.Running, StartedAt: t0.Add(time.Second)},
	}, t0.Add(2*time.Second)))(t)
	jobs := must(s.ListJobs(ctx, db.JobFilter{}))(t)
	must(s.CancelJob(ctx, jobs[0].ID, t0.Add(3*time.Second), "cancelled by alice"))(t)

	alice := must(s.CreateUser(ctx, "alice"))(t)
	must(s.EnsureUser(ctx, "admin"))(t)
	tok := must(s.CreateToken(ctx, alice.ID, "laptop", []byte{0, 1, 2, 255}))(t)
	must(s.CreateToken(ctx, alice.ID, "ci", []byte("hash")))(t)
	must(s.RevokeToken(ctx, tok.ID))(t)
	for _, g := range []string{"ops", "all"} {
		must(s.CreateGroup(ctx, db.KindUserGroup, g, "note "+g))(t)
		must(s.CreateGroup(ctx, db.KindClientGroup, g, ""))(t)
	}
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "ops", db.Member{User: "alice"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{Group: "ops"}))
	ok(t, s.AddGroupMember(ctx, db.KindUserGroup, "all", db.Member{User: "admin"}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "ops", db.Member{ClientID: clients[1].ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "ops", db.Member{ClientID: clients[0].ID}))
	ok(t, s.AddGroupMember(ctx, db.KindClientGroup, "all", db.Member{Group: "ops"}))
	for i, r := range []db.ACLRule{
		{SubjectKind: db.KindUserGroup, Subject: "all", Permission: "run", TargetKind: db.KindClientGroup, Target: "all", Allow: true, Active: true},
		{SubjectKind: db.KindUser, Subject: "alice", Permission: "*", TargetKind: db.KindClient, TargetID: clients[2].ID, Allow: false, Active: true},
		{SubjectKind: db.KindAny, Permission: "reboot", TargetKind: db.KindAny, Allow: true, Active: false, Note: "off"},
	} {
		r.CreatedBy, r.CreatedAt = "admin", t0.Add(time.Duration(i)*time.Minute)
		must(s.AddACLRule(ctx, r))(t)
	}
	si := must(s.RegisterServer(ctx, db.ServerInfo{Address: "10.0.0.1:7443", Hostname: "h1", Version: "v1", StartedAt: t0}))(t)
	ok(t, s.HeartbeatServer(ctx, si.ID, t0.Add(time.Minute)))
	for i, o := range []string{"ok", "fault 403: denied", "ok"} {
		ok(t, s.RecordOperation(ctx, db.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), ServerID: si.ID, Actor: "alice",
			Name: "job.submit", Target: fmt.Sprint(i), Outcome: o, Detail: "d"}))
	}
}

// snapshot is everything a store holds, as its methods list it, with the
// policy's lists sorted (the engines list group members in their own order).
type snapshot struct {
	Clients      []db.Client
	Jobs         []db.Job
	Runs         map[int64][]db.Run
	Users        []db.User
	Tokens       map[string][]db.Token
	TokenHashes  map[int64]string
	UserGroups   []db.Group
	ClientGroups []db.Group
	Rules        []db.ACLRule
	Servers      []db.ServerInfo
	Operations   []db.AuditEntry
	Policy       db.PolicyData
	Cancelled    map[int64][]int64
	Events       []string // as readers see them: ids, types, what they are about
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
		TokenHashes:  map[int64]string{},
		UserGroups:   must(s.ListGroups(ctx, db.KindUserGroup))(t),
		ClientGroups: must(s.ListGroups(ctx, db.KindClientGroup))(t),
		Rules:        must(s.ListACLRules(ctx))(t),
		Servers:      must(s.ListServers(ctx))(t),
		Operations:   must(s.ListOperations(ctx, db.AuditFilter{Limit: 100000}))(t),
		Policy:       must(s.Policy(ctx))(t),
		Cancelled:    map[int64][]int64{},
	}
	for _, j := range sn.Jobs {
		sn.Runs[j.ID] = must(s.Runs(ctx, j.ID))(t)
	}
	for _, u := range sn.Users {
		toks := must(s.ListTokens(ctx, u.ID))(t)
		sn.Tokens[u.Name] = toks
		for _, tk := range toks {
			full, _ := must2(s.TokenByID(ctx, tk.ID))(t)
			sn.TokenHashes[tk.ID] = string(full.Hash)
		}
	}
	for _, c := range sn.Clients {
		sn.Cancelled[c.ID] = must(s.CancelledRuns(ctx, c.ID, time.Time{}))(t)
	}
	for _, e := range must(s.Events(ctx, db.EventFilter{Limit: 100000}))(t) {
		exit := "-"
		if e.ExitCode != nil {
			exit = fmt.Sprint(*e.ExitCode)
		}
		sn.Events = append(sn.Events, fmt.Sprintf("%d %s %v job=%d run=%d client=%d/%s schedule=%d exit=%s %q",
			e.ID, e.Type, e.At.UnixNano(), e.JobID, e.RunID, e.ClientID, e.Client, e.ScheduleID, exit, e.Detail))
	}
	for _, m := range []map[string][]string{sn.Policy.UserGroupUsers, sn.Policy.UserGroupChildren, sn.Policy.ClientGroupChild} {
		for _, v := range m {
			slices.Sort(v)
		}
	}
	for _, v := range sn.Policy.ClientGroupIDs {
		slices.Sort(v)
	}
	return sn
}

func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		ok(t, err)
		return a, b
	}
}

func sameSnapshot(t *testing.T, what string, got, want snapshot) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range g.NumField() {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s: %s differ:\n got %+v\nwant %+v", what, g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
	t.FailNow()
}

func TestBackupFromSQLiteRestoresIntoPostgres(t *testing.T) {
	ctx := context.Background()
	lite := openSQLite(t)
	fill(t, lite)
	want := takeSnapshot(t, lite)
	path := filepath.Join(t.TempDir(), "from sqlite.db")
	ok(t, lite.Backup(ctx, path))

	pg := open(t)
	fill(t, pg) // overwritten by the restore
	ok(t, pg.Restore(ctx, path))
	sameSnapshot(t, "PostgreSQL after restoring an SQLite backup", takeSnapshot(t, pg), want)

	// The restored store goes on: fresh ids, dispatch, the run in flight.
	web1 := must(pg.ListClients(ctx, db.ClientFilter{Name: "web1"}))(t)[0]
	j := must(pg.SubmitJob(ctx, db.NewJob{Name: "after", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{web1.ID}, CreatedAt: t0, Priority: 99}))(t)
	for _, old := range want.Jobs {
		if j.ID <= old.ID {
			t.Fatalf("new job id %d, want above the restored ids", j.ID)
		}
	}
	ds := must(pg.ClaimRuns(ctx, db.Claim{ClientID: web1.ID, Max: 1, At: t0, Lease: time.Minute}))(t)
	if len(ds) != 1 || ds[0].Job.ID != j.ID {
		t.Fatalf("claim after restore = %+v", ds)
	}
	must(pg.CreateUser(ctx, "carol"))(t)
	must(pg.CreateGroup(ctx, db.KindClientGroup, "new", ""))(t)
	must(pg.RegisterServer(ctx, db.ServerInfo{Address: "x", StartedAt: t0}))(t)
}

func TestBackupFromPostgresRestoresIntoSQLite(t *testing.T) {
	ctx := context.Background()
	pg := open(t)
	fill(t, pg)
	want := takeSnapshot(t, pg)
	path := filepath.Join(t.TempDir(), "from postgres.db")
	ok(t, pg.Backup(ctx, path))

	lite := openSQLite(t)
	ok(t, lite.Restore(ctx, path))
	sameSnapshot(t, "SQLite after restoring a PostgreSQL backup", takeSnapshot(t, lite), want)
	must(lite.SubmitJob(ctx, db.NewJob{Name: "after", Interpreter: "/bin/sh", Script: "true", SubmittedBy: "admin",
		ClientIDs: []int64{want.Clients[0].ID}, CreatedAt: t0}))(t)

	// And back: SQLite's backup of it restores into a new PostgreSQL
	// database as it was.
	path2 := filepath.Join(t.TempDir(), "again.db")
	ok(t, lite.Backup(ctx, path2))
	pg2 := open(t)
	ok(t, pg2.Restore(ctx, path2))
	sameSnapshot(t, "PostgreSQL → SQLite → PostgreSQL", takeSnapshot(t, pg2), takeSnapshot(t, lite))

	// A PostgreSQL backup restores into PostgreSQL too (the conformance
	// suite does this on one database; here into another).
	pg3 := open(t)
	ok(t, pg3.Restore(ctx, path))
	sameSnapshot(t, "PostgreSQL → PostgreSQL", takeSnapshot(t, pg3), want)
}

func TestBackupOfEmptyStoreRestoresEmpty(t *testing.T) {
	ctx := context.Background()
	pg := open(t)
	path := filepath.Join(t.TempDir(), "empty.db")
	ok(t, pg.Backup(ctx, path))
	other := open(t)
	fill(t, other)
	var highest int64
	for _, u := range must(other.ListUsers(ctx))(t) {
		highest = max(highest, u.ID)
	}
	ok(t, other.Restore(ctx, path))
	sameSnapshot(t, "restored empty backup", takeSnapshot(t, other), takeSnapshot(t, openSQLite(t)))
	// Emptied, but the ids it handed out stay handed out.
	u := must(other.EnsureUser(ctx, "admin"))(t)
	if u.ID <= highest {
		t.Fatalf("first user after restoring an empty backup has id %d; ids up to %d were handed out before", u.ID, highest)
	}
}
