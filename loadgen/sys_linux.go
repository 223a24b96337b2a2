package loadgen

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfMeter measures this process (an in-process server and the load
// generator together, or the load generator alone).
type selfMeter struct{}

func (selfMeter) sample() (usage, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, false
	}
	u := usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), peak: ru.Maxrss * 1024} // ru_maxrss is in KiB on Linux
	if hwm, rss, ok := memStatus("/proc/self/status"); ok {
		u.peak, u.rss = hwm, rss // VmHWM follows a reset, ru_maxrss does not
	}
	return u, true
}

func (selfMeter) resetPeak() bool { return resetPeak("/proc/self/clear_refs") }

// procMeter measures another process through /proc: utime+stime from
// /proc/PID/stat, the peak and current resident set (VmHWM, VmRSS) from
// /proc/PID/status.
type procMeter struct{ pid int }

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture (the kernel fixes what it exports to user space).
const clockTicks = 100

func (m procMeter) sample() (usage, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(m.pid) + "/stat")
	if err != nil {
		return usage{}, false
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are positional: state is field 3, utime 14, stime 15.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return usage{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return usage{}, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return usage{}, false
	}
	hwm, rss, ok := memStatus("/proc/" + strconv.Itoa(m.pid) + "/status")
	if !ok {
		return usage{}, false
	}
	return usage{cpu: time.Duration(ut+st) * time.Second / clockTicks, peak: hwm, rss: rss}, true
}

func (m procMeter) resetPeak() bool { return resetPeak("/proc/" + strconv.Itoa(m.pid) + "/clear_refs") }

// memStatus reads VmHWM and VmRSS, in bytes, from a /proc status file.
func memStatus(path string) (hwm, rss int64, ok bool) {
	status, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	kib := func(v string) (int64, bool) {
		n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		return n * 1024, err == nil
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, found := strings.CutPrefix(line, "VmHWM:"); found {
			if hwm, ok = kib(v); !ok {
				return 0, 0, false
			}
		} else if v, found := strings.CutPrefix(line, "VmRSS:"); found {
			if rss, ok = kib(v); !ok {
				return 0, 0, false
			}
		}
	}
	return hwm, rss, hwm > 0 && rss > 0
}

// resetPeak sets a process's VmHWM back to its current resident set
// (proc(5): writing 5 to clear_refs), so that the peak of the measurement
// can be told from that of the setup.
func resetPeak(path string) bool {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	_, err = f.WriteString("5")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil
}

// ensureOpenFiles makes sure this process may hold n open files, raising
// the soft RLIMIT_NOFILE up to the hard limit if needed. A child started
// afterwards inherits the raised limit (and a Go server raises its own to
// the hard limit anyway); a hard limit below n is an error that says so.
func ensureOpenFiles(n int, what string) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: let the run tell
	}
	if lim.Cur >= uint64(n) {
		return nil
	}
	if lim.Max < uint64(n) {
		return fmt.Errorf("%s need about %d open files, but the hard limit (ulimit -Hn) is %d: raise it (limits.conf, LimitNOFILE= or ulimit -n as root) or use fewer agents",
			what, n, lim.Max)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("%s need about %d open files: raise the limit from %d: %w", what, n, lim.Cur, err)
	}
	return nil
}

// childAttrs makes the spawned server die with the bench, even if the
// bench is killed.
func childAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// interrupt asks the server to stop gracefully.
func interrupt(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
