package e2e

import (
	"path/filepath"
	"testing"
)

// TestWebhooksPython drives every webhook method, and events.list, from
// Python's xmlrpc.client (testdata/webhooks.py), with a receiver in the
// Python process that checks the headers and signatures.
func TestWebhooksPython(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	pythonCommand(t, srv, "webhooks.py", []string{"testdata/webhooks.py"})
}
