package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/runstate"
)

// The rollout tests (SPEC §10) run real agents, each a `scirectl client
// poll` with its own state directory, and jobs whose script records when
// it ran: it appends "start <unix ns> <agent> <job id>" to a file shared
// by the whole fleet, sleeps, appends "end …", and fails on the agents
// told to. From those lines the tests see what the server allowed: how
// many runs were out at once, which ran and in what order.

// rollAgent is one agent of a rollout test. Its jobs find its name in
// $ROLL_AGENT, and env (ROLL_FAIL=1: fail; ROLL_SLEEP=S: sleep S seconds
// instead of the script's default) in their environment too: the agent
// passes its own environment to its jobs.
type rollAgent struct {
	name, stateDir, ca string
	servers            []string // --server, in failover order
	env                []string
	args               []string // more client poll flags (--fact …)
	proc               *proc
}

func (a *rollAgent) start(t *testing.T) {
	t.Helper()
	args := []string{"client", "poll"}
	for _, s := range a.servers {
		args = append(args, "--server", s)
	}
	args = append(args, "--ca", a.ca, "--state-dir", a.stateDir, "--name", a.name, "--interval", "200ms")
	args = append(args, a.args...)
	a.proc = start(t, append([]string{"ROLL_AGENT=" + a.name}, a.env...), args...)
}

// newFleet describes one agent per name, with state directories in dir,
// talking to servers (failover order; by default srv) and trusting srv's
// CA; env gives some of them more environment.
func newFleet(srv *testServer, dir string, servers []string, names []string, env map[string][]string) []*rollAgent {
	if servers == nil {
		servers = []string{srv.url}
	}
	agents := make([]*rollAgent, len(names))
	for i, n := range names {
		agents[i] = &rollAgent{name: n, stateDir: filepath.Join(dir, "agent-"+n), ca: srv.caFile(), servers: servers, env: env[n]}
	}
	return agents
}

// startFleet starts the agents, accepts them once they have registered,
// and returns when each one has polled as an accepted client.
func startFleet(t *testing.T, srv *testServer, agents []*rollAgent) {
	t.Helper()
	for _, a := range agents {
		a.start(t)
	}
	names := make([]string, len(agents))
	for i, a := range agents {
		names[i] = a.name
	}
	eventually(t, 30*time.Second, "the agents to register", func() bool {
		var cs []client
		srv.cliJSON(t, &cs, "client", "list")
		n := 0
		for _, c := range cs {
			if slices.Contains(names, c.Name) && c.Status == "pending" {
				n++
			}
		}
		return n == len(names)
	})
	if out, errOut, code := srv.cli(t, "", append([]string{"client", "accept"}, names...)...); code != 0 {
		t.Fatalf("client accept: exit %d: %s%s", code, out, errOut)
	}
	// A pending agent asks again after a backoff (1s, 2s, …): this waits
	// for its next try.
	for _, a := range agents {
		eventually(t, 30*time.Second, a.name+" to poll as an accepted client", func() bool {
			return strings.Contains(a.proc.log.String(), "msg=registered")
		})
	}
}

// fleetNames is prefix-01 … prefix-n.
func fleetNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i+1)
	}
	return out
}

// targetArgs are job submit's --target flags for the agents, in order.
func targetArgs(agents []*rollAgent) []string {
	var out []string
	for _, a := range agents {
		out = append(out, "--target", a.name)
	}
	return out
}

// rolloutScript is the jobs' script: a start line in spans, a sleep
// ($ROLL_SLEEP, else sleep seconds), an end line, and exit 1 when
// $ROLL_FAIL is set.
func rolloutScript(spans, sleep string) string {
	q := "'" + strings.ReplaceAll(spans, "'", `'\''`) + "'"
	return fmt.Sprintf(`echo "start $(date +%%s%%N) $ROLL_AGENT $SCIRE_JOB_ID" >> %[1]s
sleep "${ROLL_SLEEP:-%[2]s}"
echo "end $(date +%%s%%N) $ROLL_AGENT $SCIRE_JOB_ID" >> %[1]s
[ -z "$ROLL_FAIL" ]
`, q, sleep)
}

// span is one execution of a job's script, as it recorded it.
type span struct {
	agent, job string
	start, end int64 // unix ns; end 0: no end line (yet)
}

