package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// goldenNow is the fixed "now" of the golden tables.
var goldenNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func goldenJobs() []api.Job {
	return []api.Job{
		{ID: "7", Name: "deploy web", Status: "running", Permission: "deploy", Interpreter: "/bin/sh", Priority: 5,
			SubmittedBy: "alice", CreatedAt: goldenNow.Add(-3 * time.Minute), Timeout: 600, MaxAttempts: 3,
			Targets: []string{"web1", "web2", "web3"}, Counts: map[string]int{"succeeded": 1, "failed": 1, "running": 1},
			SuccessThreshold: 100},
		{ID: "6", Name: "uptime", Status: "succeeded", Permission: "run", Interpreter: "/bin/sh",
			SubmittedBy: "admin", CreatedAt: goldenNow.Add(-26 * time.Hour), ExpiresAt: ptr(goldenNow.Add(time.Hour)),
			Targets: []string{"db1"}, Counts: map[string]int{"succeeded": 1}, SuccessThreshold: 100},
	}
}

func goldenJob() api.Job {
	j := goldenJobs()[0]
	j.Runs = []api.Run{
		{ID: "21", JobID: "7", ClientID: "1", Client: "web1", State: "succeeded", ExitCode: ptr(0), Attempts: 1,
			SentAt: ptr(goldenNow.Add(-170 * time.Second)), StartedAt: ptr(goldenNow.Add(-165 * time.Second)), FinishedAt: ptr(goldenNow.Add(-2 * time.Minute))},
		{ID: "22", JobID: "7", ClientID: "2", Client: "web2", State: "failed", ExitCode: ptr(2), Attempts: 2, Reason: "exit status 2",
			SentAt: ptr(goldenNow.Add(-150 * time.Second)), StartedAt: ptr(goldenNow.Add(-140 * time.Second)), FinishedAt: ptr(goldenNow.Add(-30 * time.Second))},
		{ID: "23", JobID: "7", ClientID: "3", Client: "web3", State: "running", Attempts: 1,
			SentAt: ptr(goldenNow.Add(-10 * time.Second)), StartedAt: ptr(goldenNow.Add(-9 * time.Second))},
	}
	return j
}

// goldenOutputs is the output of job 7's runs: web1 and web3 wrote the
// same, web2 wrote more than the server keeps (the newline before the
// marker line is the marker's, not the output's), web3 is still running.
func goldenOutputs() []api.Output {
	long := "Reading package lists...\n[... 1048576 bytes omitted ...]\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n"
	return []api.Output{
		{RunID: "22", Client: "web2", State: "failed", ExitCode: ptr(2), Output: long, Truncated: true, OmittedBytes: 1048576,
			Size: len("Reading package lists...") + 1048576 + len("E: Sub-process /usr/bin/dpkg returned an error code (1)\n")},
		{RunID: "21", Client: "web1", State: "succeeded", ExitCode: ptr(0), Output: "0 upgraded, 0 newly installed\n", Size: 30},
		{RunID: "23", Client: "web3", State: "running", Output: "0 upgraded, 0 newly installed\n", Size: 30},
	}
}

func goldenClients() []api.Client {
	return []api.Client{
		{ID: "1", Name: "web1", Fingerprint: "3f2a9c41d0b7e8a65c21f3e4d5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e", Status: "active",
			Hostname: "web1.example.net", OS: "linux", Arch: "amd64", Version: "1.4.0", Mode: "poll",
			RegisteredAt: goldenNow.Add(-72 * time.Hour), LastSeen: ptr(goldenNow.Add(-12 * time.Second)),
			Facts: map[string]string{"hostname": "web1.example.net", "os": "linux", "arch": "amd64", "kernel": "6.1.0-18-amd64",
				"os_id": "debian", "os_version": "12", "cpus": "4", "memory_bytes": "8589934592", "agent_version": "1.4.0", "rack": ""},
			Labels: map[string]string{"tier": "web", "env": "prod", "example.com/team": "sre"}},
		{ID: "4", Name: "db1", Fingerprint: "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f", Status: "pending",
			Hostname: "db1", OS: "linux", Arch: "arm64", Version: "1.4.0", Mode: "daemon", CallbackURL: "https://db1:7444/RPC2",
			RegisteredAt: goldenNow.Add(-5 * time.Minute),
			Facts:        map[string]string{"hostname": "db1", "os": "linux", "arch": "arm64", "os_id": "ubuntu", "os_version": "24.04"}},
	}
}

