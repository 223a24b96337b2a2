package server

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runstate"
	"github.com/scirectl/scirectl/xmlrpc"
)

// scrape is one GET /metrics over the harness's TLS, without a token.
type scrape struct {
	body string
	fams map[string]*dto.MetricFamily
}

func (h *harness) scrape(t *testing.T) scrape {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: h.pool(t)}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := hc.Get(strings.TrimSuffix(h.url, "/RPC2") + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d %q", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, b)
	}
	return scrape{body: string(b), fams: fams}
}

// find returns the series of family name whose labels include labels.
func (s scrape) find(t *testing.T, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	f, ok := s.fams[name]
	if !ok {
		t.Fatalf("no metric family %s", name)
	}
	if f.GetHelp() == "" {
		t.Errorf("%s has no HELP text", name)
	}
	if m := series(f, labels); m != nil {
		return m
	}
	t.Fatalf("no series %s%v", name, labels)
	return nil
}

// series returns the first series of f whose labels include labels, or nil.
func series(f *dto.MetricFamily, labels map[string]string) *dto.Metric {
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's, gauge's or untyped metric's value, or a
// histogram's count of observations.
func (s scrape) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m := s.find(t, name, labels)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v: unexpected type", name, labels)
	return 0
}

func (s scrape) want(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := s.value(t, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func (s scrape) atLeast(t *testing.T, name string, labels map[string]string, min float64) {
	t.Helper()
	if got := s.value(t, name, labels); got < min {
		t.Errorf("%s%v = %v, want at least %v", name, labels, got, min)
	}
}

type lbl = map[string]string

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	admin := h.operator(t)
	adminTok, _ := readToken(h.paths)
	zelda, zeldaTok := h.addUser(t, admin, "zelda-metrics-user")
	addRule(t, admin, "user:zelda-metrics-user", "run", "*", "allow")
	busy, _ := h.activeClient(t, admin, "busy-host-name")
	h.activeClient(t, admin, "idle-host-name") // registered just now: seen, but never polls
	pending, pendingFP := h.agentClient(t)
	register(t, pending, "pending-host-name")

	const script = "echo secret-script-text"
	for range 3 {
		mustCall(t, zelda, "job.submit", nil, map[string]any{"script": script, "targets": []string{"busy-host-name"}})
	}
	for range 2 {
		mustCall(t, admin, "job.submit", nil, map[string]any{"script": script, "targets": []string{"idle-host-name"}})
	}
	var docs []string
	mustCall(t, busy, "agent.getJobs", &docs, 1)
	if len(docs) != 1 {
		t.Fatalf("getJobs: %d documents, want 1", len(docs))
	}
	j, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	mustCall(t, busy, "agent.ackJobs", nil, []string{itoa(j.Run)})
	zero := 0
	doc, _ := jobxml.EncodeStatuses([]jobxml.Status{{Run: j.Run, State: jobxml.StateSucceeded, Exit: &zero,
		Started: time.Now().UTC(), Finished: time.Now().UTC(), Output: "secret-output-text"}})
	mustCall(t, busy, "agent.reportStatus", nil, string(doc))
	mustCall(t, busy, "agent.heartbeat", nil)
	wantFault(t, admin.Call(ctx, "job.get", nil, "999999"), 404)
	wantFault(t, h.as(t, "").Call(ctx, "job.list", nil), 401)
	wantFault(t, pending.Call(ctx, "agent.getJobs", nil, 1), 402)

	s := h.scrape(t)

	// RPCs: counted by method and outcome; dispatch and report timed.
	s.want(t, "scire_rpc_requests_total", lbl{"method": "job.submit", "code": "0"}, 5)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "job.get", "code": "404"}, 1)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "job.list", "code": "401"}, 1)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "agent.getJobs", "code": "402"}, 1)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "agent.getJobs", "code": "0"}, 1)
	s.want(t, "scire_rpc_duration_seconds", lbl{"method": "agent.getJobs"}, 2)
	s.want(t, "scire_rpc_duration_seconds", lbl{"method": "agent.reportStatus"}, 1)
	if m := s.find(t, "scire_rpc_duration_seconds", lbl{"method": "agent.reportStatus"}); m.Histogram.GetSampleSum() <= 0 {
		t.Errorf("agent.reportStatus duration sum = %v", m.Histogram.GetSampleSum())
	}

	// The gate: waits and holds by operation and class, for admitted
	// operations only (a refused token never reaches the gate); the
	// rescuer's sweeps too.
	for _, name := range []string{"scire_gate_wait_seconds", "scire_gate_hold_seconds"} {
		s.want(t, name, lbl{"operation": "job.submit", "class": "modifier"}, 5)
		s.want(t, name, lbl{"operation": "agent.getJobs", "class": "non-modifier"}, 1)
		s.atLeast(t, name, lbl{"operation": "rescuer.sweep", "class": "non-modifier"}, 1)
	}
	if _, ok := s.fams["scire_gate_wait_seconds"]; ok {
		for _, m := range s.fams["scire_gate_wait_seconds"].Metric {
			for _, l := range m.Label {
				if l.GetName() == "operation" && l.GetValue() == "job.list" {
					t.Errorf("job.list refused before the gate has a gate wait")
				}
			}
		}
	}
	st := h.srv.gate.Stats()
	s.want(t, "scire_gate_busy_total", nil, float64(st.Busy))
	s.atLeast(t, "scire_gate_admitted_total", nil, 5)
	s.want(t, "scire_gate_holders", lbl{"class": "modifier"}, 0)
	s.want(t, "scire_gate_waiting", nil, 0)

	// Runs and clients, from the store.
	want := map[runstate.State]float64{runstate.Pending: 4, runstate.Succeeded: 1}
	for _, state := range runstate.All {
		s.want(t, "scire_runs", lbl{"state": string(state)}, want[state])
	}
	s.want(t, "scire_clients", lbl{"status": "active"}, 2)
	s.want(t, "scire_clients", lbl{"status": "pending"}, 1)
	s.want(t, "scire_clients", lbl{"status": "rejected"}, 0)
	s.want(t, "scire_clients", lbl{"status": "revoked"}, 0)
	s.want(t, "scire_agents_seen", nil, 2)
	s.want(t, "scire_agents_polling", nil, 1)

	// Pushes: no client here is in daemon mode, so nothing was pushed; the
	// outcomes exist anyway.
	for _, o := range []string{"ok", "failed", "woken"} {
		s.want(t, "scire_push_total", lbl{"outcome": o}, 0)
	}
	s.atLeast(t, "scire_push_total", lbl{"outcome": "skipped"}, 0)
	s.want(t, "scire_agents_waiting", nil, 0)

	// Store query latencies, by method.
	s.want(t, "scire_db_query_duration_seconds", lbl{"method": "SubmitJobs"}, 5)
	for _, m := range []string{"ClaimRuns", "AckRuns", "ReportRuns", "Sweep", "ClientByFingerprint", "TokenByID",
		"CancelledRuns"} {
		s.atLeast(t, "scire_db_query_duration_seconds", lbl{"method": m}, 1)
	}
	// A scrape's own queries are timed too; they show from the next one
	// (the registry gathers the histogram and runs the queries at once).
	// The agents' last-seen times are written by the scrape, before it
	// counts them, if the second's flush has not come first.
	s2 := h.scrape(t)
	for _, m := range []string{"RunCounts", "ClientCounts", "TouchClients"} {
		s2.atLeast(t, "scire_db_query_duration_seconds", lbl{"method": m}, 1)
	}

	// The rescuer's kinds exist before anything happened.
	s.want(t, "scire_rescuer_changes_total", lbl{"kind": "requeued"}, 0)
	s.want(t, "scire_rescuer_changes_total", lbl{"kind": "failed (lost)"}, 0)

	// Go and process collectors, and the version.
	s.atLeast(t, "go_goroutines", nil, 1)
	if runtime.GOOS == "linux" {
		s.atLeast(t, "process_start_time_seconds", nil, 1)
	}
	s.want(t, "scire_build_info", nil, 1)

	// Counts only: no names, tokens, fingerprints, scripts or output.
	for _, secret := range []string{"zelda-metrics-user", zeldaTok, adminTok, `"admin"`, "busy-host-name", "idle-host-name",
		"pending-host-name", pendingFP, "secret-script-text", "secret-output-text"} {
		if strings.Contains(s.body, secret) {
			t.Errorf("/metrics contains %q", secret)
		}
	}
	for name := range s.fams {
		if !strings.HasPrefix(name, "scire_") && !strings.HasPrefix(name, "go_") &&
			!strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("unexpected metric family %s", name)
		}
	}
}

