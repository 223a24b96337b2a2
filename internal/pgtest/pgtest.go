// Package pgtest gives tests a throwaway PostgreSQL server: Start returns
// the URL of a fresh, empty database on a server that the test binary
// starts once, on first use, and shares between its tests.
//
// The server is a new cluster (initdb) in a temporary directory, listening
// on a free port of 127.0.0.1 and on a Unix socket in that directory, with
// trust authentication for the superuser "postgres" and the server's
// default settings otherwise. Its binaries are found in $SCIRE_PG_BINDIR,
// else the newest /usr/lib/postgresql/*/bin (Debian's postgresql package),
// else PATH. initdb and postgres refuse to run as root: when the test runs
// as root they run as the "postgres" system user (or "nobody"), and the
// temporary directory is theirs.
//
// Use Main in the package's TestMain so that the server is stopped and its
// directory removed when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without it the server still dies with the test binary (it gets a parent
// death signal), but its directory stays behind in the temporary directory.
//
// When no PostgreSQL is installed, Start skips the test, unless the
// environment variable SCIRE_REQUIRE_ALL is set (CI sets it): then the test
// fails and says how to install it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// server is the shared PostgreSQL server of the test binary.
type server struct {
	root     string // temporary directory: data/, the socket, log
	data     string
	port     int
	cmd      *exec.Cmd
	done     chan struct{} // closed when postgres has exited
	adminURL string        // the "postgres" database
	logPath  string
}

var (
	mu      sync.Mutex
	srv     *server
	srvErr  error
	tried   bool
	dbSeq   atomic.Int64
	createM sync.Mutex // CREATE DATABASE one at a time
)

// Start returns the URL (postgres://postgres@127.0.0.1:PORT/NAME) of a new,
// empty database on the shared server, starting the server on first use.
// The database is dropped when the test ends.
func Start(t testing.TB) string {
	t.Helper()
	s, err := shared()
	if err != nil {
		var nf *notFoundError
		if errors.As(err, &nf) {
			if os.Getenv("SCIRE_REQUIRE_ALL") != "" {
				t.Fatalf("pgtest: %v. SCIRE_REQUIRE_ALL is set, so PostgreSQL tests may not be skipped: "+
					"install the server (Debian/Ubuntu: apt-get install postgresql) or point SCIRE_PG_BINDIR at its bin directory", err)
			}
			t.Skipf("pgtest: %v (install postgresql to run this test; set SCIRE_REQUIRE_ALL to make this a failure)", err)
		}
		t.Fatalf("pgtest: %v", err)
	}
	name := fmt.Sprintf("scire_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.url(name)
}

// Main runs the tests, stops the server if one was started, removes its
// directory and exits with the tests' exit code.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Stop stops the shared server and removes its directory. A later Start
// starts a new one.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	s := srv
	srv, srvErr, tried = nil, nil, false
	if s == nil {
		return nil
	}
	return s.stop()
}

func (s *server) url(dbname string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path: "/" + dbname, RawQuery: "sslmode=disable"}
	return u.String()
}

func (s *server) exec(ctx context.Context, sql string) error {
	createM.Lock()
	defer createM.Unlock()
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// shared starts the server once; a failure is remembered and reported to
// every test.
func shared() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if !tried {
		tried = true
		srv, srvErr = start()
	}
	return srv, srvErr
}

// notFoundError says PostgreSQL is not installed.
type notFoundError struct{ looked string }

func (e *notFoundError) Error() string {
	return "PostgreSQL server binaries (initdb, postgres) not found in " + e.looked
}

// BinDir finds the directory of initdb and postgres.
func BinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("SCIRE_PG_BINDIR"); d != "" {
		if has(d) {
			return d, nil
		}
		return "", &notFoundError{"$SCIRE_PG_BINDIR (" + d + ")"}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first: 9.6 < 10 < 15.
	version := func(d string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(d)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); has(d) {
			return d, nil
		}
	}
	return "", &notFoundError{"/usr/lib/postgresql/*/bin or PATH"}
}

// account is who runs initdb and postgres: nil for the current user.
type account struct {
	name     string
	uid, gid uint32
}

func runAs() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New(`running as root, and neither the "postgres" nor the "nobody" user exists to run PostgreSQL as (initdb refuses root)`)
}

// tempBase picks a directory for the server's files that acc can reach:
// every ancestor must be searchable by others when the server runs as
// another user.
func tempBase(acc *account) string {
	cands := []string{os.TempDir()}
	if acc == nil {
		return cands[0]
	}
	cands = append(cands, "/tmp", "/var/tmp", "/dev/shm")
	for _, c := range cands {
		if reachable(c) {
			return c
		}
	}
	return cands[0]
}

func reachable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

// removeStale removes the directories of servers whose test binary was
// killed before it could remove them: older than an hour, with no live
// postmaster.
func removeStale(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "scire-pgtest-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
			if err := syscall.Kill(pid, 0); pid > 0 && (err == nil || errors.Is(err, syscall.EPERM)) {
				continue // still running
			}
		}
		os.RemoveAll(d)
	}
}

func command(acc *account, dir, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "PGTZ=UTC", "TZ=UTC", "HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if acc != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: acc.uid, Gid: acc.gid, Groups: []uint32{}}
	}
	return cmd
}

func start() (*server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	acc, err := runAs()
	if err != nil {
		return nil, err
	}
	base := tempBase(acc)
	removeStale(base)
	root, err := os.MkdirTemp(base, "scire-pgtest-")
	if err != nil {
		return nil, err
	}
	if acc != nil {
		if err := os.Chown(root, int(acc.uid), int(acc.gid)); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	s := &server{root: root, data: filepath.Join(root, "data"), logPath: filepath.Join(root, "postgres.log")}
	out, err := command(acc, root, filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--no-locale", "--no-sync").CombinedOutput()
	if err != nil {
		os.RemoveAll(root)
		who := "the current user"
		if acc != nil {
			who = "user " + acc.name
		}
		return nil, fmt.Errorf("initdb (as %s) in %s: %v\n%s", who, root, err, out)
	}
	var lastErr error
	for range 5 { // a free port may be taken before postgres binds it
		if lastErr = s.run(acc, bin); lastErr == nil {
			return s, nil
		}
	}
	os.RemoveAll(root)
	return nil, lastErr
}

// run starts postgres on a free port and waits until it accepts
// connections.
func (s *server) run(acc *account, bin string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.adminURL = s.url("postgres")
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := command(acc, s.root, filepath.Join(bin, "postgres"), "-D", s.data, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.root, "-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server dies with the test binary, however that ends. The signal
	// is tied to the thread that forks, so a thread is set aside for it
	// until the server exits.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
	s.cmd, s.done = cmd, make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread lives until the server exits
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.done)
			return
		}
		started <- nil
		cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.adminURL)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited at start (port %d): %s", s.port, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("postgres did not accept connections within a minute: %v; %s", err, s.logTail())
		}
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "log:\n" + string(b)
}

func (s *server) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// stop shuts the server down (fast shutdown: clients are disconnected) and
// removes its directory.
func (s *server) stop() error {
	var err error
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		err = errors.New("postgres did not stop within 30s: killed")
		s.kill()
	}
	return errors.Join(err, os.RemoveAll(s.root))
}