// TestGoldenOutput runs list and status commands against canned replies,
// in memory, and compares tables, wide tables, JSON and -q output with golden files.
func TestGoldenOutput(t *testing.T) {
	fixClock(t, goldenNow)
	api := newFakeAPI(map[string]func(xmlrpc.Params) any{
		"job.list":    fixed(goldenJobs()),
		"job.get":     fixed(goldenJob()),
		"client.list": fixed(goldenClients()),
		"job.output":  fixed(goldenOutputs()),
		"client.get": func(p xmlrpc.Params) any {
			if ref, _ := p.String(0, "client"); ref == "db1" {
				return goldenClients()[1]
			}
			return goldenClients()[0]
		},
	})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"job-list", []string{"job", "list"}},
		{"job-list-wide", []string{"job", "list", "-o", "wide"}},
		{"job-list-no-headers", []string{"job", "list", "--no-headers"}},
		{"job-list-quiet", []string{"job", "list", "-q"}},
		{"job-list-json", []string{"job", "list", "-o", "json"}},
		{"job-status", []string{"job", "status", "7"}},
		{"job-status-wide", []string{"job", "status", "7", "-o", "wide"}},
		{"job-status-json", []string{"job", "status", "7", "-o", "json"}},
		{"job-output", []string{"job", "output", "7"}},
		{"job-output-json", []string{"job", "output", "7", "-o", "json"}},
		{"job-output-collapse", []string{"job", "output", "7", "--collapse"}},
		{"job-output-collapse-json", []string{"job", "output", "7", "--collapse", "-o", "json"}},
		{"client-list", []string{"client", "list"}},
		{"client-list-wide", []string{"client", "list", "-o", "wide"}},
		{"client-list-quiet", []string{"client", "list", "-q"}},
		{"client-list-json", []string{"client", "list", "-o", "json"}},
		{"client-show", []string{"client", "show", "web1"}},
		{"client-show-pending", []string{"client", "show", "db1"}},
		{"client-show-json", []string{"client", "show", "web1", "-o", "json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runFake(t, api, "", c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if strings.HasSuffix(c.name, "-json") && !json.Valid([]byte(out)) {
				t.Fatalf("not JSON: %s", out)
			}
			golden(t, c.name, out)
		})
	}
}

// goldenRollout is a job that goes out as a rollout, paused half-way: six
// targets, three out at a time at most, a failure budget of two, one
// canary (which passed), 80% must succeed; it reruns job 41.
func goldenRollout() api.Job {
	at := func(d time.Duration) *time.Time { return ptr(goldenNow.Add(-d)) }
	return api.Job{ID: "42", Name: "apt-get -y upgrade", Status: "running", Permission: "run", Interpreter: "/bin/sh",
		SubmittedBy: "alice", CreatedAt: goldenNow.Add(-10 * time.Minute),
		Targets:     []string{"web1", "web2", "web3", "web4", "web5", "web6"},
		Counts:      map[string]int{"succeeded": 2, "failed": 1, "running": 1, "sent": 1, "pending": 1},
		MaxParallel: ptr(3), MaxFailures: ptr(2), Canary: 1, CanaryPhase: "passed", SuccessThreshold: 80,
		Paused: true, RerunOf: "41",
		Runs: []api.Run{
			{ID: "101", JobID: "42", ClientID: "1", Client: "web1", State: "succeeded", Canary: true, ExitCode: ptr(0), Attempts: 1,
				SentAt: at(9 * time.Minute), StartedAt: at(9 * time.Minute), FinishedAt: at(8 * time.Minute)},
			{ID: "102", JobID: "42", ClientID: "2", Client: "web2", State: "succeeded", ExitCode: ptr(0), Attempts: 1,
				SentAt: at(7 * time.Minute), StartedAt: at(7 * time.Minute), FinishedAt: at(5 * time.Minute)},
			{ID: "103", JobID: "42", ClientID: "3", Client: "web3", State: "failed", ExitCode: ptr(100), Attempts: 1,
				Reason: "exit status 100", SentAt: at(7 * time.Minute), StartedAt: at(7 * time.Minute), FinishedAt: at(4 * time.Minute)},
			{ID: "104", JobID: "42", ClientID: "4", Client: "web4", State: "running", Attempts: 1,
				SentAt: at(3 * time.Minute), StartedAt: at(3 * time.Minute)},
			{ID: "105", JobID: "42", ClientID: "5", Client: "web5", State: "sent", Attempts: 1, SentAt: at(time.Minute)},
			{ID: "106", JobID: "42", ClientID: "6", Client: "web6", State: "pending"},
		},
	}
}