// TestMetricsBusyAndNoSlot: a gate refusal is counted, and /metrics is
// served while every request slot is taken (it takes none).
func TestMetricsBusyAndNoSlot(t *testing.T) {
	ctx := context.Background()
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	block := func(context.Context, xmlrpc.Params) (any, error) {
		entered <- struct{}{}
		<-release
		return "ok", nil
	}
	hold := Operation{Name: "test.hold", Class: gate.Modifier, caller: byOperator, handler: block}
	park := Operation{Name: "test.park", Ungated: true, caller: byOperator, handler: block}
	h := newHarnessConfig(t, func(c *Config) { c.MaxThreads = 2; c.MaxThreadsWait = time.Minute }, hold, park)
	admin := h.operator(t)
	tok, _ := readToken(h.paths)
	noWait, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: tok, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- admin.Call(ctx, "test.hold", nil) }()
	<-entered // a modifier holds the gate and one of the two slots
	wantFault(t, noWait.Call(ctx, "job.list", nil), 423)
	go func() { errs <- admin.Call(ctx, "test.park", nil) }()
	<-entered // and now the second slot is taken too

	s := h.scrape(t)
	s.want(t, "scire_gate_busy_total", nil, 1)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "job.list", "code": "423"}, 1)
	s.want(t, "scire_gate_holders", lbl{"class": "modifier"}, 1)
	close(release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s = h.scrape(t)
	s.want(t, "scire_gate_hold_seconds", lbl{"operation": "test.hold", "class": "modifier"}, 1)
	s.want(t, "scire_rpc_requests_total", lbl{"method": "test.park", "code": "0"}, 1)
	if _, ok := s.fams["scire_gate_hold_seconds"]; ok {
		for _, m := range s.fams["scire_gate_hold_seconds"].Metric {
			for _, l := range m.Label {
				if l.GetValue() == "test.park" {
					t.Errorf("an ungated operation has a gate hold")
				}
			}
		}
	}
}

