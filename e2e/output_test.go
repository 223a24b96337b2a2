package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/runoutput"
	"github.com/scirectl/scirectl/runstate"
)

// The output tests (SPEC §11) run real agents (rollout_test.go's fleet)
// and read what their jobs wrote through the CLI, as an operator does:
// live with job output --follow, bounded at both ends, kept when a run is
// cancelled, times out or loses its agent, and grouped with --collapse.

// jobOutputs is `job output ID -o json`.
func jobOutputs(t *testing.T, srv *testServer, id string) []api.Output {
	t.Helper()
	var outs []api.Output
	srv.cliJSON(t, &outs, "job", "output", id)
	return outs
}

// oneOutput is the output of job id's only run.
func oneOutput(t *testing.T, srv *testServer, id string) api.Output {
	t.Helper()
	outs := jobOutputs(t, srv, id)
	if len(outs) != 1 {
		t.Fatalf("job output %s: %d runs, want 1: %+v", id, len(outs), outs)
	}
	return outs[0]
}

// followLine is a line the follower printed, and when the test read it.
type followLine struct {
	text string
	at   time.Time
}

// followProc is a `job output --follow` whose standard output the test
// reads line by line as it comes.
type followProc struct {
	lines  chan followLine // closed at the end of its output
	stderr *logBuffer
	exited chan struct{} // closed once it has exited; err is then set
	err    error
}

func startFollow(t *testing.T, srv *testServer, args ...string) *followProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"job", "output"}, args...)...)
	cmd.Env = srv.cliEnv()
	f := &followProc{lines: make(chan followLine, 10000), stderr: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = f.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f.lines <- followLine{sc.Text(), time.Now()}
		}
		close(f.lines)
		f.err = cmd.Wait()
		close(f.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-f.exited
		if t.Failed() {
			t.Logf("stderr of job output %v:\n%s", args, f.stderr.String())
		}
	})
	return f
}

// next is the next line printed; false at the end of the output.
func (f *followProc) next(t *testing.T, timeout time.Duration) (followLine, bool) {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		return l, ok
	case <-time.After(timeout):
		t.Fatalf("job output --follow printed no line within %v", timeout)
		return followLine{}, false
	}
}

// rest reads the lines up to the end of the output.
func (f *followProc) rest(t *testing.T, timeout time.Duration) []followLine {
	t.Helper()
	var out []followLine
	deadline := time.Now().Add(timeout)
	for {
		l, ok := f.next(t, time.Until(deadline))
		if !ok {
			return out
		}
		out = append(out, l)
	}
}

// exitCode waits for the follower to exit.
func (f *followProc) exitCode(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-f.exited:
	case <-time.After(timeout):
		t.Fatalf("job output --follow did not exit within %v", timeout)
	}
	if ee, ok := f.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if f.err != nil {
		t.Fatalf("job output --follow: %v", f.err)
	}
	return 0
}

// numberedScript prints n lines "<prefix> <i>" (i from 1), sleeping
// pause between them; with stamp, each line ends with the time it was
// written (unix ns).
func numberedScript(prefix string, n int, pause string, stamp bool) string {
	line := `printf '%s %d\n' "` + prefix + `" "$i"`
	if stamp {
		line = `printf '%s %d %s\n' "` + prefix + `" "$i" "$(date +%s%N)"`
	}
	return fmt.Sprintf(`i=1
while [ "$i" -le %d ]; do
  %s
  i=$((i+1))
  sleep %s
done
`, n, line, pause)
}

