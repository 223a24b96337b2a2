package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// Backup, restore and reset through the domain layer, as both the server
// and the CLI's --offline mode run them.
func TestBackupRestoreReset(t *testing.T) {
	ctx := context.Background()
	s, loads := newService(t)
	register(t, s, fp(0), "web1", db.ClientActive)
	if _, err := s.Backup(ctx, "relative.db"); err == nil {
		t.Fatal("a relative backup path was accepted")
	} else {
		wantKind(t, err, service.ErrInvalid, `path "relative.db" is not absolute`)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	b, err := s.Backup(ctx, path)
	if err != nil || b.Path != path || b.Bytes == 0 {
		t.Fatalf("Backup = %+v, %v", b, err)
	}
	repairs := 0
	repair := func(context.Context) (bool, string, error) { repairs++; return repairs == 1, "/data/admin.token", nil }

	if _, err := s.Reset(ctx, "yes", repair); err == nil || repairs != 0 {
		t.Fatalf("Reset without the confirmation word: %v, %d repairs", err, repairs)
	} else {
		wantKind(t, err, service.ErrInvalid, `pass "reset"`)
	}
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reset(ctx, api.ResetConfirmation, repair)
	if err != nil || r.AdminTokenFile != "/data/admin.token" || r.SchemaVersion == 0 || repairs != 1 {
		t.Fatalf("Reset = %+v, %v after %d repairs", r, err, repairs)
	}
	if cs, _ := s.ListClients(ctx, db.ClientFilter{}, nil); len(cs) != 0 {
		t.Fatalf("clients after reset: %+v", cs)
	}
	if _, err := s.Policy.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Restore(ctx, path, repair)
	if err != nil || rs.Path != path || rs.AdminTokenRenewed || repairs != 2 {
		t.Fatalf("Restore = %+v, %v after %d repairs", rs, err, repairs)
	}
	if c, err := s.Client(ctx, "web1"); err != nil || c.Status != db.ClientActive {
		t.Fatalf("web1 after restore = %+v, %v", c, err)
	}
	if _, err := s.Policy.Policy(ctx); err != nil || *loads != 3 {
		t.Fatalf("policy loaded %d times, want 3: reset and restore drop the snapshot (%v)", *loads, err)
	}
	broken := func(context.Context) (bool, string, error) { return false, "", errors.New("disk full") }
	if _, err := s.Restore(ctx, path, broken); err == nil || err.Error() != "restored from "+path+", but: disk full" {
		t.Fatalf("Restore with a failing repair: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v.Version != v.Latest || v.Dirty {
		t.Fatalf("SchemaVersion = %+v, %v", v, err)
	}
}
