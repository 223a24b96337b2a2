package facts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// execWaitDelay bounds how long an executable that has exited, or been
// killed, may hold its output open through a process it left behind.
const execWaitDelay = time.Second

// maxStderr is how much of a failing executable's stderr is kept to
// explain the failure.
const maxStderr = 4 << 10

// boundedBuffer keeps the first limit bytes written to it and notes that
// there were more, taking them all, so that a chatty process is neither
// blocked nor kept in memory.
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.over = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// runFactsExec runs an executable of facts.d and reads the facts it
// prints. It runs in its own process group, which is killed when timeout
// passes or ctx is cancelled: its children cannot outlive it there. One
// that does not exit 0 in time, or prints more than maxSourceBytes, gives
// no facts: its output may be incomplete.
func runFactsExec(ctx context.Context, path, dir string, timeout time.Duration) sourceFacts {
	fail := func(err error) sourceFacts {
		s := sourceFacts{source: path}
		s.problem(0, "", err)
		return s
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, path)
	cmd.Dir = dir
	stdout := &boundedBuffer{limit: maxSourceBytes}
	stderr := &boundedBuffer{limit: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Setpgid made the group id equal to the pid.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = execWaitDelay
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
		// It exited 0 and left a process holding its output: what it
		// printed itself is all there.
		err = nil
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return fail(fmt.Errorf("interrupted (%v): no facts read", context.Cause(ctx)))
	case cmd.ProcessState == nil: // it did not start
		return fail(fmt.Errorf("cannot run: %w", unwrapPath(err)))
	case runCtx.Err() != nil:
		return fail(fmt.Errorf("still running after %v: killed with its process group, no facts read", timeout))
	default:
		msg := fmt.Sprintf("%v: no facts read", err)
		if line := firstLine(stderr.buf.Bytes()); line != "" {
			msg += "; stderr: " + line
		}
		return fail(errors.New(msg))
	}
	if stdout.over {
		return fail(fmt.Errorf("printed more than %d bytes: no facts read", maxSourceBytes))
	}
	return parseLines(path+" (output)", stdout.buf.Bytes())
}

// firstLine is the first non-blank line of b, quoted, and shortened to
// 200 bytes: enough to say why a program failed.
func firstLine(b []byte) string {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(line) > 200 {
			cut := 200
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			line = line[:cut] + "…"
		}
		return fmt.Sprintf("%q", line)
	}
	return ""
}
