package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runoutput"
)

// waitFor is shell that waits (at most 30 s) for file to exist.
func waitFor(file string) string {
	return "n=0; while [ ! -e " + file + " ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done; "
}

func touch(t *testing.T, file string) {
	t.Helper()
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// runAsync runs the agent until it returns (Once) and returns the channel
// its error comes on.
func runAsync(t *testing.T, a *testAgent) <-chan error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, a.cfg); cancel() }()
	return done
}

func waitRun(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("Run did not return")
	}
}

func spoolEmpty(t *testing.T, stateDir string) {
	t.Helper()
	dirEmpty(t, filepath.Join(stateDir, streamDir))
}

// While a job runs, its output reaches the server as it is written: the
// first line while the script still waits for the server to have it, and
// then, as the script writes a line every 200 ms, a chunk at least about
// every second, before the script ends. The final report carries it all.
func TestStreamWhileRunning(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	seen := filepath.Join(tmp, "seen")
	f.addJob(jobxml.Job{ID: 1, Run: 301, Script: "echo 'line 1'; " + waitFor(seen) +
		"for i in 2 3 4 5 6 7 8 9 10 11 12; do echo \"line $i\"; sleep 0.2; done"})
	a := newTestAgent(t, f)
	done := runAsync(t, a)
	eventually(t, "the first line to be streamed while the script runs", func() bool {
		s, _ := f.streamed(301)
		return s == "line 1\n"
	})
	touch(t, seen)
	waitRun(t, done)

	var want strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	st, ok := f.final(301)
	if !ok || st.State != jobxml.StateSucceeded || st.Output != want.String() || st.Truncated {
		t.Fatalf("report %+v", st)
	}
	stream, chunks := f.streamed(301)
	if !strings.HasPrefix(want.String(), stream) {
		t.Fatalf("streamed %q, not a prefix of the output", stream)
	}
	// Chunks came while the script wrote its lines, about once a second.
	var during []gotChunk
	for _, c := range chunks {
		if c.offset > 0 && c.at.Before(st.Finished) {
			during = append(during, c)
		}
	}
	if len(during) == 0 {
		t.Fatalf("no chunk after the first line arrived before the script ended (chunks %+v, finished %v)", chunks, st.Finished)
	}
	prev := chunks[0].at
	for _, c := range during {
		if gap := c.at.Sub(prev); gap > 2500*time.Millisecond {
			t.Fatalf("%v between chunks while the script wrote a line every 200 ms", gap)
		}
		prev = c.at
	}
	spoolEmpty(t, f.stateDir)
}

// A server that answers a chunk with a smaller offset (it lost what came
// before) gets the output again from that offset.
func TestStreamGapResends(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	next, end := filepath.Join(tmp, "next"), filepath.Join(tmp, "end")
	f.addJob(jobxml.Job{ID: 1, Run: 302, Script: "echo aaaa; " + waitFor(next) + "echo bbbb; " + waitFor(end)})
	a := newTestAgent(t, f)
	done := runAsync(t, a)
	eventually(t, "aaaa streamed", func() bool { s, _ := f.streamed(302); return s == "aaaa\n" })
	f.mu.Lock()
	f.output[302] = f.output[302][:2] // the server lost "aa\n" (a fail-over, say)
	f.mu.Unlock()
	touch(t, next)
	eventually(t, "the whole output streamed again from offset 2", func() bool {
		s, _ := f.streamed(302)
		return s == "aaaa\nbbbb\n"
	})
	touch(t, end)
	waitRun(t, done)
	_, chunks := f.streamed(302)
	gapAt := -1
	for i, c := range chunks {
		if c.offset == 5 && !c.ack.Accepted && c.ack.Offset == 2 {
			gapAt = i
			break
		}
	}
	if gapAt < 0 || gapAt+1 >= len(chunks) || chunks[gapAt+1].offset != 2 || !chunks[gapAt+1].ack.Accepted {
		t.Fatalf("chunks %+v: want one at offset 5 answered with offset 2, then one sent from offset 2", chunks)
	}
	if st, ok := f.final(302); !ok || st.Output != "aaaa\nbbbb\n" {
		t.Fatalf("report %+v", st)
	}
}