// readSpans reads the spans file, in the order of the start lines. A
// script that ran twice for one agent and job is a failure: no run is
// executed twice.
func readSpans(t *testing.T, file string) []span {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []span
	at := map[[2]string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 || (f[0] != "start" && f[0] != "end") {
			t.Fatalf("%s: bad line %q", file, l)
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("%s: bad time in %q", file, l)
		}
		k := [2]string{f[2], f[3]}
		i, seen := at[k]
		switch {
		case f[0] == "start" && seen:
			t.Fatalf("%s: job %s ran twice on %s", file, f[3], f[2])
		case f[0] == "start":
			at[k] = len(out)
			out = append(out, span{agent: f[2], job: f[3], start: ns})
		case !seen || out[i].end != 0:
			t.Fatalf("%s: %q has no start, or a second end", file, l)
		default:
			out[i].end = ns
		}
	}
	return out
}

// jobSpans are the spans of job id.
func jobSpans(spans []span, id string) []span {
	var out []span
	for _, s := range spans {
		if s.job == id {
			out = append(out, s)
		}
	}
	return out
}

// maxOverlap is the largest number of spans running at one instant, and
// that instant. A span without an end runs on. At equal times ends come
// first: a run that ended frees its slot before the next one starts.
func maxOverlap(spans []span) (int, time.Time) {
	type ev struct {
		at    int64
		delta int
	}
	var evs []ev
	for _, s := range spans {
		evs = append(evs, ev{s.start, 1})
		if s.end != 0 {
			evs = append(evs, ev{s.end, -1})
		}
	}
	slices.SortFunc(evs, func(a, b ev) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta
	})
	n, best, at := 0, 0, int64(0)
	for _, e := range evs {
		if n += e.delta; n > best {
			best, at = n, e.at
		}
	}
	return best, time.Unix(0, at)
}

// submitJSON submits a job with -o json and returns its id.
func submitJSON(t *testing.T, srv *testServer, args ...string) string {
	t.Helper()
	var res api.SubmitResult
	srv.cliJSON(t, &res, append([]string{"job", "submit"}, args...)...)
	if res.ID == "" {
		t.Fatalf("job submit %v: no id", args)
	}
	return res.ID
}

// jobStatus is `job status ID -o json`.
func jobStatus(t *testing.T, srv *testServer, id string) api.Job {
	t.Helper()
	var j api.Job
	srv.cliJSON(t, &j, "job", "status", id)
	return j
}

// waitRollout waits until every run of job id is final (skipped
// included) and returns the job.
func waitRollout(t *testing.T, srv *testServer, id string, timeout time.Duration) api.Job {
	t.Helper()
	var j api.Job
	eventually(t, timeout, "job "+id+" to end", func() bool {
		j = jobStatus(t, srv, id)
		return len(j.Runs) > 0 && !slices.ContainsFunc(j.Runs, func(r api.Run) bool { return !runstate.State(r.State).Final() })
	})
	return j
}

// runOf is job j's run on client name.
func runOf(t *testing.T, j api.Job, name string) api.Run {
	t.Helper()
	for _, r := range j.Runs {
		if r.Client == name {
			return r
		}
	}
	t.Fatalf("job %s has no run on %s: %+v", j.ID, name, j.Runs)
	return api.Run{}
}

// countState counts job j's runs in one of states.
func countState(j api.Job, states ...string) int {
	n := 0
	for _, r := range j.Runs {
		if slices.Contains(states, r.State) {
			n++
		}
	}
	return n
}

var outStates = []string{"sent", "received", "running"}

// cliResult is what a CLI command printed and its exit code.
type cliResult struct {
	out, errOut string
	code        int
}

// bgCLI is a CLI command running in the background (job submit --wait).
type bgCLI struct{ done chan cliResult }

// cliAsync starts srv.cli(args) in the background. A failure to run the
// binary at all fails the test from that goroutine; wait then times out.
func cliAsync(t *testing.T, srv *testServer, args ...string) *bgCLI {
	b := &bgCLI{done: make(chan cliResult, 1)}
	go func() {
		out, errOut, code := srv.cli(t, "", args...)
		b.done <- cliResult{out, errOut, code}
	}()
	return b
}

