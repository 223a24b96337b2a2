// Package lockfile holds an exclusive, advisory OS lock on a file for as
// long as a process lives: flock(2) on Unix systems. The kernel drops the
// lock when the holder closes the file or dies in any way (SIGKILL, a
// crash, the machine going down), so a lock is never left stale; the file
// itself stays, holding the holder's pid and what it is, for the message
// of the process refused.
//
// scirectl uses it so that one SQLite database is opened by one daemon at
// a time (server.LockDatabase).
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Lock is a held lock; Release gives it back.
type Lock struct {
	f    *os.File
	path string
}

// HeldError is returned by Acquire when another process (or another
// Acquire in this one) holds the lock. PID and Who are what the holder
// wrote into the file; PID is 0 when it could not be read (the holder has
// not written it yet, or the file is foreign).
type HeldError struct {
	Path string
	PID  int
	Who  string
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%s holds the lock %s", e.Holder(), e.Path)
}

// Holder names the holder: "scirectl serve (pid 1234)", or "another
// process" when the file does not say.
func (e *HeldError) Holder() string {
	who := e.Who
	if who == "" {
		who = "another process"
	}
	if e.PID > 0 {
		return fmt.Sprintf("%s (pid %d)", who, e.PID)
	}
	return who
}

// ErrUnsupported: this system has no lock Acquire can take.
var ErrUnsupported = errors.New("file locks are not supported on this system")

// Acquire creates path if needed (mode 0600) and takes its lock without
// waiting. On success it writes this process's pid and who ("scirectl
// serve") into the file. When the lock is held it returns a *HeldError.
func Acquire(path, who string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	held, err := lock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if held {
		he := &HeldError{Path: path}
		if b, err := os.ReadFile(path); err == nil {
			he.PID, he.Who = parse(string(b))
		}
		f.Close()
		return nil, he
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"+who+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// parse reads "PID\nWHO\n".
func parse(s string) (int, string) {
	pidLine, who, _ := strings.Cut(s, "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(pidLine))
	if err != nil || pid <= 0 {
		return 0, ""
	}
	return pid, strings.TrimSpace(who)
}

// Path is the lock file's path.
func (l *Lock) Path() string { return l.path }

// Release gives the lock back. The file stays: removing it would let a
// process that opened it just before lock a file no longer there while a
// third one locks a new one. Release on nil or twice does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the descriptor drops the flock
	l.f = nil
	return err
}
