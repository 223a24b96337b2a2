package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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

// TestInteropPython drives the live server from Python's xmlrpc.client
// (testdata/interop.py).
func TestInteropPython(t *testing.T) {
	dir := t.TempDir()
	// A short loss timer, for the agent.heartbeat test: a run nobody names
	// is lost within seconds.
	srv := startServer(t, filepath.Join(dir, "data"), "--lost-grace", "1s", "--rescue-interval", "200ms")
	certFile, keyFile := agentIdentity(t, dir, "worker") // accepted by the test; AGENT stays pending
	pythonCommand(t, srv, "interop.py", []string{"testdata/interop.py"}, "WORKER_CERT="+certFile, "WORKER_KEY="+keyFile)
}
