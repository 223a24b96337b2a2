package datadir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
)

// A data directory's admin token: made once, kept while the database
// knows it, made again when it does not; a token is checked whole.
func TestEnsureAdminAndTokens(t *testing.T) {
	ctx := context.Background()
	p := Paths{Dir: t.TempDir()}
	st, err := db.Open(ctx, "sqlite://"+p.DB())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := EnsureAdmin(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(p.AdminToken())
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p.AdminToken()); fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode %v, want 0600", fi.Mode().Perm())
	}
	tok := strings.TrimSpace(string(first))
	if !strings.HasPrefix(tok, "scire_") {
		t.Fatalf("token %q lacks the prefix scire_", tok)
	}
	if u, err := VerifyToken(ctx, st, tok); err != nil || u.Name != "admin" {
		t.Fatalf("VerifyToken = %+v, %v", u, err)
	}
	if _, err := VerifyToken(ctx, st, tok[:len(tok)-1]+"x"); err == nil {
		t.Fatal("a token with a changed secret was accepted")
	}
	if err := EnsureAdmin(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(p.AdminToken()); string(again) != string(first) {
		t.Fatal("EnsureAdmin rewrote a token the database knows")
	}
	if err := st.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := EnsureAdmin(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	renewed, _ := os.ReadFile(p.AdminToken())
	if string(renewed) == string(first) {
		t.Fatal("EnsureAdmin kept a token the emptied database does not know")
	}
	if u, err := VerifyToken(ctx, st, strings.TrimSpace(string(renewed))); err != nil || u.Name != "admin" {
		t.Fatalf("renewed token: %+v, %v", u, err)
	}
	if filepath.Dir(p.CACert()) != filepath.Join(p.Dir, "tls") {
		t.Fatalf("CA certificate at %s", p.CACert())
	}
}
