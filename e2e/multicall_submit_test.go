package e2e

import (
	"path/filepath"
	"testing"
)

// pythonMulticallSubmit submits three jobs in one request with Python's
// xmlrpc.client.MultiCall (consecutive job.submit calls, which the server
// stores as one batch) and checks the ids, the jobs and the audit trail.
const pythonMulticallSubmit = pythonPrelude + `

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
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	runPython(t, srv, "MultiCall job.submit", pythonMulticallSubmit)
}
