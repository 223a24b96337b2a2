package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

// TestIdentitiesPython shows through the wire, with Python's xmlrpc.client,
// that a deleted client's ACL rules never pass to a machine registered
// after it (testdata/identities.py).
func TestIdentitiesPython(t *testing.T) {
	py := requireTool(t, "python3")
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	env := append(os.Environ(), "SCIRE_URL="+srv.url, "SCIRE_CA="+srv.caFile(), "SCIRE_TOKEN="+srv.token(t))
	for i := 1; i <= 3; i++ {
		certPEM, keyPEM, err := pki.SelfSigned(fmt.Sprint("python agent ", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, fmt.Sprint("agent", i, ".crt")), filepath.Join(dir, fmt.Sprint("agent", i, ".key"))
		if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, fmt.Sprintf("AGENT%d_CERT=%s", i, certFile), fmt.Sprintf("AGENT%d_KEY=%s", i, keyFile))
	}
	cmd := exec.Command(py, "testdata/identities.py")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("python3 identities.py:\n%s", out)
	if err != nil {
		t.Fatalf("Python identity tests failed: %v", err)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatal("Python identity tests did not report OK")
	}
}
