package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/serverconfig"
)

// registerDaemon registers a new identity in daemon mode with callback.
func (h *harness) registerDaemon(t *testing.T, callback string) error {
	t.Helper()
	cert, _ := newIdentity(t)
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Certificate: &cert})
	if err != nil {
		t.Fatal(err)
	}
	return c.Call(context.Background(), "agent.register", nil, map[string]any{"hostname": "d", "os": "linux", "arch": "amd64",
		"version": "t", "mode": "daemon", "callback_url": callback})
}

// TestRegisterCallbackURLRules: agent.register refuses a callback_url the
// server could be aimed elsewhere with, fault 400 naming the fact and why.
func TestRegisterCallbackURLRules(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ url, why string }{
		{"http://127.0.0.1:7444/RPC2", "must be https"},
		{"ftp://127.0.0.1:7444/RPC2", "must be https"},
		{"https://user:pw@127.0.0.1:7444/RPC2", "user name or password"},
		{"https://user@127.0.0.1:7444/RPC2", "user name or password"},
		{"https://127.0.0.1/RPC2", "no port"},
		{"https://127.0.0.1:/RPC2", "no port"},
		{"https://127.0.0.1:0/RPC2", "1..65535"},
		{"https://127.0.0.1:70000/RPC2", "1..65535"},
		{"https://127.0.0.1:7444/RPC2?x=1", "query"},
		{"https://127.0.0.1:7444/RPC2?", "query"},
		{"https://127.0.0.1:7444/RPC2#frag", "fragment"},
		{"https://127.0.0.1:7444/", "path"},
		{"https://127.0.0.1:7444", "path"},
		{"https://127.0.0.1:7444/admin", "path"},
		{"https://127.0.0.1:7444/RPC2/../x", "path"},
		{"https://:7444/RPC2", "no host"},
		{"https:127.0.0.1:7444", "no host"},
		{"https://0.0.0.0:7444/RPC2", "not an address"},
		{"https://[::]:7444/RPC2", "not an address"},
		{"https://224.0.0.1:7444/RPC2", "not an address"},
		{"https://bad_host!:7444/RPC2", ""},
		{"not a url", "must be https"},
	} {
		err := h.registerDaemon(t, tc.url)
		if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "facts.callback_url") || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("register with %q: %v; want fault 400 naming facts.callback_url and %q", tc.url, err, tc.why)
		}
	}
	for _, ok := range []string{"https://127.0.0.1:7444/RPC2", "https://[::1]:7444/RPC2", "https://agent-7.example.com:7444/RPC2",
		"https://db1:7444/RPC2", "https://DB1.Example.COM.:1/RPC2"} {
		if err := h.registerDaemon(t, ok); err != nil {
			t.Errorf("register with %q: %v", ok, err)
		}
	}
}

// TestRegisterPushNetworks: with push_networks set, an IP callback outside
// them is refused at registration; a name is taken (checked at push time).
func TestRegisterPushNetworks(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) {
		c.PushNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	})
	for _, u := range []string{"https://192.168.1.5:7444/RPC2", "https://127.0.0.2:7444/RPC2", "https://[::1]:7444/RPC2"} {
		if err := h.registerDaemon(t, u); api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "push_networks") {
			t.Errorf("register with %q: %v; want fault 400 naming push_networks", u, err)
		}
	}
	for _, u := range []string{"https://10.1.2.3:7444/RPC2", "https://127.0.0.1:7444/RPC2", "https://[::ffff:10.0.0.1]:7444/RPC2",
		"https://agent.example.com:7444/RPC2"} {
		if err := h.registerDaemon(t, u); err != nil {
			t.Errorf("register with %q: %v", u, err)
		}
	}
}