// An agent that starts again with spools of runs it died in sends what
// the server has not accepted, from the offset it recorded, for all of
// them in one request, before their reports; the reports are "interrupted"
// with the spooled output, every byte once.
func TestStreamResumesAfterRestart(t *testing.T) {
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	a := newTestAgent(t, f)
	if err := a.run(t); err != nil { // first start: identity
		t.Fatal(err)
	}
	s, _ := openStore(f.stateDir, quiet)
	started := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	var out [4]string
	for i := range 3 {
		var b strings.Builder
		for l := 1; b.Len() < 3000; l++ {
			fmt.Fprintf(&b, "run %d line %d é\n", i, l)
		}
		out[i] = b.String()
	}
	// 314: more than one chunk takes, characters across the cuts.
	out[3] = "x" + strings.Repeat("é", 300_000)
	// 311: the server accepted 1000 bytes, and the agent recorded it.
	// 312: the server accepted 1500, the agent died before recording
	// more than 700. 313, 314: nothing was accepted yet.
	acked := map[int64]int{311: 1000, 312: 700, 313: 0, 314: 0}
	has := map[int64]int{311: 1000, 312: 1500, 313: 0, 314: 0}
	for i, run := range []int64{311, 312, 313, 314} {
		if err := s.enqueue(run, jobDoc(t, jobxml.Job{ID: run, Run: run, Script: "echo never run"})); err != nil {
			t.Fatal(err)
		}
		if err := s.markRunning(run, started); err != nil {
			t.Fatal(err)
		}
		dir := s.spoolPath(run)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0"), []byte(out[i]), 0o600); err != nil {
			t.Fatal(err)
		}
		if acked[run] > 0 {
			if err := writeAcked(dir, int64(acked[run])); err != nil {
				t.Fatal(err)
			}
		}
		f.sent[run] = true
		f.output[run] = []byte(out[i][:has[run]])
	}
	f.outCalls = 0

	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	for i, run := range []int64{311, 312, 313, 314} {
		stream, chunks := f.streamed(run)
		if stream != out[i] {
			t.Fatalf("run %d: server has %d bytes, want the %d spooled", run, len(stream), len(out[i]))
		}
		// Sent once, from the recorded offset, in the first request.
		next := acked[run]
		for _, c := range chunks {
			if c.offset != next || !c.ack.Accepted || c.call != 1 {
				t.Fatalf("run %d: chunks %+v: want one series from offset %d, in request 1", run, chunks, acked[run])
			}
			next += c.size
		}
		if next != len(out[i]) {
			t.Fatalf("run %d: sent up to %d of %d", run, next, len(out[i]))
		}
		st, ok := f.final(run)
		if !ok || st.State != jobxml.StateFailed || st.Reason != ReasonInterrupted || st.Truncated ||
			!strings.HasPrefix(st.Output, withNote(out[i], "[scirectl agent: the agent stopped")) {
			t.Fatalf("run %d: report %s %s truncated %v, %d bytes of output, want the %d spooled first",
				run, st.State, st.Reason, st.Truncated, len(st.Output), len(out[i]))
		}
	}
	for _, d := range []string{"queue", "running", "outbox", streamDir} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
}

// Output over the limit: the report has its first and last half with a
// marker line between, exactly runoutput.Bound of the stream, and says
// truncated.
func TestStreamOutputOverLimit(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	f.addJob(jobxml.Job{ID: 1, Run: 303, Script: "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo \"$i é\"; done"})
	a := newTestAgent(t, f)
	a.cfg.OutputLimit = 1001
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	var stream strings.Builder
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&stream, "%d é\n", i)
	}
	want := runoutput.Bound(stream.String(), 1001)
	st, ok := f.final(303)
	if !ok || st.Output != want.String() || !st.Truncated {
		t.Fatalf("report %+v\nwant output %q", st, want.String())
	}
	if got := runoutput.Parse(st.Output); got != want || !strings.Contains(st.Output, "\n[... ") ||
		!strings.HasPrefix(st.Output, "1 é\n2 é\n") || !strings.HasSuffix(st.Output, "2999 é\n3000 é\n") {
		t.Fatalf("parsed back %+v, want %+v", got, want)
	}
	spoolEmpty(t, f.stateDir)
}

// A character split between two writes, with a round of the sender in
// between, reaches the server and the report whole.
func TestStreamSplitCharacter(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	next := filepath.Join(tmp, "next")
	f.addJob(jobxml.Job{ID: 1, Run: 304, Script: `printf 'a\303'; ` + waitFor(next) + `printf '\251b\n'`})
	a := newTestAgent(t, f)
	done := runAsync(t, a)
	eventually(t, "the whole characters streamed", func() bool { s, _ := f.streamed(304); return s == "a" })
	time.Sleep(1200 * time.Millisecond) // another round: the half character must not go
	if s, _ := f.streamed(304); s != "a" {
		t.Fatalf("streamed %q", s)
	}
	touch(t, next)
	waitRun(t, done)
	if st, ok := f.final(304); !ok || st.Output != "aéb\n" {
		t.Fatalf("report %+v", st)
	}
}

