// Package testtool holds what the test suites of several packages share:
// finding the external tools some tests drive (python3 for the interop
// tests, xmllint for the schemas). A missing tool skips the test on a
// developer's machine, and fails it where SCIRE_REQUIRE_ALL is set (CI),
// so a suite is never skipped there without anyone noticing.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of the program name, skipping the test when it
// is not installed — or failing it under SCIRE_REQUIRE_ALL. install says
// how to get it ("apt-get install libxml2-utils"), for the message.
func Require(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if install != "" {
		install = ": " + install
	}
	if os.Getenv("SCIRE_REQUIRE_ALL") != "" {
		t.Fatalf("%s is required (SCIRE_REQUIRE_ALL is set) but not found%s", name, install)
	}
	t.Skipf("%s not installed%s", name, install)
	return ""
}
