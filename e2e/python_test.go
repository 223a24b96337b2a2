package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

// agentIdentity writes a fresh agent key and self-signed certificate, one
// the server has not seen, into dir, and returns the two files.
func agentIdentity(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM, err := pki.SelfSigned("python agent "+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// pythonCommand runs python3 with args (a script file, or -c and code)
// against the live server srv and returns its output, failing the test
// unless it exits 0 and prints a line starting "OK". The script finds in
// its environment SCIRE_URL, SCIRE_CA, SCIRE_TOKEN (the admin's), AGENT_CERT
// and AGENT_KEY (a fresh agent identity), and env.
func pythonCommand(t *testing.T, srv *testServer, name string, args []string, env ...string) string {
	t.Helper()
	py := requireTool(t, "python3")
	certFile, keyFile := agentIdentity(t, t.TempDir(), "agent")
	cmd := exec.Command(py, args...)
	cmd.Env = append(append(os.Environ(), "SCIRE_URL="+srv.url, "SCIRE_CA="+srv.caFile(), "SCIRE_TOKEN="+srv.token(t),
		"AGENT_CERT="+certFile, "AGENT_KEY="+keyFile), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("python3 %s:\n%s", name, out)
	if err != nil || !strings.Contains("\n"+string(out), "\nOK") {
		t.Fatalf("python3 %s failed (%v): it must exit 0 and print OK", name, err)
	}
	return string(out)
}

// runPython runs the Python code script against srv (pythonCommand).
func runPython(t *testing.T, srv *testServer, name, script string, env ...string) string {
	t.Helper()
	return pythonCommand(t, srv, name, []string{"-c", script}, env...)
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