// TestMetricsRescuer: a lease that runs out is requeued by the rescuer,
// and counted by kind.
func TestMetricsRescuer(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.Lease = 100 * time.Millisecond; c.RescueInterval = 50 * time.Millisecond })
	admin := h.operator(t)
	ag, _ := h.activeClient(t, admin, "web1")
	mustCall(t, admin, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}})
	var docs []string
	mustCall(t, ag, "agent.getJobs", &docs, 1) // and never acknowledged
	if len(docs) != 1 {
		t.Fatalf("getJobs: %d documents", len(docs))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := h.scrape(t)
		if s.value(t, "scire_rescuer_changes_total", lbl{"kind": "requeued"}) >= 1 {
			s.atLeast(t, "scire_db_query_duration_seconds", lbl{"method": "Sweep"}, 2)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no requeue counted:\n%s", s.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMetricsDisabled(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) { c.DisableMetrics = true })
	mustCall(t, h.operator(t), "job.list", nil)
	if h.srv.metrics != nil {
		t.Fatal("metrics set up although disabled")
	}
	if _, wrapped := h.srv.store.(*instrumentedStore); wrapped {
		t.Fatal("store decorated although metrics are disabled")
	}
	tr := &http.Transport{TLSClientConfig: h.pool(t)}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(strings.TrimSuffix(h.url, "/RPC2") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /metrics with metrics disabled: HTTP %d, want 404", resp.StatusCode)
	}
}

// The decorated store answers what the store does: db.migrate reads the
// driver's LatestVersion through it.
func TestInstrumentedStoreIsAStore(t *testing.T) {
	h := newHarness(t)
	if _, ok := h.srv.store.(*instrumentedStore); !ok {
		t.Fatalf("store %T is not decorated", h.srv.store)
	}
	var v api.DBVersion
	mustCall(t, h.operator(t), "db.migrate", &v)
	if v.Latest == 0 || v.Latest != v.Version {
		t.Fatalf("db.migrate through the decorated store = %+v", v)
	}
}
