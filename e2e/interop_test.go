package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

// requireTool skips when a tool is missing, except in CI, where
// SCIRE_REQUIRE_ALL=1 turns a skip into a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SCIRE_REQUIRE_ALL") != "" {
			t.Fatalf("%s is required (SCIRE_REQUIRE_ALL is set) but not found", name)
		}
		t.Skipf("%s not found", name)
	}
	return p
}

// TestInteropPython drives the live server from Python's xmlrpc.client.
func TestInteropPython(t *testing.T) {
	py := requireTool(t, "python3")
	dir := t.TempDir()
	// A short loss timer, for the agent.heartbeat test: a run nobody names
	// is lost within seconds.
	srv := startServer(t, filepath.Join(dir, "data"), "--lost-grace", "1s", "--rescue-interval", "200ms")
	cmd := exec.Command(py, "testdata/interop.py")
	cmd.Env = append(os.Environ(), "SCIRE_URL="+srv.url, "SCIRE_CA="+srv.caFile(), "SCIRE_TOKEN="+srv.token(t))
	for _, who := range []string{"AGENT", "WORKER"} { // a pending agent, an accepted one
		certPEM, keyPEM, err := pki.SelfSigned("python "+strings.ToLower(who), nil)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, who+".crt"), filepath.Join(dir, who+".key")
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, who+"_CERT="+certFile, who+"_KEY="+keyFile)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("python3 interop.py:\n%s", out)
	if err != nil {
		t.Fatalf("Python interop tests failed: %v", err)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatal("Python interop tests did not report OK")
	}
}
