package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pythonTimesAndSecrets: a time the server cannot store is refused with
// fault 400 naming the field, and a script's secret never reaches the
// audit trail, whose job.submit record carries the script's SHA-256.
const pythonTimesAndSecrets = `
import datetime, hashlib, os, ssl, xmlrpc.client as x

ctx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
op = x.ServerProxy(os.environ["SCIRE_URL"], context=ctx,
                   headers=[("Authorization", "Bearer " + os.environ["SCIRE_TOKEN"])])
actx = ssl.create_default_context(cafile=os.environ["SCIRE_CA"])
actx.load_cert_chain(os.environ["AGENT_CERT"], os.environ["AGENT_KEY"])
ag = x.ServerProxy(os.environ["SCIRE_URL"], context=actx)
reg = ag.agent.register({"hostname": "py-host", "os": "linux", "arch": "amd64", "version": "py"})
op.client.accept([reg["client_id"]])

for field, when in [("not_before", datetime.datetime(9999, 1, 1)), ("not_before", datetime.datetime(2263, 1, 1)),
                    ("expires_at", datetime.datetime(9999, 12, 31, 23, 59, 59)), ("not_before", datetime.datetime(1969, 7, 20))]:
    try:
        op.job.submit({"script": "true", "targets": ["py-host"], field: when})
        raise AssertionError("%s %s accepted" % (field, when))
    except x.Fault as f:
        assert f.faultCode == 400 and ("job.submit: " + field + ": ") in f.faultString, f
assert op.job.list() == [], op.job.list()

script = "mysql -p" + os.environ["MARKER"] + " -e 'select 1'\n"
op.job.submit({"script": script, "targets": ["py-host"]})
digest = "script=%d bytes sha256:%s" % (len(script.encode()), hashlib.sha256(script.encode()).hexdigest())
trail = op.audit.list({"limit": 1000})
assert not [e for e in trail if os.environ["MARKER"] in repr(e)], trail
assert [e for e in trail if e["operation"] == "job.submit" and e["target"].startswith(digest)], (digest, trail)
print("OK")
`

// TestSecretsStaySecret runs the real binary on a fresh data directory:
// Python's xmlrpc.client is refused a not_before in year 9999; a script's
// secret is in neither the audit trail nor the server's log; the data
// directory and every file the server wrote in it but the public
// certificates (database, -wal, -shm, keys, admin token) are private to its
// user although this test runs with the usual umask; and a data directory
// others can read is made private at the first start, refused later.
func TestSecretsStaySecret(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	srv := startServer(t, dataDir)
	marker := fmt.Sprintf("Secret-%d", time.Now().UnixNano())
	runPython(t, srv, "times and secrets", pythonTimesAndSecrets, "MARKER="+marker)

	// The CLI shows the same record; the server log holds no secret either.
	script := "mysql -p" + marker + " -e 'select 1'\n"
	sum := sha256.Sum256([]byte(script))
	stdout, stderr, code := srv.cli(t, "", "audit", "list", "--operation", "job.submit", "-o", "json")
	if code != 0 || strings.Contains(stdout, marker) || !strings.Contains(stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("audit list: exit %d, %s\n%s: want the script's sha256 and no secret", code, stdout, stderr)
	}
	if log := srv.log.String(); strings.Contains(log, marker) {
		t.Errorf("the server log holds the secret:\n%s", log)
	}

	// Every file the running server wrote is private.
	seen := map[string]bool{}
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, p)
		seen[rel] = true
		// Certificates are public (agents pin ca.crt) and written 0644 on
		// purpose; the 0700 directory keeps even them to the server's user.
		if fi.Mode().Perm()&0o077 != 0 && !(strings.HasSuffix(rel, ".crt") && fi.Mode().Perm() == 0o644) {
			t.Errorf("%s is mode %04o: group or others may use it", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".", "scire.db", "scire.db-wal", "scire.db-shm", "admin.token", "tls/ca.key", "tls/server.key"} {
		if !seen[f] {
			t.Errorf("%s missing from the running server's data directory (found %v)", f, seen)
		}
	}
	srv.stop(t)

	// A fresh data directory others can list is made private by the first
	// start; opened up again, with the keys in it, it is refused, saying
	// how to fix it.
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	startServer(t, open).stop(t)
	if fi, err := os.Stat(open); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("fresh 0755 data dir after the first start: %v (%v), want 0700", fi.Mode(), err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadDir(open)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := exec.CommandContext(ctx, binary, "serve", "--data-dir", open, "--listen", "127.0.0.1:0").CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("serve on a 0755 data dir started and ran for 30s; want a refusal\n%s", res)
	}
	if err == nil || !strings.Contains(string(res), "data dir "+open+" is mode 0755") || !strings.Contains(string(res), "chmod 700 "+open) {
		t.Errorf("serve on a 0755 data dir: %v\n%s\nwant a refusal naming the path, the mode and the chmod", err, res)
	}
	if after, _ := os.ReadDir(open); len(after) != len(before) {
		t.Errorf("the refused serve changed %s: %v -> %v", open, before, after)
	}
}