// wait returns the command's output and exit code.
func (b *bgCLI) wait(t *testing.T, timeout time.Duration) (string, string, int) {
	t.Helper()
	select {
	case r := <-b.done:
		return r.out, r.errOut, r.code
	case <-time.After(timeout):
		t.Fatalf("the command did not end within %v", timeout)
		return "", "", 0
	}
}

// TestRolloutMaxParallel: one job on 12 real agents with --max-parallel 3.
// The scripts' own records show that never more than 3 ran at once, that 3
// did at some point (the window is used, not just respected), and that
// every agent ran it once; --wait exits 0.
func TestRolloutMaxParallel(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, fleetNames("par", 12), nil)
	startFleet(t, srv, agents)
	t.Logf("12 agents accepted and polling %v after the start", time.Since(began).Round(time.Millisecond))

	spansFile := filepath.Join(dir, "spans.log")
	submitted := time.Now()
	args := append([]string{"job", "submit", "--max-parallel", "3", "-c", rolloutScript(spansFile, "0.8"),
		"--wait", "--wait-interval", "200ms", "-o", "json"}, targetArgs(agents)...)
	out, errOut, code := srv.cli(t, "", args...)
	if code != 0 {
		t.Fatalf("job submit --wait: exit %d\n%s%s", code, out, errOut)
	}
	var j api.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("job submit --wait -o json: %v: %q", err, out)
	}
	t.Logf("12 runs of 0.8 s through a window of 3 in %v", time.Since(submitted).Round(time.Millisecond))
	if j.MaxParallel == nil || *j.MaxParallel != 3 || j.Halted || j.Status != "succeeded" {
		t.Fatalf("job = status %s, max_parallel %v, halted %v; want succeeded, 3, false", j.Status, j.MaxParallel, j.Halted)
	}
	if n := countState(j, "succeeded"); n != 12 || len(j.Runs) != 12 {
		t.Fatalf("%d of %d runs succeeded, want 12 of 12: %+v", n, len(j.Runs), j.Runs)
	}

	spans := jobSpans(readSpans(t, spansFile), j.ID)
	if len(spans) != 12 {
		t.Fatalf("%d executions recorded, want 12: %+v", len(spans), spans)
	}
	ran := map[string]bool{}
	for _, s := range spans {
		if s.end == 0 {
			t.Fatalf("%s's execution has no end line", s.agent)
		}
		ran[s.agent] = true
	}
	for _, a := range agents {
		if !ran[a.name] {
			t.Errorf("%s did not run the job", a.name)
		}
	}
	n, at := maxOverlap(spans)
	t.Logf("at most %d runs at once (first at %s)", n, at.Format("15:04:05.000"))
	if n > 3 {
		t.Fatalf("%d runs ran at once at %s; --max-parallel 3", n, at.Format("15:04:05.000000"))
	}
	if n < 3 {
		t.Fatalf("never more than %d runs at once: the window of 3 was not used", n)
	}
	// job status shows the window.
	if out, _, code := srv.cli(t, "", "job", "status", j.ID); code != 0 || !strings.Contains(out, "0/3 out") {
		t.Fatalf("job status: exit %d, want a rollout line with \"0/3 out\":\n%s", code, out)
	}
}

