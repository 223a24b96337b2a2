package facts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadOSRelease(t *testing.T) {
	for _, tc := range []struct{ name, content, id, version string }{
		{"ubuntu", "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n", "ubuntu", "22.04"},
		{"single quotes", "ID='rhel'\nVERSION_ID='9.3'\n", "rhel", "9.3"},
		{"escapes", "ID=\"a\\\"b\"\n", `a"b`, ""},
		{"comments and blanks", "# ID=no\n\n  ID=alpine  \nVERSION_ID=3.19.1\n", "alpine", "3.19.1"},
		{"rolling: no VERSION_ID", "ID=arch\nBUILD_ID=rolling\n", "arch", ""},
		{"no ID: linux", "NAME=Linux\n", "linux", ""},
		{"CRLF", "ID=debian\r\nVERSION_ID=12\r\n", "debian", "12"},
	} {
		p := filepath.Join(t.TempDir(), "os-release")
		write(t, p, tc.content)
		id, version, err := readOSRelease(p)
		if err != nil || id != tc.id || version != tc.version {
			t.Errorf("%s: got %q, %q, %v; want %q, %q", tc.name, id, version, err, tc.id, tc.version)
		}
	}
}

func TestReadMemTotal(t *testing.T) {
	for _, tc := range []struct{ content, want, err string }{
		{"MemTotal:        2048 kB\n", "2097152", ""},
		{"MemFree: 1 kB\nMemTotal: 1 kB", "1024", ""},
		{"MemFree: 1 kB\n", "", "no MemTotal line"},
		{"MemTotal: 12\n", "", `MemTotal line "MemTotal: 12" is not "MemTotal: N kB"`},
		{"MemTotal: x kB\n", "", `MemTotal "x" is not a number of kB`},
	} {
		p := filepath.Join(t.TempDir(), "meminfo")
		write(t, p, tc.content)
		got, err := readMemTotal(p)
		msg := ""
		if err != nil {
			msg = strings.TrimPrefix(err.Error(), p+": ")
		}
		if got != tc.want || msg != tc.err {
			t.Errorf("readMemTotal(%q) = %q, %v; want %q, %q", tc.content, got, err, tc.want, tc.err)
		}
	}
}

// TestBuiltinProblems: a built-in fact that cannot be read, or is not a
// valid fact, is a problem and left out; the others are there.
func TestBuiltinProblems(t *testing.T) {
	o := fakeMachine(t)
	o.Hostname = func() (string, error) { return "", errors.New("no host name today") }
	if err := os.Remove(filepath.Join(o.ProcDir, "meminfo")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(o.ProcDir, "sys", "kernel", "osrelease"), "6.1 weird\n")
	o.OSRelease = filepath.Join(t.TempDir(), "missing")
	o.AgentVersion = "(devel)"
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		`built-in: hostname: no host name today`,
		`built-in: kernel: fact value "6.1 weird": invalid character ' ' in value (allowed: letters, digits, '-', '_', '.' and '+')`,
		`built-in: os_id, os_version: open `+o.OSRelease+`: no such file or directory`,
		`built-in: memory_bytes: open `+filepath.Join(o.ProcDir, "meminfo")+`: no such file or directory`,
		`built-in: agent_version: fact value "(devel)": invalid character '(' in value (allowed: letters, digits, '-', '_', '.' and '+')`,
	)
	want := wantBuiltins()
	for _, k := range []string{"hostname", "kernel", "os_id", "os_version", "memory_bytes", "agent_version"} {
		delete(want, k)
	}
	wantFacts(t, f, want)
	if ps[0].Key != "hostname" || ps[0].Source != "built-in" || ps[0].Line != 0 {
		t.Errorf("problem %+v", ps[0])
	}
}

// TestBuiltinEmpty: empty values read from the machine are left out, as
// facts it does not have.
func TestBuiltinEmpty(t *testing.T) {
	o := fakeMachine(t)
	o.Hostname = func() (string, error) { return "", nil }
	write(t, o.OSRelease, "ID=\nVERSION_ID=\n")
	write(t, filepath.Join(o.ProcDir, "sys", "kernel", "osrelease"), "\n")
	o.AgentVersion = ""
	f, ps := Collect(context.Background(), o)
	wantProblems(t, ps,
		`built-in: hostname: the host name is empty`,
		`built-in: kernel: `+filepath.Join(o.ProcDir, "sys", "kernel", "osrelease")+`: empty`,
	)
	want := wantBuiltins()
	for _, k := range []string{"hostname", "kernel", "os_id", "os_version", "agent_version"} {
		delete(want, k)
	}
	wantFacts(t, f, want)
}
