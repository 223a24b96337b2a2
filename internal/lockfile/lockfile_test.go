package lockfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquireExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "scire.db.lock")
	l, err := Acquire(path, "scirectl serve")
	if err != nil {
		t.Fatal(err)
	}
	// A second Acquire, even in this process, is refused and names the holder.
	_, err = Acquire(path, "scirectl db restore --offline")
	var he *HeldError
	if !errors.As(err, &he) || he.PID != os.Getpid() || he.Who != "scirectl serve" {
		t.Fatalf("second Acquire: %v (%+v); want held by scirectl serve, pid %d", err, he, os.Getpid())
	}
	if want := "scirectl serve (pid " + strconv.Itoa(os.Getpid()) + ") holds the lock " + path; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil { // twice: nothing
		t.Fatal(err)
	}
	l2, err := Acquire(path, "scirectl recover")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	defer l2.Release()
	if b, _ := os.ReadFile(path); string(b) != strconv.Itoa(os.Getpid())+"\nscirectl recover\n" {
		t.Fatalf("lock file holds %q", b)
	}
}

// TestLockDiesWithProcess: a lock held by a process that is SIGKILLed is
// free at once; while it lives, its pid is named.
func TestLockDiesWithProcess(t *testing.T) {
	if os.Getenv("LOCKFILE_HOLD") != "" {
		if _, err := Acquire(os.Getenv("LOCKFILE_HOLD"), "holder"); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLockDiesWithProcess$")
	cmd.Env = append(os.Environ(), "LOCKFILE_HOLD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 64)
	n, _ := out.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "locked") {
		t.Fatalf("holder said %q", buf[:n])
	}
	_, err = Acquire(path, "second")
	var he *HeldError
	if !errors.As(err, &he) || he.PID != cmd.Process.Pid || he.Who != "holder" {
		t.Fatalf("Acquire while the holder lives: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(path, "second")
	if err != nil {
		t.Fatalf("Acquire after SIGKILL of the holder: %v", err)
	}
	l.Release()
}

func TestHeldErrorWithoutPID(t *testing.T) {
	he := &HeldError{Path: "/x.lock"}
	if he.Error() != "another process holds the lock /x.lock" {
		t.Fatal(he.Error())
	}
}
