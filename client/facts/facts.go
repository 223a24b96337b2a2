package facts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/selector"
)

// Limits on what a machine reports (see the package documentation).
const (
	MaxFacts = 64       // facts a machine reports
	MaxBytes = 16 << 10 // bytes of their canonical form, "KEY=VALUE\n" a fact

	// DefaultExecTimeout is how long an executable in facts.d may run.
	DefaultExecTimeout = 10 * time.Second

	// maxSourceBytes bounds a *.facts file and an executable's output:
	// four times what all the facts together may hold.
	maxSourceBytes = 64 << 10
	// maxSourceProblems bounds the problems reported for one source, so
	// that a binary file does not flood the log with a problem a line.
	maxSourceProblems = 10
)

// Facts maps fact keys (without "fact.") to their values.
type Facts map[string]string

// canonical is the facts' canonical form: a "KEY=VALUE\n" line a fact,
// sorted by key. Keys hold no '=' and neither keys nor values a newline,
// so different facts never have the same canonical form.
func (f Facts) canonical() []byte {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b bytes.Buffer
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(f[k])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Hash is the SHA-256 of the canonical form, in lowercase hex: equal for
// equal facts, whatever order they were gathered in. Nil and empty Facts
// have the hash of no bytes.
func (f Facts) Hash() string {
	sum := sha256.Sum256(f.canonical())
	return hex.EncodeToString(sum[:])
}

// Check reports the first way f breaks the rules a machine's facts must
// follow (the keys in byte order): an invalid key or value
// (selector.CheckFact), more than MaxFacts facts, more than MaxBytes. It
// is what a server holds facts received from an agent to; Collect's
// result always passes.
func (f Facts) Check() error {
	if len(f) > MaxFacts {
		return fmt.Errorf("%d facts: at most %d", len(f), MaxFacts)
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	size := 0
	for _, k := range keys {
		if err := selector.CheckFact(k, f[k]); err != nil {
			return err
		}
		size += lineSize(k, f[k])
	}
	if size > MaxBytes {
		return fmt.Errorf("facts of %d bytes: at most %d", size, MaxBytes)
	}
	return nil
}

// lineSize is the size of a fact's line in the canonical form.
func lineSize(k, v string) int { return len(k) + len(v) + 2 }

// Problem is why a fact was left out, or a source gave none: a fact that
// could not be read, a malformed line, a failing executable, a limit.
type Problem struct {
	// Source is where: "built-in"; a file in facts.d, by its path; an
	// executable's output, "PATH (output)"; or `--fact "KEY=VALUE"`.
	Source string
	Line   int    // 1-based line in the file or output; 0 when none
	Key    string // the fact concerned, when known
	Err    error  // what is wrong
}

// Error formats the problem as "SOURCE:LINE: what" or "SOURCE: what".
func (p Problem) Error() string {
	where := p.Source
	if p.Line > 0 {
		where += ":" + strconv.Itoa(p.Line)
	}
	return where + ": " + p.Err.Error()
}

// Options says where Collect finds facts. The zero Options gathers the
// built-in facts of the machine (but agent_version).
type Options struct {
	// StateDir is the agent's state directory; custom facts are read from
	// its facts.d. Empty: none are.
	StateDir string
	// Flags are the --fact values, KEY=VALUE each, in the order given.
	Flags []string
	// AgentVersion is the agent_version fact; empty: none is reported.
	AgentVersion string
	// OSRelease is the os-release file os_id and os_version come from.
	// Empty: /etc/os-release, else /usr/lib/os-release (os-release(5));
	// that neither exists is a problem on Linux only.
	OSRelease string
	// ProcDir is where the Linux proc file system is, for kernel and
	// memory_bytes. Empty: /proc on Linux; elsewhere those facts are not
	// reported.
	ProcDir string
	// Hostname returns the hostname fact; nil: os.Hostname.
	Hostname func() (string, error)
	// ExecTimeout is how long an executable in facts.d may run;
	// 0: DefaultExecTimeout.
	ExecTimeout time.Duration
}

// origin is a fact's value and where it came from, for the problems of
// the limits.
type origin struct {
	value  string
	source string
	line   int
}

// collector gathers facts from the sources in order of precedence: a
// later set of a key replaces an earlier one.
type collector struct {
	facts    map[string]origin
	problems []Problem
}

func (c *collector) problem(source string, line int, key string, err error) {
	c.problems = append(c.problems, Problem{Source: source, Line: line, Key: key, Err: err})
}

// Collect gathers the machine's facts: the built-in ones, then facts.d's,
// then the flags', a later source overriding an earlier one (see the
// package documentation). It never fails as a whole: what it could not
// read or had to leave out is in the problems, in the order of the
// sources, for the caller to log. Cancelling ctx kills the executables
// still running, whose facts are then left out.
func Collect(ctx context.Context, o Options) (Facts, []Problem) {
	c := &collector{facts: make(map[string]origin)}
	c.builtins(o)
	c.factsDir(ctx, o)
	c.flags(o.Flags)
	return c.limit(), c.problems
}

// limit keeps the facts within MaxFacts and MaxBytes: it takes them in a
// fixed order, the built-in keys first, and leaves out each that would
// break a limit.
func (c *collector) limit() Facts {
	keys := make([]string, 0, len(c.facts))
	for _, k := range builtinKeys {
		if _, ok := c.facts[k]; ok {
			keys = append(keys, k)
		}
	}
	rest := len(keys)
	for k := range c.facts {
		if !slices.Contains(builtinKeys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[rest:])

	f := make(Facts, min(len(keys), MaxFacts))
	size := 0
	for _, k := range keys {
		o := c.facts[k]
		n := lineSize(k, o.value)
		switch {
		case len(f) == MaxFacts:
			c.problem(o.source, o.line, k, fmt.Errorf("fact %q left out: more than %d facts", k, MaxFacts))
		case size+n > MaxBytes:
			c.problem(o.source, o.line, k, fmt.Errorf("fact %q left out: the facts would be more than %d bytes", k, MaxBytes))
		default:
			f[k] = o.value
			size += n
		}
	}
	return f
}
