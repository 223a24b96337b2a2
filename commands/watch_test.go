package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/xmlrpc"
)

// serverWithClient starts a server that knows one accepted client, web1,
// with no agent behind it: its runs stay pending until cancelled.
func serverWithClient(t *testing.T) []string {
	t.Helper()
	dir, conn := startServer(t)
	withStore(t, dir, func(s db.Store) {
		if _, err := s.RegisterClient(context.Background(), db.ClientRegistration{Fingerprint: "fp-web1", Name: "web1", OS: "linux", Arch: "amd64", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	})
	if _, errOut, code := run(t, "", append([]string{"client", "accept", "web1"}, conn...)...); code != 0 {
		t.Fatalf("client accept: exit %d: %s", code, errOut)
	}
	return conn
}

func TestSubmitQuietAndWaitTimeout(t *testing.T) {
	conn := serverWithClient(t)
	submit := func(extra ...string) (string, string, int) {
		return run(t, "", append(append([]string{"job", "submit", "--target", "web1", "-c", "true"}, extra...), conn...)...)
	}
	out, errOut, code := submit("-q")
	if code != 0 || out != "1\n" || errOut != "" {
		t.Fatalf("submit -q: exit %d, out %q, err %q; want just the id", code, out, errOut)
	}
	out, errOut, code = submit("-q", "--wait", "--wait-timeout", "300ms", "--wait-interval", "50ms")
	if code != ExitWaitTimeout || out != "2\n" || !strings.Contains(errOut, "--wait-timeout") {
		t.Fatalf("submit -q --wait past its timeout: exit %d, out %q, err %q; want %d, the id, a message", code, out, errOut, ExitWaitTimeout)
	}
	out, errOut, code = submit("--wait", "--wait-timeout", "400ms", "--wait-interval", "50ms")
	if code != ExitWaitTimeout {
		t.Fatalf("submit --wait past its timeout: exit %d, want %d: %s", code, ExitWaitTimeout, errOut)
	}
	// In a pipe: a line per change, so one line for a job that never moves.
	if n := strings.Count(errOut, "job 3: 0/1 done, 0 failed, 0 denied"); n != 1 || strings.Contains(errOut, "\r") {
		t.Errorf("progress in a pipe should be one plain line per change, got %d lines:\n%q", n, errOut)
	}
	if !strings.Contains(out, "pending") {
		t.Errorf("a wait that timed out should print the runs as they are:\n%s", out)
	}
	// The job goes on after the timeout.
	out, _, _ = run(t, "", append([]string{"job", "status", "3", "-o", "json"}, conn...)...)
	if !strings.Contains(out, `"status": "pending"`) {
		t.Errorf("job 3 after --wait-timeout:\n%s", out)
	}

	// --watch follows a job to its end; cancelling it ends the watch
	// with exit code 5.
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		o, e, c := run(t, "", append([]string{"job", "status", "1", "--watch", "--wait-interval", "50ms"}, conn...)...)
		done <- result{o, e, c}
	}()
	time.Sleep(300 * time.Millisecond)
	if _, errOut, code := run(t, "", append([]string{"job", "cancel", "1"}, conn...)...); code != 0 {
		t.Fatalf("job cancel: exit %d: %s", code, errOut)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("job status --watch did not end after the job was cancelled")
	}
	if r.code != ExitJobGaveUp {
		t.Errorf("watch of a cancelled job: exit %d, want %d: %s", r.code, ExitJobGaveUp, r.errOut)
	}
	for _, want := range []string{"job 1: 0/1 done, 0 failed, 0 denied, ", "job 1: 1/1 done, 0 failed, 0 denied, 1 cancelled, ", "cancelled"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("watch output lacks %q:\n%s", want, r.out)
		}
	}
}

// ptyOutput collects what a command writes to a pseudo-terminal.
type ptyOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (p *ptyOutput) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// openPTY opens a pseudo-terminal 100 columns wide; the command writes to
// tty, the test reads what it wrote.
func openPTY(t *testing.T) (tty *os.File, out *ptyOutput) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	out = &ptyOutput{}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			out.mu.Lock()
			out.buf.Write(b[:n])
			out.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptmx.Close(); <-readDone })
	return tty, out
}

