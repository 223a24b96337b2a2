package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentpkg "github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/pki"
)

// The pusher on its own, against real agent listeners on loopback: pushEnv
// is a server CA, the push identity it issued, and the clients the pusher
// looks up.
type pushEnv struct {
	pool *x509.CertPool
	cert tls.Certificate

	mu      sync.Mutex
	clients map[int64]db.Client
}

func newPushEnv(t testing.TB) *pushEnv {
	t.Helper()
	ca, err := pki.NewCA("push test CA")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("scirectl push", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	e := &pushEnv{pool: x509.NewCertPool(), cert: cert, clients: map[int64]db.Client{}}
	e.pool.AddCert(ca.Cert)
	return e
}

// agent starts a daemon-mode agent listener for client id and records the
// client as an active daemon-mode client reachable there.
func (e *pushEnv) agent(t *testing.T, id int64, wake func()) *agentpkg.PollNowServer {
	t.Helper()
	cert, fp := testtool.AgentIdentity(t)
	srv, err := agentpkg.ListenPollNow(agentpkg.PollNowConfig{Addr: "127.0.0.1:0", Certificate: cert, ServerCA: e.pool,
		Wake: wake, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e.set(db.Client{ID: id, Fingerprint: fp, Status: db.ClientActive, Mode: db.ModeDaemon, CallbackURL: srv.URL()})
	return srv
}

func (e *pushEnv) set(c db.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.clients[c.ID] = c
}

func (e *pushEnv) lookup(_ context.Context, id int64) (db.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.clients[id]
	if !ok {
		return c, db.ErrNotFound
	}
	return c, nil
}

func (e *pushEnv) pusher(t *testing.T, o Options) *Pusher {
	t.Helper()
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)), e.cert, e.lookup, func() int64 { return 9 }, o)
	p.Start(context.Background())
	t.Cleanup(p.Stop)
	return p
}

func (p *Pusher) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending) == 0
}

func TestPushDeliversAndRecords(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	e.agent(t, 1, func() { wakes.Add(1) })
	p := e.pusher(t, Options{})
	p.Push(1)
	testtool.WaitFor(t, "the push", func() bool { return wakes.Load() == 1 && p.idle() })
	r, ok := p.LastPush(1)
	if !ok || r.Result != OK || r.Attempts != 1 || r.ServerID != "9" || r.Error != "" {
		t.Fatalf("last push = %+v, %v", r, ok)
	}
}

// TestPushCollapses: while a push to a client is in flight, any number of
// further pushes make exactly one more.
func TestPushCollapses(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	entered, release := make(chan struct{}, 16), make(chan struct{})
	e.agent(t, 1, func() {
		wakes.Add(1)
		entered <- struct{}{}
		<-release
	})
	p := e.pusher(t, Options{Timeout: 10 * time.Second})
	p.Push(1)
	<-entered
	for i := 0; i < 20; i++ {
		p.Push(1)
	}
	close(release)
	testtool.WaitFor(t, "the pusher to go idle", p.idle)
	time.Sleep(50 * time.Millisecond)
	if n := wakes.Load(); n != 2 {
		t.Fatalf("%d pushes reached the agent, want 2 (the one in flight and one for the requests during it)", n)
	}
	// Queued but not yet sent: duplicates add nothing at all.
	e2 := newPushEnv(t)
	var slow atomic.Int64
	block := make(chan struct{})
	e2.agent(t, 1, func() { <-block })
	e2.agent(t, 2, func() { slow.Add(1) })
	p2 := e2.pusher(t, Options{Workers: 1, Timeout: 10 * time.Second})
	p2.Push(1) // occupies the only worker
	testtool.WaitFor(t, "the first push in flight", func() bool { return p2.InFlight() == 1 })
	for i := 0; i < 20; i++ {
		p2.Push(2)
	}
	close(block)
	testtool.WaitFor(t, "the pusher to go idle", p2.idle)
	if n := slow.Load(); n != 1 {
		t.Fatalf("queued duplicates: %d pushes, want 1", n)
	}
}