// TestRolloutFailureBudget: --max-failures 1 --max-parallel 2 on 6
// agents, two of which fail. The order is arranged: only ok-1 (a slow run)
// polls at first and takes a slot; then the two failing agents start and
// share the other slot. The second failure halts the job while ok-1's run
// is still running: the three runs never sent become skipped with the
// reason, ok-1's run finishes (succeeded), and agents started afterwards
// get nothing. --wait exits 3 (a run failed); job list, job status, the
// audit and the server log show the halt.
func TestRolloutFailureBudget(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	names := []string{"ok-1", "fail-1", "fail-2", "ok-2", "ok-3", "ok-4"}
	agents := newFleet(srv, dir, nil, names, map[string][]string{
		"ok-1":   {"ROLL_SLEEP=5"},
		"fail-1": {"ROLL_FAIL=1", "ROLL_SLEEP=0.2"},
		"fail-2": {"ROLL_FAIL=1", "ROLL_SLEEP=0.2"},
	})
	startFleet(t, srv, agents)
	for _, a := range agents[1:] {
		a.proc.stop(t)
	}

	spansFile := filepath.Join(dir, "spans.log")
	w := cliAsync(t, srv, append([]string{"job", "submit", "--max-parallel", "2", "--max-failures", "1",
		"-c", rolloutScript(spansFile, "0.5"), "--wait", "--wait-interval", "200ms", "-o", "json"}, targetArgs(agents)...)...)
	var id string
	eventually(t, 30*time.Second, "the job to be submitted", func() bool {
		var jobs []api.Job
		srv.cliJSON(t, &jobs, "job", "list")
		if len(jobs) == 1 {
			id = jobs[0].ID
		}
		return id != ""
	})
	eventually(t, 30*time.Second, "ok-1's run to start", func() bool {
		return runOf(t, jobStatus(t, srv, id), "ok-1").State == "running"
	})
	agents[1].start(t)
	agents[2].start(t)

	var j api.Job
	eventually(t, 30*time.Second, "the job to halt", func() bool {
		j = jobStatus(t, srv, id)
		return j.Halted
	})
	haltSeen := time.Now()
	const reason = "failure budget exceeded: 2 of 6 failed"
	if j.HaltReason != reason || j.MaxFailures == nil || *j.MaxFailures != 1 || j.MaxParallel == nil || *j.MaxParallel != 2 {
		t.Fatalf("halted job: halt_reason %q, max_failures %v, max_parallel %v; want %q, 1, 2", j.HaltReason, j.MaxFailures, j.MaxParallel, reason)
	}
	if r := runOf(t, j, "ok-1"); !slices.Contains(outStates, r.State) {
		t.Fatalf("ok-1's run is %s when the job halted; it sleeps 5 s, it should still be out", r.State)
	}
	// The agents whose runs were skipped come back: they get nothing.
	for _, a := range agents[3:] {
		a.start(t)
	}

	out, errOut, code := w.wait(t, 30*time.Second)
	if code != 3 {
		t.Fatalf("job submit --wait of a halted job with failed runs: exit %d, want 3\n%s%s", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("job submit --wait -o json: %v: %q", err, out)
	}
	if j.Status != "failed" || !j.Halted || j.HaltReason != reason {
		t.Fatalf("final job: status %s, halted %v (%q)", j.Status, j.Halted, j.HaltReason)
	}
	var lastFail time.Time
	for _, name := range []string{"fail-1", "fail-2"} {
		r := runOf(t, j, name)
		if r.State != "failed" || r.ExitCode == nil || *r.ExitCode != 1 || r.FinishedAt == nil {
			t.Fatalf("%s's run = %+v, want failed with exit 1", name, r)
		}
		if r.FinishedAt.After(lastFail) {
			lastFail = *r.FinishedAt
		}
	}
	if r := runOf(t, j, "ok-1"); r.State != "succeeded" {
		t.Fatalf("ok-1's run, out when the job halted, = %+v; want it to finish, succeeded", r)
	}
	for _, name := range []string{"ok-2", "ok-3", "ok-4"} {
		r := runOf(t, j, name)
		if r.State != "skipped" || r.Reason != "job halted: "+reason || r.Attempts != 0 || r.SentAt != nil || r.FinishedAt == nil {
			t.Fatalf("%s's run = %+v; want skipped (%q), never sent", name, r, "job halted: "+reason)
		}
		// The halt follows the second failure within about a second
		// (the agent's report, then the keeper's pass); the API's times
		// are whole seconds.
		if d := r.FinishedAt.Sub(lastFail); d > 2*time.Second {
			t.Errorf("%s's run skipped %v after the second failure; the halt should follow within about a second", name, d)
		}
	}

	// Give the restarted agents a few polls: still nothing runs.
	time.Sleep(time.Until(haltSeen.Add(2 * time.Second)))
	spans := jobSpans(readSpans(t, spansFile), id)
	var ran []string
	for _, s := range spans {
		ran = append(ran, s.agent)
	}
	slices.Sort(ran)
	if want := []string{"fail-1", "fail-2", "ok-1"}; !slices.Equal(ran, want) {
		t.Fatalf("the job ran on %v, want %v", ran, want)
	}
	if n, at := maxOverlap(spans); n > 2 {
		t.Fatalf("%d runs at once at %s; --max-parallel 2", n, at.Format("15:04:05.000000"))
	}

	if out, _, code := srv.cli(t, "", "job", "list"); code != 0 || !strings.Contains(out, "failed (halted)") {
		t.Fatalf("job list: exit %d, want the job shown \"failed (halted)\":\n%s", code, out)
	}
	if out, _, code := srv.cli(t, "", "job", "status", id); code != 0 || !strings.Contains(out, reason) || !strings.Contains(out, "2/1 failures") {
		t.Fatalf("job status: exit %d, want the halt and \"2/1 failures\":\n%s", code, out)
	}
	var audit []api.AuditEntry
	srv.cliJSON(t, &audit, "audit", "list", "--operation", "rollout.halt")
	if len(audit) != 1 || audit[0].Target != "job "+id || audit[0].Actor != "server" ||
		!strings.Contains(audit[0].Detail, reason) || !strings.Contains(audit[0].Detail, "3 pending runs skipped") {
		t.Fatalf("audit list --operation rollout.halt = %+v; want one record of job %s's halt", audit, id)
	}
	if n := strings.Count(srv.log.String(), "msg=\"rollout halted\""); n != 1 {
		t.Fatalf("the server logged \"rollout halted\" %d times, want once", n)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// TestRolloutCanary: --canary 1. A failing canary (the first target) halts
// the job and nothing else runs: the other runs end skipped, never sent.
// A succeeding canary lets the others go, only once its run has finished.
func TestRolloutCanary(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"bad", "can-1", "can-2", "can-3"}, map[string][]string{"bad": {"ROLL_FAIL=1"}})
	startFleet(t, srv, agents)
	spansFile := filepath.Join(dir, "spans.log")

	// A failing canary: exit 3 (a run failed), the rest skipped.
	out, errOut, code := srv.cli(t, "", append([]string{"job", "submit", "--canary", "1", "-c", rolloutScript(spansFile, "0.3"),
		"--wait", "--wait-interval", "200ms", "-o", "json"}, targetArgs(agents)...)...)
	if code != 3 {
		t.Fatalf("job submit --canary 1 --wait, failing canary: exit %d, want 3\n%s%s", code, out, errOut)
	}
	var j api.Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("job submit --wait -o json: %v: %q", err, out)
	}
	const reason = "canary bad failed"
	if !j.Halted || j.HaltReason != reason || j.Canary != 1 || j.CanaryPhase != "failed" {
		t.Fatalf("job: halted %v (%q), canary %d, phase %q; want halted (%q), 1, failed", j.Halted, j.HaltReason, j.Canary, j.CanaryPhase, reason)
	}
	if r := runOf(t, j, "bad"); r.State != "failed" || !r.Canary {
		t.Fatalf("the canary's run = %+v, want failed, marked canary", r)
	}
	for _, a := range agents[1:] {
		r := runOf(t, j, a.name)
		if r.State != "skipped" || r.Canary || r.Attempts != 0 || r.SentAt != nil || r.Reason != "job halted: "+reason {
			t.Fatalf("%s's run = %+v; want skipped (job halted: %s), never sent", a.name, r, reason)
		}
	}
	first := j.ID
	time.Sleep(time.Second) // the agents poll a few more times: still nothing
	if spans := jobSpans(readSpans(t, spansFile), first); len(spans) != 1 || spans[0].agent != "bad" {
		t.Fatalf("job %s ran %+v; want the canary alone", first, spans)
	}

	// A succeeding canary: the others start after its run finished.
	ok := agents[1:]
	out, errOut, code = srv.cli(t, "", append([]string{"job", "submit", "--canary", "1", "-c", rolloutScript(spansFile, "1"),
		"--wait", "--wait-interval", "200ms", "-o", "json"}, targetArgs(ok)...)...)
	if code != 0 {
		t.Fatalf("job submit --canary 1 --wait, good canary: exit %d, want 0\n%s%s", code, out, errOut)
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("job submit --wait -o json: %v: %q", err, out)
	}
	if j.Halted || j.Status != "succeeded" || j.CanaryPhase != "passed" || countState(j, "succeeded") != 3 {
		t.Fatalf("job = %s, halted %v, phase %q, runs %+v; want succeeded, every run, canary passed", j.Status, j.Halted, j.CanaryPhase, j.Runs)
	}
	canary := runOf(t, j, "can-1")
	if !canary.Canary || canary.FinishedAt == nil {
		t.Fatalf("the canary's run = %+v", canary)
	}
	for _, a := range ok[1:] {
		r := runOf(t, j, a.name)
		if r.Canary || r.SentAt == nil || r.StartedAt == nil {
			t.Fatalf("%s's run = %+v", a.name, r)
		}
		// The API's times are whole seconds: the spans below compare
		// in nanoseconds.
		if r.SentAt.Before(*canary.FinishedAt) || r.StartedAt.Before(*canary.FinishedAt) {
			t.Fatalf("%s's run was sent at %v, started at %v; the canary finished at %v: it must go first, alone",
				a.name, r.SentAt, r.StartedAt, canary.FinishedAt)
		}
	}
	spans := jobSpans(readSpans(t, spansFile), j.ID)
	if len(spans) != 3 || spans[0].agent != "can-1" {
		t.Fatalf("job %s ran %+v; want the canary first, then the others", j.ID, spans)
	}
	for _, s := range spans[1:] {
		if s.start <= spans[0].end {
			t.Fatalf("%s started at %d, before the canary ended (%d)", s.agent, s.start, spans[0].end)
		}
	}
	if n, _ := maxOverlap(spans[1:]); n != 2 {
		t.Errorf("after the canary, %d runs at once; with no window both others should run together", n)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// TestRolloutPauseResumeRerun: job pause, resume and rerun through the CLI.
// A job with --max-parallel 1 and 1 s runs is paused once its first run is
// out: that run finishes, nothing else goes out while it stays paused (2.5
// s), job status and job list say so; after job resume every run
// finishes. Then job rerun --failed makes a new job, rerun_of the first,
// for the failed target alone (and the first job's window), and job rerun
// for all of them.
func TestRolloutPauseResumeRerun(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"p-1", "p-2", "p-3", "p-bad"}, map[string][]string{"p-bad": {"ROLL_FAIL=1"}})
	startFleet(t, srv, agents)
	spansFile := filepath.Join(dir, "spans.log")

	id := submitJSON(t, srv, append([]string{"--max-parallel", "1", "-c", rolloutScript(spansFile, "1")}, targetArgs(agents)...)...)
	eventually(t, 30*time.Second, "a run to be out", func() bool {
		return countState(jobStatus(t, srv, id), outStates...) == 1
	})
	if out, errOut, code := srv.cli(t, "", "job", "pause", id); code != 0 || out != "job "+id+" paused\n" {
		t.Fatalf("job pause: exit %d: %q %s", code, out, errOut)
	}
	j := jobStatus(t, srv, id)
	if !j.Paused {
		t.Fatalf("job status after job pause: paused false")
	}
	var held []string // pending when the pause took effect
	for _, r := range j.Runs {
		if r.State == "pending" {
			held = append(held, r.Client)
		}
	}
	if len(held) < 2 {
		t.Fatalf("%d runs pending after the pause; with a window of 1 and 1 s runs there should be at least 2: %+v", len(held), j.Runs)
	}
	if out, _, code := srv.cli(t, "", "job", "pause", id); code != 0 || !strings.Contains(out, "already paused") {
		t.Fatalf("job pause, again: exit %d: %q", code, out)
	}
	if out, _, _ := srv.cli(t, "", "job", "list"); !strings.Contains(out, "(paused)") {
		t.Fatalf("job list does not show the pause:\n%s", out)
	}
	if out, _, _ := srv.cli(t, "", "job", "status", id); !strings.Contains(out, "job resume "+id) {
		t.Fatalf("job status does not show the pause:\n%s", out)
	}
	pausedFor := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(pausedFor) {
		j = jobStatus(t, srv, id)
		var pending []string
		for _, r := range j.Runs {
			if r.State == "pending" {
				pending = append(pending, r.Client)
			}
		}
		if !slices.Equal(pending, held) {
			t.Fatalf("while paused, the pending runs went from %v to %v", held, pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := countState(j, outStates...); n != 0 {
		t.Fatalf("%d runs still out 2.5 s into the pause; the run out when it began takes 1 s and should have finished", n)
	}
	resumed := time.Now()
	if out, errOut, code := srv.cli(t, "", "job", "resume", id); code != 0 || out != "job "+id+" resumed\n" {
		t.Fatalf("job resume: exit %d: %q %s", code, out, errOut)
	}
	if out, _, code := srv.cli(t, "", "job", "resume", id); code != 0 || !strings.Contains(out, "was not paused") {
		t.Fatalf("job resume, again: exit %d: %q", code, out)
	}
	if out, errOut, code := srv.cli(t, "", "job", "status", id, "--watch", "--wait-interval", "200ms"); code != 3 {
		t.Fatalf("job status --watch: exit %d, want 3 (p-bad failed)\n%s%s", code, out, errOut)
	}
	j = jobStatus(t, srv, id)
	if j.Paused || countState(j, "succeeded") != 3 || runOf(t, j, "p-bad").State != "failed" {
		t.Fatalf("job after the resume: paused %v, runs %+v; want 3 succeeded and p-bad failed", j.Paused, j.Runs)
	}
	spans := jobSpans(readSpans(t, spansFile), id)
	if len(spans) != 4 {
		t.Fatalf("%d executions, want 4: %+v", len(spans), spans)
	}
	for _, s := range spans {
		if slices.Contains(held, s.agent) && s.start < resumed.UnixNano() {
			t.Fatalf("%s's run, pending at the pause, started before the resume", s.agent)
		}
	}
	if n, at := maxOverlap(spans); n != 1 {
		t.Fatalf("%d runs at once at %s; --max-parallel 1", n, at.Format("15:04:05.000000"))
	}

	// job rerun --failed: a new job for p-bad alone, naming the old one.
	var res api.SubmitResult
	srv.cliJSON(t, &res, "job", "rerun", id, "--failed")
	if res.ID == "" || res.ID == id || res.Runs != 1 || res.RerunOf != id {
		t.Fatalf("job rerun --failed = %+v; want a new job of 1 run, rerun_of %s", res, id)
	}
	again := jobStatus(t, srv, res.ID)
	if again.RerunOf != id || len(again.Runs) != 1 || again.Runs[0].Client != "p-bad" || again.MaxParallel == nil || *again.MaxParallel != 1 {
		t.Fatalf("the rerun: rerun_of %q, runs %+v, max_parallel %v; want %s, p-bad alone, 1", again.RerunOf, again.Runs, again.MaxParallel, id)
	}
	if out, _, _ := srv.cli(t, "", "job", "status", res.ID); !strings.Contains(out, "rerun of") {
		t.Fatalf("job status of a rerun does not name the old job:\n%s", out)
	}
	if _, _, code := srv.cli(t, "", "job", "status", res.ID, "--watch", "--wait-interval", "200ms"); code != 3 {
		t.Fatalf("the rerun on p-bad: exit %d, want 3 (it fails again)", code)
	}
	// job rerun: every target, followed with --wait.
	out, errOut, code := srv.cli(t, "", "job", "rerun", id, "--wait", "--wait-interval", "200ms", "-o", "json")
	if code != 3 {
		t.Fatalf("job rerun --wait: exit %d, want 3\n%s%s", code, out, errOut)
	}
	var all api.Job
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("job rerun --wait -o json: %v: %q", err, out)
	}
	if all.RerunOf != id || len(all.Runs) != 4 || countState(all, "succeeded") != 3 {
		t.Fatalf("job rerun of every target: rerun_of %q, runs %+v", all.RerunOf, all.Runs)
	}
	if _, errOut, code := srv.cli(t, "", "job", "rerun", "987654321"); code != 14 {
		t.Fatalf("job rerun of an unknown job: exit %d (%s), want 14", code, errOut)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// TestRolloutPython drives rollouts from Python's xmlrpc.client
// (testdata/rollout.py): job.submit's rollout members in their string and
// int forms, job.get, job.pause, job.resume, job.rerun and their faults.
func TestRolloutPython(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	var env []string
	for i := 1; i <= 6; i++ {
		certFile, keyFile := agentIdentity(t, dir, fmt.Sprint("agent", i))
		env = append(env, fmt.Sprintf("AGENT%d_CERT=%s", i, certFile), fmt.Sprintf("AGENT%d_KEY=%s", i, keyFile))
	}
	pythonCommand(t, srv, "rollout.py", []string{"testdata/rollout.py"}, env...)
}
