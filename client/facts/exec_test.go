package facts

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
)

// The tests that run executables do not run in parallel: a file being
// written while another test forks can make its exec fail with "text file
// busy".

// executable writes an executable script into the state directory's
// facts.d.
func executable(t *testing.T, o Options, name, script string) string {
	t.Helper()
	p := factsFile(t, o, name, "#!/bin/sh\n"+script)
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecutable(t *testing.T) {
	o := fakeMachine(t)
	factsFile(t, o, "10-site.facts", "role=web\ndc=fra\n")
	p := executable(t, o, "20-probe", `
echo "# probed"
echo "role=db"
echo "gpu=nvidia-a100"
echo "dir=$(basename "$PWD")"
read line && echo "stdin=not-empty"
echo "broken line"
echo "warning" >&2
`)
	factsFile(t, o, "30-local.facts", "dc=ams\n")
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps, p+` (output):5: missing '=': write KEY=VALUE`)
	want := wantBuiltins()
	want["role"] = "db" // the executable over 10-site.facts
	want["dc"] = "ams"  // 30-local.facts over 10-site.facts
	want["gpu"] = "nvidia-a100"
	want["dir"] = "facts.d" // run in facts.d
	wantFacts(t, f, want)
}

// TestRelativeStateDir: facts.d's executables run from a relative state
// directory too, and problems name its files by absolute paths.
func TestRelativeStateDir(t *testing.T) {
	o := fakeMachine(t)
	t.Chdir(filepath.Dir(o.StateDir))
	o.StateDir = filepath.Base(o.StateDir)
	executable(t, o, "probe", "echo a=1\n")
	factsFile(t, o, "bad.facts", "bad\n")
	abs, err := filepath.Abs(filepath.Join(o.StateDir, "facts.d", "bad.facts"))
	if err != nil {
		t.Fatal(err)
	}
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps, abs+`:1: missing '=': write KEY=VALUE`)
	want := wantBuiltins()
	want["a"] = "1"
	wantFacts(t, f, want)
}

// TestExecutableFails: an executable that fails, cannot start or prints
// too much gives no facts; the others are unaffected.
func TestExecutableFails(t *testing.T) {
	o := fakeMachine(t)
	failing := executable(t, o, "failing", "echo a=1\necho 'cannot reach the BMC' >&2\nexit 3\n")
	garbage := factsFile(t, o, "garbage", "\x7fELF not really")
	if err := os.Chmod(garbage, 0o755); err != nil {
		t.Fatal(err)
	}
	loud := executable(t, o, "loud", `i=0; while [ $i -lt 7000 ]; do echo "key$i=0123456789"; i=$((i+1)); done`)
	executable(t, o, "ok", "echo b=2\n")
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		failing+`: exit status 3: no facts read; stderr: "cannot reach the BMC"`,
		garbage+`: cannot run: fork/exec: exec format error`,
		loud+`: printed more than 65536 bytes: no facts read`,
	)
	want := wantBuiltins()
	want["b"] = "2"
	wantFacts(t, f, want)
}

// TestExecutableSlow: an executable past its time is killed with its
// children, gives no facts, and does not hold up the others.
func TestExecutableSlow(t *testing.T) {
	o := fakeMachine(t)
	o.ExecTimeout = 300 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	slow := executable(t, o, "slow", `
sleep 60 &
echo $! > `+pidFile+`
echo a=1
sleep 60
`)
	executable(t, o, "fast", "echo b=2\n")
	start := time.Now()
	f, ps := Collect(context.Background(), o)
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Collect took %v: the slow executable was not stopped", d)
	}
	wantProblems(t, ps, slow+`: still running after 300ms: killed with its process group, no facts read`)
	want := wantBuiltins()
	want["b"] = "2"
	wantFacts(t, f, want)
	testtool.WaitGone(t, readPid(t, pidFile))
}

// TestExecutableInterrupted: cancelling Collect's context stops the
// executables.
func TestExecutableInterrupted(t *testing.T) {
	o := fakeMachine(t)
	slow := executable(t, o, "slow", "echo a=1\nexec sleep 60\n")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	f, ps := Collect(ctx, o)
	wantProblems(t, ps, slow+`: interrupted (context canceled): no facts read`)
	wantFacts(t, f, wantBuiltins())
}

// TestExecutableLeavesChild: an executable that exits 0 but leaves a
// process holding its output gives what it printed, after a short wait.
func TestExecutableLeavesChild(t *testing.T) {
	o := fakeMachine(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	executable(t, o, "daemon", "sleep 60 &\necho $! > "+pidFile+"\necho a=1\n")
	f, ps := Collect(context.Background(), o)
	pid := readPid(t, pidFile)
	defer syscall.Kill(pid, syscall.SIGKILL)
	wantNoProblems(t, ps)
	want := wantBuiltins()
	want["a"] = "1"
	wantFacts(t, f, want)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
