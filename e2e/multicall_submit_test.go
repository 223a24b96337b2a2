package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

// pythonMulticallSubmit submits three jobs in one request with Python's
// xmlrpc.client.MultiCall (consecutive job.submit calls, which the server
// stores as one batch) and checks the ids, the jobs and the audit trail.
const pythonMulticallSubmit = `
import os, ssl, xmlrpc.client as x

ctx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
op = x.ServerProxy(os.environ["SCIRE_URL"], context=ctx,
                   headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])
actx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
actx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
ag = x.ServerProxy(os.environ["SCIRE_URL"], context=actx)

reg = ag.agent.register({"hostname": "py-batch-host", "os": "linux", "arch": "amd64", "version": "py"})
op.client.accept([reg["client_id"]])

mc = x.MultiCall(op)
for i in range(3):
    mc.job.submit({"script": "echo batch %d" % i, "targets": ["py-batch-host"], "name": "batch-%d" % i})
results = list(mc())
assert len(results) == 3, results
ids = [r["id"] for r in results]
assert all(r["runs"] == 1 for r in results), results
assert all(i.isdigit() for i in ids), ids
assert [int(i) for i in ids] == sorted(set(int(i) for i in ids)), ("ids not distinct and increasing", ids)
for n, i in enumerate(ids):
    j = op.job.get(i)
    assert j["name"] == "batch-%d" % n and j["script"] == "echo batch %d" % n, j

# A batch with a bad call in the middle: the fault is in its slot only.
mc = x.MultiCall(op)
mc.job.submit({"script": "echo after", "targets": ["py-batch-host"]})
mc.job.submit({"script": "", "targets": ["py-batch-host"]})
mc.job.submit({"script": "echo last", "targets": ["py-batch-host"]})
r = mc()
first, last = r[0]["id"], r[2]["id"]
try:
    r[1]
    raise AssertionError("the empty script was accepted")
except x.Fault as f:
    assert f.faultCode == 400 and "script" in f.faultString, f
assert int(ids[-1]) < int(first) < int(last), (ids, first, last)

ok = op.audit.list({"operation": "job.submit", "outcome": "ok"})
assert len(ok) == 5, ok
err = op.audit.list({"operation": "job.submit", "outcome": "error"})
assert len(err) == 1 and "script" in err[0]["detail"], err
print("OK", ids)
`

// TestInteropPythonMulticallSubmit: Python's MultiCall submits three jobs
// in one request and gets three ids.
func TestInteropPythonMulticallSubmit(t *testing.T) {
	py := requireTool(t, "python3")
	dir := t.TempDir()
	srv := startServer(t, filepath.Join(dir, "data"))
	certPEM, keyPEM, err := pki.SelfSigned("python batch agent", nil)
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
	cmd := exec.Command(py, "-c", pythonMulticallSubmit)
	cmd.Env = append(os.Environ(), "SCIRE_URL="+srv.url, "SCIRE_CA="+srv.caFile(), "SCIRE_TOKEN="+srv.token(t),
		"AGENT_CERT="+certFile, "AGENT_KEY="+keyFile)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK ") {
		t.Fatalf("python3 MultiCall job.submit: %v\n%s", err, out)
	}
	t.Logf("python3: %s", out)
}
