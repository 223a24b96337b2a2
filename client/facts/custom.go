package facts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/scirectl/scirectl/selector"
)

// parseFact reads one KEY=VALUE, blanks around the key and the value
// dropped, and checks that a selector can name and compare it.
func parseFact(s string) (key, value string, err error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", errors.New("missing '=': write KEY=VALUE")
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if err := selector.CheckFact(k, v); err != nil {
		return "", "", err
	}
	return k, v, nil
}

// ParseFlag reads the value of one --fact flag, KEY=VALUE. The error names
// the flag's value and says what is wrong with it.
func ParseFlag(s string) (key, value string, err error) {
	key, value, err = parseFact(s)
	if err != nil {
		return "", "", fmt.Errorf("--fact %q: %w", s, err)
	}
	return key, value, nil
}

// ParseFlags reads the values of a repeated --fact flag, refusing any that
// ParseFlag refuses and a key given twice: what a command checks before
// the agent starts, so that a mistyped fact is a usage error rather than
// a line in the log.
func ParseFlags(flags []string) (Facts, error) {
	f := make(Facts, len(flags))
	first := make(map[string]string, len(flags))
	for _, s := range flags {
		k, v, err := ParseFlag(s)
		if err != nil {
			return nil, err
		}
		if prev, ok := first[k]; ok {
			return nil, fmt.Errorf("--fact %q: %s is also given by --fact %q", s, k, prev)
		}
		first[k] = s
		f[k] = v
	}
	return f, nil
}

// flags sets the --fact facts: each invalid one is a problem and left
// out; of a key given twice, the later wins.
func (c *collector) flags(flags []string) {
	first := make(map[string]string, len(flags))
	for _, s := range flags {
		source := fmt.Sprintf("--fact %q", s)
		k, v, err := parseFact(s)
		if err != nil {
			c.problem(source, 0, "", err)
			continue
		}
		if prev, ok := first[k]; ok {
			c.problem(source, 0, k, fmt.Errorf("%s is also given by --fact %q: the later wins", k, prev))
		}
		first[k] = s
		c.facts[k] = origin{value: v, source: source}
	}
}

// fact is a KEY=VALUE line of a file or an executable's output.
type fact struct {
	key, value string
	line       int
}

// sourceFacts is what one entry of facts.d gave: facts, problems, or
// both.
type sourceFacts struct {
	source   string // the Problem.Source of its lines
	facts    []fact
	problems []Problem
}

func (s *sourceFacts) problem(line int, key string, err error) {
	s.problems = append(s.problems, Problem{Source: s.source, Line: line, Key: key, Err: err})
}

// parseLines reads KEY=VALUE lines. Blank lines and those whose first
// non-blank character is '#' are skipped; a line that is not a valid
// fact is a problem and left out; of a key given twice, the later wins.
// Beyond maxSourceProblems, problems are counted in one more.
func parseLines(source string, text []byte) sourceFacts {
	s := sourceFacts{source: source}
	seen := make(map[string]int)
	more := 0
	report := func(line int, key string, err error) {
		if len(s.problems) < maxSourceProblems {
			s.problem(line, key, err)
		} else {
			more++
		}
	}
	n := 0
	for line := range strings.Lines(string(text)) {
		n++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, err := parseFact(line)
		if err != nil {
			report(n, "", err)
			continue
		}
		if prev, ok := seen[k]; ok {
			report(n, k, fmt.Errorf("%s is also on line %d: the later wins", k, prev))
		}
		seen[k] = n
		s.facts = append(s.facts, fact{key: k, value: v, line: n})
	}
	if more > 0 {
		s.problem(0, "", fmt.Errorf("%d more problems not shown", more))
	}
	return s
}

// factsDir gathers the facts of <StateDir>/facts.d: its *.facts files
// and what its executables print, applied in name order. The executables
// run concurrently. That there is no facts.d is no problem.
func (c *collector) factsDir(ctx context.Context, o Options) {
	if o.StateDir == "" {
		return
	}
	// Absolute: an executable runs in dir, where a relative path to it
	// would lead nowhere.
	dir, err := filepath.Abs(filepath.Join(o.StateDir, "facts.d"))
	if err != nil {
		c.problem(filepath.Join(o.StateDir, "facts.d"), 0, "", err)
		return
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		// ReadDir returns what it read before the error: use that.
		c.problem(dir, 0, "", unwrapPath(err))
	}
	timeout := o.ExecTimeout
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}

	results := make([]sourceFacts, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path) // follows symbolic links
		switch {
		case err != nil:
			results[i] = sourceFacts{source: path}
			results[i].problem(0, "", unwrapPath(err))
		case st.IsDir():
		case !st.Mode().IsRegular():
			results[i] = sourceFacts{source: path}
			results[i].problem(0, "", errors.New("not a regular file: skipped"))
		case strings.HasSuffix(name, ".facts"):
			results[i] = readFactsFile(path)
		case st.Mode()&0o111 != 0:
			wg.Go(func() { results[i] = runFactsExec(ctx, path, dir, timeout) })
		default:
			results[i] = sourceFacts{source: path}
			results[i].problem(0, "", errors.New("neither a *.facts file nor executable (chmod +x?): skipped"))
		}
	}
	wg.Wait()
	for _, r := range results {
		c.problems = append(c.problems, r.problems...)
		for _, f := range r.facts {
			c.facts[f.key] = origin{value: f.value, source: r.source, line: f.line}
		}
	}
}

// readFactsFile reads a *.facts file of at most maxSourceBytes.
func readFactsFile(path string) sourceFacts {
	f, err := os.Open(path)
	if err != nil {
		s := sourceFacts{source: path}
		s.problem(0, "", unwrapPath(err))
		return s
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSourceBytes+1))
	if err == nil && len(b) > maxSourceBytes {
		err = fmt.Errorf("larger than %d bytes: no facts read", maxSourceBytes)
	}
	if err != nil {
		s := sourceFacts{source: path}
		s.problem(0, "", unwrapPath(err))
		return s
	}
	return parseLines(path, b)
}

// unwrapPath drops the path from a *fs.PathError, which the problem names
// already: "open: permission denied".
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
