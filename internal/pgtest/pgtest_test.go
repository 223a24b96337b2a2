package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStartGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a == b {
		t.Fatalf("two Starts gave the same database %s", a)
	}
	for _, u := range []string{a, b} {
		if !strings.HasPrefix(u, "postgres://postgres@127.0.0.1:") {
			t.Fatalf("URL %q", u)
		}
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("tables in a new database: %d, %v", n, err)
		}
		var enc string
		if err := conn.QueryRow(ctx, `SHOW server_encoding`).Scan(&enc); err != nil || enc != "UTF8" {
			t.Fatalf("server encoding %q, %v", enc, err)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	}
}

func TestServerDoesNotRunAsRoot(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var dir string
	if err := conn.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && statUID(fi) == 0 {
		t.Fatalf("data directory %s belongs to root", dir)
	}
}
