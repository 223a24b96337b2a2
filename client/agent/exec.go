package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/scirectl/scirectl/jobxml"
)

// Reasons given with a failed status when the script's exit code does not
// tell the story.
const (
	ReasonTimeout     = "timeout"      // ran past the job's timeout; its process group was killed
	ReasonKilled      = "killed"       // died of a signal nobody in the agent sent
	ReasonStartFailed = "start-failed" // could not be started (interpreter missing, …); the error is the output
	ReasonInterrupted = "interrupted"  // the agent stopped or died while it ran; not run again
	ReasonBadDocument = "bad-document" // the job document could not be decoded
	ReasonCancelled   = "cancelled"    // the operator cancelled it while it ran; its output until then is reported, the server keeps the run cancelled
)

// waitDelay bounds how long a finished script's leftovers may hold its
// output pipe open. A script that starts a background process (a daemon, or
// `sleep 100 &`) hands it the pipe; without this the agent would wait for
// that process instead of the script.
const waitDelay = 2 * time.Second

// command is one script to run.
type command struct {
	Interpreter string        // program, with optional arguments ("/usr/bin/env python3")
	Script      string        // written to a file in Dir, passed as the last argument
	Dir         string        // working directory, created and left for the caller to remove
	Env         []string      // nil: the agent's environment
	Timeout     time.Duration // 0: none
	OutputLimit int           // bytes of output kept: the first and the last half (runoutput.Bound)
	// Spool, when not nil, receives the output as it is read (output.go),
	// for the sender to stream and for recovery after a crash.
	Spool *spool
	// Stop, when closed, stops the script the way an operator's cancel
	// does (see stopOnClose): SIGTERM to its process group, then SIGKILL.
	Stop <-chan struct{}
}

// result is how a script ended, ready for a status report.
type result struct {
	State             jobxml.State
	Exit              *int
	Reason            string
	Output            string
	Truncated         bool
	Started, Finished time.Time
	SpoolErr          error // why the spool ended early, if it did
}

// runCommand runs c.Script with c.Interpreter and waits for it.
//
// The script goes to a file (mode 0700) rather than to the interpreter's
// stdin so that the script itself can read stdin — it gets /dev/null — and
// so that interpreters which insist on a file work. The process gets its own
// process group: on timeout, or when ctx is cancelled (the agent stops), the
// whole group gets SIGKILL, so children and grandchildren cannot outlive the
// job and keep running unreported. A script that exits normally is not
// chased: what it left in the background it left on purpose.
//
// stdout and stderr share one writer (outputWriter), so the output reads in
// the order it was written. It is made valid UTF-8 and XML-safe as it is
// read, spooled to c.Spool, and bounded in memory to its first and last
// OutputLimit/2 bytes: the report carries them with a marker line for what
// is between (runoutput.Kept.String).
func runCommand(ctx context.Context, c command) result {
	res := result{Started: time.Now().UTC()}
	startFailed := func(err error) result {
		res.State, res.Reason, res.Finished = jobxml.StateFailed, ReasonStartFailed, time.Now().UTC()
		res.Output = jobxml.Sanitize(err.Error())
		return res
	}
	argv := strings.Fields(c.Interpreter)
	if len(argv) == 0 {
		return startFailed(errors.New("the job names no interpreter"))
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return startFailed(fmt.Errorf("working directory: %w", err))
	}
	script, err := writeScript(c.Dir, c.Script)
	if err != nil {
		return startFailed(err)
	}

	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if c.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	defer cancel()
	cmd := exec.CommandContext(runCtx, argv[0], append(argv[1:], script)...)
	cmd.Dir = c.Dir
	cmd.Env = c.Env
	out := newOutputWriter(c.OutputLimit, c.Spool)
	cmd.Stdout, cmd.Stderr = out, out // the same writer: one pipe, one order
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Setpgid made the group id equal to the pid.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil { // the agent is stopping: nothing ran
			res = startFailed(err)
			res.Reason = ReasonInterrupted
			return res
		}
		return startFailed(err)
	}
	res.Started = time.Now().UTC()
	stopWatch := stopOnClose(c.Stop, cmd.Process.Pid)
	waitErr := cmd.Wait()
	stopped := stopWatch()
	res.Finished = time.Now().UTC()
	kept := out.finish()
	res.Output, res.Truncated, res.SpoolErr = kept.String(), kept.Truncated(), out.spoolError()

	ps := cmd.ProcessState
	if ps == nil { // Wait failed before the process was reaped: should not happen
		res.State, res.Reason = jobxml.StateFailed, ReasonKilled
		res.Output += jobxml.Sanitize(fmt.Sprintf("\n[scirectl agent: wait: %v]", waitErr))
		return res
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case stopped:
		res.State, res.Reason = jobxml.StateFailed, ReasonCancelled
	case ws.Exited():
		code := ws.ExitStatus()
		res.Exit = &code
		res.State = jobxml.StateSucceeded
		if code != 0 {
			res.State = jobxml.StateFailed
		}
	case ctx.Err() != nil:
		res.State, res.Reason = jobxml.StateFailed, ReasonInterrupted
	case runCtx.Err() != nil:
		res.State, res.Reason = jobxml.StateFailed, ReasonTimeout
	default:
		res.State, res.Reason = jobxml.StateFailed, ReasonKilled
	}
	return res
}

// writeScript writes the script to a private executable file in dir.
func writeScript(dir, script string) (string, error) {
	f, err := os.CreateTemp(dir, "script-*")
	if err != nil {
		return "", fmt.Errorf("write script: %w", err)
	}
	p := f.Name()
	if err := f.Chmod(0o700); err != nil {
		f.Close()
		return "", fmt.Errorf("write script: %w", err)
	}
	if _, err := f.WriteString(script); err != nil {
		f.Close()
		return "", fmt.Errorf("write script: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write script: %w", err)
	}
	return filepath.Abs(p)
}
