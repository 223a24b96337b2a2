package blacklist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Load reads and parses the blacklist at path (see Parse). A missing file is
// the empty list, not an error: a fresh data directory has no blacklist and
// denies nothing. Any other read error is returned with the path, and a file
// that does not parse is a *ParseError naming it, so the server can refuse to
// start with a message that says which file to fix.
func Load(path string, known []string) (*List, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &List{}, nil
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("blacklist: read %s: %w", path, err)
	}
	return Parse(path, data, known)
}

const header = `# scirectl blacklist: operations refused to everyone, in all circumstances
# (XML-RPC fault 405). The server reads this file at start and on SIGHUP.
#
# One operation name per line; '#' starts a comment. '*' matches any run of
# characters: "acl.*" denies every acl operation, "*" denies everything.
# A name that matches no operation stops the server at start, with the line.
#
# Edit it with "scirectl blacklist add|remove" (through the server, which
# rewrites this file and reloads it), or by hand while the server is down.
`

// Format returns the canonical file content for patterns: an explanatory
// header comment, then one pattern per line, sorted and without duplicates,
// so that files written by the tool are stable and diff well. The patterns
// must be valid (as from Parse or Validate); Write checks that.
func Format(patterns []string) []byte {
	ps := canonical(append([]string(nil), patterns...))
	var b strings.Builder
	b.WriteString(header)
	if len(ps) > 0 {
		b.WriteByte('\n')
	}
	for _, p := range ps {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Write replaces the blacklist at path with Format(patterns), atomically: the
// content goes to a temporary file in the same directory, is synced, renamed
// over path and the directory is synced, so a crash or a concurrent reader
// (the server reloading on SIGHUP) sees the old file or the new one, never a
// partial one. The file keeps its mode if it exists (0644 otherwise); if path
// is a symbolic link, its target is replaced and the link kept. Patterns are
// checked for syntax (not against the known operations: see Validate) so that
// Write never produces a file Parse cannot read.
func Write(path string, patterns []string) error {
	for _, p := range patterns {
		if reason, _ := checkSyntax(p); reason != "" {
			return fmt.Errorf("blacklist: %q: %s", p, reason)
		}
	}
	mode := fs.FileMode(0o644)
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(path)
			if err != nil {
				return fmt.Errorf("blacklist: write %s: %w", path, err)
			}
			path = target
			if fi, err = os.Stat(path); err != nil {
				return fmt.Errorf("blacklist: write %s: %w", path, err)
			}
		}
		mode = fi.Mode().Perm()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blacklist: write %s: %w", path, err)
	}
	if err := writeAtomic(path, Format(patterns), mode); err != nil {
		return fmt.Errorf("blacklist: write %s: %w", path, err)
	}
	return nil
}

func writeAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; Chmod is not subject to the umask.
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the rename durable. Windows cannot open a directory for
// syncing and needs no such step.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
