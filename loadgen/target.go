package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/server"
)

// target is the server under load.
type target struct {
	kind    string // spawned, in-process, remote
	url     string
	backend string
	token   string
	roots   *x509.CertPool
	meter   meter // nil when the server's resources are unknown
	scope   string
	stop    func() error
	cleanup func()
	exited  chan error  // spawned: the child's exit
	logs    *tailBuffer // spawned: the end of the child's output
}

// meter samples a process's CPU time and resident memory.
type meter interface {
	sample() (usage, bool)
	// resetPeak makes the peak start again from the current resident set;
	// false when it cannot.
	resetPeak() bool
}

// usage is one sample of a process.
type usage struct {
	cpu  time.Duration // user + system since the process started
	peak int64         // the largest resident set (since the start or the last reset), bytes
	rss  int64         // the resident set now, bytes (0: unknown)
}

// startTarget connects to o.Server or starts a server, with the backlog
// preloaded when it is local.
func (b *bench) startTarget(ctx context.Context) (*target, error) {
	if b.o.Server != "" {
		return &target{kind: "remote", url: b.o.Server, token: b.o.Token, roots: b.o.RootCAs,
			stop: func() error { return nil }, cleanup: func() {}}, nil
	}
	t := &target{cleanup: func() {}}
	dir := b.o.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "scirectl-bench-")
		if err != nil {
			return nil, err
		}
		dir = d
		t.cleanup = func() { os.RemoveAll(d) }
	}
	fail := func(err error) (*target, error) {
		t.cleanup()
		return nil, err
	}
	paths := datadir.Paths{Dir: dir}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	addr := ln.Addr().String()
	t.url = "https://" + addr + "/RPC2"
	dbURL := b.o.DB
	if dbURL == "" {
		dbURL = "sqlite://" + paths.DB()
	}
	t.backend = db.Redact(dbURL)
	// The data directory is prepared here, before the server starts, so
	// the backlog can be written straight into the store; it is made
	// private first, as serve would (datadir.CheckDataDir).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		ln.Close()
		return fail(err)
	}
	if _, err := datadir.CheckDataDir(paths); err != nil {
		ln.Close()
		return fail(err)
	}
	if err := datadir.EnsureTLS(paths, addr); err != nil {
		ln.Close()
		return fail(err)
	}
	store, err := db.Open(ctx, preloadURL(dbURL))
	if err != nil {
		ln.Close()
		return fail(err)
	}
	err = datadir.EnsureAdmin(ctx, store, paths)
	if err == nil && b.o.Pending > 0 {
		err = b.preloadStore(ctx, store)
	}
	if err == nil && b.o.Old > 0 {
		err = b.preloadOld(ctx, store)
	}
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		ln.Close()
		return fail(err)
	}
	tok, err := os.ReadFile(paths.AdminToken())
	if err != nil {
		ln.Close()
		return fail(err)
	}
	t.token = strings.TrimSpace(string(tok))
	if t.roots, err = pki.CertPool(paths.CACert()); err != nil {
		ln.Close()
		return fail(err)
	}
	if b.o.Spawn {
		ln.Close() // the child listens on the same address
		err = b.spawn(t, dir, dbURL, addr)
	} else {
		err = b.inProcess(ctx, t, dir, dbURL, ln)
	}
	if err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, t); err != nil {
		t.stop()
		return fail(err)
	}
	return t, nil
}

// preloadURL is the database URL used to write the backlog: for SQLite,
// without an fsync per commit (synchronous=normal, still crash-safe in WAL
// mode but for the last commits), since the backlog is setup, not measured.
// The server itself opens the URL as given.
func preloadURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "sqlite" {
		return raw
	}
	q := u.Query()
	if q.Get("synchronous") != "" {
		return raw
	}
	q.Set("synchronous", "normal")
	u.RawQuery = q.Encode()
	return u.String()
}

