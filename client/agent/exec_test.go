package agent

import (
	"context"
	"github.com/scirectl/scirectl/internal/testtool"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/runoutput"
)

func sh(t *testing.T, script string, mod ...func(*command)) result {
	t.Helper()
	c := command{Interpreter: "/bin/sh", Script: script, Dir: filepath.Join(t.TempDir(), "work"), OutputLimit: 1 << 20}
	for _, m := range mod {
		m(&c)
	}
	return runCommand(context.Background(), c)
}

func wantExit(t *testing.T, r result, state jobxml.State, code int) {
	t.Helper()
	if r.State != state || r.Exit == nil || *r.Exit != code || r.Reason != "" {
		t.Fatalf("result = state %s exit %v reason %q output %q; want %s with exit %d", r.State, ptr(r.Exit), r.Reason, r.Output, state, code)
	}
}

func ptr(p *int) string {
	if p == nil {
		return "nil"
	}
	return strconv.Itoa(*p)
}

func TestExecExitCodes(t *testing.T) {
	wantExit(t, sh(t, "true"), jobxml.StateSucceeded, 0)
	wantExit(t, sh(t, "exit 3"), jobxml.StateFailed, 3)
	wantExit(t, sh(t, "exit 255"), jobxml.StateFailed, 255)
	r := sh(t, "sleep 0.01")
	if r.Started.IsZero() || r.Finished.Before(r.Started) {
		t.Fatalf("times: started %v finished %v", r.Started, r.Finished)
	}
}

func TestExecOutputMergedInOrder(t *testing.T) {
	r := sh(t, "echo one; echo two >&2; echo three")
	wantExit(t, r, jobxml.StateSucceeded, 0)
	if r.Output != "one\ntwo\nthree\n" || r.Truncated {
		t.Fatalf("output %q truncated %v", r.Output, r.Truncated)
	}
}

func TestExecStdinIsEmpty(t *testing.T) {
	// A script reading stdin must see EOF at once, not hang or read itself.
	r := sh(t, "n=$(cat | wc -c); echo \"stdin=$n\"")
	if strings.TrimSpace(r.Output) != "stdin=0" {
		t.Fatalf("output %q", r.Output)
	}
}

func TestExecScriptFileAndEnv(t *testing.T) {
	r := sh(t, `stat -c %a "$0"; pwd; echo "$SCIRE_TEST_VAR"`, func(c *command) {
		c.Env = append(os.Environ(), "SCIRE_TEST_VAR=hello")
	})
	lines := strings.Split(strings.TrimSpace(r.Output), "\n")
	if len(lines) != 3 || lines[0] != "700" || filepath.Base(lines[1]) != "work" || lines[2] != "hello" {
		t.Fatalf("output %q: want script mode 700, cwd .../work, env passed", r.Output)
	}
}

func TestExecTruncation(t *testing.T) {
	lim := func(n int) func(*command) { return func(c *command) { c.OutputLimit = n } }
	// Beyond the limit: the first and the last half, one marker line
	// between them.
	r := sh(t, "head -c 2500 /dev/zero | tr '\\0' x; head -c 2500 /dev/zero | tr '\\0' y", lim(100))
	want := strings.Repeat("x", 50) + "\n[... 4900 bytes omitted ...]\n" + strings.Repeat("y", 50)
	if r.Output != want || !r.Truncated {
		t.Fatalf("output %q truncated %v, want %q", r.Output, r.Truncated, want)
	}
	if k := runoutput.Parse(r.Output); k.Size() != 5000 || k.Omitted != 4900 {
		t.Fatalf("parsed back: %+v", k)
	}
	// Exactly at the limit is not truncated.
	r = sh(t, "printf 1234567890", lim(10))
	if r.Output != "1234567890" || r.Truncated {
		t.Fatalf("at the limit: %q truncated %v", r.Output, r.Truncated)
	}
	// A multi-byte character cut by either half is dropped whole.
	r = sh(t, "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'é'; done", lim(7))
	if want := runoutput.Bound(strings.Repeat("é", 10), 7); r.Output != want.String() || !r.Truncated ||
		want.Head != "é" || want.Tail != "é" {
		t.Fatalf("cut character: %q truncated %v, want %q", r.Output, r.Truncated, want.String())
	}
	// Output beyond the limit is still drained: a chatty script finishes.
	r = sh(t, "head -c 3000000 /dev/zero; echo; echo last; exit 4", lim(10))
	wantExit(t, r, jobxml.StateFailed, 4)
	if !r.Truncated || !strings.HasSuffix(r.Output, "last\n") || len(r.Output) > 10*3+40 {
		t.Fatalf("len %d truncated %v: %q", len(r.Output), r.Truncated, r.Output)
	}
}

