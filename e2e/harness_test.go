// Package e2e tests scirectl as users run it: the real binary, started as
// processes, talking real XML-RPC over real TLS on loopback.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/pki"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scirectl-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "scirectl")
	build := exec.Command("go", "build", "-o", binary, "../cmd/scirectl")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build scirectl:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if err := pgtest.Stop(); err != nil { // the PostgreSQL server of the cluster test, if it started one
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// logBuffer collects a process's output safely for concurrent reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a running scirectl process.
type proc struct {
	cmd  *exec.Cmd
	log  *logBuffer
	done chan error
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), log: &logBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("process exited with %v after SIGTERM; output:\n%s", err, p.log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not stop within 30s of SIGTERM; output:\n%s", p.log.String())
	}
}

// testServer is a running `scirectl serve`.
type testServer struct {
	*proc
	dataDir string
	addr    string
	url     string
}

var servingRx = regexp.MustCompile(`msg=serving address=(\S+)`)

// startServer starts `scirectl serve` on a free loopback port; extra are
// more flags.
func startServer(t *testing.T, dataDir string, extra ...string) *testServer {
	t.Helper()
	p := start(t, nil, append([]string{"serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--poll-interval", "1s"}, extra...)...)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingRx.FindStringSubmatch(p.log.String()); m != nil {
			s := &testServer{proc: p, dataDir: dataDir, addr: m[1], url: "https://" + m[1] + "/RPC2"}
			s.waitHealthy(t)
			return s
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve exited early (%v):\n%s", err, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not start:\n%s", p.log.String())
	return nil
}

func (s *testServer) caFile() string { return filepath.Join(s.dataDir, "tls", "ca.crt") }

func (s *testServer) token(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (s *testServer) waitHealthy(t *testing.T) {
	pool, err := pki.CertPool(s.caFile())
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 2 * time.Second}
	for i := 0; i < 200; i++ {
		resp, err := hc.Get("https://" + s.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("server at %s never became ready", s.addr)
}

// cliEnv is the environment that points a CLI command at the server.
func (s *testServer) cliEnv() []string {
	return append(os.Environ(), "SCIRE_DATA_DIR="+s.dataDir, "SCIRE_SERVER="+s.url)
}

// cli runs one CLI command against the server and returns stdout, stderr
// and the exit code.
func (s *testServer) cli(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = s.cliEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// cliJSON runs a command with -o json and decodes its output.
func (s *testServer) cliJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errOut, code := s.cli(t, "", append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("scirectl %v: exit %d: %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("scirectl %v: bad JSON %q: %v", args, out, err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// lines reads non-empty lines.
func lines(r io.Reader) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}
