package commands

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/xmlrpc"
)

// writeConfig writes a CLI configuration file and points SCIRE_CONFIG at it.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCIRE_CONFIG", path)
	return path
}

func configView(t *testing.T, args ...string) map[string][2]string {
	t.Helper()
	out, errOut, code := run(t, "", append([]string{"config", "view", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("config view: exit %d: %s", code, errOut)
	}
	var list []setting
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("config view -o json: %v\n%s", err, out)
	}
	m := map[string][2]string{}
	for _, s := range list {
		m[s.Key] = [2]string{s.Value, s.Source}
	}
	return m
}

func TestConfigViewSources(t *testing.T) {
	path := writeConfig(t, "# operator defaults\nserver: jobs.example:7443\ntoken_file: token\nca: /etc/scire/ca.crt\noutput: wide\nno_wait: true\n")
	dir := filepath.Dir(path)
	t.Setenv("SCIRE_CA", "/tmp/other-ca.crt")
	m := configView(t, "--data-dir", "/srv/scire")
	for key, want := range map[string][2]string{
		"config":     {path, "env:SCIRE_CONFIG"},
		"server":     {"jobs.example:7443", "file:" + path + ":2"},
		"token_file": {filepath.Join(dir, "token"), "file:" + path + ":3"},
		"token":      {"from token_file", "file:" + path + ":3"},
		"ca":         {"/tmp/other-ca.crt", "env:SCIRE_CA"},
		"data_dir":   {"/srv/scire", "flag"},
		"no_wait":    {"true", "file:" + path + ":6"},
	} {
		if m[key] != want {
			t.Errorf("%s = %q, want %q", key, m[key], want)
		}
	}
	// config view itself takes -o json from the flag.
	if m["output"] != [2]string{"json", "flag"} {
		t.Errorf("output = %q", m["output"])
	}
	// Without -o, the file's output: applies.
	out, _, _ := run(t, "", "config", "view")
	if !strings.Contains(out, "output") || !strings.Contains(out, "wide") || !strings.Contains(out, "file:"+path+":5") {
		t.Errorf("config view without -o:\n%s", out)
	}

	// Environment beats the file, flags beat the environment.
	t.Setenv("SCIRE_SERVER", "https://env.example:7443")
	t.Setenv("SCIRE_NO_WAIT", "0")
	m = configView(t)
	if m["server"] != [2]string{"https://env.example:7443", "env:SCIRE_SERVER"} || m["no_wait"] != [2]string{"false", "env:SCIRE_NO_WAIT"} {
		t.Errorf("env over file: server %q, no_wait %q", m["server"], m["no_wait"])
	}
	m = configView(t, "--server", "flag.example:1", "--no-wait")
	if m["server"] != [2]string{"flag.example:1", "flag"} || m["no_wait"] != [2]string{"true", "flag"} {
		t.Errorf("flag over env: server %q, no_wait %q", m["server"], m["no_wait"])
	}
}

func TestConfigViewNeverPrintsTheToken(t *testing.T) {
	writeConfig(t, "")
	t.Setenv("SCIRE_TOKEN", "s3cret-token-value")
	for _, args := range [][]string{{"config", "view"}, {"config", "view", "-o", "json"}, {"config", "view", "--token", "s3cret-token-value"}} {
		out, errOut, code := run(t, "", args...)
		if code != 0 || strings.Contains(out+errOut, "s3cret") {
			t.Errorf("%v: exit %d, printed the token:\n%s%s", args, code, out, errOut)
		}
	}
	if m := configView(t); m["token"] != [2]string{"set", "env:SCIRE_TOKEN"} {
		t.Errorf("token = %q", m["token"])
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string // in the message, besides the file name
	}{
		{"server: a\nfrobnicate: 1\n", []string{":2:", "frobnicate", "unknown key"}},
		{"output: xml\n", []string{":1:", "output", `"xml"`, wantFormat}},
		{"server: a\nno_wait: maybe\n", []string{":2:", "no_wait", "true or false"}},
		{"token: abc\n", []string{":1:", "token", "token_file"}},
		{"ca:\n  - a\n", []string{":1:", "ca", "single value"}},
		{"server: [a\n", []string{":1:"}},
		{"- server\n", []string{":1:", "keys and values"}},
		{"server: a\nserver: b\n", []string{":2:", "server"}},
	} {
		path := writeConfig(t, c.text)
		_, errOut, code := run(t, "", "config", "view")
		if code == 0 {
			t.Errorf("%q: config view succeeded", c.text)
			continue
		}
		for _, w := range append(c.want, path) {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: error %q lacks %q", c.text, strings.TrimSpace(errOut), w)
			}
		}
		// Every command that reads the settings reports it the same way.
		if _, errOut2, _ := run(t, "", "job", "list"); !strings.Contains(errOut2, path) {
			t.Errorf("%q: job list error %q does not name the file", c.text, errOut2)
		}
	}
	t.Setenv("SCIRE_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
	if _, errOut, code := run(t, "", "config", "view"); code == 0 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("a missing $SCIRE_CONFIG file: exit %d, %q", code, errOut)
	}
	// A missing file at the default place is fine.
	t.Setenv("SCIRE_CONFIG", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if _, errOut, code := run(t, "", "config", "view"); code != 0 {
		t.Errorf("no config file: exit %d, %q", code, errOut)
	}
}

// TestConfigFileDrivesCommands connects with nothing but the file, and
// checks the order flag > environment > file for -o.
func TestConfigFileDrivesCommands(t *testing.T) {
	fixClock(t, goldenNow)
	_, conn := startFake(t, map[string]func(xmlrpc.Params) any{"job.list": fixed(goldenJobs())})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", dir)
	if err := os.MkdirAll(filepath.Join(dir, "scirectl"), 0o755); err != nil {
		t.Fatal(err)
	}
	// conn is --server URL --ca FILE --token … --data-dir DIR.
	cfg := "server: " + conn[1] + "\nca: " + conn[3] + "\ntoken_file: ../token\noutput: json\n"
	if err := os.WriteFile(filepath.Join(dir, "scirectl", "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "", "job", "list")
	if code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("job list with the config file only: exit %d, %s%s", code, out, errOut)
	}
	t.Setenv("SCIRE_OUTPUT", "wide")
	if out, _, _ = run(t, "", "job", "list"); !strings.Contains(out, "TARGETS") {
		t.Errorf("SCIRE_OUTPUT=wide should beat the file:\n%s", out)
	}
	if out, _, _ = run(t, "", "job", "list", "-o", "table"); strings.Contains(out, "TARGETS") || !strings.Contains(out, "CREATED") {
		t.Errorf("-o table should beat SCIRE_OUTPUT:\n%s", out)
	}
	t.Setenv("SCIRE_OUTPUT", "yaml")
	if _, errOut, code = run(t, "", "job", "list"); code != ExitUsage || !strings.Contains(errOut, "SCIRE_OUTPUT") {
		t.Errorf("a bad SCIRE_OUTPUT: exit %d, %q", code, errOut)
	}
}
