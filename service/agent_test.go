package service_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/service"
)

// A new certificate becomes a pending client; registering again updates
// its facts and never its status.
func TestRegisterAgent(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	c, err := s.RegisterAgent(ctx, fp(0), service.Facts{Hostname: "web1", OS: "linux", Arch: "amd64", Version: "1", Mode: db.ModePoll})
	if err != nil || c.Status != db.ClientPending || c.Name != "web1" || c.Fingerprint != fp(0) {
		t.Fatalf("RegisterAgent = %+v, %v; want pending web1", c, err)
	}
	if _, err := s.Store.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		t.Fatal(err)
	}
	again, err := s.RegisterAgent(ctx, fp(0), service.Facts{Hostname: "web1", OS: "linux", Arch: "arm64", Version: "2", Mode: db.ModePoll})
	if err != nil || again.ID != c.ID || again.Status != db.ClientActive || again.Arch != "arm64" || again.Version != "2" {
		t.Fatalf("registering again = %+v, %v; want the same active client, new facts", again, err)
	}
}

func TestRegisterAgentRefusals(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	s.Agents.PushNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ok := service.Facts{Hostname: "web1", OS: "linux", Arch: "amd64", Version: "1", Mode: db.ModePoll}
	with := func(f func(*service.Facts)) service.Facts { r := ok; f(&r); return r }
	for _, tc := range []struct {
		facts service.Facts
		text  string
	}{
		{with(func(f *service.Facts) { f.Hostname = "" }), "facts.hostname: required"},
		{with(func(f *service.Facts) { f.OS = strings.Repeat("x", 65) }), "facts.os: longer than 64 bytes"},
		{with(func(f *service.Facts) { f.Version = "1\x01" }), "facts.version"},
		{with(func(f *service.Facts) { f.Hostname = "12345" }), `facts.hostname: "12345" is all digits, which reads as an id: use a name with a letter in it (the client's name; send facts.name to choose another)`},
		{with(func(f *service.Facts) { f.Name = fp(3) }), `facts.name: "` + fp(3) + `" is 64 hex digits`},
		{with(func(f *service.Facts) { f.Mode = "" }), `facts.mode: "" is not poll or daemon`},
		{with(func(f *service.Facts) { f.Mode = "push" }), `facts.mode: "push" is not poll or daemon`},
		{with(func(f *service.Facts) { f.Mode = db.ModeDaemon }), "facts.callback_url: required in daemon mode"},
		{with(func(f *service.Facts) { f.Mode, f.CallbackURL = db.ModeDaemon, "ftp://10.0.0.1/" }), "facts.callback_url: "},
		{with(func(f *service.Facts) { f.Mode, f.CallbackURL = db.ModeDaemon, "https://192.168.1.5:8443/RPC2" }),
			"facts.callback_url: host 192.168.1.5 is outside the networks this server pushes to (push_networks in server.yaml)"},
	} {
		_, err := s.RegisterAgent(ctx, fp(0), tc.facts)
		wantKind(t, err, service.ErrInvalid, tc.text)
	}
	// In the networks, or a host name (checked when a push resolves it).
	for _, u := range []string{"https://10.1.2.3:8443/RPC2", "https://agent.example:8443/RPC2"} {
		if _, err := s.RegisterAgent(ctx, fp(0), with(func(f *service.Facts) { f.Mode, f.CallbackURL = db.ModeDaemon, u })); err != nil {
			t.Fatalf("callback %s: %v", u, err)
		}
	}
	if cs, _ := s.Store.ListClients(ctx, db.ClientFilter{}); len(cs) != 1 {
		t.Fatalf("clients = %+v, want the one registered twice", cs)
	}
}

