package commands

import (
	"os"
	"testing"
)

// TestMain keeps the tests away from the developer's own settings: no
// SCIRE_* variable (but SCIRE_REQUIRE_ALL) and an empty XDG_CONFIG_HOME, so
// ~/.config/scirectl/config.yaml is never read.
func TestMain(m *testing.M) {
	for _, k := range []string{"SCIRE_SERVER", "SCIRE_TOKEN", "SCIRE_TOKEN_FILE", "SCIRE_CA", "SCIRE_DATA_DIR",
		"SCIRE_OUTPUT", "SCIRE_NO_WAIT", "SCIRE_CONFIG"} {
		os.Unsetenv(k)
	}
	dir, err := os.MkdirTemp("", "scirectl-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
