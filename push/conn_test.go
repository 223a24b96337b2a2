package push

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentpkg "github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/testtool"
)

// --- kept-alive push connections ---

// countingAgent is an agent.pollNow listener that counts what the pusher
// does to it: TCP connections accepted, connections open now, calls.
type countingAgent struct {
	url     string
	fp      string
	hs      *http.Server
	accepts atomic.Int64
	calls   atomic.Int64
	hold    chan struct{} // when set, each call waits for it to close

	mu   sync.Mutex
	open map[net.Conn]bool
}

const pollNowReply = `<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>`

// countingAgent starts a listener presenting a new identity, with the TLS
// configuration of a real agent (it requires a certificate of the server CA).
func (e *pushEnv) countingAgent(t *testing.T) *countingAgent {
	t.Helper()
	cert, fp := testtool.AgentIdentity(t)
	return e.countingAgentWith(t, cert, fp, "127.0.0.1:0", nil)
}

func (e *pushEnv) countingAgentWith(t *testing.T, cert tls.Certificate, fp, addr string, hold chan struct{}) *countingAgent {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	a := &countingAgent{url: "https://" + ln.Addr().String() + "/RPC2", fp: fp, open: map[net.Conn]bool{}, hold: hold}
	a.hs = &http.Server{
		TLSConfig: agentpkg.PollNowTLSConfig(cert, e.pool),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			a.calls.Add(1)
			if a.hold != nil {
				<-a.hold
			}
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, pollNowReply)
		}),
		IdleTimeout: time.Minute,
		ErrorLog:    slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
		ConnState: func(c net.Conn, s http.ConnState) {
			a.mu.Lock()
			defer a.mu.Unlock()
			switch s {
			case http.StateNew:
				a.accepts.Add(1)
				a.open[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(a.open, c)
			}
		},
	}
	go a.hs.Serve(tls.NewListener(ln, a.hs.TLSConfig))
	t.Cleanup(func() { a.hs.Close() })
	return a
}

func (a *countingAgent) openConns() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.open)
}

// dropConns closes every connection from the agent's side, as an agent
// restarting or timing idle connections out does.
func (a *countingAgent) dropConns() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.open {
		c.Close()
	}
}

func (e *pushEnv) daemonClient(id int64, fp, url string) {
	e.set(db.Client{ID: id, Fingerprint: fp, Status: db.ClientActive, Mode: db.ModeDaemon, CallbackURL: url})
}

// pushAndWait pushes client id and waits for the round to end; it returns
// the recorded outcome.
func pushAndWait(t *testing.T, p *Pusher, id int64) *pushResultView {
	t.Helper()
	before, _ := p.LastPush(id)
	p.Push(id)
	testtool.WaitFor(t, "the push", func() bool {
		r, ok := p.LastPush(id)
		return ok && r.At != before.At && r.Result != Retrying && p.idle()
	})
	r, _ := p.LastPush(id)
	return &pushResultView{r.Result, r.Error, r.Attempts}
}

type pushResultView struct {
	Result, Error string
	Attempts      int
}

// TestPushReusesConnection: pushes to one client travel on one kept-alive
// TLS connection: one handshake, not one per push.
func TestPushReusesConnection(t *testing.T) {
	e := newPushEnv(t)
	a := e.countingAgent(t)
	e.daemonClient(1, a.fp, a.url)
	p := e.pusher(t, Options{})
	const n = 10
	for i := 0; i < n; i++ {
		if r := pushAndWait(t, p, 1); r.Result != OK || r.Attempts != 1 {
			t.Fatalf("push %d: %+v", i, r)
		}
	}
	if a.calls.Load() != n || a.accepts.Load() != 1 {
		t.Fatalf("%d calls on %d connections, want %d on 1", a.calls.Load(), a.accepts.Load(), n)
	}
	// An agent that closed the kept connection (restart, idle timeout) is
	// reached on a new one, in the same attempt.
	a.dropConns()
	testtool.WaitFor(t, "the agent's side closed", func() bool { return a.openConns() == 0 })
	if r := pushAndWait(t, p, 1); r.Result != OK || r.Attempts != 1 {
		t.Fatalf("push after the agent closed the connection: %+v", r)
	}
	if a.calls.Load() != n+1 || a.accepts.Load() != 2 {
		t.Fatalf("%d calls on %d connections, want %d on 2", a.calls.Load(), a.accepts.Load(), n+1)
	}
}

