package blacklist

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadMissing(t *testing.T) {
	l, err := Load(filepath.Join(t.TempDir(), "blacklist"), known)
	if err != nil {
		t.Fatal(err)
	}
	if l == nil || len(l.Entries()) != 0 {
		t.Fatalf("missing file: %v", l)
	}
	if _, ok := l.Match("db.reset"); ok {
		t.Error("missing file denies")
	}
	// A missing directory too: the data dir may not have been created yet.
	if _, err := Load(filepath.Join(t.TempDir(), "no", "blacklist"), known); err != nil {
		t.Error(err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blacklist")
	if err := os.WriteFile(path, []byte("% RefactorErl style\n[job.submit, 'db.reset'].\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Load(path, known)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Patterns(); !reflect.DeepEqual(got, []string{"db.reset", "job.submit"}) {
		t.Errorf("Patterns = %v", got)
	}
}

func TestLoadParseError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blacklist")
	if err := os.WriteFile(path, []byte("job.submit\ndb.rest\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, known)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != path || pe.Line != 2 || pe.Col != 1 {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasPrefix(err.Error(), path+":2:1: unknown operation") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadReadError(t *testing.T) {
	path := t.TempDir() // a directory cannot be read as a file
	_, err := Load(path, known)
	if err == nil {
		t.Fatal("no error reading a directory")
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		t.Errorf("read error reported as a parse error: %v", err)
	}
	if want := "blacklist: read " + path + ": "; !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), path) != 1 {
		t.Errorf("err = %q, want it to start with %q and name the path once", err, want)
	}
}

func TestFormat(t *testing.T) {
	out := string(Format([]string{"job.submit", "acl.*", "job.submit", "*"}))
	if !strings.HasPrefix(out, "# scirectl blacklist") {
		t.Errorf("no header:\n%s", out)
	}
	if !strings.HasSuffix(out, "\n\n*\nacl.*\njob.submit\n") {
		t.Errorf("patterns not sorted one per line after a blank line:\n%s", out)
	}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !isPattern(line) {
			t.Errorf("line %d %q is neither comment nor pattern", i+1, line)
		}
	}
	l, err := Parse("bl", []byte(out), known)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Patterns(); !reflect.DeepEqual(got, []string{"*", "acl.*", "job.submit"}) {
		t.Errorf("round trip = %v", got)
	}

	empty := Format(nil)
	l, err = Parse("bl", empty, known)
	if err != nil || len(l.Entries()) != 0 {
		t.Errorf("Format(nil) = %q: %v, %v", empty, l, err)
	}
}

func isPattern(s string) bool { r, _ := checkSyntax(s); return r == "" }

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "blacklist")
	patterns := []string{"job.submit", "acl.*", "db.reset"}
	if err := Write(path, patterns); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file: %v, %v (want mode 0644)", fi.Mode(), err)
	}
	l, err := Load(path, known)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Patterns(); !reflect.DeepEqual(got, []string{"acl.*", "db.reset", "job.submit"}) {
		t.Errorf("round trip = %v", got)
	}

	// Rewriting keeps the operator's mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	next, err := Remove(l, "acl.*")
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(path, next); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after rewrite: %v, %v (want 0600)", fi.Mode(), err)
	}
	if l, err = Load(path, known); err != nil {
		t.Fatal(err)
	}
	if got := l.Patterns(); !reflect.DeepEqual(got, []string{"db.reset", "job.submit"}) {
		t.Errorf("after remove = %v", got)
	}

	// No temporary file is left behind.
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0].Name() != "blacklist" {
		t.Errorf("directory holds %v", names)
	}

	// An empty set writes a file that loads as the empty list.
	if err := Write(path, nil); err != nil {
		t.Fatal(err)
	}
	if l, err = Load(path, known); err != nil || len(l.Entries()) != 0 {
		t.Errorf("empty: %v, %v", l, err)
	}
}

func TestWriteRefusesInvalidPattern(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blacklist")
	if err := Write(path, []string{"job.submit"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for _, bad := range []string{"job.submit\ndb.reset", "a b", "", "x#y"} {
		err := Write(path, []string{"db.reset", bad})
		if err == nil || !strings.Contains(err.Error(), "operation name") {
			t.Errorf("Write(%q) = %v", bad, err)
		}
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("a refused Write changed the file")
	}
}

func TestWriteSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "etc-blacklist")
	if err := os.WriteFile(target, []byte("job.submit\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "blacklist")
	if err := os.Symlink(target, link); err != nil {
		t.Skip("no symlinks:", err)
	}
	if err := Write(link, []string{"db.reset"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v, %v", fi, err)
	}
	fi, err := os.Stat(target)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("target mode %v, %v (want 0640)", fi.Mode(), err)
	}
	l, err := Load(link, known)
	if err != nil || !reflect.DeepEqual(l.Patterns(), []string{"db.reset"}) {
		t.Errorf("through link: %v, %v", l, err)
	}
}

func TestWriteMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "blacklist")
	err := Write(path, []string{"job.submit"})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want one naming %s", err, path)
	}
}
