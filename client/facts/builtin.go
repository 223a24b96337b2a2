package facts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/scirectl/scirectl/selector"
)

// builtinKeys are the built-in facts, in the order they are read and
// kept within the limits.
var builtinKeys = []string{
	"hostname", "os", "arch", "kernel", "os_id", "os_version", "cpus", "memory_bytes", "agent_version",
}

const builtinSource = "built-in"

// builtin sets a built-in fact, or reports why it cannot.
func (c *collector) builtin(key, value string, err error) {
	if err == nil {
		err = selector.CheckFact(key, value)
	}
	if err != nil {
		c.problem(builtinSource, 0, key, fmt.Errorf("%s: %w", key, err))
		return
	}
	c.facts[key] = origin{value: value, source: builtinSource}
}

// builtins reads the built-in facts. Each that cannot be read is a
// problem and left out; the others are unaffected.
func (c *collector) builtins(o Options) {
	hostname := o.Hostname
	if hostname == nil {
		hostname = os.Hostname
	}
	h, err := hostname()
	if err == nil && h == "" {
		err = errors.New("the host name is empty")
	}
	c.builtin("hostname", h, err)
	c.builtin("os", runtime.GOOS, nil)
	c.builtin("arch", runtime.GOARCH, nil)

	proc := o.ProcDir
	if proc == "" && runtime.GOOS == "linux" {
		proc = "/proc"
	}
	if proc != "" {
		k, err := readKernel(filepath.Join(proc, "sys", "kernel", "osrelease"))
		c.builtin("kernel", k, err)
	}

	id, version, err := readOSRelease(o.OSRelease)
	switch {
	case err != nil:
		c.problem(builtinSource, 0, "os_id", fmt.Errorf("os_id, os_version: %w", err))
	default:
		if id != "" {
			c.builtin("os_id", id, nil)
		}
		if version != "" {
			c.builtin("os_version", version, nil)
		}
	}

	c.builtin("cpus", strconv.Itoa(runtime.NumCPU()), nil)
	if proc != "" {
		m, err := readMemTotal(filepath.Join(proc, "meminfo"))
		c.builtin("memory_bytes", m, err)
	}
	if o.AgentVersion != "" {
		c.builtin("agent_version", o.AgentVersion, nil)
	}
}

// readKernel reads the kernel release, as uname -r prints it.
func readKernel(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	k := strings.TrimSpace(string(b))
	if k == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return k, nil
}

// readMemTotal reads the machine's memory in bytes from /proc/meminfo's
// MemTotal line ("MemTotal:       16318176 kB").
func readMemTotal(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return "", fmt.Errorf("%s: MemTotal line %q is not \"MemTotal: N kB\"", path, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || kb > 1<<53 {
			return "", fmt.Errorf("%s: MemTotal %q is not a number of kB", path, f[0])
		}
		return strconv.FormatUint(kb*1024, 10), nil
	}
	return "", fmt.Errorf("%s: no MemTotal line", path)
}

// Where os-release(5) may be: the first that exists is read.
var osReleasePaths = []string{"/etc/os-release", "/usr/lib/os-release"}

// readOSRelease reads ID and VERSION_ID from the os-release file at path,
// or from the first of osReleasePaths that exists when path is empty.
// Without an ID line the ID is "linux", as os-release(5) says; without a
// VERSION_ID line the version is empty, and so is a value left empty. That no file exists at the
// default paths is no error but on Linux, where the file is expected:
// id and version are then empty.
func readOSRelease(path string) (id, version string, err error) {
	var b []byte
	if path != "" {
		b, err = os.ReadFile(path)
	} else {
		for _, path = range osReleasePaths {
			b, err = os.ReadFile(path)
			if !errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		if errors.Is(err, fs.ErrNotExist) && runtime.GOOS != "linux" {
			return "", "", nil
		}
	}
	if err != nil {
		return "", "", err
	}
	id = "linux"
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		switch k {
		case "ID":
			id = unquote(v)
		case "VERSION_ID":
			version = unquote(v)
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("read %s: %w", path, err)
	}
	return id, version, nil
}

// unquote reads an os-release value: shell-style, either bare, in single
// quotes, or in double quotes with '\' escaping the next character.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
