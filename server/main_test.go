package server

import (
	"testing"

	"github.com/scirectl/scirectl/internal/pgtest"
)

// TestMain stops the throwaway PostgreSQL server of the cluster tests
// (pgtest) when the tests end. Run as the child daemon of
// TestClusterLockDiesWithAKilledDaemon, the binary serves instead.
func TestMain(m *testing.M) {
	clusterHelperMain()
	pgtest.Main(m)
}