// TestPushNetworksAtDial: the pusher connects only inside push_networks,
// whatever the stored callback says: a loopback agent outside them is
// never dialled, and the refusal is not retried.
func TestPushNetworksAtDial(t *testing.T) {
	e := newPushEnv(t)
	a := e.countingAgent(t)
	e.daemonClient(1, a.fp, a.url)
	e.daemonClient(2, a.fp, strings.Replace(a.url, "127.0.0.1", "localhost", 1))
	p := e.pusher(t, pushOptions{Backoff: time.Millisecond, Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for _, id := range []int64{1, 2} {
		r := pushAndWait(t, p, id)
		if r.Result != pushFailed || r.Attempts != 1 || !strings.Contains(r.Error, "outside push_networks") {
			t.Fatalf("push to client %d: %+v; want one refused attempt", id, r)
		}
	}
	if a.accepts.Load() != 0 {
		t.Fatalf("%d connections to an agent outside push_networks", a.accepts.Load())
	}
	// Inside them, the push goes through; a name must resolve inside too.
	p2 := e.pusher(t, pushOptions{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	for _, id := range []int64{1, 2} {
		if r := pushAndWait(t, p2, id); r.Result != pushOK {
			t.Fatalf("push to client %d inside push_networks: %+v", id, r)
		}
	}
}

// foreignCAAgent is an agent listener that pinned another CA than the
// daemon's: it refuses the daemon's push certificate in the handshake.
func (e *pushEnv) foreignCAAgent(t *testing.T) *countingAgent {
	t.Helper()
	other := newPushEnv(t)
	cert, fp := newIdentity(t)
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
	_, otherFP := newIdentity(t)
	plainURL, plainAccepts := plainAgent(t)
	e.daemonClient(1, foreign.fp, foreign.url)
	e.daemonClient(2, otherFP, wrongFP.url)
	e.daemonClient(3, otherFP, plainURL)
	logs := &syncBuffer{}
	p := newPusher(slog.New(slog.NewTextHandler(logs, nil)), e.cert, e.lookup, func() int64 { return 9 },
		pushOptions{Backoff: time.Millisecond, HandshakeBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p.Start(ctx)
	dials := map[int64]func() int64{1: foreign.accepts.Load, 2: wrongFP.accepts.Load, 3: plainAccepts.Load}
	for id := int64(1); id <= 3; id++ {
		r := pushAndWait(t, p, id)
		if r.Result != pushFailed || r.Attempts != 1 || !strings.Contains(r.Error, "TLS") && !strings.Contains(r.Error, "not the enrolled") {
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
		waitFor(t, "the pushes held back", p.idle)
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
	if r := pushAndWait(t, p, 2); r.Result != pushOK || wrongFP.calls.Load() != 1 {
		t.Fatalf("push after the certificate changed: %+v", r)
	}
}

// TestPushHoldEnds: after the hold, the next push dials again.
func TestPushHoldEnds(t *testing.T) {
	e := newPushEnv(t)
	foreign := e.foreignCAAgent(t)
	e.daemonClient(1, foreign.fp, foreign.url)
	p := e.pusher(t, pushOptions{Backoff: time.Millisecond, HandshakeBackoff: 300 * time.Millisecond})
	if r := pushAndWait(t, p, 1); r.Result != pushFailed {
		t.Fatalf("%+v", r)
	}
	p.Push(1)
	waitFor(t, "held back", p.idle)
	if foreign.accepts.Load() != 1 {
		t.Fatalf("%d dials during the hold", foreign.accepts.Load())
	}
	time.Sleep(350 * time.Millisecond)
	if r := pushAndWait(t, p, 1); r.Result != pushFailed || foreign.accepts.Load() != 2 {
		t.Fatalf("after the hold: %+v, %d dials", r, foreign.accepts.Load())
	}
}

// TestLoadConfigPushNetworks: push_networks in server.yaml.
func TestLoadConfigPushNetworks(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "server.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := serverconfig.LoadConfigFile(write("push_networks: [10.0.0.0/8, 127.0.0.1, 'fd00::/8']\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("fd00::/8")}
	if len(c.PushNetworks) != len(want) {
		t.Fatalf("push_networks = %v", c.PushNetworks)
	}
	for i := range want {
		if c.PushNetworks[i] != want[i] {
			t.Fatalf("push_networks = %v, want %v", c.PushNetworks, want)
		}
	}
	for body, why := range map[string]string{
		"push_networks: [10.0.0.0/33]\n":          "not a network",
		"push_networks: [10.1.2.3/8]\n":           "did you mean 10.0.0.0/8",
		"push_networks:\n  - 10.0.0.0/8\n  - x\n": ":3: push_networks",
		"push_networks: 10.0.0.0/8\n":             "want a list",
	} {
		if _, err := serverconfig.LoadConfigFile(write(body)); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v; want an error with %q", body, err, why)
		}
	}
	// Off by default.
	if c, err := serverconfig.LoadConfigFile(write("listen: 127.0.0.1:7443\n")); err != nil || c.PushNetworks != nil {
		t.Fatalf("%v %v", c.PushNetworks, err)
	}
}
