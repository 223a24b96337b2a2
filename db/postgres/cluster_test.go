package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/postgres"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/pgtest"
)

const (
	shared    = gate.NonModifier
	exclusive = gate.Modifier
)

func lock(t *testing.T, s *postgres.Store, c gate.Class) func() {
	t.Helper()
	unlock, err := s.ClusterLock().Lock(context.Background(), c, true)
	if err != nil {
		t.Fatalf("%s lock: %v", c, err)
	}
	return unlock
}

func wantBusy(t *testing.T, what string, s *postgres.Store, c gate.Class) {
	t.Helper()
	unlock, err := s.ClusterLock().Lock(context.Background(), c, true)
	if err == nil {
		unlock()
		t.Fatalf("%s: %s lock taken, want it busy", what, c)
	}
	if !errors.Is(err, gate.ErrClusterBusy) {
		t.Fatalf("%s: err = %v, want ErrClusterBusy", what, err)
	}
}

// advisoryLocks counts the gate's advisory locks, granted and waiting.
func advisoryLocks(t *testing.T, url string) (granted, waiting int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		postgres.GateLockKey>>32, postgres.GateLockKey&0xffffffff).Scan(&granted, &waiting)
	if err != nil {
		t.Fatal(err)
	}
	return granted, waiting
}

func TestClusterLockModes(t *testing.T) {
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)

	// An exclusive lock excludes everything, on every store, its own too.
	un := lock(t, a, exclusive)
	wantBusy(t, "exclusive held on a", b, exclusive)
	wantBusy(t, "exclusive held on a", b, shared)
	wantBusy(t, "exclusive held on a", a, exclusive)
	wantBusy(t, "exclusive held on a", a, shared)
	if g, w := advisoryLocks(t, url); g != 1 || w != 0 {
		t.Fatalf("%d granted, %d waiting; want 1 and 0", g, w)
	}
	un()
	un() // a second call does nothing

	// Shared locks coexist, and exclude an exclusive one.
	sa, sb, sa2 := lock(t, a, shared), lock(t, b, shared), lock(t, a, shared)
	wantBusy(t, "shared held", b, exclusive)
	wantBusy(t, "shared held", a, exclusive)
	if g, _ := advisoryLocks(t, url); g != 3 {
		t.Fatalf("%d shared locks granted, want 3", g)
	}
	sa()
	sb()
	wantBusy(t, "one shared still held", b, exclusive)
	sa2()
	lock(t, b, exclusive)()
	if g, w := advisoryLocks(t, url); g != 0 || w != 0 {
		t.Fatalf("after every unlock: %d granted, %d waiting", g, w)
	}
}

func TestClusterLockWaitsInOrder(t *testing.T) {
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx := context.Background()

	sh := lock(t, a, shared)
	// An exclusive request waits for the shared holder; a shared request
	// made after it waits behind it (no starvation of modifiers).
	exGot := make(chan func())
	go func() {
		un, err := b.ClusterLock().Lock(ctx, exclusive, false)
		if err != nil {
			t.Error(err)
			close(exGot)
			return
		}
		exGot <- un
	}()
	waitFor(t, "the exclusive request to queue", func() bool { _, w := advisoryLocks(t, url); return w == 1 })
	shGot := make(chan func())
	go func() {
		un, err := a.ClusterLock().Lock(ctx, shared, false)
		if err != nil {
			t.Error(err)
			close(shGot)
			return
		}
		shGot <- un
	}()
	waitFor(t, "the shared request to queue", func() bool { _, w := advisoryLocks(t, url); return w == 2 })
	select {
	case <-exGot:
		t.Fatal("exclusive lock granted beside a shared one")
	case <-shGot:
		t.Fatal("shared lock granted ahead of a waiting exclusive one")
	case <-time.After(100 * time.Millisecond):
	}
	sh()
	var ex func()
	select {
	case ex = <-exGot:
	case <-time.After(10 * time.Second):
		t.Fatal("the exclusive lock was not granted after the shared one went")
	}
	select {
	case <-shGot:
		t.Fatal("shared lock granted beside the exclusive one")
	case <-time.After(100 * time.Millisecond):
	}
	ex()
	select {
	case un := <-shGot:
		un()
	case <-time.After(10 * time.Second):
		t.Fatal("the shared lock was not granted after the exclusive one went")
	}
}

func TestClusterLockCancelWhileWaiting(t *testing.T) {
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)

	held := lock(t, a, exclusive)
	for _, c := range []gate.Class{exclusive, shared} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		un, err := b.ClusterLock().Lock(ctx, c, false)
		cancel()
		if err == nil {
			un()
			t.Fatalf("%s lock granted while an exclusive one is held", c)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s lock: err = %v, want one wrapping context.DeadlineExceeded", c, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s lock returned %v after its deadline of 300ms", c, d)
		}
	}
	// A cancellation (not a deadline) too.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	if un, err := b.ClusterLock().Lock(ctx, exclusive, false); err == nil || !errors.Is(err, context.Canceled) {
		if err == nil {
			un()
		}
		t.Fatalf("cancelled wait: err = %v, want context.Canceled", err)
	}
	waitFor(t, "the abandoned requests to leave the queue", func() bool { _, w := advisoryLocks(t, url); return w == 0 })
	held()
	// Nothing the abandoned requests asked for is held now.
	waitFor(t, "no lock held", func() bool { g, _ := advisoryLocks(t, url); return g == 0 })
	lock(t, a, exclusive)()
	lock(t, b, exclusive)()
}

