package loadgen

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfMeter measures this process (an in-process server and the load
// generator together).
type selfMeter struct{}

func (selfMeter) sample() (time.Duration, int64, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, false
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return cpu, ru.Maxrss * 1024, true // ru_maxrss is in KiB on Linux
}

// procMeter measures another process through /proc: utime+stime from
// /proc/PID/stat, the peak resident set (VmHWM) from /proc/PID/status.
type procMeter struct{ pid int }

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture (the kernel fixes what it exports to user space).
const clockTicks = 100

func (m procMeter) sample() (time.Duration, int64, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(m.pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are positional: state is field 3, utime 14, stime 15.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	cpu := time.Duration(ut+st) * time.Second / clockTicks
	status, err := os.ReadFile("/proc/" + strconv.Itoa(m.pid) + "/status")
	if err != nil {
		return 0, 0, false
	}
	var hwm int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, 0, false
			}
			hwm = kb * 1024
		}
	}
	return cpu, hwm, hwm > 0
}

// childAttrs makes the spawned server die with the bench, even if the
// bench is killed.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// interrupt asks the server to stop gracefully.
func interrupt(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
