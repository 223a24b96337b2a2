package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestIdentitiesPython shows through the wire, with Python's xmlrpc.client,
// that a deleted client's ACL rules never pass to a machine registered
// after it (testdata/identities.py).
func TestIdentitiesPython(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	var env []string
	for i := 1; i <= 3; i++ {
		certFile, keyFile := agentIdentity(t, dir, fmt.Sprint("agent", i))
		env = append(env, fmt.Sprintf("AGENT%d_CERT=%s", i, certFile), fmt.Sprintf("AGENT%d_KEY=%s", i, keyFile))
	}
	pythonCommand(t, srv, "identities.py", []string{"testdata/identities.py"}, env...)
}