// waitFor polls until cond holds, or fails the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatchProgressOnTerminal runs job status --watch with a pseudo-
// terminal as its output: the progress is one line rewritten in place with
// \r, Ctrl-C stops the watch with exit code 130 and leaves the job alone.
func TestWatchProgressOnTerminal(t *testing.T) {
	conn := serverWithClient(t)
	for range 2 {
		if _, errOut, code := run(t, "", append([]string{"job", "submit", "-q", "--target", "web1", "-c", "true"}, conn...)...); code != 0 {
			t.Fatalf("submit: %s", errOut)
		}
	}
	watch := func(tty *os.File, id string) chan int {
		done := make(chan int, 1)
		go func() {
			done <- Execute(&IOStreams{In: strings.NewReader(""), Out: tty, ErrOut: tty},
				append([]string{"job", "status", id, "--watch", "--wait-interval", "50ms"}, conn...))
		}()
		return done
	}

	// Job 1: watched until it is cancelled.
	tty, out := openPTY(t)
	done := watch(tty, "1")
	rewrite := "\rjob 1: 0/1 done, 0 failed, 0 denied, "
	waitFor(t, "two rewrites of the progress line", func() bool { return strings.Count(out.String(), rewrite) >= 2 })
	if _, errOut, code := run(t, "", append([]string{"job", "cancel", "1"}, conn...)...); code != 0 {
		t.Fatalf("job cancel: %s", errOut)
	}
	code := <-done
	waitFor(t, "the final table", func() bool { return strings.Contains(out.String(), "RUN") })
	got := out.String()
	if code != ExitJobGaveUp {
		t.Errorf("exit %d, want %d; terminal got %q", code, ExitJobGaveUp, got)
	}
	if strings.Contains(got, "\njob 1: 0/1") || !strings.Contains(got, "\x1b[K") {
		t.Errorf("progress on a terminal should rewrite one line (\\r … ESC[K), got %q", got)
	}
	if !strings.Contains(got, "\rjob 1: 1/1 done, 0 failed, 0 denied, 1 cancelled, ") {
		t.Errorf("the last progress line should show the cancelled run: %q", got)
	}

	// Job 2: Ctrl-C stops watching, the job goes on.
	tty, out = openPTY(t)
	done = watch(tty, "2")
	waitFor(t, "the progress line", func() bool { return strings.Contains(out.String(), "\rjob 2: 0/1 done") })
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not stop job status --watch")
	}
	if code != ExitInterrupted {
		t.Errorf("watch stopped by SIGINT: exit %d, want %d; terminal got %q", code, ExitInterrupted, out.String())
	}
	waitFor(t, "the message", func() bool { return strings.Contains(out.String(), "stopped watching; job 2 goes on") })
	js, _, _ := run(t, "", append([]string{"job", "status", "2", "-o", "json"}, conn...)...)
	var j struct{ Status string }
	if err := json.Unmarshal([]byte(js), &j); err != nil || j.Status != "pending" {
		t.Errorf("job 2 after Ctrl-C on its watch: %q (%v), want pending", js, err)
	}
}

