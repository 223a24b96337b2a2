package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	agentpkg "github.com/scirectl/scirectl/client/agent"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/pki"
)

// --- the triggers, through a real server ---

// daemonAgent is a daemon-mode agent as the server sees it: registered with
// its callback URL and accepted, its wake-ups timestamped.
type daemonAgent struct {
	c     *client.Client
	cert  tls.Certificate
	id    string
	fp    string
	name  string
	wakes chan time.Time
}

func (h *harness) daemonAgent(t *testing.T, name string) *daemonAgent {
	t.Helper()
	cert, fp := testtool.AgentIdentity(t)
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Certificate: &cert})
	if err != nil {
		t.Fatal(err)
	}
	a := &daemonAgent{c: c, cert: cert, fp: fp, name: name, wakes: make(chan time.Time, 100)}
	srv, err := agentpkg.ListenPollNow(agentpkg.PollNowConfig{Addr: "127.0.0.1:0", Certificate: cert, ServerCA: h.pool(t).RootCAs,
		Wake: func() {
			select {
			case a.wakes <- time.Now():
			default:
			}
		}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var res struct {
		ClientID string `xmlrpc:"client_id"`
	}
	if err := c.Call(context.Background(), "agent.register", &res, map[string]any{"hostname": name, "os": "linux", "arch": "amd64",
		"version": "t", "mode": "daemon", "callback_url": srv.URL()}); err != nil {
		t.Fatal(err)
	}
	a.id = res.ClientID
	if err := h.operator(t).Call(context.Background(), "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *daemonAgent) waitWake(t *testing.T, what string) time.Time {
	t.Helper()
	select {
	case at := <-a.wakes:
		return at
	case <-time.After(20 * time.Second):
		t.Fatalf("no push: %s", what)
	}
	return time.Time{}
}

// settle forgets the pushes that arrive within d.
func (a *daemonAgent) settle(d time.Duration) {
	deadline := time.After(d)
	for {
		select {
		case <-a.wakes:
		case <-deadline:
			return
		}
	}
}

func (a *daemonAgent) noWake(t *testing.T, within time.Duration, what string) {
	t.Helper()
	select {
	case <-a.wakes:
		t.Fatalf("unexpected push: %s", what)
	case <-time.After(within):
	}
}

func (h *harness) submit(t *testing.T, job map[string]any) string {
	t.Helper()
	var sub api.SubmitResult
	if err := h.operator(t).Call(context.Background(), "job.submit", &sub, job); err != nil {
		t.Fatal(err)
	}
	return sub.ID
}

// TestPushOnSubmit: job.submit pushes its daemon-mode targets, and
// client.get and client.list show the outcome.
func TestPushOnSubmit(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	a.noWake(t, 100*time.Millisecond, "nothing to do yet")
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	a.waitWake(t, "after job.submit")
	var docs []string
	if err := a.c.Call(ctx, "agent.getJobs", &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs after the push: %d documents, %v", len(docs), err)
	}
	var c api.Client
	testtool.WaitFor(t, "last_push in client.get", func() bool {
		if err := h.operator(t).Call(ctx, "client.get", &c, a.fp); err != nil {
			t.Fatal(err)
		}
		return c.LastPush != nil
	})
	if c.Mode != "daemon" || !strings.HasPrefix(c.CallbackURL, "https://127.0.0.1:") || c.LastPush.Result != "ok" ||
		c.LastPush.ServerID == "" || c.LastPush.ServerID == "0" || c.LastPush.At.IsZero() {
		t.Fatalf("client.get = %+v, last_push %+v", c, c.LastPush)
	}
	var cs []api.Client
	if err := h.operator(t).Call(ctx, "client.list", &cs); err != nil || len(cs) != 1 || cs[0].LastPush == nil {
		t.Fatalf("client.list = %+v, %v", cs, err)
	}
	// A poll-mode target is not pushed, and shows no last_push.
	poll, fp := h.agentClient(t)
	register(t, poll, "p1")
	if err := h.operator(t).Call(ctx, "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	h.submit(t, map[string]any{"script": "true", "targets": []string{"p1"}})
	if err := h.operator(t).Call(ctx, "client.get", &c, fp); err != nil || c.LastPush != nil || c.Mode != "poll" {
		t.Fatalf("poll-mode client = %+v, %v", c, err)
	}
	a.noWake(t, 100*time.Millisecond, "a job for another client")
}

// TestPushOnRequeue: a run whose lease expired goes back to pending, and
// its daemon-mode client is pushed.
func TestPushOnRequeue(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.Lease = time.Second; c.RescueInterval = 100 * time.Millisecond })
	a := h.daemonAgent(t, "d1")
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}})
	a.waitWake(t, "after job.submit")
	var docs []string
	if err := a.c.Call(context.Background(), "agent.getJobs", &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs: %d documents, %v", len(docs), err)
	}
	sent := time.Now()
	// Not acknowledged: the lease runs out, the rescuer requeues, the push follows.
	at := a.waitWake(t, "after the requeue")
	if at.Sub(sent) < time.Second {
		t.Fatalf("pushed %v after dispatch, before the lease ended", at.Sub(sent))
	}
	if err := a.c.Call(context.Background(), "agent.getJobs", &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs after the requeue push: %d documents, %v", len(docs), err)
	}
}

