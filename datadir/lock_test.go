package datadir

import "testing"

func TestDatabaseLockPath(t *testing.T) {
	dir := t.TempDir()
	for u, want := range map[string]string{
		"sqlite://" + dir + "/scire.db":              dir + "/scire.db.lock",
		"sqlite://" + dir + "/x.db?synchronous=full": dir + "/x.db.lock",
		"postgres://scire@db1/scire":                 "",
	} {
		if got, err := DatabaseLockPath(u); err != nil || got != want {
			t.Errorf("DatabaseLockPath(%q) = %q, %v; want %q", u, got, err, want)
		}
	}
}
