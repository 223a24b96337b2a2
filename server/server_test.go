package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/xmlrpc"
)

// harness is a server running in-process on a loopback port with real TLS.
type harness struct {
	srv    *Server
	url    string
	paths  datadir.Paths
	log    *testtool.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, extra ...Operation) *harness {
	return newHarnessConfig(t, nil, extra...)
}

// newHarnessConfig starts a server on loopback; mod may change its
// configuration first (the data directory is already chosen, empty).
func newHarnessConfig(t *testing.T, mod func(*Config), extra ...Operation) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &testtool.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Listener: ln, Listen: ln.Addr().String(),
		Log: slog.New(slog.NewTextHandler(logBuf, nil)), GateMaxWait: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, op := range extra {
		s.ops[op.Name] = op
		s.rpc.Register(xmlrpc.Method{Name: op.Name, Handler: op.handler})
	}
	h := &harness{srv: s, url: "https://" + ln.Addr().String() + "/RPC2", paths: s.paths, log: logBuf, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-h.done
	})
	return h
}

func (h *harness) pool(t *testing.T) *tls.Config {
	pool, err := pki.CertPool(h.paths.CACert())
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool}
}

func (h *harness) operator(t *testing.T) *client.Client {
	t.Helper()
	tok, err := readToken(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readToken(p datadir.Paths) (string, error) {
	b, err := os.ReadFile(p.AdminToken())
	return strings.TrimSpace(string(b)), err
}

// agentClient makes a fresh agent identity and a client presenting it.
func (h *harness) agentClient(t *testing.T) (*client.Client, string) {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned("agent", nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Certificate: &pair})
	if err != nil {
		t.Fatal(err)
	}
	return c, pki.Fingerprint(pair.Certificate[0])
}

func register(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	var res struct {
		ClientID string `xmlrpc:"client_id"`
		Status   string `xmlrpc:"status"`
	}
	if err := c.Call(context.Background(), "agent.register", &res, map[string]any{"hostname": name, "os": "linux", "arch": "amd64", "version": "t"}); err != nil {
		t.Fatal(err)
	}
	if res.Status != "pending" && res.Status != "active" {
		t.Fatalf("register status %q", res.Status)
	}
	return res.ClientID
}

func wantFault(t *testing.T, err error, code int) {
	t.Helper()
	if got := api.FaultCode(err); got != code {
		t.Fatalf("err = %v, want fault %d", err, code)
	}
}

func TestAgentProtocol(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	ag, fp := h.agentClient(t)
	id := register(t, ag, "web1")

	var docs []string
	wantFault(t, ag.Call(ctx, "agent.getJobs", &docs, 5), 402)

	var cs []api.Client
	if err := op.Call(ctx, "client.accept", &cs, []string{fp}); err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != id || cs[0].Status != "active" {
		t.Fatalf("accept = %+v", cs)
	}
	var sub api.SubmitResult
	script := "echo 'hi' ]]> & <x>\r\n"
	if err := op.Call(ctx, "job.submit", &sub, map[string]any{"script": script, "targets": []string{"web1"}, "priority": 4, "timeout": 30}); err != nil {
		t.Fatal(err)
	}
	if err := ag.Call(ctx, "agent.getJobs", &docs, 10); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	j, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if j.Script != script || j.Priority != 4 || j.Timeout != 30*time.Second || j.SubmittedBy != "admin" || j.Attempt != 1 {
		t.Fatalf("job document = %+v", j)
	}
	var ack struct {
		Acknowledged int      `xmlrpc:"acknowledged"`
		Stale        []string `xmlrpc:"stale"`
	}
	runID := itoa(j.Run)
	for i := 0; i < 2; i++ { // the repeat is idempotent
		if err := ag.Call(ctx, "agent.ackJobs", &ack, []string{runID}); err != nil {
			t.Fatal(err)
		}
		if ack.Acknowledged != 1 {
			t.Fatalf("ack = %+v", ack)
		}
	}
	zero := 0
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{{Run: j.Run, State: jobxml.StateSucceeded, Exit: &zero,
		Started: time.Now().UTC().Add(-time.Second), Finished: time.Now().UTC(), Output: "hi\n"}})
	if err != nil {
		t.Fatal(err)
	}
	var rep []struct {
		RunID    string `xmlrpc:"run_id"`
		Accepted bool   `xmlrpc:"accepted"`
		Error    string `xmlrpc:"error"`
	}
	for i := 0; i < 2; i++ {
		if err := ag.Call(ctx, "agent.reportStatus", &rep, string(doc)); err != nil {
			t.Fatal(err)
		}
		if len(rep) != 1 || !rep[0].Accepted || rep[0].RunID != runID {
			t.Fatalf("report = %+v", rep)
		}
	}
	var got api.Job
	if err := op.Call(ctx, "job.get", &got, sub.ID); err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" || len(got.Runs) != 1 || got.Runs[0].ExitCode == nil || *got.Runs[0].ExitCode != 0 {
		t.Fatalf("job = %+v", got)
	}
	var hb struct {
		ServerTime   time.Time `xmlrpc:"server_time"`
		PollInterval int       `xmlrpc:"poll_interval"`
	}
	if err := ag.Call(ctx, "agent.heartbeat", &hb); err != nil {
		t.Fatal(err)
	}
	if hb.PollInterval != 30 || time.Since(hb.ServerTime) > time.Minute {
		t.Fatalf("heartbeat = %+v", hb)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestForeignRunsAreConflicts(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	a, afp := h.agentClient(t)
	b, bfp := h.agentClient(t)
	register(t, a, "a")
	register(t, b, "b")
	if err := op.Call(ctx, "client.accept", nil, []string{afp, bfp}); err != nil {
		t.Fatal(err)
	}
	if err := op.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	var docs []string
	if err := a.Call(ctx, "agent.getJobs", &docs, 1); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs = %d docs, %v", len(docs), err)
	}
	j, _ := jobxml.DecodeJob([]byte(docs[0]))
	runID := itoa(j.Run)
	// b acks and reports a's run: 409, and the run is unchanged.
	wantFault(t, b.Call(ctx, "agent.ackJobs", nil, []string{runID}), 409)
	zero := 0
	doc, _ := jobxml.EncodeStatuses([]jobxml.Status{{Run: j.Run, State: jobxml.StateSucceeded, Exit: &zero, Finished: time.Now().UTC()}})
	wantFault(t, b.Call(ctx, "agent.reportStatus", nil, string(doc)), 409)
	wantFault(t, b.Call(ctx, "agent.ackJobs", nil, []string{"99999999"}), 404)
	r, err := h.srv.store.Run(ctx, j.Run)
	if err != nil || r.State != "sent" {
		t.Fatalf("run after forged calls = %+v, %v; want still sent", r, err)
	}
}