// TestOutputFollow: job output --follow prints a job's lines while it
// runs, each once, in order, and exits with --wait's code once the job has
// ended; with several runs each line is prefixed by its client's name.
func TestOutputFollow(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"fol-1", "fol-2"}, nil)
	startFleet(t, srv, agents)

	// One run: 25 lines, one every 200 ms, each stamped with when the
	// script wrote it.
	const n = 25
	id := submitJSON(t, srv, "--target", "fol-1", "-c", numberedScript("line", n, "0.2", true))
	f := startFollow(t, srv, id, "--follow")
	first, ok := f.next(t, 30*time.Second)
	if !ok {
		t.Fatalf("job output --follow ended before printing a line (exit %d)", f.exitCode(t, 5*time.Second))
	}
	if st := jobStatus(t, srv, id).Runs[0].State; st != "running" {
		t.Fatalf("the follower printed its first line %q when the run was %s; it should come while the job runs", first.text, st)
	}
	got := append([]followLine{first}, f.rest(t, 30*time.Second)...)
	code := f.exitCode(t, 10*time.Second)
	j := jobStatus(t, srv, id)
	if code != 0 || j.Status != "succeeded" {
		t.Fatalf("job output --follow exited %d with the job %s; want 0 after it succeeded", code, j.Status)
	}
	lineRx := regexp.MustCompile(`^line (\d+) (\d+)$`)
	var maxLag time.Duration
	var printed []string
	for i, l := range got {
		printed = append(printed, l.text)
		m := lineRx.FindStringSubmatch(l.text)
		if m == nil || m[1] != strconv.Itoa(i+1) {
			t.Fatalf("line %d of the follower is %q; want \"line %d <time>\"; all of them:\n%s", i+1, l.text, i+1, strings.Join(printed, "\n"))
		}
		ns, _ := strconv.ParseInt(m[2], 10, 64)
		maxLag = max(maxLag, l.at.Sub(time.Unix(0, ns)))
	}
	if len(got) != n {
		t.Fatalf("the follower printed %d lines, want %d:\n%s", len(got), n, strings.Join(printed, "\n"))
	}
	spread := got[n-1].at.Sub(got[0].at)
	t.Logf("%d lines followed over %v; the longest from the script's write to the follower's line: %v",
		n, spread.Round(time.Millisecond), maxLag.Round(time.Millisecond))
	// The script writes for 4.8 s: a follower that printed them in one go
	// at the end did not follow. SPEC §11: within 2 seconds of the write
	// (the agent sends every second, the follower asks twice a second:
	// 1.5 s at worst, about 1.4 s measured).
	if spread < 3*time.Second {
		t.Fatalf("the lines came within %v of each other; the script wrote them over 4.8 s", spread)
	}
	if maxLag > 2*time.Second {
		t.Fatalf("a line reached the follower %v after the script wrote it; want 2 s at most", maxLag)
	}
	whole := strings.Join(printed, "\n") + "\n"
	if out, errOut, code := srv.cli(t, "", "job", "output", id); code != 0 || out != whole {
		t.Fatalf("job output after the job: exit %d (%s)\n%q\nwant what the follower printed:\n%q", code, errOut, out, whole)
	}

	// Two runs: every line prefixed by its client; fol-2's run fails, so
	// the follower ends with --wait's code for a failed run, 3.
	const m = 8
	script := numberedScript("step", m, "0.2", false) + `[ "$ROLL_AGENT" != fol-2 ] || exit 3` + "\n"
	id = submitJSON(t, srv, append([]string{"-c", script}, targetArgs(agents)...)...)
	f = startFollow(t, srv, id, "-f")
	first, ok = f.next(t, 30*time.Second)
	if !ok {
		t.Fatalf("job output -f of two runs ended before printing a line (exit %d)", f.exitCode(t, 5*time.Second))
	}
	if n := countState(jobStatus(t, srv, id), "running"); n == 0 {
		t.Fatalf("the follower printed its first line %q when no run was running", first.text)
	}
	got = append([]followLine{first}, f.rest(t, 30*time.Second)...)
	if code := f.exitCode(t, 10*time.Second); code != 3 {
		t.Fatalf("job output -f of a job with a failed run exited %d, want 3", code)
	}
	seen := map[string]int{}
	printed = printed[:0]
	for _, l := range got {
		printed = append(printed, l.text)
		name, rest, _ := strings.Cut(l.text, ": ")
		if name != "fol-1" && name != "fol-2" {
			t.Fatalf("line %q is not prefixed by a client's name; all of them:\n%s", l.text, strings.Join(printed, "\n"))
		}
		seen[name]++
		if want := fmt.Sprintf("step %d", seen[name]); rest != want {
			t.Fatalf("%s's line %d is %q, want %q; all of them:\n%s", name, seen[name], rest, want, strings.Join(printed, "\n"))
		}
	}
	if seen["fol-1"] != m || seen["fol-2"] != m {
		t.Fatalf("the follower printed %v lines per client, want %d each:\n%s", seen, m, strings.Join(printed, "\n"))
	}
	if want := fmt.Sprintf("job %s: 2/2 done, 1 failed", id); !strings.Contains(f.stderr.String(), want) {
		t.Fatalf("the follower's standard error does not sum the job up (%q):\n%s", want, f.stderr.String())
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// seqStream is what `seq from to` writes.
func seqStream(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestOutputBothEnds: a run that writes about 5 MiB keeps, through the
// real agent and server, its first and last 512 KiB with the marker line
// between them: while it runs (the chunks streamed so far) and once it has
// ended (its final report).
func TestOutputBothEnds(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"big-1"}, nil)
	startFleet(t, srv, agents)

	// Ten bursts of about 0.5 MB, half a second apart, so that the agent
	// streams them as they come.
	const bursts, per = 10, 75000
	script := fmt.Sprintf(`k=0
while [ "$k" -lt %d ]; do
  seq $((k * %d + 1)) $((k * %d + %d))
  k=$((k+1))
  sleep 0.5
done
`, bursts, per, per, per)
	stream := seqStream(1, bursts*per)
	bound := runoutput.DefaultMax
	id := submitJSON(t, srv, "--target", "big-1", "-c", script)

	// While it runs: what was streamed so far, bounded the same way.
	var live api.Output
	eventually(t, 30*time.Second, "the run to have streamed more than the bound while running", func() bool {
		live = oneOutput(t, srv, id)
		if !runstate.State(live.State).Final() && live.Size > bound {
			return true
		}
		if runstate.State(live.State).Final() {
			t.Fatalf("the run ended (%s) before more than %d bytes of its output were seen streamed (%d)", live.State, bound, live.Size)
		}
		return false
	})
	if live.Size > len(stream) {
		t.Fatalf("while running, size %d; the script writes %d bytes", live.Size, len(stream))
	}
	if want := runoutput.Bound(stream[:live.Size], bound); live.Output != want.String() || !live.Truncated || int64(live.OmittedBytes) != want.Omitted {
		t.Fatalf("while running (size %d): output of %d bytes, truncated %v, omitted %d; want the bound of the stream so far: %d bytes, truncated, omitted %d",
			live.Size, len(live.Output), live.Truncated, live.OmittedBytes, len(want.String()), want.Omitted)
	}
	t.Logf("while running: %d bytes streamed, head and tail kept", live.Size)

	waitFinal(t, srv, id)
	want := runoutput.Bound(stream, bound)
	r := oneOutput(t, srv, id)
	if r.State != "succeeded" || r.Size != len(stream) || !r.Truncated || int64(r.OmittedBytes) != want.Omitted || r.OmittedBytes != len(stream)-bound {
		t.Fatalf("final: state %s, size %d, truncated %v, omitted %d; want succeeded, %d, true, %d",
			r.State, r.Size, r.Truncated, r.OmittedBytes, len(stream), len(stream)-bound)
	}
	if r.Output != want.String() {
		t.Fatalf("final output (%d bytes) is not the first and last %d bytes of the stream with the marker (%d bytes); it starts %q, ends %q",
			len(r.Output), bound/2, len(want.String()), r.Output[:min(len(r.Output), 40)], r.Output[max(0, len(r.Output)-40):])
	}
	marker := fmt.Sprintf("\n[... %d bytes omitted ...]\n", len(stream)-bound)
	if strings.Count(r.Output, "[... ") != 1 || !strings.Contains(r.Output, marker) {
		t.Fatalf("the final output has no single marker line %q", marker)
	}
	// As a person reads it: the same, and a warning on standard error.
	out, errOut, code := srv.cli(t, "", "job", "output", id)
	if code != 0 || out != want.String() || !strings.Contains(errOut, fmt.Sprintf("%d bytes omitted in the middle", len(stream)-bound)) {
		t.Fatalf("job output: exit %d, %d bytes (want %d), stderr %q", code, len(out), len(want.String()), errOut)
	}
	t.Logf("%d bytes written, %d kept; done in %v", len(stream), len(r.Output), time.Since(began).Round(time.Millisecond))
}

