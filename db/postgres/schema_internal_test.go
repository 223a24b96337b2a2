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
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

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
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY 1`, nil,
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
	drv, err := migratepgx.WithInstance(conn, &migratepgx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
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
