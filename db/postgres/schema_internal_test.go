package postgres

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/internal/pgtest"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	url := pgtest.Start(t)
	s, err := OpenURL(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

// sqliteSchema opens a new SQLite store's file and returns its tables with
// their columns, and its index names.
func sqliteSchema(t *testing.T) (map[string][]string, []string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := sqlite.OpenFile(ctx, path, "FULL")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	lite, err := sql.Open("sqlite", sqliteURI(path, "mode=ro"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	tables, err := sqliteTables(ctx, lite)
	if err != nil {
		t.Fatal(err)
	}
	var idx []string
	rows, err := lite.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND tbl_name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, n)
	}
	return tables, idx
}

// The two drivers' schemas have the same tables, columns (in order) and
// indexes: backups move between them, and a new index in one belongs in
// the other.
func TestSchemaMirrorsSQLite(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	liteTables, liteIdx := sqliteSchema(t)

	var all []string
	err := eachRow(ctx, s.pool, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name = 'events', 1`, nil,
		func(rows pgx.Rows) error {
			var n string
			err := rows.Scan(&n)
			all = append(all, n)
			return err
		})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(all, dataTables) {
		t.Fatalf("schema tables %v, dataTables %v: keep the list in step with the migrations", all, dataTables)
	}
	pg, err := pgTables(ctx, s.pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTables(pg, liteTables); err != nil {
		t.Fatalf("PostgreSQL and SQLite schemas differ: %v", err)
	}
	for _, tb := range pg {
		for _, c := range tb.columns {
			if !slices.Contains([]string{"bigint", "text", "boolean", "bytea"}, c.typ) {
				t.Errorf("%s.%s: type %s has no conversion from SQLite", tb.name, c.name, c.typ)
			}
		}
	}

	// Indexes, but those PostgreSQL makes for primary keys and UNIQUE
	// constraints (SQLite's are its sqlite_autoindex_*).
	var pgIdx []string
	err = eachRow(ctx, s.pool, `SELECT i.indexname::text FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename <> 'schema_migrations'
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))
		ORDER BY 1`, nil, func(rows pgx.Rows) error {
		var n string
		err := rows.Scan(&n)
		pgIdx = append(pgIdx, n)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL's own: the events it has yet to number (seq), which
	// SQLite, numbering them by id, does not have.
	pgIdx = slices.DeleteFunc(pgIdx, func(n string) bool { return n == "events_unsequenced" })
	if !slices.Equal(pgIdx, liteIdx) {
		t.Fatalf("indexes: PostgreSQL %v, SQLite %v", pgIdx, liteIdx)
	}
	if LatestVersion != sqlite.LatestVersion {
		t.Fatalf("schema versions: PostgreSQL %d, SQLite %d", LatestVersion, sqlite.LatestVersion)
	}
}

// The down migration undoes the up migration completely.
func TestMigrationsDownAndUp(t *testing.T) {
	ctx := context.Background()
	s, url := openStore(t)
	s.Close()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	conn := stdlib.OpenDB(*cfg)
	defer conn.Close()
	m, err := dbcore.NewMigrate(migrations, "pgx5", conn, migrateDriver)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Down(); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, err := conn.QueryContext(ctx, `SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND relname <> 'schema_migrations' AND relname NOT LIKE 'schema_migrations%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		left = append(left, n)
	}
	rows.Close()
	if len(left) != 0 {
		t.Fatalf("after the down migration: %s", strings.Join(left, ", "))
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		t.Fatal(err)
	}
	s2, err := OpenURL(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.EnsureUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
}

// A version-1 database with client rules migrates to version 2 with each
// rule naming one client by id, as version 1 matched it: the id first,
// then the accepted client of that name, then the newest of that name; a
// rule naming no client is switched off and says why.
func TestMigrateVersion1Rules(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	conn := stdlib.OpenDB(*cfg)
	defer conn.Close()
	m, err := dbcore.NewMigrate(migrations, "pgx5", conn, migrateDriver)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Migrate(1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO clients (id, fingerprint, name, status, registered_at, last_seen) OVERRIDING SYSTEM VALUE VALUES
			(1, 'fp1', 'web', 'revoked', 1, 1), (2, 'fp2', 'web', 'active', 1, 1), (3, 'fp3', 'db', 'revoked', 1, 1), (4, 'fp4', 'db', 'pending', 1, 1)`,
		`INSERT INTO acl_rules (id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_at) OVERRIDING SYSTEM VALUE VALUES
			(1, '*', '', 'run', 'client', 'web', TRUE, TRUE, '', 1),
			(2, '*', '', 'run', 'client', '3', TRUE, TRUE, '', 1),
			(3, '*', '', 'run', 'client', 'db', TRUE, TRUE, '', 1),
			(4, '*', '', 'run', 'client', 'ghost', TRUE, TRUE, 'n', 1),
			(5, '*', '', 'run', '*', '', TRUE, TRUE, '', 1)`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	m.Close()
	s, err := OpenURL(ctx, url)
	if err != nil {
		t.Fatalf("migrate to version 2: %v", err)
	}
	defer s.Close()
	rules, err := s.ListACLRules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		target   string
		targetID int64
		active   bool
	}{{"web", 2, true}, {"db", 3, true}, {"db", 4, true}, {"ghost", 0, false}, {"", 0, true}}
	if len(rules) != len(want) {
		t.Fatalf("rules = %+v", rules)
	}
	for i, w := range want {
		r := rules[i]
		if r.Target != w.target || r.TargetID != w.targetID || r.Active != w.active {
			t.Errorf("rule %d = %+v, want target %q (id %d), active %v", r.ID, r, w.target, w.targetID, w.active)
		}
	}
	if !strings.HasPrefix(rules[3].Note, "n [switched off") {
		t.Errorf("unresolved rule's note = %q", rules[3].Note)
	}
}
