//go:build !linux

package loadgen

import (
	"os"
	"os/exec"
)

// Process figures are read from Linux's /proc and getrusage; elsewhere
// they are reported as unknown.
type selfMeter struct{}

func (selfMeter) sample() (usage, bool) { return usage{}, false }
func (selfMeter) resetPeak() bool       { return false }

type procMeter struct{ pid int }

func (procMeter) sample() (usage, bool) { return usage{}, false }
func (procMeter) resetPeak() bool       { return false }

// ensureOpenFiles leaves the limit to the system.
func ensureOpenFiles(int, string) error { return nil }

func childAttrs(*exec.Cmd) {}

func interrupt(p *os.Process) error { return p.Signal(os.Interrupt) }