func TestBadInputIsAFault(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	cases := []struct {
		method string
		args   []any
		code   int
		want   string
	}{
		{"job.submit", []any{map[string]any{"targets": []string{"x"}}}, 400, "script"},
		{"job.submit", []any{map[string]any{"script": "true", "targets": []string{"x"}, "timeout": -1}}, 400, "timeout"},
		{"job.submit", []any{map[string]any{"script": "true", "targets": []string{}}}, 400, "targets"},
		{"job.submit", []any{"not a struct"}, 400, "param 1"},
		{"job.get", []any{"-5"}, 400, "job_id"},
		{"job.get", []any{}, 400, "params"},
		{"client.list", []any{map[string]any{"status": "sleepy"}}, 400, "sleepy"},
		{"no.such", nil, 404, "no.such"},
	}
	for _, tc := range cases {
		err := op.Call(ctx, tc.method, nil, tc.args...)
		if api.FaultCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%v: err = %v; want fault %d mentioning %q", tc.method, tc.args, err, tc.code, tc.want)
		}
	}
	// Go's XML encoder replaces control characters before they reach the
	// wire, so a control character is sent raw, as other clients may.
	tok, err := readToken(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: h.pool(t)}}
	body := `<?xml version="1.0"?><methodCall><methodName>job.submit</methodName><params><param><value><struct>` +
		`<member><name>script</name><value><string>a&#1;b</string></value></member>` +
		`<member><name>targets</name><value><array><data><value>x</value></data></array></value></member>` +
		`</struct></value></param></params></methodCall>`
	req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), "<int>400</int>") {
		t.Errorf("control character in script: HTTP %d %s; want fault 400", resp.StatusCode, raw)
	}
	jobs, err := h.srv.store.ListJobs(ctx, db.JobFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("bad input left %d jobs (%v)", len(jobs), err)
	}
}

func TestPanicBecomesFault500WithRequestID(t *testing.T) {
	h := newHarness(t, Operation{Name: "test.panic", Class: gate.NonModifier, caller: byOperator,
		handler: func(context.Context, xmlrpc.Params) (any, error) { panic("boom") }})
	err := h.operator(t).Call(context.Background(), "test.panic", nil)
	var f *api.Fault
	if !errors.As(err, &f) || f.Code != 500 || !strings.Contains(f.Message, "request id") {
		t.Fatalf("err = %v, want fault 500 naming a request id", err)
	}
	id := f.Message[strings.Index(f.Message, "request id ")+len("request id ") : len(f.Message)-1]
	if !strings.Contains(h.log.String(), "request_id="+id) || !strings.Contains(h.log.String(), "boom") {
		t.Fatalf("log does not hold the panic under request id %s:\n%s", id, h.log.String())
	}
	if strings.Contains(f.Message, "boom") || strings.Contains(f.Message, "goroutine") {
		t.Fatalf("fault leaks the panic: %q", f.Message)
	}
	// The gate slot was released: a modifier still gets through.
	if err := h.operator(t).Call(context.Background(), "job.submit", nil, map[string]any{"script": "true", "targets": []string{"nobody"}}); api.FaultCode(err) != 404 {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	started := make(chan struct{})
	h := newHarness(t, Operation{Name: "test.slow", Class: gate.NonModifier, caller: byOperator,
		handler: func(context.Context, xmlrpc.Params) (any, error) {
			close(started)
			time.Sleep(300 * time.Millisecond)
			return "done", nil
		}})
	op := h.operator(t)
	res := make(chan error, 1)
	go func() {
		var s string
		err := op.Call(context.Background(), "test.slow", &s)
		if err == nil && s != "done" {
			err = errors.New("wrong result " + s)
		}
		res <- err
	}()
	<-started
	h.cancel()
	if err := <-res; err != nil {
		t.Fatalf("in-flight call during shutdown: %v", err)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	h.done <- nil
	if err := h.srv.store.Ready(context.Background()); err == nil {
		t.Fatal("store still open after shutdown")
	}
}

func TestEveryMethodIsAnOperation(t *testing.T) {
	h := newHarness(t)
	for _, m := range h.srv.rpc.Methods() {
		if strings.HasPrefix(m, "system.") {
			continue
		}
		if _, ok := h.srv.ops[m]; !ok {
			t.Errorf("XML-RPC method %s has no entry in the operation registry (name, class)", m)
		}
	}
	for _, op := range h.srv.Operations() {
		if op.Help == "" || len(op.Signature) == 0 {
			t.Errorf("operation %s lacks help or signature", op.Name)
		}
	}
}

func TestAdminTokenReusedAndRepaired(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	p := datadir.Paths{Dir: dir}
	for i := 0; i < 2; i++ {
		s, err := New(ctx, Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := readToken(p)
		if u, err := datadir.VerifyToken(ctx, s.store, tok); err != nil || u.Name != "admin" {
			t.Fatalf("start %d: admin token does not verify: %v", i, err)
		}
		if _, err := datadir.VerifyToken(ctx, s.store, tok[:len(tok)-1]+"x"); err == nil {
			t.Fatal("a tampered token verified")
		}
		s.Close()
	}
}