// TestPushAtNotBefore: a job held back by not_before is not announced at
// submit but when its time comes.
func TestPushAtNotBefore(t *testing.T) {
	testPushAtNotBefore(t, newHarness(t))
}

// TestPushAtNotBeforeOnPostgres: the same with two daemons sharing one
// PostgreSQL database: the not_before push works on the multi-daemon
// driver too, and only the leading daemon sends it (one push, not two).
func TestPushAtNotBeforeOnPostgres(t *testing.T) {
	url := pgtest.Start(t)
	fast := func(c *Config) { c.DB = url; c.RescueInterval = 200 * time.Millisecond } // how often the leader looks for jobs taken elsewhere
	first := newHarnessConfig(t, fast)
	second := newHarnessConfig(t, func(c *Config) { fast(c); c.DataDir = first.paths.Dir }) // one CA, as a cluster's daemons share
	a := testPushAtNotBefore(t, second)                                                     // the second daemon takes the job; the first leads the push
	a.noWake(t, 2*time.Second, "a second push for the same not_before")
}

func testPushAtNotBefore(t *testing.T, h *harness) *daemonAgent {
	t.Helper()
	a := h.daemonAgent(t, "d1")
	a.settle(time.Second)                                              // a daemon that was still starting pushes its daemon-mode clients once
	notBefore := time.Now().Truncate(time.Second).Add(2 * time.Second) // dateTime.iso8601 has whole seconds
	h.submit(t, map[string]any{"script": "true", "targets": []string{"d1"}, "not_before": notBefore})
	at := a.waitWake(t, "at not_before")
	if at.Before(notBefore) {
		t.Fatalf("pushed at %v, before not_before %v", at, notBefore)
	}
	t.Logf("pushed %v after not_before", at.Sub(notBefore).Round(time.Millisecond))
	var docs []string
	if err := a.c.Call(context.Background(), "agent.getJobs", &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs after the not_before push: %d documents, %v", len(docs), err)
	}
	return a
}

// TestPushAtStartup: a starting daemon pushes every active daemon-mode client.
func TestPushAtStartup(t *testing.T) {
	h := newHarness(t)
	a := h.daemonAgent(t, "d1")
	h.cancel()
	err := <-h.done
	h.done <- err // for the cleanup
	if err != nil {
		t.Fatal(err)
	}
	newHarnessConfig(t, func(c *Config) { c.DataDir = h.paths.Dir })
	a.waitWake(t, "at startup")
}

// BenchmarkSubmitWithDeadDaemonAgent compares job.submit's latency for a
// poll-mode target, a daemon-mode target whose agent is down (connection
// refused), and one whose agent hangs (accepts, never answers: each push
// waits out its timeout). Pushes are sent in the background, so the three
// must cost the same:
//
//	go test ./server -run '^$' -bench SubmitWithDeadDaemonAgent -benchtime 200x
func BenchmarkSubmitWithDeadDaemonAgent(b *testing.B) {
	h := benchHarness(b)
	ctx := context.Background()
	op := h.operatorTB(b)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	downAddr := down.Addr().String()
	down.Close()
	hung, _ := testtool.HungListener(b)
	for _, tc := range []struct{ name, mode, callback string }{
		{"target=poll", "poll", ""},
		{"target=daemon-down", "daemon", "https://" + downAddr + "/RPC2"},
		{"target=daemon-hung", "daemon", "https://" + hung + "/RPC2"},
	} {
		cert, fp := testtool.AgentIdentity(b)
		c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.roots(b), Certificate: &cert})
		if err != nil {
			b.Fatal(err)
		}
		facts := map[string]any{"hostname": tc.name, "os": "linux", "arch": "amd64", "version": "b", "mode": tc.mode}
		if tc.callback != "" {
			facts["callback_url"] = tc.callback
		}
		if err := c.Call(ctx, "agent.register", nil, facts); err != nil {
			b.Fatal(err)
		}
		if err := op.Call(ctx, "client.accept", nil, []string{fp}); err != nil {
			b.Fatal(err)
		}
		job := map[string]any{"script": "true", "targets": []string{fp}}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if err := op.Call(ctx, "job.submit", nil, job); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchHarness is newHarness for benchmarks.
func benchHarness(tb testing.TB) *harness {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	logBuf := &testtool.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, Config{DataDir: filepath.Join(tb.TempDir(), "data"), Listener: ln, Listen: ln.Addr().String(),
		DB:  "sqlite://" + filepath.Join(tb.TempDir(), "scire.db") + "?synchronous=normal",
		Log: slog.New(slog.NewTextHandler(logBuf, nil)), GateMaxWait: 10 * time.Second})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	h := &harness{srv: s, url: "https://" + ln.Addr().String() + "/RPC2", paths: s.paths, log: logBuf, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- s.Serve(ctx) }()
	tb.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

func (h *harness) roots(tb testing.TB) *x509.CertPool {
	pool, err := pki.CertPool(h.paths.CACert())
	if err != nil {
		tb.Fatal(err)
	}
	return pool
}

func (h *harness) operatorTB(tb testing.TB) *client.Client {
	tok, err := readToken(h.paths)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.roots(tb), Token: tok})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
