package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/scirectl/scirectl/db"
	_ "github.com/scirectl/scirectl/db/sqlite"
	"github.com/scirectl/scirectl/db/storetest"
)

func open(t *testing.T) db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestReopenKeepsDataAndFileIsPrivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "scire.db")
	s, err := db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureUser(ctx, "admin"); err != nil {
		t.Fatal(err)
	}
	// While the store is open, its log and shared-memory files exist too:
	// SQLite gives them the database's mode, so it must be private before
	// they are created (they were 0644 under the usual umask).
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("db file mode = %v, want 0600", fi.Mode().Perm())
	}
	s, err = db.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	u, err := s.EnsureUser(ctx, "admin")
	if err != nil || u.ID != 1 {
		t.Fatalf("user after reopen = %+v, %v", u, err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"mysql://x", "sqlite://", "sqlite:///tmp/x.db?synchronous=off"} {
		if s, err := db.Open(ctx, u); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

// A SQLite database has one daemon: no cluster-wide lock.
func TestNoClusterLock(t *testing.T) {
	if cl := open(t).ClusterLock(); cl != nil {
		t.Fatalf("ClusterLock() = %v, want nil", cl)
	}
}
