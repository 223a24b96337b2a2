package commands

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchFlagValidation(t *testing.T) {
	cases := [][]string{
		{"bench", "--mode", "fast"},
		{"bench", "--agents", "0"},
		{"bench", "--jobs", "-5"},
		{"bench", "--batch", "0"},
		{"bench", "--batch", "1001"},
		{"bench", "--submit-batch", "5000"},
		{"bench", "--mode", "steady"}, // no rate
		{"bench", "--rate", "100"},    // rate without steady
		{"bench", "--mode", "burn-down", "--duration", "1m"},
		{"bench", "--pending", "-1"},
		{"bench", "-o", "xml"},
		{"bench", "--timeout", "0s"},
		{"bench", "--server", "https://h:7443"}, // no token
		{"bench", "--server", "h:7443", "--token", "t", "--db", "sqlite:///x"},
		{"bench", "--token", "t"},                // token without --server
		{"bench", "--cpuprofile", "/tmp/x.prof"}, // spawned server: not this process
		{"bench", "extra-arg"},
		{"bench", "--stream", "0"},
		{"bench", "--stream", "fast"},
		{"bench", "--streamers", "4"}, // without --stream
		{"bench", "--stream", "1MB", "--streamers", "0"},
		{"bench", "--stream", "10", "--streamers", "32"}, // under a byte/s each
		{"bench", "--mode", "idle", "--stream", "1MB"},
	}
	for _, args := range cases {
		_, errOut, code := run(t, "", args...)
		if code != ExitUsage {
			t.Errorf("scirectl %s: exit %d (%s), want %d", strings.Join(args, " "), code, strings.TrimSpace(errOut), ExitUsage)
		}
	}
}

func TestBenchSmallRunJSON(t *testing.T) {
	out, errOut, code := run(t, "", "bench", "--spawn=false", "--agents", "2", "--jobs", "40", "--batch", "5",
		"--submit-batch", "10", "--data-dir", t.TempDir(), "--no-progress", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	for _, k := range []string{"mode", "jobs", "completed", "jobs_per_second", "submit_to_received", "submit_to_completed",
		"server_cpu_seconds", "server_peak_rss_bytes", "errors", "calls"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, out)
		}
	}
	if r["completed"] != 40.0 || r["missing"] != 0.0 {
		t.Errorf("completed %v, missing %v; want 40, 0", r["completed"], r["missing"])
	}
	lat := r["submit_to_completed"].(map[string]any)
	for _, k := range []string{"p50_ms", "p95_ms", "p99_ms", "max_ms"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("submit_to_completed has no %q", k)
		}
	}
}

func TestBenchTable(t *testing.T) {
	out, errOut, code := run(t, "", "bench", "--spawn=false", "--agents", "2", "--jobs", "10", "--batch", "3",
		"--submit-batch", "1", "--data-dir", t.TempDir(), "--no-progress")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"THROUGHPUT", "jobs/s", "SUBMIT→RECEIVED", "p99", "SERVER CPU", " s", "MiB", "ERRORS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestBenchStreamTable(t *testing.T) {
	out, errOut, code := run(t, "", "bench", "--spawn=false", "--agents", "2", "--jobs", "20", "--batch", "5",
		"--stream", "128KB", "--streamers", "2", "--data-dir", t.TempDir(), "--no-progress")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"THROUGHPUT", "STREAMED", "of 128.0 KiB/s offered by 2 streamers", "agent.output calls",
		"OUTPUT CALL LATENCY", "agent.output "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "ERRORS") && !strings.HasSuffix(line, " none") {
			t.Errorf("errors: %s", line)
		}
	}
}
