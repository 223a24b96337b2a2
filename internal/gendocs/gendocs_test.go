package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/commands"
)

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// need finds a tool, or skips the test (fails it under SCIRE_REQUIRE_ALL
// when required is true).
func need(t *testing.T, tool string, required bool) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if required && os.Getenv("SCIRE_REQUIRE_ALL") != "" {
			t.Fatalf("%s is required (SCIRE_REQUIRE_ALL is set) but not found", tool)
		}
		t.Skipf("no %s here", tool)
	}
	return p
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		m[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReproducible generates the docs twice: the same bytes each time,
// dated by SOURCE_DATE_EPOCH, a man page per command, the exit codes in
// scirectl(1).
func TestReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", strconv.Itoa(1_700_000_000)) // 2023-11-14
	var trees [2]map[string]string
	for i := range trees {
		dir := t.TempDir()
		if err := run(filepath.Join(dir, "man"), filepath.Join(dir, "completions")); err != nil {
			t.Fatal(err)
		}
		trees[i] = readTree(t, dir)
	}
	if len(trees[0]) != len(trees[1]) {
		t.Fatalf("two runs made %d and %d files", len(trees[0]), len(trees[1]))
	}
	for name, text := range trees[0] {
		if trees[1][name] != text {
			t.Errorf("%s differs between two runs", name)
		}
	}
	root := trees[0][filepath.Join("man", "scirectl.1")]
	if !regexp.MustCompile(`(?m)^\.TH "SCIRECTL" "1" "Nov 2023"`).MatchString(root) {
		t.Errorf("scirectl.1 is not dated by SOURCE_DATE_EPOCH: %.200q", root)
	}
	for _, want := range []string{"Exit codes", "130", "fault 423", "config.yaml"} {
		if !strings.Contains(root, want) {
			t.Errorf("scirectl.1 lacks %q", want)
		}
	}
	pages := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c.Name() != "scirectl" {
			return
		}
		pages++
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		if _, ok := trees[0][filepath.Join("man", name)]; !ok {
			t.Errorf("no man page %s", name)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(commands.NewRoot(&commands.IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
	for _, f := range []string{"scirectl.bash", "_scirectl", "scirectl.fish", "scirectl.ps1"} {
		if trees[0][filepath.Join("completions", f)] == "" {
			t.Errorf("no completions/%s", f)
		}
	}
}

// TestMakeInstall installs into a scratch DESTDIR and checks every file
// lands where the distributions look for it.
func TestMakeInstall(t *testing.T) {
	mk := need(t, "make", true)
	need(t, "install", true)
	root := repoRoot(t)
	dest := t.TempDir()
	bin := filepath.Join(t.TempDir(), "scirectl")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mk, "-C", root, "install-files", "install-systemd", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install-files: %v\n%s", err, out)
	}
	for _, f := range []string{
		"usr/bin/scirectl",
		"usr/share/man/man1/scirectl.1",
		"usr/share/man/man1/scirectl-job-submit.1",
		"usr/share/bash-completion/completions/scirectl",
		"usr/share/zsh/site-functions/_scirectl",
		"usr/share/fish/vendor_completions.d/scirectl.fish",
		"usr/lib/systemd/system/scirectl.service",
		"usr/lib/systemd/system/scirectl-agent.service",
		"usr/lib/systemd/system/scirectl-agent-once.service",
		"usr/lib/systemd/system/scirectl-agent-once.timer",
		"usr/lib/sysusers.d/scirectl.conf",
	} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "usr/bin/scirectl")); err == nil && fi.Mode().Perm() != 0o755 {
		t.Errorf("binary installed with mode %v", fi.Mode())
	}
	// Another PREFIX: the units' ExecStart follows it.
	dest = t.TempDir()
	cmd = exec.Command(mk, "-C", root, "install-systemd", "DESTDIR="+dest, "PREFIX=/opt/scire")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install-systemd: %v\n%s", err, out)
	}
	unit, err := os.ReadFile(filepath.Join(dest, "opt/scire/lib/systemd/system/scirectl.service"))
	if err != nil || !bytes.Contains(unit, []byte("ExecStart=/opt/scire/bin/scirectl serve")) {
		t.Errorf("scirectl.service under PREFIX=/opt/scire: %v\n%s", err, unit)
	}
}

// TestSystemdUnits checks the units with systemd-analyze verify (any
// complaint fails) and the server's sandboxing with systemd-analyze
// security, when systemd-analyze is here.
func TestSystemdUnits(t *testing.T) {
	sa := need(t, "systemd-analyze", false)
	src := filepath.Join(repoRoot(t), "contrib", "systemd")
	dir := t.TempDir()
	// verify insists that ExecStart's program exists.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units := []string{"scirectl.service", "scirectl-agent.service", "scirectl-agent-once.service", "scirectl-agent-once.timer"}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(src, u))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/bin/scirectl"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", filepath.Join(dir, "scirectl.service")).CombinedOutput()
	if err != nil {
		t.Logf("systemd-analyze security --offline not usable here: %v", err)
		return
	}
	m := regexp.MustCompile(`Overall exposure level for scirectl.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("scirectl.service exposure %.1f, want at most 2.0 (systemd-analyze security):\n%s", level, out)
	}
}
