package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/loadgen"
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
		// The fanout mode submits one job and ends when its runs are final.
		{"bench", "--mode", "fanout", "--jobs", "5"},
		{"bench", "--mode", "fanout", "--rate", "10"},
		{"bench", "--mode", "fanout", "--duration", "1m"},
		{"bench", "--mode", "fanout", "--submit-batch", "10"},
		{"bench", "--mode", "fanout", "--submitters", "2"},
		{"bench", "--mode", "fanout", "--old", "100"},
		{"bench", "--mode", "fanout", "--stream", "1MB"},
		{"bench", "--mode", "fanout", "--streamers", "4"},
		{"bench", "--mode", "fanout", "--agents", "0"},
		{"bench", "--mode", "fanout", "--agents", "10001"},
		{"bench", "--mode", "fanout", "--batch", "0"},
		{"bench", "--mode", "fanout", "--poll-interval", "0s"},
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
	wantTable(t, out, "THROUGHPUT", "STREAMED", "of 128.0 KiB/s offered by 2 streamers", "agent.output calls",
		"OUTPUT CALL LATENCY", "agent.output ")
}

// One job for 20 polling agents: every run completes exactly once, and
// the time until all were final is reported with the per-run latencies.
func TestBenchFanoutJSON(t *testing.T) {
	out, errOut, code := run(t, "", "bench", "--mode", "fanout", "--spawn=false", "--agents", "20", "--poll-interval", "300ms",
		"--data-dir", t.TempDir(), "--no-progress", "-o", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r["mode"] != "fanout" || r["jobs"] != 1.0 || r["runs"] != 20.0 || r["completed"] != 20.0 || r["missing"] != 0.0 || r["duplicates"] != 0.0 {
		t.Errorf("mode %v, jobs %v, runs %v, completed %v, missing %v, duplicates %v; want one job whose 20 runs completed once each",
			r["mode"], r["jobs"], r["runs"], r["completed"], r["missing"], r["duplicates"])
	}
	if v, ok := r["all_final_seconds"].(float64); !ok || v <= 0 {
		t.Errorf("all_final_seconds %v: want > 0", r["all_final_seconds"])
	}
	if r["poll_interval_seconds"] != 0.3 || r["batch"] != 10.0 || r["push"] != false {
		t.Errorf("poll interval %v, batch %v, push %v; want 0.3, the agent's 10, false", r["poll_interval_seconds"], r["batch"], r["push"])
	}
	for _, k := range []string{"submit_to_received", "submit_to_completed"} {
		lat, _ := r[k].(map[string]any)
		for _, p := range []string{"p50_ms", "p95_ms", "p99_ms", "max_ms"} {
			if v, ok := lat[p].(float64); !ok || v <= 0 {
				t.Errorf("%s.%s = %v, want > 0", k, p, lat[p])
			}
		}
	}
}

// With --push the agents wait for work in agent.getJobs, with the fanout
// mode's 30 s safety net: the table names them, how they were woken and
// the time until every run was final.
func TestBenchFanoutPushTable(t *testing.T) {
	out, errOut, code := run(t, "", "bench", "--mode", "fanout", "--push", "--spawn=false", "--agents", "20",
		"--data-dir", t.TempDir(), "--no-progress")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantTable(t, out, "fanout: one job for every agent", "20 in daemon mode (waiting in agent.getJobs: 20 woken;", "safety-net poll every 30.0 s",
		"1 job, 20 runs, from one job.submit", "20 completed (0 missing, 0 completed twice)", "ALL FINAL",
		"SUBMIT→RECEIVED", "SUBMIT→COMPLETED", "p99", "SERVER CPU PER RUN", "job.submit 1")
}

// A fanout run that timed out says how far it got rather than a time.
func TestBenchFanoutTableIncomplete(t *testing.T) {
	var out strings.Builder
	r := &loadgen.Results{Mode: loadgen.Fanout, Agents: 50, Batch: 10, PollIntervalSeconds: 1, Jobs: 1, Runs: 50,
		Completed: 48, Missing: 2, Calls: map[string]int64{}, Errors: map[string]int64{}}
	if err := printBench(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"50 polling every 1.0 s", "1 job, 50 runs", "48 completed (2 missing, 0 completed twice)",
		"not reached: 48 of 50 runs completed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	r = &loadgen.Results{Mode: loadgen.Fanout, Agents: 50, Batch: 10, PollIntervalSeconds: 1, Calls: map[string]int64{}, Errors: map[string]int64{}}
	if err := printBench(&out, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "none: the job.submit targeting every agent failed") {
		t.Errorf("table of a failed submit:\n%s", out.String())
	}
}

// wantTable checks that bench's table holds each of wants and reports no
// errors.
func wantTable(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
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
