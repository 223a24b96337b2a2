package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
)

// testPKI is a server CA with what daemon mode needs around it.
type testPKI struct {
	ca     *pki.CA
	pool   *x509.CertPool
	caFile string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &testPKI{ca: ca, pool: x509.NewCertPool(), caFile: filepath.Join(dir, "ca.crt")}
	p.pool.AddCert(ca.Cert)
	if err := ca.Save(p.caFile, filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue returns a certificate signed by the CA (what a daemon pushes with).
func (p *testPKI) issue(t *testing.T, hosts ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := p.ca.Issue("test", hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func selfSigned(t *testing.T, hosts ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned("self", hosts)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// pollNow calls agent.pollNow at url presenting cert (nil: none), as the
// server does: pinning the agent's certificate rather than verifying names.
func pollNow(t *testing.T, url string, agentCert tls.Certificate, cert *tls.Certificate) error {
	t.Helper()
	want := pki.Fingerprint(agentCert.Certificate[0])
	conf := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		if got := pki.Fingerprint(cs.PeerCertificates[0].Raw); got != want {
			return fmt.Errorf("agent certificate %s, want %s", got, want)
		}
		return nil
	}}
	if cert != nil { // presented whatever CAs the agent asks for
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	tr := &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := hc.Post(url, "text/xml", strings.NewReader(`<?xml version="1.0"?><methodCall><methodName>`+PollNowMethod+`</methodName><params/></methodCall>`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<boolean>1</boolean>") {
		t.Fatalf("agent.pollNow answered HTTP %d: %s", resp.StatusCode, body)
	}
	return nil
}

// TestPollNowListenerRefusesForeignPeers: only a certificate signed by the
// pinned server CA gets through the handshake.
func TestPollNowListenerRefusesForeignPeers(t *testing.T) {
	p := newTestPKI(t)
	agentCert := selfSigned(t, "127.0.0.1")
	var wakes atomic.Int64
	srv, err := ListenPollNow(PollNowConfig{Addr: "127.0.0.1:0", Certificate: agentCert, ServerCA: p.pool,
		Wake: func() { wakes.Add(1) }, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/RPC2") {
		t.Fatalf("URL = %q", srv.URL())
	}

	push := p.issue(t)
	if err := pollNow(t, srv.URL(), agentCert, &push); err != nil {
		t.Fatalf("pollNow with a CA-signed certificate: %v", err)
	}
	if wakes.Load() != 1 || srv.Calls() != 1 {
		t.Fatalf("wakes = %d, calls = %d, want 1", wakes.Load(), srv.Calls())
	}

	other := newTestPKI(t).issue(t)
	self := selfSigned(t)
	for name, cert := range map[string]*tls.Certificate{"no certificate": nil, "self-signed": &self, "another CA": &other} {
		err := pollNow(t, srv.URL(), agentCert, cert)
		if err == nil {
			t.Errorf("%s: accepted, want a refused TLS handshake", name)
		} else {
			t.Logf("%s: refused: %v", name, err)
		}
	}
	if wakes.Load() != 1 {
		t.Fatalf("refused calls woke the agent: %d wakes", wakes.Load())
	}
}

func TestDefaultCallbackURL(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	for addr, want := range map[string]string{
		"127.0.0.1:7444": "https://127.0.0.1:7444/RPC2",
		"[::1]:7444":     "https://[::1]:7444/RPC2",
		"web1:7444":      "https://web1:7444/RPC2",
		"0.0.0.0:7444":   "https://" + host + ":7444/RPC2",
		"[::]:7444":      "https://" + host + ":7444/RPC2",
		":7444":          "https://" + host + ":7444/RPC2",
	} {
		if got, err := DefaultCallbackURL(addr); err != nil || got != want {
			t.Errorf("DefaultCallbackURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := DefaultCallbackURL("no-port"); err == nil {
		t.Error("DefaultCallbackURL without a port: no error")
	}
}

func TestDaemonConfigErrors(t *testing.T) {
	for name, c := range map[string]Config{
		"daemon and once":     {Daemon: true, Once: true, Listen: "127.0.0.1:0"},
		"daemon, no listen":   {Daemon: true},
		"listen, no daemon":   {Listen: "127.0.0.1:0"},
		"callback, no daemon": {CallbackURL: "https://x/RPC2"},
		"http callback":       {Daemon: true, Listen: "127.0.0.1:0", CallbackURL: "http://x/RPC2"},
		"callback, no port":   {Daemon: true, Listen: "127.0.0.1:0", CallbackURL: "https://x/RPC2"},
		"callback, bad path":  {Daemon: true, Listen: "127.0.0.1:0", CallbackURL: "https://x:7444/pollnow"},
		"callback with user":  {Daemon: true, Listen: "127.0.0.1:0", CallbackURL: "https://u@x:7444/RPC2"},
	} {
		c.Servers, c.StateDir, c.Name = []string{"https://x/RPC2"}, t.TempDir(), "n"
		if err := c.defaults(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// newCAFakeServer is a fake server whose TLS certificate is issued by p's
// CA, so the agent pins a CA that can also sign push certificates.
func newCAFakeServer(t *testing.T, stateDir string, p *testPKI) *fakeServer {
	f := &fakeServer{t: t, stateDir: stateDir, status: "active", sent: map[int64]bool{}, acks: map[int64]int{},
		reports: map[int64][]jobxml.Status{}, stale: map[int64]bool{}, cancelled: map[int64]bool{}, caFile: p.caFile}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, Certificates: []tls.Certificate{p.issue(t, "127.0.0.1")}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

// TestDaemonAgentPushed: an agent polling once an hour runs a job as soon
// as it is pushed, and registered its mode and callback URL. The fake
// server refuses agent.getJobs' wait, as a server older than it does: the
// agent then waits for pushes (the wait itself is tested against the real
// server, server/longpoll_test.go).
func TestDaemonAgentPushed(t *testing.T) {
	p := newTestPKI(t)
	f := newCAFakeServer(t, filepath.Join(t.TempDir(), "state"), p)
	defer runDaemonAgent(t, f, time.Hour)()
	var callback string
	eventually(t, "the agent to register and poll once", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		callback = f.facts["callback_url"]
		return f.facts["mode"] == "daemon" && strings.Contains(strings.Join(f.calls, ","), "agent.getJobs")
	})
	if !strings.HasPrefix(callback, "https://127.0.0.1:") {
		t.Fatalf("callback_url = %q", callback)
	}
	agentCert, err := tls.LoadX509KeyPair(filepath.Join(f.stateDir, certFile), filepath.Join(f.stateDir, keyFile))
	if err != nil {
		t.Fatal(err)
	}

	// Without a CA certificate: refused, nothing happens.
	f.addJob(jobxml.Job{ID: 1, Run: 11, Script: "echo pushed"})
	self := selfSigned(t)
	if err := pollNow(t, callback, agentCert, &self); err == nil {
		t.Fatal("pollNow with a self-signed certificate was accepted")
	}
	time.Sleep(200 * time.Millisecond)
	if _, ok := f.final(11); ok {
		t.Fatal("the job ran without a push (the interval is an hour)")
	}

	push := p.issue(t)
	for i := 0; i < 3; i++ { // repeats collapse into one early poll, or a few
		if err := pollNow(t, callback, agentCert, &push); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the pushed job to finish", func() bool {
		st, ok := f.final(11)
		return ok && st.State == jobxml.StateSucceeded
	})
	// The fake server is older than agent.getJobs' wait: the agent asked
	// to wait once, was refused, and waited for pushes from then on.
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waitAsked != 1 {
		t.Fatalf("agent.getJobs with a wait was asked %d times of a server that refuses it, want once", f.waitAsked)
	}
}

// A server that answers the wait at once, empty (one stopping, or a run
// cancelled as its agent was woken), is not asked again until the wait
// would have been over: the agent sleeps the rest, still listening for
// pushes, instead of asking in a loop.
func TestDaemonAgentEarlyEmptyWait(t *testing.T) {
	p, f := waitingFakeServer(t, func(f *fakeServer) { f.answerWait = true })
	defer runDaemonAgent(t, f, time.Hour)()
	var callback string
	eventually(t, "the agent to wait in agent.getJobs once", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		callback = f.facts["callback_url"]
		return f.waitAsked > 0
	})
	time.Sleep(time.Second)
	f.mu.Lock()
	asked := f.waitAsked
	f.mu.Unlock()
	if asked != 1 {
		t.Fatalf("agent.getJobs with a wait asked %d times within a second of a server that answers it at once, want once", asked)
	}

	// Asleep, it still answers a push.
	agentCert, err := tls.LoadX509KeyPair(filepath.Join(f.stateDir, certFile), filepath.Join(f.stateDir, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	f.addJob(jobxml.Job{ID: 1, Run: 11, Script: "echo pushed"})
	push := p.issue(t)
	if err := pollNow(t, callback, agentCert, &push); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pushed job to finish", func() bool {
		st, ok := f.final(11)
		return ok && st.State == jobxml.StateSucceeded
	})
}

// runDaemonAgent runs a daemon-mode agent of f, polling every interval (an
// hour: only a wait or a push brings work in time), until the func
// returned is called.
func runDaemonAgent(t *testing.T, f *fakeServer, interval time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Servers: []string{f.url()}, StateDir: f.stateDir, CAFile: f.caFile, Name: "daemon-agent",
			Interval: interval, Daemon: true, Listen: "127.0.0.1:0", Version: "test", Log: quiet, Out: &testtool.SyncBuffer{}})
	}()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// An idle daemon-mode agent's wait that reaches its next contact with
// nothing is that contact's poll: the agent waits again instead of asking
// agent.getJobs once more without a wait (the heartbeat, every 5 minutes
// when idle, still comes with a poll of its own).
func TestDaemonAgentWaitIsThePoll(t *testing.T) {
	_, f := waitingFakeServer(t, func(f *fakeServer) { f.holdWait = true })
	defer runDaemonAgent(t, f, 1500*time.Millisecond)()
	eventually(t, "the agent to wait in agent.getJobs", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.waitAsked > 0
	})
	time.Sleep(5 * time.Second) // three intervals or so
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waitAsked < 3 || f.plainGets > 1 {
		t.Fatalf("in about three intervals: %d waits and %d agent.getJobs without a wait after the first; want waits only",
			f.waitAsked, f.plainGets-1)
	}
}

// waitingFakeServer is a fake server with a CA, set up by set (how it takes
// agent.getJobs' wait) before any agent calls it.
func waitingFakeServer(t *testing.T, set func(*fakeServer)) (*testPKI, *fakeServer) {
	t.Helper()
	p := newTestPKI(t)
	f := newCAFakeServer(t, filepath.Join(t.TempDir(), "state"), p)
	f.mu.Lock()
	set(f)
	f.mu.Unlock()
	return p, f
}
