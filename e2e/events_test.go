package e2e

import (
	"path/filepath"
	"testing"
)

// Python's xmlrpc.client (e2e/testdata/events.py): events.list with its
// options, the long poll, the faults, and job.submit's idempotency_key
// alone and in a multicall, against the real binary.
func TestEventsPython(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	pythonCommand(t, srv, "events.py", []string{"testdata/events.py"})
}
