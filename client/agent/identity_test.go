package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/pki"
)

func writeCA(t *testing.T, dir, name string) string {
	t.Helper()
	ca, err := pki.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".crt")
	if err := ca.Save(p, filepath.Join(dir, name+".key")); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIdentityFirstStartAndReuse(t *testing.T) {
	tmp := t.TempDir()
	caPath := writeCA(t, tmp, "ca")
	state := filepath.Join(tmp, "state")

	if _, err := Fingerprint(state); err == nil {
		t.Fatal("Fingerprint of an empty state dir: no error")
	}
	if err := makeStateDir(state); err != nil {
		t.Fatal(err)
	}
	if _, err := loadIdentity(state, "", "host1"); err == nil || !strings.Contains(err.Error(), "--ca") {
		t.Fatalf("first start without a CA: %v, want an error asking for --ca", err)
	}
	id, err := loadIdentity(state, caPath, "host1")
	if err != nil {
		t.Fatal(err)
	}
	for f, mode := range map[string]os.FileMode{"": 0o700, "agent.key": 0o600, "agent.crt": 0o644, "ca.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%q: %v mode %v, want %v", f, err, fi.Mode().Perm(), mode)
		}
	}
	fp, err := Fingerprint(state)
	if err != nil || fp != id.fingerprint || len(fp) != 64 {
		t.Fatalf("Fingerprint = %q, %v; identity has %q", fp, err, id.fingerprint)
	}

	// Later starts reuse it, with or without --ca (the same one).
	for _, ca := range []string{"", caPath} {
		id2, err := loadIdentity(state, ca, "host1")
		if err != nil || id2.fingerprint != fp {
			t.Fatalf("restart with --ca %q: %v, fingerprint %q want %q", ca, err, id2.fingerprint, fp)
		}
	}

	// A different CA is refused, with how to re-pin.
	other := writeCA(t, tmp, "other")
	_, err = loadIdentity(state, other, "host1")
	if err == nil || !strings.Contains(err.Error(), "differs") || !strings.Contains(err.Error(), "remove") {
		t.Fatalf("different CA: %v", err)
	}
}

func TestIdentityCrashBetweenKeyAndCert(t *testing.T) {
	tmp := t.TempDir()
	caPath := writeCA(t, tmp, "ca")
	state := filepath.Join(tmp, "state")
	makeStateDir(state)
	// Key written, certificate not: nobody has seen this identity, a new one is made.
	os.WriteFile(filepath.Join(state, "agent.key"), []byte("partial"), 0o600)
	if _, err := loadIdentity(state, caPath, "h"); err != nil {
		t.Fatal(err)
	}
	// Certificate without key: refused, never replaced silently.
	os.Remove(filepath.Join(state, "agent.key"))
	if _, err := loadIdentity(state, caPath, "h"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("certificate without key: %v", err)
	}
}

func TestStateDirLock(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockStateDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
}
