package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/server"
)

func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(&IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, args)
	return out.String(), errOut.String(), code
}

func TestEveryCommandHasSummaryAndExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if c.Short == "" {
			t.Errorf("%q has no one-line summary", c.CommandPath())
		}
		if c.Example == "" {
			t.Errorf("%q has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot(&IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}))
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{"job", "submit", "-c", "true"},
		{"job", "submit", "--target", "x"},
		{"job", "submit", "--target", "x", "-c", "true", "--script", "f"},
		{"job", "submit", "--target", "x", "-c", "true", "--at", "tomorrow"},
		{"job", "submit", "--target", "x", "-c", "true", "--at", "9999-01-01T00:00:00Z"},
		{"job", "submit", "--target", "x", "-c", "true", "--expires", "2263-01-01T00:00:00Z"},
		{"job", "submit", "--target", "x", "-c", "true", "--timeout", "1500ms"},
		{"job", "submit", "--target", "x", "-c", "true", "--wait-timeout", "1m"},
		{"job", "submit", "--target", "x", "-c", "true", "--wait", "--wait-interval", "0s"},
		{"job", "status", "1", "--wait-timeout", "1m"},
		{"job", "list", "-o", "yaml"},
		{"job", "status"},
		{"job", "status", "0"},
		{"job", "list", "-o", "xml"},
		{"client", "accept"},
		{"client", "poll", "--state-dir", "/tmp/x"},
		{"client", "poll", "--server", "https://x:7443/RPC2", "--state-dir", "/tmp/x", "--fact", "role"},
		{"client", "poll", "--server", "https://x:7443/RPC2", "--state-dir", "/tmp/x", "--fact", "a=1", "--fact", "a=2"},
		{"serve", "--log-level", "loud", "--data-dir", "/nonexistent/never"},
		{"frobnicate"},
	}
	for _, args := range cases {
		_, errOut, code := run(t, "", args...)
		if code != ExitUsage {
			t.Errorf("scirectl %s: exit %d (%s), want %d", strings.Join(args, " "), code, strings.TrimSpace(errOut), ExitUsage)
		}
	}
}

func TestNormalizeServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"host:7443":                "https://host:7443/RPC2",
		"https://host:7443":        "https://host:7443/RPC2",
		"https://host:7443/RPC2":   "https://host:7443/RPC2",
		"https://host/custom/path": "https://host/custom/path",
		"127.0.0.1:7443":           "https://127.0.0.1:7443/RPC2",
	} {
		if got := normalizeServerURL(in); got != want {
			t.Errorf("normalizeServerURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestAgainstServer runs commands through their constructors against a
// real server on loopback, with no flags but --data-dir and --server, as
// an operator on the server host would.
func TestAgainstServer(t *testing.T) {
	_, conn := startServer(t)

	out, errOut, code := run(t, "", append([]string{"client", "list", "-o", "json"}, conn...)...)
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("client list -o json: exit %d, %q %q", code, out, errOut)
	}
	out, _, code = run(t, "", append([]string{"job", "list"}, conn...)...)
	if code != 0 || !strings.Contains(out, "ID") || !strings.Contains(out, "STATUS") {
		t.Fatalf("job list table: exit %d, %q", code, out)
	}
	_, errOut, code = run(t, "", append([]string{"job", "submit", "--target", "ghost", "--script", "-"}, conn...)...)
	if code != ExitUsage || !strings.Contains(errOut, "empty") {
		t.Fatalf("submit of an empty script: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, "a\x01b", append([]string{"job", "submit", "--target", "ghost", "--script", "-"}, conn...)...)
	if code != ExitUsage || !strings.Contains(errOut, "U+0001") {
		t.Fatalf("submit of a script with a control character: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, "true\n", append([]string{"job", "submit", "--target", "ghost", "--script", "-"}, conn...)...)
	if code != ExitNotFound || !strings.Contains(errOut, "ghost") {
		t.Fatalf("submit to unknown client: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, "", append([]string{"job", "output", "77", "-o", "json"}, conn...)...)
	if code != ExitNotFound {
		t.Fatalf("job output of unknown job: exit %d, %q", code, errOut)
	}
	var v any
	out, _, _ = run(t, "", append([]string{"job", "list", "-o", "json"}, conn...)...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("job list -o json is not JSON: %q", out)
	}
}

// startServer runs a server on loopback for the test and returns its data
// directory and the flags that reach it.
func startServer(t *testing.T) (dir string, conn []string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.New(ctx, server.Config{DataDir: dir, Listener: ln, Listen: ln.Addr().String(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return dir, []string{"--data-dir", dir, "--server", ln.Addr().String()}
}
