package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/pgtest"
)

// The clients' version as two daemons on one database see it: a change
// counts once committed, once per transaction however many clients it
// changed (a savepoint rolled back takes its step back with it), and a
// transaction changing several clients does not deadlock on the version
// with another that changes one of them.
func TestClientsVersionAcrossDaemons(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	version := func() int64 {
		t.Helper()
		v, err := b.ClientsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var ids []int64
	for _, name := range []string{"web1", "web2"} {
		c, err := a.RegisterClient(ctx, db.ClientRegistration{Fingerprint: "fp-" + name, Name: name, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	v0 := version()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO clients (fingerprint, name, registered_at, last_seen)
		SELECT 'bulk-' || i, 'bulk' || i, 1, 1 FROM generate_series(1, 2000) AS i`)
	exec(`UPDATE clients SET labels = '{"env":"prod"}'`)
	if v := version(); v != v0 {
		t.Fatalf("version %d before the commit, want %d", v, v0)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+1 {
		t.Fatalf("version %d after one transaction of 2,002 changes, want %d", v, v0+1)
	}

	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec(`SAVEPOINT s`)
	exec(`UPDATE clients SET labels = '{"env":"dev"}' WHERE id = $1`, ids[0])
	exec(`ROLLBACK TO SAVEPOINT s`)
	exec(`UPDATE clients SET facts = '{"os":"linux"}' WHERE id = $1`, ids[1])
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+2 {
		t.Fatalf("version %d after a change behind a savepoint rolled back, want %d", v, v0+2)
	}

	// Another session holds web2's row; a daemon labels web1 and web2
	// meanwhile, and waits for it; the session then changes web2, which
	// takes the version's row, and commits. Had the daemon changed web1
	// before it waited, it would hold the version's row: a deadlock.
	// The session looks for deadlocks first (the daemon's would be
	// retried): one shows as this test's failure.
	if _, err := conn.Exec(ctx, `SET deadlock_timeout = '50ms'`); err != nil {
		t.Fatal(err)
	}
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec(`SELECT id FROM clients WHERE id = $1 FOR UPDATE`, ids[1])
	done := make(chan error, 1)
	go func() {
		_, err := a.SetClientLabels(ctx, ids, map[string]string{"tier": "web"}, nil)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	exec(`UPDATE clients SET labels = '{"env":"qa"}' WHERE id = $1`, ids[1])
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v := version(); v != v0+4 {
		t.Fatalf("version %d after two transactions, want %d", v, v0+4)
	}
	c, err := b.Client(ctx, ids[1])
	if err != nil || c.Labels["env"] != "qa" || c.Labels["tier"] != "web" {
		t.Fatalf("web2's labels = %v, %v", c.Labels, err)
	}
}
