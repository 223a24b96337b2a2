package loadgen_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/loadgen"
	"github.com/scirectl/scirectl/pki"
)

// checkFanout verifies what every fanout run must satisfy: one job, one
// run for each agent, each completed exactly once, and the time until
// the last was final no shorter than any run's.
func checkFanout(t *testing.T, r *loadgen.Results, agents int) {
	t.Helper()
	js, _ := json.MarshalIndent(r, "", "  ")
	t.Logf("results: %s", js)
	if r.Mode != loadgen.Fanout || r.Jobs != 1 || r.Runs != agents || r.Completed != agents || r.Missing != 0 || r.Duplicates != 0 {
		t.Fatalf("mode %s, jobs %d, runs %d, completed %d, missing %d, duplicates %d; want one job whose %d runs completed exactly once",
			r.Mode, r.Jobs, r.Runs, r.Completed, r.Missing, r.Duplicates, agents)
	}
	if r.AllFinalSeconds == nil || *r.AllFinalSeconds <= 0 {
		t.Fatalf("all_final_seconds %v: want > 0", r.AllFinalSeconds)
	}
	// The last completion is the slowest run's: the same instant.
	if d := *r.AllFinalSeconds*1000 - r.SubmitToCompleted.Max; d < -0.001 || d > 0.001 {
		t.Errorf("all_final_seconds %.6f, submit→completed max %.3f ms: want the same", *r.AllFinalSeconds, r.SubmitToCompleted.Max)
	}
	for name, l := range map[string]loadgen.Latency{"submit→received": r.SubmitToReceived, "submit→completed": r.SubmitToCompleted} {
		if !(0 < l.P50 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("%s percentiles out of order: %+v", name, l)
		}
	}
	if r.SubmitToCompleted.P50 < r.SubmitToReceived.P50 || r.SubmitToCompleted.Max < r.SubmitToReceived.Max {
		t.Errorf("completed before received: %+v vs %+v", r.SubmitToCompleted, r.SubmitToReceived)
	}
	if r.SubmitSeconds <= 0 || r.MeasureSeconds < *r.AllFinalSeconds {
		t.Errorf("submit %vs, measured %vs for all final in %vs", r.SubmitSeconds, r.MeasureSeconds, *r.AllFinalSeconds)
	}
	if r.ErrorsTotal != 0 {
		t.Errorf("errors: %v", r.Errors)
	}
	// One job.submit; each agent acknowledged and reported its run in a
	// call of its own (the warm-up's polls are not counted).
	if r.Calls["job.submit"] != 1 || r.Calls["system.multicall"] != 0 ||
		r.Calls["agent.ackJobs"] != int64(agents) || r.Calls["agent.reportStatus"] != int64(agents) {
		t.Errorf("calls: %v; want one job.submit and one ackJobs and reportStatus per agent", r.Calls)
	}
	if r.SubmitBatch != 0 || r.Submitters != 0 || r.JobsPerSecond != 0 || r.DrainSeconds != 0 {
		t.Errorf("submit_batch %d, submitters %d, jobs/s %v, drain %vs: not figures of the fanout mode",
			r.SubmitBatch, r.Submitters, r.JobsPerSecond, r.DrainSeconds)
	}
	if r.Target != "remote" && (r.ServerCPUPerJob == nil || *r.ServerCPUPerJob <= 0) {
		t.Errorf("server CPU per run %v", r.ServerCPUPerJob)
	}
}

// Polling agents find the job at their next poll: every run is received
// within one poll interval (and its jitter) of the submit, give or take
// the server's time.
func TestFanoutPolling(t *testing.T) {
	const agents = 20
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Fanout, Agents: agents, PollInterval: 300 * time.Millisecond,
		DataDir: t.TempDir(), Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFanout(t, r, agents)
	if r.Push || r.Pushes != 0 || r.PollIntervalSeconds != 0.3 || r.Batch != loadgen.DefaultFanoutBatch {
		t.Errorf("push %v, %d pushes, poll interval %vs, batch %d", r.Push, r.Pushes, r.PollIntervalSeconds, r.Batch)
	}
	if r.SubmitToReceived.Max > 5000 {
		t.Errorf("submit→received max %.0f ms: more than a poll interval of 300 ms allows", r.SubmitToReceived.Max)
	}
	if r.Calls["agent.getJobs"] < agents {
		t.Errorf("%d agent.getJobs calls within the measurement for %d agents", r.Calls["agent.getJobs"], agents)
	}
}