// goldenHalted is a rollout that spent its failure budget: the runs not
// yet sent were skipped.
func goldenHalted() api.Job {
	const why = "failure budget exceeded: 3 of 6 failed"
	j := api.Job{ID: "43", Name: "reboot", Status: "failed", Permission: "run", Interpreter: "/bin/sh",
		SubmittedBy: "bob", CreatedAt: goldenNow.Add(-2 * time.Hour), Targets: []string{"db1", "db2", "db3", "db4", "db5", "db6"},
		Counts:      map[string]int{"succeeded": 1, "failed": 3, "skipped": 2},
		MaxParallel: ptr(4), MaxFailures: ptr(2), SuccessThreshold: 100, Halted: true, HaltReason: why}
	for i, st := range []string{"succeeded", "failed", "failed", "failed", "skipped", "skipped"} {
		r := api.Run{ID: fmt.Sprint(111 + i), JobID: "43", ClientID: fmt.Sprint(11 + i), Client: j.Targets[i], State: st,
			Attempts: 1, FinishedAt: ptr(goldenNow.Add(-time.Hour))}
		switch st {
		case "succeeded":
			r.ExitCode = ptr(0)
		case "failed":
			r.ExitCode, r.Reason = ptr(1), "exit status 1"
		case "skipped":
			r.Attempts, r.Reason = 0, why
		}
		j.Runs = append(j.Runs, r)
	}
	return j
}

// TestGoldenRolloutOutput compares job status and job list of rollouts
// (the rollout lines, paused, halted, a rerun, canary runs) with golden
// files; the JSON is the job as the API has it.
func TestGoldenRolloutOutput(t *testing.T) {
	fixClock(t, goldenNow)
	api := newFakeAPI(map[string]func(xmlrpc.Params) any{
		"job.list": fixed(append([]api.Job{goldenHalted(), goldenRollout()}, goldenJobs()...)),
		"job.get": func(p xmlrpc.Params) any {
			if id, _ := p.String(0, "id"); id == "43" {
				return goldenHalted()
			}
			return goldenRollout()
		},
	})
	for _, c := range []struct {
		name string
		args []string
	}{
		{"job-status-rollout", []string{"job", "status", "42"}},
		{"job-status-halted", []string{"job", "status", "43"}},
		{"job-status-rollout-json", []string{"job", "status", "42", "-o", "json"}},
		{"job-list-rollout", []string{"job", "list"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runFake(t, api, "", c.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if strings.HasSuffix(c.name, "-json") && !json.Valid([]byte(out)) {
				t.Fatalf("not JSON: %s", out)
			}
			golden(t, c.name, out)
		})
	}
}

// TestJSONTimesAreRFC3339 checks that JSON carries absolute RFC 3339 times
// where tables say "3m ago".
func TestJSONTimesAreRFC3339(t *testing.T) {
	fixClock(t, goldenNow)
	api := newFakeAPI(map[string]func(xmlrpc.Params) any{"job.list": fixed(goldenJobs())})
	out, _, _ := runFake(t, api, "", "job", "list", "-o", "json")
	var jobs []map[string]any
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatal(err)
	}
	if got := jobs[0]["created_at"]; got != "2026-11-22T09:57:00Z" {
		t.Errorf("created_at = %v, want 2026-11-22T09:57:00Z", got)
	}
	table, _, _ := runFake(t, api, "", "job", "list")
	if !strings.Contains(table, "3m ago") || !strings.Contains(table, "26h ago") {
		t.Errorf("table times are not relative:\n%s", table)
	}
}

