package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOneServePerSQLiteDatabase: a second `scirectl serve` on the data
// directory of a running one exits non-zero at once, naming the first by
// its pid; so do the commands that would write the database behind its
// back. SIGKILL of the first leaves no stale lock: a new serve starts.
func TestOneServePerSQLiteDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first := startServer(t, dir)
	want := fmt.Sprintf("scirectl serve (pid %d) holds %s: stop it first", first.cmd.Process.Pid, filepath.Join(dir, "scire.db"))

	second := start(t, nil, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	var err error
	select {
	case err = <-second.done:
		second.done <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("a second serve on the same data directory is still running:\n%s", second.log.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(second.log.String(), want) {
		t.Fatalf("second serve: %v, output:\n%s\nwant a non-zero exit saying %q", err, second.log.String(), want)
	}
	if strings.Contains(second.log.String(), "msg=serving") {
		t.Fatal("the second serve served")
	}

	for _, args := range [][]string{{"db", "migrate", "--offline", "--force"}, {"recover"}} {
		if _, errOut, code := first.cli(t, "", args...); code != 16 || !strings.Contains(errOut, want[:strings.Index(want, ":")]) {
			t.Fatalf("%v while serving: exit %d, %q; want 16 naming the server", args, code, errOut)
		}
	}

	// The first one dies without a chance to clean up: the kernel dropped
	// its lock, and a new serve starts on the same database.
	killNine(t, first.proc)
	third := startServer(t, dir)
	if _, errOut, code := third.cli(t, "", "job", "list"); code != 0 {
		t.Fatalf("job list on the new server: exit %d, %s", code, errOut)
	}
	third.stop(t)
}