// TestPushBoundedConcurrency: never more pushes in flight than workers.
func TestPushBoundedConcurrency(t *testing.T) {
	const workers, clients = 3, 12
	e := newPushEnv(t)
	var cur, peak, done atomic.Int64
	release := make(chan struct{})
	for id := int64(1); id <= clients; id++ {
		e.agent(t, id, func() {
			n := cur.Add(1)
			for {
				m := peak.Load()
				if n <= m || peak.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			cur.Add(-1)
			done.Add(1)
		})
	}
	p := e.pusher(t, Options{Workers: workers, Timeout: 10 * time.Second})
	for id := int64(1); id <= clients; id++ {
		p.Push(id)
	}
	testtool.WaitFor(t, "the workers to fill up", func() bool { return cur.Load() == workers })
	time.Sleep(100 * time.Millisecond)
	if n := p.InFlight(); n != workers || peak.Load() != workers {
		t.Fatalf("in flight %d, peak %d, want %d", n, peak.Load(), workers)
	}
	close(release)
	testtool.WaitFor(t, "every push", func() bool { return done.Load() == clients && p.idle() })
	if peak.Load() != workers {
		t.Fatalf("peak concurrency %d, want %d", peak.Load(), workers)
	}
}

// TestPushTimeoutBackoffGiveUp: an agent that never answers costs one
// timeout per attempt, then the retries, then the pusher gives up.
func TestPushTimeoutBackoffGiveUp(t *testing.T) {
	e := newPushEnv(t)
	addr, conns := testtool.HungListener(t)
	_, fp := testtool.AgentIdentity(t)
	e.set(db.Client{ID: 7, Fingerprint: fp, Status: db.ClientActive, Mode: db.ModeDaemon, CallbackURL: "https://" + addr + "/RPC2"})
	p := e.pusher(t, Options{Timeout: 100 * time.Millisecond, Retries: 2, Backoff: 20 * time.Millisecond})
	start := time.Now()
	p.Push(7)
	testtool.WaitFor(t, "a retry to be scheduled", func() bool {
		r, _ := p.LastPush(7)
		return r.Result == Retrying || r.Result == Failed
	})
	testtool.WaitFor(t, "the pusher to give up", p.idle)
	took := time.Since(start)
	r, _ := p.LastPush(7)
	if r.Result != Failed || r.Attempts != 3 || conns.Load() != 3 {
		t.Fatalf("last push %+v, %d connections; want failed after 3 attempts", r, conns.Load())
	}
	// 3 timeouts and back-offs of 20ms and 40ms at least.
	if took < 3*100*time.Millisecond+60*time.Millisecond {
		t.Fatalf("gave up after %v: the timeouts or back-offs were not applied", took)
	}
	t.Logf("gave up after %v: %s", took.Round(time.Millisecond), r.Error)
	// A new push after giving up starts over.
	p.Push(7)
	testtool.WaitFor(t, "a new round", func() bool { return conns.Load() >= 4 })
}

// TestPushRefusesWrongFingerprint: a peer whose certificate is not the
// client's enrolled one gets nothing, and is not retried.
func TestPushRefusesWrongFingerprint(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	srv := e.agent(t, 1, func() { wakes.Add(1) })
	_, other := testtool.AgentIdentity(t)
	e.set(db.Client{ID: 1, Fingerprint: other, Status: db.ClientActive, Mode: db.ModeDaemon, CallbackURL: srv.URL()})
	p := e.pusher(t, Options{Backoff: time.Millisecond})
	p.Push(1)
	testtool.WaitFor(t, "the push to fail", func() bool { r, _ := p.LastPush(1); return r.Result == Failed })
	r, _ := p.LastPush(1)
	if r.Attempts != 1 || !strings.Contains(r.Error, "not the enrolled") || wakes.Load() != 0 || srv.Calls() != 0 {
		t.Fatalf("last push %+v, %d wakes; want one refused attempt and no call", r, wakes.Load())
	}
	// Nor is a callback that is not https.
	e.set(db.Client{ID: 2, Fingerprint: other, Status: db.ClientActive, Mode: db.ModeDaemon, CallbackURL: "http://" + srv.Addr().String() + "/RPC2"})
	p.Push(2)
	testtool.WaitFor(t, "the push to fail", func() bool { r, _ := p.LastPush(2); return r.Result == Failed })
	if r, _ := p.LastPush(2); r.Attempts != 1 || srv.Calls() != 0 {
		t.Fatalf("http callback: %+v", r)
	}
}

// TestPushSkipsNonDaemonClients: poll-mode, inactive and unknown clients
// are not pushed, and leave no result.
func TestPushSkipsNonDaemonClients(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	srv := e.agent(t, 1, func() { wakes.Add(1) })
	e.agent(t, 2, func() { wakes.Add(1) })
	c1, _ := e.lookup(context.Background(), 1)
	c1.Mode = db.ModePoll
	e.set(c1)
	c2, _ := e.lookup(context.Background(), 2)
	c2.Status = db.ClientRevoked
	e.set(c2)
	p := e.pusher(t, Options{})
	for _, id := range []int64{1, 2, 3} {
		p.Push(id)
	}
	testtool.WaitFor(t, "the pusher to go idle", p.idle)
	for _, id := range []int64{1, 2, 3} {
		if r, ok := p.LastPush(id); ok {
			t.Errorf("client %d: pushed: %+v", id, r)
		}
	}
	if wakes.Load() != 0 || srv.Calls() != 0 {
		t.Fatalf("%d wakes", wakes.Load())
	}
}

// RunOnce sends what is queued on the caller's goroutine, without Start.
func TestPusherRunOnce(t *testing.T) {
	e := newPushEnv(t)
	var wakes atomic.Int64
	e.agent(t, 1, func() { wakes.Add(1) })
	e.agent(t, 2, func() { wakes.Add(1) })
	p := New(slog.New(slog.DiscardHandler), e.cert, e.lookup, func() int64 { return 9 }, Options{})
	if n := p.RunOnce(context.Background()); n != 0 {
		t.Fatalf("RunOnce with nothing queued sent %d", n)
	}
	p.Push(1)
	p.Push(2)
	p.Push(1)
	if n := p.RunOnce(context.Background()); n != 2 {
		t.Fatalf("RunOnce sent %d, want 2", n)
	}
	// The agent wakes after it answered: give it a moment.
	testtool.WaitFor(t, "both agents woken", func() bool { return wakes.Load() == 2 })
	if r, ok := p.LastPush(2); !ok || r.Result != OK {
		t.Fatalf("last push to 2 = %+v, %v", r, ok)
	}
	if !p.idle() {
		t.Fatal("pushes left pending after RunOnce")
	}
	time.Sleep(10 * time.Millisecond)
	p.conns.close()
}
