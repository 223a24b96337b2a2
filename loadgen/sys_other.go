//go:build !linux

package loadgen

import (
	"os"
	"os/exec"
	"time"
)

// Process figures are read from Linux's /proc and getrusage; elsewhere
// they are reported as unknown.
type selfMeter struct{}

func (selfMeter) sample() (time.Duration, int64, bool) { return 0, 0, false }

type procMeter struct{ pid int }

func (procMeter) sample() (time.Duration, int64, bool) { return 0, 0, false }

func childAttrs(*exec.Cmd) {}

func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }
