package service_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/scirectl/scirectl/service"
)

func TestEditBlacklist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blacklist")
	known := []string{"acl.add", "acl.remove", "blacklist.add", "blacklist.remove", "db.reset", "job.submit"}
	got, err := service.EditBlacklist(path, known, true, false, []string{"db.reset", "acl.*"})
	if err != nil || !slices.Equal(got, []string{"acl.*", "db.reset"}) {
		t.Fatalf("add = %v, %v", got, err)
	}
	_, err = service.EditBlacklist(path, known, true, false, []string{"job.sumbit"})
	wantKind(t, err, service.ErrInvalid, "job.sumbit")
	_, err = service.EditBlacklist(path, known, true, false, []string{"blacklist.*"})
	wantKind(t, err, service.ErrInvalid, "would blacklist blacklist.remove itself")
	if got, err := service.EditBlacklist(path, known, true, true, []string{"blacklist.*"}); err != nil || len(got) != 3 {
		t.Fatalf("forced self-lockout = %v, %v", got, err)
	}
	_, err = service.EditBlacklist(path, known, false, false, []string{"job.submit"})
	wantKind(t, err, service.ErrNotFound, "job.submit")
	if got, err := service.EditBlacklist(path, known, false, false, []string{"acl.*", "blacklist.*"}); err != nil || !slices.Equal(got, []string{"db.reset"}) {
		t.Fatalf("remove = %v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("[not, closed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = service.EditBlacklist(path, known, true, false, []string{"db.reset"})
	wantKind(t, err, service.ErrConflict, "broken")
}
