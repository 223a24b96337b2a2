package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db/postgres"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Several daemons on one PostgreSQL database share one gate (docs/protocol.md, "The gate and the blacklist"): the
// cluster-wide half is a session advisory lock, exclusive for modifiers and
// shared for non-modifiers (db/postgres ClusterLock). These tests run two
// in-process daemons, A and B, on one throwaway database; each has its own
// data directory (its own CA and admin token), so each is called with its
// own operator client.

// clusterPair starts daemons A and B on one new database. A, B or both get
// the extra operations; B waits up to 30s for the gate, so that a wait on
// it is ended by A, not by its wait limit.
func clusterPair(t *testing.T, extraA, extraB []Operation) (url string, a, b *harness) {
	t.Helper()
	url = pgtest.Start(t)
	a = newHarnessConfig(t, func(c *Config) { c.DB = url }, extraA...)
	b = newHarnessConfig(t, func(c *Config) { c.DB = url; c.GateMaxWait = 30 * time.Second }, extraB...)
	return url, a, b
}

// noWaitClient is h's operator client that asks the gate not to wait.
func (h *harness) noWaitClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: mustToken(t, h), NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantClusterBusy checks err is fault 423 refusing op because of the
// cluster-wide gate (the holder is on another daemon, so it is not named).
func wantClusterBusy(t *testing.T, err error, op string) {
	t.Helper()
	var f *api.Fault
	if !errors.As(err, &f) || f.Code != 423 || !strings.Contains(f.Message, "cluster-wide gate") || !strings.Contains(f.Message, op) {
		t.Fatalf("err = %v; want fault 423 naming %s and the cluster-wide gate", err, op)
	}
}