func TestFitTable(t *testing.T) {
	header := []string{"ID", "NAME", "FINGERPRINT"}
	rows := [][]string{{"1", "web1", strings.Repeat("ab", 32)}, {"2", "a-rather-long-client-name", "cd"}}
	// Natural width: 2+25+64 plus 2 per column = 97.
	h, r := fitTable(header, rows, 200)
	if r[0][2] != rows[0][2] || h[2] != "FINGERPRINT" {
		t.Fatal("a table that fits was changed")
	}
	h, r = fitTable(header, rows, 60)
	line := 0
	for i := range h {
		line += max(len([]rune(h[i])), len([]rune(r[0][i])), len([]rune(r[1][i]))) + 2
	}
	if line > 60 {
		t.Errorf("fitted table is %d wide, want at most 60: %q", line, r)
	}
	if !strings.HasSuffix(r[0][2], "…") || r[1][1] != "a-rather-long-client-name" {
		t.Errorf("the widest column should be cut first, with …: %q", r)
	}
	// Too narrow for anything: columns stop at their floor.
	_, r = fitTable(header, rows, 10)
	if got := len([]rune(r[0][2])); got != len("FINGERPRINT") {
		t.Errorf("a column was cut below its header: %q", r[0][2])
	}
	if got := truncate("héllo wörld", 6); got != "héllo…" {
		t.Errorf("truncate = %q", got)
	}
}

func TestOutcomeExit(t *testing.T) {
	for _, c := range []struct {
		counts    map[string]int
		threshold int
		want      int
	}{
		{map[string]int{"succeeded": 3}, 100, ExitOK},
		{map[string]int{"succeeded": 1, "failed": 1, "denied": 1, "cancelled": 1}, 100, ExitJobFailed},
		{map[string]int{"succeeded": 1, "denied": 1, "expired": 1}, 100, ExitJobDenied},
		{map[string]int{"succeeded": 1, "expired": 1}, 100, ExitJobGaveUp},
		{map[string]int{"cancelled": 2}, 100, ExitJobGaveUp},
		// A halted rollout's skipped runs count as cancelled ones do.
		{map[string]int{"succeeded": 3, "skipped": 7}, 100, ExitJobGaveUp},
		{map[string]int{"succeeded": 3, "failed": 1, "skipped": 6}, 100, ExitJobFailed},
		// A success threshold: enough succeeded is success, whatever
		// else happened; too few is the worst outcome as usual.
		{map[string]int{"succeeded": 9, "failed": 1}, 90, ExitOK},
		{map[string]int{"succeeded": 8, "skipped": 2}, 80, ExitOK},
		{map[string]int{"succeeded": 8, "failed": 1, "denied": 1}, 90, ExitJobFailed},
		{map[string]int{"succeeded": 8, "skipped": 2}, 90, ExitJobGaveUp},
		// Not every run final: the threshold does not apply yet.
		{map[string]int{"succeeded": 5, "failed": 1, "pending": 4}, 50, ExitJobFailed},
		// An older server sends no threshold (0): every run must succeed.
		{map[string]int{"succeeded": 9, "failed": 1}, 0, ExitJobFailed},
	} {
		j := api.Job{Counts: c.counts, SuccessThreshold: c.threshold}
		if got := outcomeExit(j); got != c.want {
			t.Errorf("outcomeExit(%v, threshold %d%%) = %d, want %d", c.counts, c.threshold, got, c.want)
		}
	}
}