// TestPushConnectionIsPerClient: a connection verified for client A is
// never used for client B, even at the same callback address, nor for A
// once its fingerprint or callback URL changed.
func TestPushConnectionIsPerClient(t *testing.T) {
	e := newPushEnv(t)
	a := e.countingAgent(t) // presents A's certificate
	_, fpB := testtool.AgentIdentity(t)
	e.daemonClient(1, a.fp, a.url)
	e.daemonClient(2, fpB, a.url) // B claims A's address
	p := e.pusher(t, Options{Backoff: time.Millisecond})

	if r := pushAndWait(t, p, 1); r.Result != OK {
		t.Fatalf("push to A: %+v", r)
	}
	if a.openConns() != 1 {
		t.Fatalf("%d connections open after the push to A, want 1 kept", a.openConns())
	}
	// B: a handshake of its own, verified against B's fingerprint: refused.
	r := pushAndWait(t, p, 2)
	if r.Result != Failed || r.Attempts != 1 || !strings.Contains(r.Error, "not the enrolled") {
		t.Fatalf("push to B over A's address: %+v; want refused by the fingerprint check", r)
	}
	if a.calls.Load() != 1 || a.accepts.Load() != 2 {
		t.Fatalf("B's push: %d calls, %d connections; want no call and a fresh connection", a.calls.Load(), a.accepts.Load())
	}
	// A still has its connection.
	if r := pushAndWait(t, p, 1); r.Result != OK || a.accepts.Load() != 2 || a.calls.Load() != 2 {
		t.Fatalf("push to A again: %+v, %d connections, %d calls", r, a.accepts.Load(), a.calls.Load())
	}

	// A's fingerprint changes (say the id now names another client): the
	// kept connection, verified for the old one, is not used but closed.
	e.daemonClient(1, fpB, a.url)
	r = pushAndWait(t, p, 1)
	if r.Result != Failed || !strings.Contains(r.Error, "not the enrolled") || a.calls.Load() != 2 {
		t.Fatalf("push after the fingerprint changed: %+v, %d calls", r, a.calls.Load())
	}
	testtool.WaitFor(t, "the old connection closed", func() bool { return a.openConns() == 0 })

	// A's callback URL changes: the push goes there, on a new connection,
	// and the one to the old address is closed.
	e.daemonClient(1, a.fp, a.url)
	if r := pushAndWait(t, p, 1); r.Result != OK || a.openConns() != 1 {
		t.Fatalf("push to A: %+v, %d open", r, a.openConns())
	}
	cert2, fp2 := testtool.AgentIdentity(t)
	a2 := e.countingAgentWith(t, cert2, fp2, "127.0.0.1:0", nil)
	e.daemonClient(1, fp2, a2.url)
	if r := pushAndWait(t, p, 1); r.Result != OK || a2.calls.Load() != 1 {
		t.Fatalf("push to the new callback: %+v, %d calls there", r, a2.calls.Load())
	}
	testtool.WaitFor(t, "the connection to the old callback closed", func() bool { return a.openConns() == 0 })
}

