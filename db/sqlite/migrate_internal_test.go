package sqlite

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// schemaOf lists a database's tables and indexes with their SQL, and
// whether foreign keys are intact.
func schemaOf(t *testing.T, conn *sql.DB) map[string]string {
	t.Helper()
	rows, err := conn.Query(`SELECT type || ' ' || name, COALESCE(sql, '') FROM sqlite_master
		WHERE name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_migrations' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, q string
		if err := rows.Scan(&n, &q); err != nil {
			t.Fatal(err)
		}
		out[n] = q
	}
	return out
}

// A version-1 database with data migrates to version 2 keeping every row,
// index and foreign key, with AUTOINCREMENT ids and client rules resolved.
func TestMigrateVersion1WithData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := dbcore.NewMigrate(migrations, "sqlite", conn, migrateDriver)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Migrate(1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO servers (id, address, started_at, heartbeat_at) VALUES (1, 'a', 1, 1)`,
		`INSERT INTO clients (id, fingerprint, name, status, registered_at, last_seen) VALUES
			(1, 'fp1', 'web', 'active', 1, 1), (2, 'fp2', 'db', 'revoked', 1, 1), (3, 'fp3', 'web', 'revoked', 1, 1)`,
		`INSERT INTO client_groups (id, name, created_at) VALUES (1, 'all', 1), (2, 'webs', 1)`,
		`INSERT INTO client_group_members VALUES (2, 1), (2, 3)`,
		`INSERT INTO client_group_children VALUES (1, 2)`,
		`INSERT INTO users (id, name, created_at) VALUES (1, 'admin', 1), (2, 'alice', 1)`,
		`INSERT INTO user_tokens (id, user_id, hash, created_at) VALUES (1, 1, x'00', 1)`,
		`INSERT INTO user_groups (id, name, created_at) VALUES (1, 'ops', 1), (2, 'all', 1)`,
		`INSERT INTO user_group_members VALUES (1, 2)`,
		`INSERT INTO user_group_children VALUES (2, 1)`,
		`INSERT INTO acl_rules (id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_at) VALUES
			(1, 'user', 'alice', 'run', 'client', 'web', 1, 1, '', 1),
			(2, 'user', 'alice', 'run', 'client', '2', 1, 1, '', 1),
			(3, 'user', 'alice', 'run', 'client', 'ghost', 1, 1, 'pre-enrolled', 1),
			(4, 'user-group', 'ops', '*', 'client-group', 'webs', 0, 1, '', 1),
			(5, '*', '', 'run', '*', '', 1, 0, '', 1)`,
		`INSERT INTO jobs (id, name, interpreter, script, submitted_by, created_at) VALUES (1, 'j', '/bin/sh', 'true', 'alice', 1)`,
		`INSERT INTO runs (id, job_id, client_id, state, priority, created_at, updated_at) VALUES
			(1, 1, 1, 'pending', 0, 1, 1), (2, 1, 2, 'succeeded', 0, 1, 1), (3, 1, 3, 'cancelled', 0, 1, 1)`,
		`INSERT INTO operations (id, at, actor, name, outcome) VALUES (1, 1, 'admin', 'acl.add', 'ok')`,
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	m.Close()

	s, err := OpenFile(ctx, path, "FULL")
	if err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	defer s.Close()
	if v, dirty, err := s.SchemaVersion(ctx); err != nil || dirty || v != SchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v, %v", v, dirty, err)
	}

	// Every row is there: nothing cascaded away while the tables were rebuilt.
	for table, want := range map[string]int{"servers": 1, "clients": 3, "client_groups": 2, "client_group_members": 2,
		"client_group_children": 1, "users": 2, "user_tokens": 1, "user_groups": 2, "user_group_members": 1,
		"user_group_children": 1, "acl_rules": 5, "jobs": 1, "runs": 3, "operations": 1} {
		var n int
		if err := s.r.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d rows (%v), want %d", table, n, err, want)
		}
	}
	var bad int
	if err := s.r.QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&bad); err != nil || bad != 0 {
		t.Errorf("foreign key check: %d violations, %v", bad, err)
	}

	// Client rules name one client each: by id, or the accepted one of the
	// name; one naming no client is switched off and says why.
	rules, err := s.ListACLRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		target   string
		targetID int64
		active   bool
		note     string
	}{{"web", 1, true, ""}, {"db", 2, true, ""}, {"ghost", 0, false, "pre-enrolled [switched off"}, {"webs", 0, true, ""}, {"", 0, false, ""}}
	for i, w := range want {
		r := rules[i]
		if r.Target != w.target || r.TargetID != w.targetID || r.Active != w.active || !strings.HasPrefix(r.Note, w.note) {
			t.Errorf("rule %d = %+v, want target %q (id %d), active %v, note %q…", r.ID, r, w.target, w.targetID, w.active, w.note)
		}
	}

	// The same tables and indexes as a new database, and AUTOINCREMENT.
	fresh, err := OpenFile(ctx, filepath.Join(t.TempDir(), "v2.db"), "FULL")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	got, exp := schemaOf(t, s.r), schemaOf(t, fresh.r)
	gotNames, expNames := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(exp))
	if !slices.Equal(gotNames, expNames) {
		t.Fatalf("migrated schema has %v, a new one %v", gotNames, expNames)
	}
	for _, n := range gotNames {
		if got[n] != exp[n] {
			t.Errorf("%s differs:\nmigrated: %s\nnew:      %s", n, got[n], exp[n])
		}
		if strings.Contains(got[n], "INTEGER PRIMARY KEY") && !strings.Contains(got[n], "INTEGER PRIMARY KEY AUTOINCREMENT") {
			t.Errorf("%s has an id without AUTOINCREMENT: %s", n, got[n])
		}
	}

	// And the next client id continues past the highest one.
	c, err := s.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp4", Name: "new", Hostname: "new"})
	if err != nil || c.ID != 4 {
		t.Fatalf("new client = %+v, %v; want id 4", c, err)
	}
}