// TestSubmitWaitOutcomes checks the exit code of --wait for each outcome,
// and the line-per-change progress in a pipe, against canned replies.
func TestSubmitWaitOutcomes(t *testing.T) {
	for _, c := range []struct {
		counts map[string]int
		want   int
	}{
		{map[string]int{"succeeded": 2}, ExitOK},
		{map[string]int{"succeeded": 1, "failed": 1}, ExitJobFailed},
		{map[string]int{"denied": 1, "expired": 1}, ExitJobDenied},
		{map[string]int{"succeeded": 1, "expired": 1}, ExitJobGaveUp},
		{map[string]int{"cancelled": 2}, ExitJobGaveUp},
	} {
		var mu sync.Mutex
		gets := 0
		_, conn := startFake(t, map[string]func(xmlrpc.Params) any{
			"job.submit": fixed(api.SubmitResult{ID: "9", Runs: 2}),
			"job.get": func(xmlrpc.Params) any {
				mu.Lock()
				defer mu.Unlock()
				gets++
				j := api.Job{ID: "9", Name: "x", Status: "running", CreatedAt: time.Now(), Targets: []string{"a", "b"}}
				switch gets {
				case 1, 2:
					j.Counts = map[string]int{"pending": 2}
				case 3:
					j.Counts = map[string]int{"running": 1, "pending": 1}
				default:
					j.Counts = c.counts
				}
				return j
			},
		})
		out, errOut, code := run(t, "", append([]string{"job", "submit", "-t", "a,b", "-c", "true", "--wait", "--wait-interval", "10ms"}, conn...)...)
		if code != c.want {
			t.Errorf("%v: exit %d, want %d\n%s%s", c.counts, code, c.want, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "job 9: 0/2 done, 0 failed, 0 denied, ") ||
			!strings.HasPrefix(lines[2], "job 9: 2/2 done, ") {
			t.Errorf("%v: progress in a pipe should be a line per change:\n%s", c.counts, errOut)
		}
	}
}

// TestProgressSummaryRollout checks the progress line of a rollout: the
// runs out against its window, the failures against its budget, and a
// paused or halted job said so; a job without a rollout reads as before.
func TestProgressSummaryRollout(t *testing.T) {
	for _, c := range []struct {
		job  api.Job
		done bool
		want string
	}{
		{api.Job{Counts: map[string]int{"succeeded": 2, "failed": 1, "running": 1, "pending": 6}},
			false, "3/10 done, 1 failed, 0 denied"},
		{api.Job{Counts: map[string]int{"succeeded": 2, "failed": 1, "running": 1, "sent": 1, "pending": 5}, MaxParallel: ptr(3), MaxFailures: ptr(2)},
			false, "3/10 done, 2/3 out, 1/2 failures, 0 denied"},
		{api.Job{Counts: map[string]int{"received": 3, "pending": 7}, MaxParallel: ptr(3)},
			false, "0/10 done, 3/3 out, 0 failed, 0 denied"},
		{api.Job{Counts: map[string]int{"succeeded": 2, "running": 1, "pending": 7}, MaxFailures: ptr(0), Paused: true},
			false, "2/10 done, 0/0 failures, 0 denied, paused"},
		{api.Job{Counts: map[string]int{"succeeded": 4, "failed": 3, "skipped": 3}, MaxParallel: ptr(4), MaxFailures: ptr(2),
			Halted: true, Paused: true, HaltReason: "failure budget exceeded: 3 of 10 failed"},
			true, "10/10 done, 0/4 out, 3/2 failures, 0 denied, 3 skipped, halted (failure budget exceeded: 3 of 10 failed)"},
		{api.Job{Counts: map[string]int{"succeeded": 0, "failed": 1, "skipped": 9}, Canary: 1, Halted: true},
			true, "10/10 done, 1 failed, 0 denied, 9 skipped, halted"},
	} {
		done, got := progressSummary(c.job)
		if done != c.done || got != c.want {
			t.Errorf("progressSummary(%v) = %v, %q; want %v, %q", c.job.Counts, done, got, c.done, c.want)
		}
	}
}

// TestWaitRolloutProgress follows a rollout with --wait in a pipe: a line
// per change, each with the runs out and the failures against the budget,
// the last one saying the job halted.
func TestWaitRolloutProgress(t *testing.T) {
	var mu sync.Mutex
	gets := 0
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{
		"job.submit": fixed(api.SubmitResult{ID: "7", Runs: 10}),
		"job.get": func(xmlrpc.Params) any {
			mu.Lock()
			defer mu.Unlock()
			gets++
			j := api.Job{ID: "7", Name: "x", Status: "running", CreatedAt: time.Now(), MaxParallel: ptr(3), MaxFailures: ptr(2),
				SuccessThreshold: 100}
			switch gets {
			case 1:
				j.Counts = map[string]int{"sent": 3, "pending": 7}
			case 2:
				j.Counts = map[string]int{"succeeded": 2, "failed": 1, "running": 2, "pending": 5}
			default:
				j.Status, j.Halted, j.HaltReason = "failed", true, "failure budget exceeded: 3 of 10 failed"
				j.Counts = map[string]int{"succeeded": 4, "failed": 3, "skipped": 3}
			}
			return j
		},
	})
	out, errOut, code := runFake(t, fake, "", "job", "submit", "-g", "web", "-c", "true", "--max-parallel", "3", "--max-failures", "2",
		"--wait", "--wait-interval", "1ms")
	if code != ExitJobFailed {
		t.Errorf("exit %d, want %d\n%s%s", code, ExitJobFailed, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{
		"job 7 submitted (10 runs), waiting…",
		"job 7: 0/10 done, 3/3 out, 0/2 failures, 0 denied, ",
		"job 7: 3/10 done, 2/3 out, 1/2 failures, 0 denied, ",
		"job 7: 10/10 done, 0/3 out, 3/2 failures, 0 denied, 3 skipped, halted (failure budget exceeded: 3 of 10 failed), ",
	}
	if len(lines) != len(want) {
		t.Fatalf("progress in a pipe should be a line per change, got:\n%s", errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("progress line %d = %q, want it to start %q", i, lines[i], w)
		}
	}
	if !strings.Contains(out, "halted:    failure budget exceeded: 3 of 10 failed") {
		t.Errorf("the final job should say it halted:\n%s", out)
	}
}