// TestPushConnectionsBounded: no more than MaxConns clients keep a
// connection; the least recently pushed lose theirs, and stopping the
// pusher closes the rest.
func TestPushConnectionsBounded(t *testing.T) {
	const clients, keep = 5, 2
	e := newPushEnv(t)
	agents := make([]*countingAgent, clients)
	for i := range agents {
		agents[i] = e.countingAgent(t)
		e.daemonClient(int64(i+1), agents[i].fp, agents[i].url)
	}
	p := New(slog.New(slog.DiscardHandler), e.cert, e.lookup, func() int64 { return 9 }, Options{MaxConns: keep})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.Start(ctx)
	open := func() int {
		n := 0
		for _, a := range agents {
			n += a.openConns()
		}
		return n
	}
	for round := 0; round < 2; round++ {
		for i := range agents {
			if r := pushAndWait(t, p, int64(i+1)); r.Result != OK {
				t.Fatalf("push to %d: %+v", i+1, r)
			}
			if n := p.conns.len(); n > keep {
				t.Fatalf("%d transports kept, want at most %d", n, keep)
			}
		}
	}
	testtool.WaitFor(t, "evicted connections closed", func() bool { return open() <= keep })
	// The two most recent clients kept theirs: pushing them again reuses it.
	last := agents[clients-1]
	was := last.accepts.Load()
	if r := pushAndWait(t, p, clients); r.Result != OK || last.accepts.Load() != was {
		t.Fatalf("push to a recent client: %+v, connections %d → %d", r, was, last.accepts.Load())
	}
	cancel()
	testtool.WaitFor(t, "every connection closed when the pusher stops", func() bool { return open() == 0 })
	if p.conns.len() != 0 {
		t.Fatalf("%d transports left after stop", p.conns.len())
	}
	if _, err := p.conns.get(1, agents[0].url, agents[0].fp); err == nil {
		t.Fatal("a stopped pusher handed out a transport")
	}
}

// TestPushConnectionDroppedInUse: a transport evicted while its push is in
// flight closes its connection once that push is done, instead of keeping
// it beyond the bound.
func TestPushConnectionDroppedInUse(t *testing.T) {
	e := newPushEnv(t)
	hold := make(chan struct{})
	cert, fp := testtool.AgentIdentity(t)
	slow := e.countingAgentWith(t, cert, fp, "127.0.0.1:0", hold)
	fast := e.countingAgent(t)
	e.daemonClient(1, slow.fp, slow.url)
	e.daemonClient(2, fast.fp, fast.url)
	p := e.pusher(t, Options{MaxConns: 1, Timeout: 10 * time.Second})
	p.Push(1)
	testtool.WaitFor(t, "the slow push in flight", func() bool { return slow.calls.Load() == 1 })
	if r := pushAndWait2(t, p, 2); r.Result != OK { // evicts client 1's transport, in use
		t.Fatalf("push to 2: %+v", r)
	}
	close(hold)
	testtool.WaitFor(t, "the pusher idle", p.idle)
	if r, _ := p.LastPush(1); r.Result != OK {
		t.Fatalf("the slow push: %+v", r)
	}
	testtool.WaitFor(t, "the evicted connection closed", func() bool { return slow.openConns() == 0 })
	if fast.openConns() != 1 || p.conns.len() != 1 {
		t.Fatalf("%d connections to the kept client, %d transports", fast.openConns(), p.conns.len())
	}
}

// pushAndWait2 is pushAndWait for one client while others are in flight.
func pushAndWait2(t *testing.T, p *Pusher, id int64) *pushResultView {
	t.Helper()
	p.Push(id)
	testtool.WaitFor(t, "the push", func() bool {
		r, ok := p.LastPush(id)
		return ok && r.Result != Retrying
	})
	r, _ := p.LastPush(id)
	return &pushResultView{r.Result, r.Error, r.Attempts}
}

// TestPushConnectionsConcurrent: many clients pushed at once by several
// workers, each over its own verified connection (run with -race).
func TestPushConnectionsConcurrent(t *testing.T) {
	const clients, rounds = 12, 5
	e := newPushEnv(t)
	agents := make([]*countingAgent, clients)
	for i := range agents {
		agents[i] = e.countingAgent(t)
		e.daemonClient(int64(i+1), agents[i].fp, agents[i].url)
	}
	p := e.pusher(t, Options{Workers: 4})
	for r := 0; r < rounds; r++ {
		for i := range agents {
			p.Push(int64(i + 1))
		}
		testtool.WaitFor(t, "the round", p.idle)
	}
	for i, a := range agents {
		if a.calls.Load() < 1 || a.accepts.Load() != 1 {
			t.Fatalf("agent %d: %d calls on %d connections", i+1, a.calls.Load(), a.accepts.Load())
		}
		if r, _ := p.LastPush(int64(i + 1)); r.Result != OK {
			t.Fatalf("agent %d: %+v", i+1, r)
		}
	}
}