// agentSetup is an active client web1 with one job of alice's (allowed)
// and one of bob's (no rule: denied at dispatch) pending on it.
func agentSetup(t *testing.T) (*service.Service, db.Client, service.Submitted) {
	t.Helper()
	s, _ := newService(t)
	s.ServerID = func() int64 { return 3 }
	s.Agents = service.AgentRules{Lease: time.Minute, PollInterval: 30 * time.Second, MaxOutput: 10}
	web1 := register(t, s, fp(0), "web1", db.ClientActive)
	allow(t, s, "alice", "run", "*")
	bobs := allow(t, s, "bob", "run", "*")
	job := submit(t, s, "alice", "web1")
	submit(t, s, "bob", "web1")
	if _, err := s.Store.RemoveACLRule(context.Background(), bobs.ID); err != nil {
		t.Fatal(err)
	}
	s.Policy.Invalidate()
	return s, web1, job
}

// Dispatch hands out the runs the ACL allows, and returns those it denied
// with their audit records.
func TestDispatch(t *testing.T) {
	ctx := context.Background()
	s, web1, job := agentSetup(t)
	_, err := s.Dispatch(ctx, web1, 0, false)
	wantKind(t, err, service.ErrInvalid, "param 1 (max): 0 is outside 1..1000")
	_, err = s.Dispatch(ctx, web1, api.MaxJobsPerCall+1, false)
	wantKind(t, err, service.ErrInvalid, "param 1 (max): 1001 is outside 1..1000")
	out, err := s.Dispatch(ctx, web1, 10, false)
	if err != nil || len(out.Jobs) != 1 || len(out.Denied) != 1 {
		t.Fatalf("Dispatch = %+v, %v; want one job sent, one denied", out, err)
	}
	j, err := jobxml.DecodeJob([]byte(out.Jobs[0]))
	if err != nil || j.ID != job.Job.ID || j.Script != "echo alice" || j.SubmittedBy != "alice" {
		t.Fatalf("job document = %+v, %v", j, err)
	}
	d := out.Denied[0]
	if d.Job.SubmittedBy != "bob" || d.Reason == "" || d.Record.Name != "dispatch" || d.Record.Outcome != "denied" ||
		d.Record.Actor != "bob" || d.Record.Target != "job "+itoa(d.Job.ID)+" on client "+itoa(web1.ID) {
		t.Fatalf("denied run = %+v", d)
	}
	runs, _ := s.Store.Runs(ctx, j.ID)
	if runs[0].State != "sent" || runs[0].ServerID != 3 || runs[0].LeaseUntil.IsZero() {
		t.Fatalf("sent run = %+v; want sent by server 3 under a lease", runs[0])
	}
	if again, err := s.Dispatch(ctx, web1, 10, false); err != nil || len(again.Jobs) != 0 || len(again.Denied) != 0 {
		t.Fatalf("Dispatch again = %+v, %v; want nothing", again, err)
	}
}

// Only runs sent to the caller can be acknowledged.
func TestAckRuns(t *testing.T) {
	ctx := context.Background()
	s, web1, job := agentSetup(t)
	other := register(t, s, fp(1), "web2", db.ClientActive)
	out, err := s.Dispatch(ctx, web1, 10, false)
	if err != nil || len(out.Jobs) != 1 {
		t.Fatal(out, err)
	}
	runs, _ := s.Store.Runs(ctx, job.Job.ID)
	run := runs[0].ID
	res, err := s.AckRuns(ctx, web1.ID, []int64{run})
	if err != nil || res.Acknowledged != 1 || len(res.Stale) != 0 {
		t.Fatalf("AckRuns = %+v, %v", res, err)
	}
	if _, err := s.AckRuns(ctx, web1.ID, []int64{9999}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("ack of an unknown run: %v, want not found", err)
	}
	if _, err := s.AckRuns(ctx, other.ID, []int64{run}); !errors.Is(err, service.ErrConflict) {
		t.Fatalf("ack of another client's run: %v, want a conflict", err)
	}
	_, err = s.AckRuns(ctx, web1.ID, make([]int64, api.MaxJobsPerCall+1))
	wantKind(t, err, service.ErrInvalid, "param 1 (run_ids): 1001 ids, at most 1000")
}

