package testtool

import "testing"

func TestRequireFindsAProgram(t *testing.T) {
	if p := Require(t, "sh", ""); p == "" {
		t.Fatal("sh not found")
	}
}

func TestRequireFailsUnderRequireAll(t *testing.T) {
	t.Setenv("SCIRE_REQUIRE_ALL", "1")
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }()
		Require(ft, "no-such-program-scirectl", "apt-get install nothing")
	}()
	if !ft.failed || ft.skipped {
		t.Fatalf("failed %v, skipped %v; want a failure, not a skip", ft.failed, ft.skipped)
	}
}

type fakeT struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic("stop") }
func (f *fakeT) Skipf(string, ...any)  { f.skipped = true; panic("stop") }
