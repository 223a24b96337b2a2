package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/internal/lockfile"
	"github.com/scirectl/scirectl/internal/testtool"
)

// TestOneServerPerSQLiteDatabase: a second server on the same SQLite
// database refuses to start, naming the holder, whatever data directory or
// spelling of the path it is given; once the first closes, it starts.
func TestOneServerPerSQLiteDatabase(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	first, err := New(ctx, Config{DataDir: dir, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(dir, "scire.db")
	if err := os.Symlink(dir, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("scirectl serve (pid %d) holds %s: stop it first", os.Getpid(), dbFile)
	for _, cfg := range []Config{
		{DataDir: dir},
		{DataDir: filepath.Join(base, "other"), DB: "sqlite://" + dbFile + "?synchronous=normal"},
		{DataDir: filepath.Join(base, "link")}, // the same file through a symbolic link
	} {
		cfg.Log = quiet
		_, err := New(ctx, cfg)
		var he *lockfile.HeldError
		if err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &he) {
			t.Fatalf("second server (%+v): %v; want %q", cfg, err, want)
		}
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := New(ctx, Config{DataDir: dir, Log: quiet})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	// Another SQLite file in the same data directory is another lock.
	third, err := New(ctx, Config{DataDir: dir, DB: "sqlite://" + filepath.Join(base, "b.db"), Log: quiet})
	if err != nil {
		t.Fatalf("a second database in the same data directory: %v", err)
	}
	third.Close()
	second.Close()
}

// TestServeReleasesLock: the lock lives as long as Serve.
func TestServeReleasesLock(t *testing.T) {
	h := newHarness(t)
	testtool.WaitFor(t, "the server to serve", h.srv.ready.Load)
	if _, err := New(context.Background(), Config{DataDir: h.paths.Dir, Log: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("a second server started while the first serves")
	}
	h.cancel()
	err := <-h.done
	h.done <- err // for the cleanup
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Config{DataDir: h.paths.Dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("after Serve returned: %v", err)
	}
	s.Close()
}
