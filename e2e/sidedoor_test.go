package e2e

import (
	"path/filepath"
	"testing"
)

// pythonSideDoors tries, from Python's xmlrpc.client against the real
// binary, the side doors of docs/protocol.md "Access control": an admin
// permission used as a job's permission (alone, through a user group and in
// a MultiCall), a job permission used for an admin action, joining a user
// group with group.write, and an agent reporting a run it was never sent.
const pythonSideDoors = pythonPrelude + `
import datetime

reg = ag.agent.register({"hostname": "py-sidedoor-host", "os": "linux", "arch": "amd64", "version": "py"})
op.client.accept([reg["client_id"]])

bob = as_user(op.user.add("bob")["token"])
op.group.create("user", "auditors")
op.group.add("user", "auditors", ["bob"])
op.acl.add({"subject": "user:bob", "permission": "audit.read", "target": "*"})
op.acl.add({"subject": "group:auditors", "permission": "acl.write", "target": "*"})
op.acl.add({"subject": "user:bob", "permission": "deploy", "target": "*"})

# 1. An admin permission never authorises a job: fault 400 naming the field.
for perm in ["audit.read", "acl.write", "client.accept", "db.admin", "*"]:
    s = fault(400, bob.job.submit, {"script": "id", "targets": ["py-sidedoor-host"], "permission": perm})
    assert "permission" in s, s
mc = x.MultiCall(bob)
mc.job.submit({"script": "id", "targets": ["py-sidedoor-host"], "permission": "audit.read"})
mc.job.submit({"script": "id", "targets": ["py-sidedoor-host"], "permission": "deploy"})
r = mc()
try:
    r[0]
    raise AssertionError("audit.read accepted as a job permission in a MultiCall")
except x.Fault as f:
    assert f.faultCode == 400 and "permission" in f.faultString, f
assert r[1]["runs"] == 1, r[1]
assert len(op.job.list()) == 1

# ... and a job permission never grants an admin action.
carol = as_user(op.user.add("carol")["token"])
op.acl.add({"subject": "user:carol", "permission": "run", "target": "*"})
op.acl.add({"subject": "user:carol", "permission": "group.write", "target": "*"})
fault(403, carol.acl.add, {"subject": "user:carol", "permission": "*", "target": "*"})
fault(403, carol.audit.list)
d = carol.acl.check("carol", "deploy", "*")
assert not d["allowed"] and "on every client" in d["reason"], d

# 4. group.write is not admin: no joining a user group with it.
op.group.create("user", "ops")
op.acl.add({"subject": "group:ops", "permission": "user.write", "target": "*"})
fault(403, carol.group.add, "user", "ops", ["carol"])
carol.group.create("client", "web")
carol.group.add("client", "web", ["py-sidedoor-host"])

# 5. An agent reports only runs it was sent: 409 for one held by not_before.
later = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)
job = op.job.submit({"script": "true", "targets": ["py-sidedoor-host"], "not_before": later})
run = op.job.get(job["id"])["runs"][0]["id"]
doc = '<status run="%s" state="succeeded" exit="0" finished="2026-11-22T10:00:01Z"/>' % run
s = fault(409, ag.agent.reportStatus, doc)
assert "never sent" in s, s
assert op.job.get(job["id"])["runs"][0]["state"] == "pending"
print("OK")
`

// TestInteropPythonSideDoors: the ACL's namespaces, user-group writes and
// reports of runs never sent, through Python's xmlrpc.client.
func TestInteropPythonSideDoors(t *testing.T) {
	srv := startServer(t, filepath.Join(t.TempDir(), "data"))
	runPython(t, srv, "side doors", pythonSideDoors)
}
