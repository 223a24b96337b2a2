package e2e

import (
	"path/filepath"
	"testing"

	"github.com/scirectl/scirectl/internal/testtool"
)

// requireTool finds a program the test drives (testtool.Require).
func requireTool(t *testing.T, name string) string { return testtool.Require(t, name, "") }

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