func (b *bench) inProcess(ctx context.Context, t *target, dir, dbURL string, ln net.Listener) error {
	logw := b.o.ServerLog
	if logw == nil {
		logw = io.Discard
	}
	// Created under the label too: the goroutines it starts (the store's
	// committer, say) are the server's.
	var s *server.Server
	var err error
	var retain time.Duration
	if b.o.Retain != "" {
		if retain, _ = api.ParseRetention(b.o.Retain); retain == 0 {
			retain = -1 // off
		}
	}
	pprof.Do(ctx, pprof.Labels("role", "server"), func(ctx context.Context) {
		s, err = server.New(ctx, server.Config{
			DataDir: dir, DB: dbURL, Listener: ln, Listen: ln.Addr().String(), Version: "bench", Retain: retain,
			Log: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
	})
	if err != nil {
		ln.Close()
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go pprof.Do(sctx, pprof.Labels("role", "server"), func(ctx context.Context) { done <- s.Serve(ctx) })
	t.kind = "in-process"
	t.meter = selfMeter{}
	t.scope = "the bench process: server and load generator together (use spawn for the server alone)"
	t.stop = func() error {
		cancel()
		return <-done
	}
	return nil
}

// spawn runs "Executable serve" on dir as a child process.
func (b *bench) spawn(t *target, dir, dbURL, addr string) error {
	exe := b.o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("spawn server: %w", err)
		}
	}
	args := []string{"serve", "--data-dir", dir, "--db", dbURL, "--listen", addr, "--log-level", "warn"}
	if b.o.Retain != "" {
		args = append(args, "--retain", b.o.Retain)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), b.o.Env...)
	logs := &tailBuffer{max: 64 << 10}
	var w io.Writer = logs
	if b.o.ServerLog != nil {
		w = io.MultiWriter(logs, b.o.ServerLog)
	}
	cmd.Stdout, cmd.Stderr = w, w
	childAttrs(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("spawn server %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	var stopErr error
	t.kind = "spawned"
	t.meter = procMeter{pid: cmd.Process.Pid}
	t.scope = fmt.Sprintf("the server process alone (%s serve, pid %d)", filepath.Base(exe), cmd.Process.Pid)
	t.exited = exited
	t.logs = logs
	t.stop = func() error {
		once.Do(func() {
			select {
			case err := <-exited: // died before we asked
				stopErr = fmt.Errorf("server exited early: %v\n%s", err, logs.String())
				return
			default:
			}
			_ = interrupt(cmd.Process)
			select {
			case err := <-exited:
				if err != nil {
					stopErr = fmt.Errorf("server: %v\n%s", err, logs.String())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				<-exited
				stopErr = errors.New("server did not stop within 60s of SIGINT: killed")
			}
		})
		return stopErr
	}
	return nil
}

// waitReady calls the server until it answers (a spawned one must start,
// recover and listen first).
func waitReady(ctx context.Context, t *target) error {
	c, err := client.New(client.Options{Servers: []string{t.url}, RootCAs: t.roots, Token: t.token, Timeout: 5 * time.Second, UserAgent: "scirectl-bench"})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var methods []string
		err := c.Call(ctx, "system.listMethods", &methods)
		if err == nil {
			return nil
		}
		if t.exited != nil {
			select {
			case werr := <-t.exited:
				t.exited <- werr // for stop
				return fmt.Errorf("server exited at start (%v):\n%s", werr, t.logs.String())
			default:
			}
		}
		if t.kind == "remote" || time.Now().After(deadline) {
			return fmt.Errorf("server %s does not answer: %w", t.url, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}

// preloadStore writes the backlog straight into the store: Pending jobs,
// each with one pending run for an active client that never polls.
func (b *bench) preloadStore(ctx context.Context, store db.Store) error {
	start := time.Now()
	fp := make([]byte, 32)
	if _, err := rand.Read(fp); err != nil {
		return err
	}
	name := "bench-idle-" + b.runID
	c, err := store.RegisterClient(ctx, db.ClientRegistration{Fingerprint: hex.EncodeToString(fp), Name: name,
		Hostname: name, OS: "none", Arch: "none", Version: "bench", Mode: db.ModePoll, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("preload: idle client: %w", err)
	}
	if _, err := store.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
		return fmt.Errorf("preload: idle client: %w", err)
	}
	var next, done atomic.Int64
	stopProgress := b.every(5*time.Second, func() {
		b.printf("preloading the backlog: %d/%d jobs (%s)", done.Load(), b.o.Pending, time.Since(start).Round(time.Second))
	})
	defer stopProgress()
	const workers = 4
	errc := make(chan error, workers)
	for range workers {
		go func() {
			for {
				if next.Add(1) > int64(b.o.Pending) {
					errc <- nil
					return
				}
				_, err := store.SubmitJob(ctx, db.NewJob{Name: "bench-backlog", Permission: "run", Interpreter: "/bin/sh",
					Script: "true", SubmittedBy: "admin", CreatedAt: time.Now().UTC(), Targets: []string{name}, ClientIDs: []int64{c.ID}})
				if err != nil {
					errc <- fmt.Errorf("preload: %w", err)
					return
				}
				done.Add(1)
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errc; err != nil && first == nil {
			first = err
			next.Store(int64(b.o.Pending)) // stop the others
		}
	}
	b.res.PreloadSeconds = time.Since(start).Seconds()
	if first == nil {
		b.printf("preloaded %d backlog jobs in %s", b.o.Pending, time.Since(start).Round(time.Millisecond))
	}
	return first
}