// Daemon-mode agents wait for work in agent.getJobs (or are woken by
// agent.pollNow): with the default safety net of 30 s, only the wake-ups
// can bring the runs out within seconds.
func TestFanoutPush(t *testing.T) {
	const agents = 20
	r, err := loadgen.Run(context.Background(), loadgen.Options{
		Mode: loadgen.Fanout, Agents: agents, Push: true, DataDir: t.TempDir(), Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFanout(t, r, agents)
	if !r.Push || r.Pushes+r.Woken < agents || r.PollIntervalSeconds != loadgen.DefaultFanoutPushInterval.Seconds() {
		t.Errorf("push %v, %d pushes received and %d waits answered for %d agents, safety net %vs", r.Push, r.Pushes, r.Woken, agents, r.PollIntervalSeconds)
	}
	if r.SubmitToReceived.Max > 20000 {
		t.Errorf("submit→received max %.0f ms: an agent waited for its safety poll, not a push", r.SubmitToReceived.Max)
	}
	if r.ServerCPUSeconds == nil || *r.ServerCPUSeconds <= 0 {
		t.Errorf("server CPU %v", r.ServerCPUSeconds)
	}
	js, _ := json.Marshal(r)
	for _, k := range []string{`"all_final_seconds":`, `"runs":20`, `"submit_to_received":{"p50_ms":`, `"submit_to_completed":{"p50_ms":`} {
		if !bytes.Contains(js, []byte(k)) {
			t.Errorf("JSON lacks %s: %s", k, js)
		}
	}
}

// On an existing server the glob names the bench's agents alone: another
// active client, never polling, gets no run of the job (its run would
// keep the job from ever being final). The bench's clients are removed at
// the end.
func TestFanoutRemote(t *testing.T) {
	srv := startRemote(t)
	other := srv.acceptedClient(t, "bench-other")
	const agents = 5
	r, err := loadgen.Run(srv.ctx, loadgen.Options{
		Mode: loadgen.Fanout, Agents: agents, PollInterval: 200 * time.Millisecond,
		Server: srv.url, Token: srv.token, RootCAs: srv.roots, Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFanout(t, r, agents)
	if r.Target != "remote" {
		t.Errorf("target %q", r.Target)
	}
	srv.deleteClient(t, other)
	srv.noClientsLeft(t)
}

func TestValidateFanout(t *testing.T) {
	for _, tc := range []struct {
		o    loadgen.Options
		want string
	}{
		{loadgen.Options{Mode: loadgen.Fanout, Jobs: 5}, "one job"},
		{loadgen.Options{Mode: loadgen.Fanout, Rate: 10}, "steady"},
		{loadgen.Options{Mode: loadgen.Fanout, Duration: time.Minute}, "duration"},
		{loadgen.Options{Mode: loadgen.Fanout, Old: 100}, "old"},
		{loadgen.Options{Mode: loadgen.Fanout, Stream: 1 << 20}, "not fanout"},
		{loadgen.Options{Mode: loadgen.Fanout, Agents: 10001}, "agents"},
	} {
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want one naming %q", tc.o, err, tc.want)
		}
	}
	for _, o := range []loadgen.Options{
		{Mode: loadgen.Fanout},
		{Mode: loadgen.Fanout, Agents: 10000, Push: true, Pending: 1000},
		{Mode: loadgen.Fanout, PollInterval: 5 * time.Second, Batch: 1},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// acceptedClient registers a client named name with an identity of its
// own, accepts it, and returns its id; it never polls.
func (s *remote) acceptedClient(t *testing.T, name string) string {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned(name, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Options{Servers: []string{s.url}, RootCAs: s.roots, Certificate: &pair})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var reg api.RegisterResult
	if err := c.Call(s.ctx, api.MethodRegister, &reg, map[string]any{"hostname": name, "os": "linux", "arch": "amd64", "version": "test"}); err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	s.operator(t, api.MethodClientAccept, []string{pki.Fingerprint(pair.Certificate[0])})
	return reg.ClientID
}

// deleteClient revokes and deletes a client: client.delete refuses one
// with a run in flight.
func (s *remote) deleteClient(t *testing.T, id string) {
	t.Helper()
	s.operator(t, "client.revoke", []string{id})
	s.operator(t, "client.delete", []string{id})
}

// operator makes one call with the admin token.
func (s *remote) operator(t *testing.T, method string, args ...any) {
	t.Helper()
	op, err := client.New(client.Options{Servers: []string{s.url}, RootCAs: s.roots, Token: s.token})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.Call(s.ctx, method, nil, args...); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
}