func status(t *testing.T, ss ...jobxml.Status) []byte {
	t.Helper()
	b, err := jobxml.EncodeStatuses(ss)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Reports move runs, keep both ends of an output over MaxOutput without
// splitting a character, are idempotent, and tell the agent to stop a
// cancelled run.
func TestReport(t *testing.T) {
	ctx := context.Background()
	s, web1, job := agentSetup(t)
	if _, err := s.Dispatch(ctx, web1, 10, false); err != nil {
		t.Fatal(err)
	}
	runs, _ := s.Store.Runs(ctx, job.Job.ID)
	run := runs[0].ID
	if _, err := s.AckRuns(ctx, web1.ID, []int64{run}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Report(ctx, web1.ID, []byte("<status"))
	wantKind(t, err, service.ErrInvalid, "")
	t0 := time.Now().UTC().Truncate(time.Second)
	zero := 0
	done := jobxml.Status{Run: run, State: jobxml.StateSucceeded, Exit: &zero, Started: t0, Finished: t0.Add(time.Second), Output: "1234é56789"}
	res, err := s.Report(ctx, web1.ID, status(t, done))
	if err != nil || len(res) != 1 || !res[0].Accepted || res[0].RunID != itoa(run) || res[0].Cancelled {
		t.Fatalf("Report = %+v, %v", res, err)
	}
	got, _ := s.Store.Run(ctx, run)
	if got.State != "succeeded" || got.Output != "1234\n[... 2 bytes omitted ...]\n56789" || !got.OutputTruncated {
		t.Fatalf("run = %q %q truncated=%v; want succeeded, the first and last 5 bytes but the é", got.State, got.Output, got.OutputTruncated)
	}
	if res, err := s.Report(ctx, web1.ID, status(t, done)); err != nil || !res[0].Accepted {
		t.Fatalf("repeated report = %+v, %v; want accepted again", res, err)
	}

	// A report on a run cancelled meanwhile: accepted, nothing changes, stop it.
	next := submit(t, s, "alice", "web1")
	if _, err := s.Dispatch(ctx, web1, 10, false); err != nil {
		t.Fatal(err)
	}
	runs, _ = s.Store.Runs(ctx, next.Job.ID)
	if _, err := s.CancelJob(ctx, user("alice"), next.Job.ID); err != nil {
		t.Fatal(err)
	}
	res, err = s.Report(ctx, web1.ID, status(t, jobxml.Status{Run: runs[0].ID, State: jobxml.StateRunning, Started: t0}))
	if err != nil || len(res) != 1 || res[0].Error == "" || !res[0].Cancelled {
		t.Fatalf("report on a cancelled run = %+v, %v; want it told to stop", res, err)
	}
}

// A heartbeat renews the runs held, and lists the caller's cancelled runs.
func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	s, web1, job := agentSetup(t)
	if _, err := s.Dispatch(ctx, web1, 10, false); err != nil {
		t.Fatal(err)
	}
	runs, _ := s.Store.Runs(ctx, job.Job.ID)
	run := runs[0].ID
	if _, err := s.AckRuns(ctx, web1.ID, []int64{run}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC()
	hb, err := s.Heartbeat(ctx, web1.ID, []int64{run})
	if err != nil || hb.PollInterval != 30 || hb.ServerTime.Before(before) || len(hb.Cancel) != 0 || len(hb.Lost) != 0 {
		t.Fatalf("Heartbeat = %+v, %v", hb, err)
	}
	if _, err := s.CancelJob(ctx, user("alice"), job.Job.ID); err != nil {
		t.Fatal(err)
	}
	hb, err = s.Heartbeat(ctx, web1.ID, nil)
	if err != nil || len(hb.Cancel) != 1 || hb.Cancel[0] != itoa(run) || hb.Lost == nil {
		t.Fatalf("Heartbeat after a cancel = %+v, %v; want run %d to cancel", hb, err, run)
	}
	_, err = s.Heartbeat(ctx, web1.ID, make([]int64, api.MaxJobsPerCall+1))
	wantKind(t, err, service.ErrInvalid, "param 1 (run_ids): 1001 ids, at most 1000")
}