// A server without agent.output (older): the first call's "method not
// found" turns streaming off for the agent's life, said once in the log;
// reports carry the output as before.
func TestStreamOldServer(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	f.oldOutput = true
	for i := int64(1); i <= 2; i++ {
		f.addJob(jobxml.Job{ID: i, Run: 304 + i, Script: "echo start; sleep 1.3; echo end"})
	}
	a := newTestAgent(t, f)
	logs := &testtool.SyncBuffer{}
	a.cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	for _, run := range []int64{305, 306} {
		if st, ok := f.final(run); !ok || st.State != jobxml.StateSucceeded || st.Output != "start\nend\n" {
			t.Fatalf("run %d: report %+v", run, st)
		}
	}
	f.mu.Lock()
	calls := strings.Count(strings.Join(f.calls, " "), "agent.output")
	f.mu.Unlock()
	if calls != 1 {
		t.Fatalf("agent.output called %d times, want once", calls)
	}
	if n := strings.Count(logs.String(), "does not take live output"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	spoolEmpty(t, f.stateDir)
}

// A timed-out run keeps its output, bounded to head and tail.
func TestExecTimeoutKeepsOutput(t *testing.T) {
	t.Parallel()
	r := sh(t, "echo start; head -c 300 /dev/zero | tr '\\0' x; echo; echo last; sleep 100", func(c *command) {
		c.Timeout, c.OutputLimit = 500*time.Millisecond, 100
	})
	want := runoutput.Bound("start\n"+strings.Repeat("x", 300)+"\nlast\n", 100)
	if r.Reason != ReasonTimeout || r.Output != want.String() || !r.Truncated {
		t.Fatalf("%+v, want output %q", r, want.String())
	}
}

// TestAgentChildProcess is not a test of its own: it is the agent that
// TestStreamAgentKilled runs in a process it can kill.
func TestAgentChildProcess(t *testing.T) {
	dir := os.Getenv("SCIRE_TEST_AGENT_STATE")
	if dir == "" {
		t.Skip("run by TestStreamAgentKilled")
	}
	Run(context.Background(), Config{Servers: []string{os.Getenv("SCIRE_TEST_AGENT_SERVER")}, StateDir: dir,
		CAFile: os.Getenv("SCIRE_TEST_AGENT_CA"), Name: "test-agent", Interval: 50 * time.Millisecond,
		Version: "test", Log: quiet, Out: io.Discard})
}

// An agent killed (SIGKILL) while a job streams: started again, it
// reports the run interrupted with the output from its spool, sends the
// server what it had not accepted, and no byte twice.
func TestStreamAgentKilled(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	f := newFakeServer(t, filepath.Join(tmp, "state"))
	pidFile := filepath.Join(tmp, "pid")
	f.addJob(jobxml.Job{ID: 1, Run: 307, Script: "echo $$ > " + pidFile + ".tmp; mv " + pidFile + ".tmp " + pidFile +
		`; i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo "line $i"; sleep 0.05; done`})
	cmd := exec.Command(os.Args[0], "-test.run=^TestAgentChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SCIRE_TEST_AGENT_STATE="+f.stateDir, "SCIRE_TEST_AGENT_SERVER="+f.url(),
		"SCIRE_TEST_AGENT_CA="+f.caFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	eventually(t, "some lines streamed", func() bool { s, _ := f.streamed(307); return strings.Contains(s, "line 5\n") })
	time.Sleep(300 * time.Millisecond) // more written than streamed
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed = true
	pid := readPid(t, pidFile)
	syscall.Kill(-pid, syscall.SIGKILL) // the orphaned script (it would die of SIGPIPE)
	testtool.WaitGone(t, pid)

	spooled := spoolBytes(t, filepath.Join(f.stateDir, streamDir, "307"))
	ackedBefore := int(readAcked(filepath.Join(f.stateDir, streamDir, "307")))
	before, chunksBefore := f.streamed(307)
	if !strings.HasPrefix(spooled, before) || !strings.Contains(spooled, "line 5\n") {
		t.Fatalf("server has %q, not a prefix of the spool %q", before, spooled)
	}

	a := newTestAgent(t, f)
	if err := a.run(t); err != nil {
		t.Fatal(err)
	}
	st, ok := f.final(307)
	if !ok || st.State != jobxml.StateFailed || st.Reason != ReasonInterrupted || st.Exit != nil ||
		!strings.HasPrefix(st.Output, spooled+"[scirectl agent: the agent stopped while this job was running") {
		t.Fatalf("report %+v\nwant the spooled output %q first", st, spooled)
	}
	after, chunks := f.streamed(307)
	if after != spooled {
		t.Fatalf("server has %q, want the spool %q", after, spooled)
	}
	// After the restart: one series from the offset recorded, which is
	// where the server's answers had got to (or behind, if the agent died
	// between an answer and its record).
	next := ackedBefore
	for _, c := range chunks[len(chunksBefore):] {
		if c.offset != next || !c.ack.Accepted {
			t.Fatalf("chunks after restart %+v, want one series from %d", chunks[len(chunksBefore):], ackedBefore)
		}
		next += c.size
	}
	if next != len(spooled) {
		t.Fatalf("sent up to %d of %d", next, len(spooled))
	}
	for _, d := range []string{"queue", "running", "outbox", streamDir} {
		dirEmpty(t, filepath.Join(f.stateDir, d))
	}
}