// TestOutputCancelAndTimeoutKeepPartial: a cancelled run and a timed-out
// one keep the output they wrote until they were stopped.
func TestOutputCancelAndTimeoutKeepPartial(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"cancel-1", "timeout-1"}, nil)
	startFleet(t, srv, agents)

	// Cancelled: three lines, then a long sleep; the agent's SIGTERM makes
	// the script write one more line, which only its final report carries.
	cancelled := submitJSON(t, srv, "--target", "cancel-1", "-c", `trap 'echo "got TERM"; exit 143' TERM
for i in 1 2 3; do echo "before $i"; done
sleep 60 &
wait
`)
	timedOut := submitJSON(t, srv, "--target", "timeout-1", "--timeout", "2s", "-c", `echo "before 1"
echo "before 2"
sleep 30
`)
	const lines3 = "before 1\nbefore 2\nbefore 3\n"
	var r api.Output
	eventually(t, 30*time.Second, "the cancel job's lines to be streamed", func() bool {
		r = oneOutput(t, srv, cancelled)
		return r.Output == lines3
	})
	if r.State != "running" {
		t.Fatalf("the cancel job's lines came with the run %s; it sleeps 60 s, it should be running", r.State)
	}
	if out, errOut, code := srv.cli(t, "", "job", "cancel", cancelled); code != 0 {
		t.Fatalf("job cancel: exit %d: %s%s", code, out, errOut)
	}
	// The agent learns of the cancel at its next heartbeat, stops the
	// script and reports it with its output; done.log says it was
	// answered.
	runID := r.RunID
	eventually(t, 30*time.Second, "the agent to report the cancelled run", func() bool {
		b, _ := os.ReadFile(filepath.Join(agents[0].stateDir, "done.log"))
		return slices.Contains(strings.Split(string(b), "\n"), runID+" cancelled")
	})
	r = oneOutput(t, srv, cancelled)
	if want := lines3 + "got TERM\n"; r.State != "cancelled" || r.Output != want || r.Truncated {
		t.Fatalf("the cancelled run: state %s, output %q, truncated %v; want cancelled, %q", r.State, r.Output, r.Truncated, want)
	}
	if out, _, code := srv.cli(t, "", "job", "output", cancelled); code != 0 || out != lines3+"got TERM\n" {
		t.Fatalf("job output of the cancelled job: exit %d: %q", code, out)
	}

	// Timed out: failed, reason timeout, with the two lines.
	waitFinal(t, srv, timedOut)
	run := jobStatus(t, srv, timedOut).Runs[0]
	r = oneOutput(t, srv, timedOut)
	if run.State != "failed" || run.Reason != "timeout" || r.Output != "before 1\nbefore 2\n" {
		t.Fatalf("the timed-out run: %s (reason %q), output %q; want failed, timeout, the two lines", run.State, run.Reason, r.Output)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// noteRx is the line the agent adds to the output of a run it finds cut
// short when it starts.
var noteRx = regexp.MustCompile(`^\[scirectl agent: .*\]$`)

// numbered parses an output of lines "n <i>": the numbers, and whatever
// line is not one.
func numbered(out string) (nums []int, other []string) {
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if s, ok := strings.CutPrefix(l, "n "); ok {
			if i, err := strconv.Atoi(s); err == nil {
				nums = append(nums, i)
				continue
			}
		}
		if l != "" {
			other = append(other, l)
		}
	}
	return nums, other
}

