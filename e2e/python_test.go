package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

// runPython runs a Python script against the live server srv and returns
// its output, failing the test unless the script exits 0 and prints a line
// starting "OK". The script finds in its environment SCIRE_URL, SCIRE_CA,
// SCIRE_TOKEN (the admin's), and AGENT_CERT / AGENT_KEY: a fresh agent
// identity the server has not seen.
func runPython(t *testing.T, srv *testServer, name, script string) string {
	t.Helper()
	py := requireTool(t, "python3")
	dir := t.TempDir()
	certPEM, keyPEM, err := pki.SelfSigned("python agent "+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "agent.crt"), filepath.Join(dir, "agent.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", script)
	cmd.Env = append(os.Environ(), "SCIRE_URL="+srv.url, "SCIRE_CA="+srv.caFile(), "SCIRE_TOKEN="+srv.token(t),
		"AGENT_CERT="+certFile, "AGENT_KEY="+keyFile)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains("\n"+string(out), "\nOK") {
		t.Fatalf("python3 %s: %v\n%s", name, err, out)
	}
	t.Logf("python3 %s: %s", name, out)
	return string(out)
}

// pythonPrelude connects as the admin (op) and as a fresh agent (ag).
const pythonPrelude = `
import os, ssl, xmlrpc.client as x

ctx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
op = x.ServerProxy(os.environ["SCIRE_URL"], context=ctx,
                   headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])
actx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
actx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
ag = x.ServerProxy(os.environ["SCIRE_URL"], context=actx)

def as_user(token):
    return x.ServerProxy(os.environ["SCIRE_URL"], context=ctx, headers=[("Authorization", "Bearer " + token)])

def fault(code, fn, *args):
    try:
        fn(*args)
    except x.Fault as f:
        assert f.faultCode == code, (code, f.faultCode, f.faultString)
        return f.faultString
    raise AssertionError("no fault %d from %r" % (code, args))
`
