package push

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
)

// TestPushNetworksAtDial: the pusher connects only inside push_networks,
// whatever the stored callback says: a loopback agent outside them is
// never dialled, and the refusal is not retried.
func TestPushNetworksAtDial(t *testing.T) {
	e := newPushEnv(t)
	a := e.countingAgent(t)
	e.daemonClient(1, a.fp, a.url)
	e.daemonClient(2, a.fp, strings.Replace(a.url, "127.0.0.1", "localhost", 1))
	p := e.pusher(t, Options{Backoff: time.Millisecond, Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, id := range []int64{1, 2} {
		r := pushAndWait(t, p, id)
		if r.Result != Failed || r.Attempts != 1 || !strings.Contains(r.Error, "outside push_networks") {
			t.Fatalf("push to client %d: %+v; want one refused attempt", id, r)
		}
	}
	if a.accepts.Load() != 0 {
		t.Fatalf("%d connections to an agent outside push_networks", a.accepts.Load())
	}
	// Inside them, the push goes through; a name must resolve inside too.
	p2 := e.pusher(t, Options{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	for _, id := range []int64{1, 2} {
		if r := pushAndWait(t, p2, id); r.Result != OK {
			t.Fatalf("push to client %d inside push_networks: %+v", id, r)
		}
	}
}

// foreignCAAgent is an agent listener that pinned another CA than the
// daemon's: it refuses the daemon's push certificate in the handshake.
func (e *pushEnv) foreignCAAgent(t *testing.T) *countingAgent {
	t.Helper()
	other := newPushEnv(t)
	cert, fp := testtool.AgentIdentity(t)
	return other.countingAgentWith(t, cert, fp, "127.0.0.1:0", nil)
}

// plainAgent accepts TCP connections and answers in plain HTTP, as a
// service that is not an agent would: no TLS at all. It counts connections.
func plainAgent(t *testing.T) (url string, accepts *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepts = &atomic.Int64{}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }),
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepts.Add(1)
			}
		}}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "https://" + ln.Addr().String() + "/RPC2", accepts
}

// TestPushHandshakeFailureNotRetried: a TLS handshake that fails — the
// agent refuses the daemon's certificate, the peer presents another
// certificate, or does not speak TLS — costs one connection, not one per
// retry, is logged once with the client id, and holds the client back:
// later pushes dial nothing until the hold ends or the client's callback
// or certificate changes.
func TestPushHandshakeFailureNotRetried(t *testing.T) {
	e := newPushEnv(t)
	foreign := e.foreignCAAgent(t)
	wrongFP := e.countingAgent(t)
	_, otherFP := testtool.AgentIdentity(t)
	plainURL, plainAccepts := plainAgent(t)
	e.daemonClient(1, foreign.fp, foreign.url)
	e.daemonClient(2, otherFP, wrongFP.url)
	e.daemonClient(3, otherFP, plainURL)
	logs := &testtool.SyncBuffer{}
	p := New(slog.New(slog.NewTextHandler(logs, nil)), e.cert, e.lookup, func() int64 { return 9 },
		Options{Backoff: time.Millisecond, HandshakeBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.Start(ctx)
	dials := map[int64]func() int64{1: foreign.accepts.Load, 2: wrongFP.accepts.Load, 3: plainAccepts.Load}
	for id := int64(1); id <= 3; id++ {
		r := pushAndWait(t, p, id)
		if r.Result != Failed || r.Attempts != 1 || !strings.Contains(r.Error, "TLS") && !strings.Contains(r.Error, "not the enrolled") {
			t.Errorf("client %d: %+v; want one failed handshake", id, r)
		}
		if n := dials[id](); n != 1 {
			t.Errorf("client %d: dialled %d times, want once", id, n)
		}
		t.Logf("client %d: %s", id, r.Error)
	}
	if foreign.calls.Load()+wrongFP.calls.Load() != 0 {
		t.Fatal("a call got through a failed handshake")
	}
	// Held back: more pushes dial nothing and log nothing more.
	for round := 0; round < 5; round++ {
		for id := int64(1); id <= 3; id++ {
			p.Push(id)
		}
		testtool.WaitFor(t, "the pushes held back", p.idle)
	}
	for id := int64(1); id <= 3; id++ {
		if n := dials[id](); n != 1 {
			t.Errorf("client %d: dialled %d times after the hold started, want still 1", id, n)
		}
		if got := strings.Count(logs.String(), "client_id="+strconv.FormatInt(id, 10)+" "); got != 1 {
			t.Errorf("client %d: logged %d times, want once:\n%s", id, got, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the failure is not a warning:\n%s", logs.String())
	}
	// The agent fixes its certificate (its enrolled one is now presented):
	// the hold lifts at once.
	e.daemonClient(2, wrongFP.fp, wrongFP.url)
	if r := pushAndWait(t, p, 2); r.Result != OK || wrongFP.calls.Load() != 1 {
		t.Fatalf("push after the certificate changed: %+v", r)
	}
}

// TestPushHoldEnds: after the hold, the next push dials again.
func TestPushHoldEnds(t *testing.T) {
	e := newPushEnv(t)
	foreign := e.foreignCAAgent(t)
	e.daemonClient(1, foreign.fp, foreign.url)
	p := e.pusher(t, Options{Backoff: time.Millisecond, HandshakeBackoff: 300 * time.Millisecond})
	if r := pushAndWait(t, p, 1); r.Result != Failed {
		t.Fatalf("%+v", r)
	}
	p.Push(1)
	testtool.WaitFor(t, "held back", p.idle)
	if foreign.accepts.Load() != 1 {
		t.Fatalf("%d dials during the hold", foreign.accepts.Load())
	}
	time.Sleep(350 * time.Millisecond)
	if r := pushAndWait(t, p, 1); r.Result != Failed || foreign.accepts.Load() != 2 {
		t.Fatalf("after the hold: %+v, %d dials", r, foreign.accepts.Load())
	}
}