// readSpool reads a run's output spool (the agent's stream/<run>/: the
// stream in segment files named by the offset of their first byte).
func readSpool(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, e := range ents {
		if off, err := strconv.ParseInt(e.Name(), 10, 64); err == nil {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	var b strings.Builder
	for _, off := range offs {
		if int64(b.Len()) != off {
			t.Fatalf("spool %s: segment %d follows %d bytes", dir, off, b.Len())
		}
		data, err := os.ReadFile(filepath.Join(dir, strconv.FormatInt(off, 10)))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

// TestOutputAgentKilled: an agent SIGKILLed while its job writes, and
// started again on its state directory, reports the run interrupted with
// its output whole: every line the agent had read of the script when it
// was killed (its spool), once, in order, so at least those the server had
// before the kill, and the agent's note on the interruption last.
func TestOutputAgentKilled(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	agents := newFleet(srv, dir, nil, []string{"killed-1"}, nil)
	startFleet(t, srv, agents)
	a := agents[0]

	id := submitJSON(t, srv, "--target", a.name, "-c", numberedScript("n", 60, "0.1", false))
	// The agent sends once a second: once the server has a few lines, the
	// kill comes 0.6 s after a send, when the script has written lines
	// the server does not have yet.
	var before []int
	eventually(t, 30*time.Second, "the server to have some of the output", func() bool {
		r := oneOutput(t, srv, id)
		if runstate.State(r.State).Final() {
			t.Fatalf("the run is %s before the kill", r.State)
		}
		nums, _ := numbered(r.Output)
		grew := len(nums) > len(before)
		before = nums
		return grew && len(nums) >= 5
	})
	time.Sleep(600 * time.Millisecond)
	killNine(t, a.proc)
	// What the server had at the kill (a request in flight may have
	// landed), and what the agent had read of the script: its spool.
	r := oneOutput(t, srv, id)
	before, other := numbered(r.Output)
	if len(other) > 0 || len(before) == 0 {
		t.Fatalf("the streamed output is %q; want the script's lines", r.Output)
	}
	spooled, other := numbered(readSpool(t, filepath.Join(a.stateDir, "stream", r.RunID)))
	if len(other) > 0 {
		t.Fatalf("the agent's spool has lines that are not the script's: %q", other)
	}
	t.Logf("agent killed with lines 1..%d on the server, %d in its spool", before[len(before)-1], len(spooled))
	// Meanwhile the script writes on, until it dies of the broken pipe.
	time.Sleep(time.Second)
	a.start(t)

	var final api.Run
	eventually(t, 30*time.Second, "the run to be reported after the restart", func() bool {
		final = jobStatus(t, srv, id).Runs[0]
		return runstate.State(final.State).Final()
	})
	if final.State != "failed" || final.Reason != "interrupted" {
		t.Fatalf("the run after the agent's restart: %s (reason %q), want failed, interrupted", final.State, final.Reason)
	}
	r = oneOutput(t, srv, id)
	nums, other := numbered(r.Output)
	if len(other) != 1 || !noteRx.MatchString(other[0]) || !strings.HasSuffix(r.Output, other[0]) {
		t.Fatalf("the interrupted run's output ends with %q; want one line of the agent's about the interruption, last", other)
	}
	for i, n := range nums {
		if n != i+1 {
			t.Fatalf("the interrupted run's line %d is \"n %d\"; want 1..k, each once, in order: %v", i+1, n, nums)
		}
	}
	if len(nums) < before[len(before)-1] {
		t.Fatalf("the final output has lines 1..%d; the server had 1..%d before the kill", len(nums), before[len(before)-1])
	}
	if len(nums) != len(spooled) {
		t.Fatalf("the final output has lines 1..%d; the agent had read %d lines when it was killed", len(nums), len(spooled))
	}
	t.Logf("final output: lines 1..%d and the agent's note; done in %v", len(nums), time.Since(began).Round(time.Millisecond))
}

// TestOutputCollapse: job output --collapse groups the clients whose
// outputs are the same.
func TestOutputCollapse(t *testing.T) {
	began := time.Now()
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	// col-1, first in name order, says something else: the pair's group
	// comes first all the same, the largest first. The runs are made in
	// the targets' order, the odd one between the pair's.
	agents := newFleet(srv, dir, nil, []string{"col-1", "col-2", "col-3"}, map[string][]string{"col-1": {"COL_FLAVOR=odd"}})
	startFleet(t, srv, agents)
	id := submitJSON(t, srv, "-c", `echo "same start"; echo "flavor ${COL_FLAVOR:-plain}"`, "--target", "col-2", "--target", "col-1", "--target", "col-3")
	if j := waitFinal(t, srv, id); j.Status != "succeeded" {
		t.Fatalf("job %s: %+v", id, j)
	}
	const want = `---------------- col-2,col-3 (2) ----------------
same start
flavor plain
---------------- col-1 (1) ----------------
same start
flavor odd
`
	if out, errOut, code := srv.cli(t, "", "job", "output", id, "--collapse"); code != 0 || out != want {
		t.Fatalf("job output --collapse: exit %d (%s)\n%s\nwant\n%s", code, errOut, out, want)
	}
	var groups []struct {
		Clients []string `json:"clients"`
		Count   int      `json:"count"`
		Output  string   `json:"output"`
	}
	srv.cliJSON(t, &groups, "job", "output", id, "--collapse")
	if len(groups) != 2 ||
		!slices.Equal(groups[0].Clients, []string{"col-2", "col-3"}) || groups[0].Count != 2 || groups[0].Output != "same start\nflavor plain\n" ||
		!slices.Equal(groups[1].Clients, []string{"col-1"}) || groups[1].Count != 1 || groups[1].Output != "same start\nflavor odd\n" {
		t.Fatalf("job output --collapse -o json = %+v", groups)
	}
	t.Logf("done in %v", time.Since(began).Round(time.Millisecond))
}

// TestOutputPython streams and reads output through the wire with
// Python's xmlrpc.client (testdata/output.py): agent.output as an agent,
// job.output as the operator.
func TestOutputPython(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	certFile, keyFile := agentIdentity(t, dir, "other")
	pythonCommand(t, srv, "output.py", []string{"testdata/output.py"}, "OTHER_CERT="+certFile, "OTHER_KEY="+keyFile)
}