func TestExecSanitizesOutput(t *testing.T) {
	r := sh(t, `printf 'a\001b\377c\033[0m\000d\n'`)
	wantExit(t, r, jobxml.StateSucceeded, 0)
	if !utf8.ValidString(r.Output) {
		t.Fatalf("output %q is not valid UTF-8", r.Output)
	}
	for _, c := range r.Output {
		if c < 0x20 && c != '\n' && c != '\t' && c != '\r' {
			t.Fatalf("output %q keeps control character %U", r.Output, c)
		}
	}
	for _, want := range []string{"a", "b", "c", "[0m", "d\n"} {
		if !strings.Contains(r.Output, want) {
			t.Fatalf("output %q lost %q", r.Output, want)
		}
	}
}

func TestExecStartFailure(t *testing.T) {
	for _, interp := range []string{"/nonexistent/interpreter", "no-such-interpreter-in-path", "  "} {
		r := sh(t, "true", func(c *command) { c.Interpreter = interp })
		if r.State != jobxml.StateFailed || r.Reason != ReasonStartFailed || r.Exit != nil || r.Output == "" {
			t.Fatalf("interpreter %q: %+v", interp, r)
		}
	}
	r := sh(t, "true", func(c *command) { c.Interpreter = "/nonexistent/interpreter" })
	if !strings.Contains(r.Output, "/nonexistent/interpreter") {
		t.Fatalf("start failure output %q does not name the interpreter", r.Output)
	}
	// An interpreter with arguments.
	wantExit(t, sh(t, "exit 7", func(c *command) { c.Interpreter = "/bin/sh -e" }), jobxml.StateFailed, 7)
}

func TestExecKilledBySignal(t *testing.T) {
	r := sh(t, "echo before; kill -9 $$; echo after")
	if r.State != jobxml.StateFailed || r.Reason != ReasonKilled || r.Exit != nil || r.Output != "before\n" {
		t.Fatalf("%+v", r)
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	// The script's child shell starts a grandchild in the background and
	// waits on another; the timeout must kill all of them.
	start := time.Now()
	r := sh(t, `sh -c 'sleep 100 & echo $!; sleep 100'`, func(c *command) { c.Timeout = 300 * time.Millisecond })
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("run took %v: the timeout did not end it", took)
	}
	if r.State != jobxml.StateFailed || r.Reason != ReasonTimeout || r.Exit != nil {
		t.Fatalf("%+v, want failed with reason timeout and no exit code", r)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(r.Output))
	if err != nil {
		t.Fatalf("output %q: want the grandchild's pid", r.Output)
	}
	testtool.WaitGone(t, pid)
}

func TestExecCancelInterrupts(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := runCommand(ctx, command{Interpreter: "/bin/sh", Script: "echo $$; sleep 100", Dir: t.TempDir(), OutputLimit: 100})
	if r.State != jobxml.StateFailed || r.Reason != ReasonInterrupted || r.Exit != nil {
		t.Fatalf("%+v, want failed with reason interrupted", r)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(r.Output))
	if err != nil {
		t.Fatalf("output %q", r.Output)
	}
	testtool.WaitGone(t, pid)
}

func TestExecBackgroundLeftoverDoesNotHang(t *testing.T) {
	t.Parallel()
	// A script that leaves a process behind holding its output pipe: the
	// agent reports the script's own exit once waitDelay has passed, and does
	// not kill the leftover (a job may start a service on purpose).
	start := time.Now()
	r := sh(t, "sleep 60 & echo $!; exit 0")
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("run took %v", took)
	}
	wantExit(t, r, jobxml.StateSucceeded, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(r.Output))
	if err != nil {
		t.Fatalf("output %q", r.Output)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	if testtool.ProcessGone(pid) {
		t.Fatal("the background process was killed although the script exited normally")
	}
}

func TestTrimPartialRune(t *testing.T) {
	for in, want := range map[string]string{
		"abc": "abc", "ab\xc3": "ab", "a€": "a€", "a\xe2\x82": "a", "\xf0\x9f\x98": "", "": "", "é": "é",
	} {
		if got := string(trimPartialRune([]byte(in))); got != want {
			t.Errorf("trimPartialRune(%q) = %q, want %q", in, got, want)
		}
	}
}
