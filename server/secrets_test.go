package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/serverconfig"
)

// TestAuditNeverShowsScripts: the audit trail is readable with audit.read,
// which does not imply job.read, and scripts carry passwords. Whatever way
// a job.submit ends (stored, refused as invalid, refused by the ACL, with a
// script of the wrong type), the trail and the server log hold no part of
// the script; a stored job's record carries its length and SHA-256. Tokens
// made by user.add and user.token.create appear in neither either.
func TestAuditNeverShowsScripts(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	h.activeClient(t, op, "web1")
	const marker = "Secret-7f3a9c"
	script := "mysql -p" + marker + " -e 'select 1'\n" + strings.Repeat("# padding\n", 50)
	sum := sha256.Sum256([]byte(script))
	wantDigest := fmt.Sprintf("script=%d bytes sha256:%s", len(script), hex.EncodeToString(sum[:]))

	// Stored, with a long name that would push a late member past the
	// record's 200-rune cut.
	if err := op.Call(ctx, "job.submit", nil, map[string]any{"script": script, "targets": []string{"web1"},
		"name": strings.Repeat("n", 150), "interpreter": "/bin/bash"}); err != nil {
		t.Fatal(err)
	}
	// Refused as invalid (the handler's error is audited with the params).
	if err := op.Call(ctx, "job.submit", nil, map[string]any{"script": script, "targets": []string{"web1"}, "priority": 1 << 30}); err == nil {
		t.Fatal("priority 2^30 accepted")
	}
	// A script of the wrong type, holding the secret all the same.
	if err := op.Call(ctx, "job.submit", nil, map[string]any{"script": []string{script}, "targets": []string{"web1"}}); err == nil {
		t.Fatal("a script array accepted")
	}
	// Refused by the ACL: a user with no rule at all.
	var nt api.NewToken
	if err := op.Call(ctx, "user.add", &nt, "mallory"); err != nil {
		t.Fatal(err)
	}
	var mine api.NewToken
	if err := op.Call(ctx, "user.token.create", &mine, "admin", "second"); err != nil {
		t.Fatal(err)
	}
	mal := h.as(t, nt.Token)
	if err := mal.Call(ctx, "job.submit", nil, map[string]any{"script": script, "targets": []string{"web1"}}); err == nil {
		t.Fatal("mallory's job accepted")
	}

	var trail []api.AuditEntry
	if err := op.Call(ctx, "audit.list", &trail, map[string]any{"limit": 1000}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range trail {
		line := fmt.Sprintf("%+v", e)
		for _, secret := range []string{marker, nt.Token, mine.Token} {
			if strings.Contains(line, secret) {
				t.Errorf("audit entry holds a secret (%.12s…): %s", secret, line)
			}
		}
		if e.Name == "job.submit" && e.Outcome == "ok" {
			found = true
			if !strings.HasPrefix(e.Target, wantDigest+" ") {
				t.Errorf("job.submit record %q: want it to start with %q", e.Target, wantDigest)
			}
		}
	}
	if !found || len(trail) < 5 {
		t.Fatalf("audit trail %+v: want the ok job.submit, its refusals, user.add and user.token.create", trail)
	}
	log := h.log.String()
	for _, secret := range []string{marker, nt.Token, mine.Token} {
		if strings.Contains(log, secret) {
			t.Errorf("the server log holds a secret (%.12s…):\n%s", secret, log)
		}
	}
}

// TestDataDirMustBePrivate: a data directory its group or others can
// reach is made 0700 while it holds nothing secret yet (first start; what
// t.TempDir returns is 0755), and refused once it holds the keys, the token
// or the database, with a message naming the path, the mode and the chmod
// that fixes it, nothing created.
func TestDataDirMustBePrivate(t *testing.T) {
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701, 0o770, 0o777} {
		dir := filepath.Join(t.TempDir(), "my data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, serverconfig.ConfigFileName), []byte("listen: 127.0.0.1:0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		s, err := New(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatalf("fresh data dir, mode %04o: %v", mode, err)
		}
		s.Store().Close()
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("fresh data dir, mode %04o: now %v (%v), want 0700", mode, fi.Mode(), err)
		}
		// Opened up again, with the keys in it: refused.
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadDir(dir)
		_, err = New(context.Background(), Config{DataDir: dir, Listen: "127.0.0.1:0"})
		want := fmt.Sprintf("data dir %s is mode %04o: ", dir, mode)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "chmod 700 '"+dir+"'") {
			t.Errorf("mode %04o: err = %v; want a refusal with %q and the chmod", mode, err, want)
		}
		if after, _ := os.ReadDir(dir); len(after) != len(before) {
			t.Errorf("mode %04o: the refused start changed the directory: %v -> %v", mode, before, after)
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != mode {
			t.Errorf("mode %04o: the refused start changed the mode to %v", mode, fi.Mode())
		}
	}
}
