package commands

import (
	"encoding/json"
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
			Targets: []string{"web1", "web2", "web3"}, Counts: map[string]int{"succeeded": 1, "failed": 1, "running": 1}},
		{ID: "6", Name: "uptime", Status: "succeeded", Permission: "run", Interpreter: "/bin/sh",
			SubmittedBy: "admin", CreatedAt: goldenNow.Add(-26 * time.Hour), ExpiresAt: ptr(goldenNow.Add(time.Hour)),
			Targets: []string{"db1"}, Counts: map[string]int{"succeeded": 1}},
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

func goldenClients() []api.Client {
	return []api.Client{
		{ID: "1", Name: "web1", Fingerprint: "3f2a9c41d0b7e8a65c21f3e4d5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e", Status: "active",
			Hostname: "web1.example.net", OS: "linux", Arch: "amd64", Version: "1.4.0", Mode: "poll",
			RegisteredAt: goldenNow.Add(-72 * time.Hour), LastSeen: ptr(goldenNow.Add(-12 * time.Second))},
		{ID: "4", Name: "db1", Fingerprint: "a0b1c2d3e4f5061728394a5b6c7d8e9fa0b1c2d3e4f5061728394a5b6c7d8e9f", Status: "pending",
			Hostname: "db1", OS: "linux", Arch: "arm64", Version: "1.4.0", Mode: "daemon", CallbackURL: "https://db1:7444/RPC2",
			RegisteredAt: goldenNow.Add(-5 * time.Minute)},
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
		{"client-list", []string{"client", "list"}},
		{"client-list-wide", []string{"client", "list", "-o", "wide"}},
		{"client-list-quiet", []string{"client", "list", "-q"}},
		{"client-list-json", []string{"client", "list", "-o", "json"}},
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
		counts map[string]int
		want   int
	}{
		{map[string]int{"succeeded": 3}, ExitOK},
		{map[string]int{"succeeded": 1, "failed": 1, "denied": 1, "cancelled": 1}, ExitJobFailed},
		{map[string]int{"succeeded": 1, "denied": 1, "expired": 1}, ExitJobDenied},
		{map[string]int{"succeeded": 1, "expired": 1}, ExitJobGaveUp},
		{map[string]int{"cancelled": 2}, ExitJobGaveUp},
	} {
		if got := outcomeExit(c.counts); got != c.want {
			t.Errorf("outcomeExit(%v) = %d, want %d", c.counts, got, c.want)
		}
	}
}