// gateLocks counts the cluster gate's advisory locks in the database:
// granted exclusive, granted shared, and waiting requests.
func gateLocks(t *testing.T, url string) (exclusive, shared, waiting int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE granted AND mode = 'ExclusiveLock'),
			count(*) FILTER (WHERE granted AND mode = 'ShareLock'), count(*) FILTER (WHERE NOT granted)
		FROM pg_locks
		WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`,
		postgres.GateLockKey>>32, postgres.GateLockKey&0xffffffff).Scan(&exclusive, &shared, &waiting)
	if err != nil {
		t.Fatal(err)
	}
	return exclusive, shared, waiting
}

// waitUntil polls cond every 10ms for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitingOn reports whether h's gate shows an operation named name waiting.
func waitingOn(h *harness, name string) bool {
	for _, o := range h.srv.gate.List() {
		if o.Name == name && o.State == gate.StateWaiting {
			return true
		}
	}
	return false
}

// A modifier on daemon A keeps every operation out on daemon B: a no-wait
// call on B gets fault 423 about the cluster-wide gate, a waiting call waits
// (in B's gate, and for the advisory lock in the database) and runs as soon
// as A's modifier ends.
func TestClusterModifierOnOneDaemonBlocksTheOther(t *testing.T) {
	ctx := context.Background()
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	url, a, b := clusterPair(t, []Operation{blockingOp(started, ended)}, nil)
	adminA, adminB, noWaitB := a.operator(t), b.operator(t), b.noWaitClient(t)

	// Both daemons work, each on the shared data: a reader on B sees A's
	// registry row.
	var servers []api.ServerInfo
	mustCall(t, adminB, "server.list", &servers)
	if len(servers) != 2 {
		t.Fatalf("server.list on B = %+v; want both daemons", servers)
	}

	for round, end := range []string{"ops.cancel", "client gone"} {
		cctx, drop := context.WithCancel(ctx)
		blockErr := make(chan error, 1)
		go func() { blockErr <- adminA.Call(cctx, "test.block", nil) }()
		<-started
		waitUntil(t, "A's modifier to hold the exclusive advisory lock", func() bool { x, _, _ := gateLocks(t, url); return x == 1 })

		wantClusterBusy(t, noWaitB.Call(ctx, "job.list", nil), "job.list")

		begin := time.Now()
		readerDone := make(chan error, 1)
		go func() { readerDone <- adminB.Call(ctx, "job.list", nil) }()
		waitUntil(t, "job.list to wait in B's gate", func() bool { return waitingOn(b, "job.list") })
		waitUntil(t, "B's request for the advisory lock", func() bool { _, _, w := gateLocks(t, url); return w >= 1 })
		select {
		case err := <-readerDone:
			t.Fatalf("round %d: job.list on B ran (err %v) while A's modifier held the gate", round, err)
		case <-time.After(300 * time.Millisecond):
		}

		var endedAt time.Time
		switch end {
		case "ops.cancel":
			var ops []api.Op
			mustCall(t, adminA, "ops.list", &ops)
			if len(ops) == 0 || ops[0].Name != "test.block" || ops[0].State != "running" {
				t.Fatalf("ops.list on A = %+v", ops)
			}
			endedAt = time.Now()
			mustCall(t, adminA, "ops.cancel", nil, ops[0].ID)
			if err := <-ended; !errors.Is(err, gate.ErrCancelled) {
				t.Fatalf("the cancelled modifier ended with %v", err)
			}
		case "client gone":
			endedAt = time.Now()
			drop()
			<-ended
		}
		select {
		case err := <-readerDone:
			if err != nil {
				t.Fatalf("round %d (%s): job.list on B after A's modifier ended: %v", round, end, err)
			}
			t.Logf("%s: job.list on B waited %v, ran %v after A's modifier ended",
				end, time.Since(begin).Round(time.Millisecond), time.Since(endedAt).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d (%s): job.list on B still waiting 10s after A's modifier ended", round, end)
		}
		<-blockErr
		drop()
		mustCall(t, noWaitB, "job.list", nil)
	}
	waitUntil(t, "the gate's advisory locks to be given back", func() bool { x, s, w := gateLocks(t, url); return x+s+w == 0 })
}

// readingOp is a non-modifier that runs until release is closed (or its
// context ends), reporting when it starts.
func readingOp(started chan<- string, release <-chan struct{}, daemon string) Operation {
	return Operation{Name: "test.read", Class: gate.NonModifier, caller: byOperator,
		handler: func(ctx context.Context, _ xmlrpc.Params) (any, error) {
			started <- daemon
			select {
			case <-release:
				return "done", nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}
}

// Non-modifiers on two daemons run together (shared advisory locks): each
// runs until released, so both starting means both run at once.
func TestClusterNonModifiersRunTogether(t *testing.T) {
	ctx := context.Background()
	started, release := make(chan string, 2), make(chan struct{})
	url, a, b := clusterPair(t, []Operation{readingOp(started, release, "A")}, []Operation{readingOp(started, release, "B")})
	adminA, adminB := a.operator(t), b.operator(t)

	done := make(chan error, 2)
	for _, c := range []*client.Client{adminA, adminB} {
		go func() { done <- c.Call(ctx, "test.read", nil) }()
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the non-modifiers on A and B did not both start: one waits for the other")
		}
	}
	if _, s, _ := gateLocks(t, url); s < 2 {
		t.Fatalf("%d shared advisory locks granted while both run; want 2 or more", s)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// With both readers gone, a modifier on A passes.
	err := adminA.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"nobody"}})
	if api.FaultCode(err) != 404 {
		t.Fatalf("job.submit on A after the readers: %v; want fault 404 (no such client), past the gate", err)
	}
}

// A reader on B alone keeps a modifier on A out through the cluster lock:
// A's local gate is empty, so the refusal is the cluster's.
func TestClusterReaderOnOneDaemonHoldsOffAModifierOnTheOther(t *testing.T) {
	ctx := context.Background()
	started, release := make(chan string, 1), make(chan struct{})
	_, a, b := clusterPair(t, nil, []Operation{readingOp(started, release, "B")})
	done := make(chan error, 1)
	go func() { done <- b.operator(t).Call(ctx, "test.read", nil) }()
	<-started
	noWaitA := a.noWaitClient(t)
	var err error
	for range 100 {
		err = noWaitA.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"x"}})
		// A's own rescuer sweep (a reader, every 5s) may hold A's local
		// gate for a moment: that refusal is local, try again.
		if !strings.Contains(fmt.Sprint(err), "rescuer.sweep") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantClusterBusy(t, err, "job.submit")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The cluster lock dies with the session of a daemon killed with SIGKILL: a
// daemon in a child process (this test binary, see clusterHelperMain) holds
// the exclusive lock in a modifier; B waits; kill -9 of the child frees B
// at once, with no lease or timeout to wait for.
func TestClusterLockDiesWithAKilledDaemon(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	b := newHarnessConfig(t, func(c *Config) { c.DB = url; c.GateMaxWait = 60 * time.Second })
	adminB, noWaitB := b.operator(t), b.noWaitClient(t)

	dir := filepath.Join(t.TempDir(), "killed")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), clusterHelperDB+"="+url, clusterHelperDir+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	helperLog := &testtool.SyncBuffer{}
	cmd.Stderr = helperLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("the killed daemon's log:\n%s", helperLog.String())
		}
	})
	var url1 string
	select {
	case a := <-addr:
		url1 = "https://" + a + "/RPC2"
	case err := <-exited:
		exited <- err
		t.Fatalf("the daemon process exited at start (%v):\n%s", err, helperLog.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the daemon process did not start:\n%s", helperLog.String())
	}
	pool, err := pki.CertPool(datadir.Paths{Dir: dir}.CACert())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := readToken(datadir.Paths{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	admin1, err := client.New(client.Options{Servers: []string{url1}, RootCAs: pool, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	blockErr := make(chan error, 1)
	go func() { blockErr <- admin1.Call(ctx, "test.block", nil) }()
	waitUntil(t, "the child's modifier to hold the exclusive advisory lock", func() bool { x, _, _ := gateLocks(t, url); return x == 1 })
	wantClusterBusy(t, noWaitB.Call(ctx, "job.list", nil), "job.list")

	readerDone := make(chan error, 1)
	go func() { readerDone <- adminB.Call(ctx, "job.list", nil) }()
	waitUntil(t, "job.list to wait in B's gate", func() bool { return waitingOn(b, "job.list") })
	select {
	case err := <-readerDone:
		t.Fatalf("job.list on B ran (err %v) while the child held the gate", err)
	case <-time.After(300 * time.Millisecond):
	}

	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-readerDone:
		if err != nil {
			t.Fatalf("job.list on B after the kill: %v", err)
		}
		t.Logf("job.list on B ran %v after kill -9 of the daemon holding the cluster gate", time.Since(killed).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		x, s, w := gateLocks(t, url)
		t.Fatalf("job.list on B still waiting 15s after the kill; advisory locks: %d exclusive, %d shared, %d waiting", x, s, w)
	}
	if err := <-blockErr; err == nil {
		t.Fatal("the killed daemon's modifier returned no error")
	}
	waitUntil(t, "no advisory lock left by the dead session", func() bool { x, _, _ := gateLocks(t, url); return x == 0 })
	mustCall(t, noWaitB, "job.list", nil)
}

// The child process of TestClusterLockDiesWithAKilledDaemon: when these are
// set, the test binary runs a daemon with the blocking modifier test.block
// on that database and data directory, prints "listening ADDR" and serves
// until it is killed.
const (
	clusterHelperDB  = "SCIRE_TEST_CLUSTER_DAEMON_DB"
	clusterHelperDir = "SCIRE_TEST_CLUSTER_DAEMON_DIR"
)

// clusterHelperMain runs that daemon and exits if the environment asks for
// it; it returns otherwise. TestMain calls it first.
func clusterHelperMain() {
	url := os.Getenv(clusterHelperDB)
	if url == "" {
		return
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "cluster test daemon:", err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	s, err := New(ctx, Config{DataDir: os.Getenv(clusterHelperDir), DB: url, Listener: ln, Listen: ln.Addr().String(),
		Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), GateMaxWait: time.Minute})
	if err != nil {
		fail(err)
	}
	op := blockingOp(make(chan struct{}, 100), make(chan error, 100))
	s.ops[op.Name] = op
	s.rpc.Register(xmlrpc.Method{Name: op.Name, Handler: op.handler})
	fmt.Println("listening " + ln.Addr().String())
	fail(fmt.Errorf("Serve returned: %v", s.Serve(ctx)))
}