func TestClusterLockDiesWithItsSession(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)

	unlockA := lock(t, a, exclusive)
	wantBusy(t, "held by a", b, exclusive)
	// The holder's backend goes (a daemon's connection dies, or an
	// administrator kills it) from another connection.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		postgres.GateLockKey>>32, postgres.GateLockKey&0xffffffff).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d backends, %v; want 1", killed, err)
	}
	var unlockB func()
	waitFor(t, "b to get the lock", func() bool {
		un, err := b.ClusterLock().Lock(ctx, exclusive, true)
		if err != nil {
			return false
		}
		unlockB = un
		return true
	})
	// a's late unlock finds its session gone and releases nothing of b's.
	unlockA()
	wantBusy(t, "held by b after a's late unlock", a, shared)
	unlockB()
	// a's store still works: its lock pool dropped the dead session.
	lock(t, a, exclusive)()
}

func TestCloseEndsHeldLocks(t *testing.T) {
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	unlock := lock(t, a, exclusive)
	done := make(chan struct{})
	go func() { a.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waits for a held cluster lock")
	}
	unlock() // after Close: does nothing, does not panic
	// The backend ends the closed session, and its locks with it, a moment
	// after the socket closes (asynchronously, on the server's side).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		u, err := b.ClusterLock().Lock(context.Background(), exclusive, true)
		if err == nil {
			u()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the closed store's lock outlived it: %v", err)
		}
	}
	if _, err := a.ClusterLock().Lock(context.Background(), shared, true); err == nil {
		t.Fatal("lock on a closed store succeeded")
	}
}

// Two gates on two stores make one cluster-wide gate.
func TestGatesOnTwoDaemons(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	ga, gb := gate.New(gate.Options{Cluster: a.ClusterLock()}), gate.New(gate.Options{Cluster: b.ClusterLock()})

	mod, err := ga.Enter(ctx, gate.Request{Name: "db.restore", Class: gate.Modifier, User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gb.Enter(ctx, gate.Request{Name: "job.list", Class: gate.NonModifier, User: "bob", NoWait: true})
	var be *gate.BusyError
	if !errors.As(err, &be) || !be.Cluster {
		t.Fatalf("non-modifier on the other daemon: err = %v, want a cluster BusyError", err)
	}
	// Waiting instead: it runs once the modifier is done.
	got := make(chan error, 1)
	go func() {
		tk, err := gb.Enter(ctx, gate.Request{Name: "job.list", Class: gate.NonModifier, User: "bob"})
		if err == nil {
			tk.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("non-modifier ran beside a modifier on another daemon (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	mod.Release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting non-modifier never ran")
	}
	r1, err := ga.Enter(ctx, gate.Request{Name: "job.list", Class: gate.NonModifier})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := gb.Enter(ctx, gate.Request{Name: "job.list", Class: gate.NonModifier, NoWait: true})
	if err != nil {
		t.Fatalf("two non-modifiers on two daemons: %v", err)
	}
	r1.Release()
	r2.Release()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TryLock's named lock is one holder among every daemon on the database:
// another store is refused while one holds it, the gate's lock is not
// affected, and the lock dies with the holder's sessions (Close, as a
// crash would).
func TestTryLockAcrossDaemons(t *testing.T) {
	url := pgtest.Start(t)
	a, b := openURL(t, url), openURL(t, url)
	ctx := context.Background()

	release, err := a.TryLock(ctx, "cleaner")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLock(ctx, "cleaner"); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("second daemon: err = %v, want ErrConflict", err)
	}
	lock(t, b, exclusive)() // the gate is another key
	release()
	again, err := b.TryLock(ctx, "cleaner")
	if err != nil {
		t.Fatalf("after the release: %v", err)
	}
	if _, err := a.TryLock(ctx, "cleaner"); !errors.Is(err, db.ErrConflict) {
		t.Fatalf("held by b: err = %v, want ErrConflict", err)
	}
	b.Close() // ends its sessions, and with them the lock
	again()   // does nothing now
	// The server ends the closed session's backend, and frees its locks,
	// a moment after the client hung up.
	var un func()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if un, err = a.TryLock(ctx, "cleaner"); err == nil {
			break
		} else if !errors.Is(err, db.ErrConflict) || time.Now().After(deadline) {
			t.Fatalf("after the holder closed: %v", err)
		}
	}
	un()
	if postgres.LockKey("cleaner") == postgres.GateLockKey || postgres.LockKey("cleaner") == postgres.LockKey("other") {
		t.Fatal("lock keys collide")
	}
}
