package blacklist

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Entry is one name or glob as written in the file. It keeps its position so
// that the refusal the server logs, and the output of `blacklist list`, can
// point the operator at the line to edit.
type Entry struct {
	Pattern string // as written, quotes and escapes removed
	Line    int    // 1-based line of the entry's first character
	Col     int    // 1-based column (in runes) of the entry's first character
}

// List is a parsed blacklist. It is immutable once built, so the server can
// share one among all requests and replace it wholesale on reload (for
// example through an atomic.Pointer). The zero value, and a nil *List, is the
// empty list that denies nothing — which is what a missing file means.
type List struct {
	entries []Entry
	match   []glob
	exact   map[string]int // literal pattern -> index of its first entry
	globs   []int          // indexes of entries holding '*', in file order
}

// newList indexes entries for Match.
func newList(entries []Entry) *List {
	l := &List{entries: entries, match: make([]glob, len(entries))}
	for i, e := range entries {
		l.match[i] = compileGlob(e.Pattern)
		if !strings.Contains(e.Pattern, "*") {
			if l.exact == nil {
				l.exact = make(map[string]int)
			}
			if _, dup := l.exact[e.Pattern]; !dup {
				l.exact[e.Pattern] = i
			}
		} else {
			l.globs = append(l.globs, i)
		}
	}
	return l
}

// Entries returns the entries in file order, duplicates included, so that a
// listing can show where each one is. The slice is a copy.
func (l *List) Entries() []Entry {
	if l == nil {
		return nil
	}
	return slices.Clone(l.entries)
}

// Match reports whether op is blacklisted and by which entry: the first one in
// file order that matches, so that the refusal the server logs names a line
// the operator can find. Matching is case-sensitive and '*' matches any run of
// characters, dots included.
func (l *List) Match(op string) (Entry, bool) {
	if l == nil {
		return Entry{}, false
	}
	first, ok := l.exact[op]
	if !ok {
		first = math.MaxInt
	}
	for _, i := range l.globs {
		if i > first {
			break
		}
		if l.match[i].match(op) {
			return l.entries[i], true
		}
	}
	if ok {
		return l.entries[first], true
	}
	return Entry{}, false
}

// Patterns returns the set of patterns, sorted and without duplicates: the
// canonical content Format writes, and the base that Add and Remove edit.
func (l *List) Patterns() []string {
	if l == nil {
		return []string{}
	}
	ps := make([]string, 0, len(l.entries))
	for _, e := range l.entries {
		ps = append(ps, e.Pattern)
	}
	return canonical(ps)
}

// canonical sorts and deduplicates ps in place.
func canonical(ps []string) []string {
	slices.Sort(ps)
	return slices.Compact(ps)
}

// Add returns l's patterns with patterns added: the set to hand to Write for
// `blacklist add`. Adding a pattern already present is not an error (the
// operator's intent, "this is denied", holds). Add does not check the
// patterns; call Validate on each first so that the file Write produces
// loads again.
func Add(l *List, patterns ...string) []string {
	ps := append(l.Patterns(), patterns...)
	return canonical(ps)
}

// ErrNotListed is wrapped by Remove's error when a pattern is not in the
// blacklist, so that the server can answer "not found" rather than "bad
// request".
var ErrNotListed = errors.New("not in the blacklist")

// Remove returns l's patterns without patterns: the set to hand to Write for
// `blacklist remove`. Patterns are removed by their exact text, not by
// matching: removing "acl.add" does not touch "acl.*". A pattern that is not
// in the list is an error (wrapping ErrNotListed) that names it — and the
// entry that still denies it, if any — because a silent no-op would let the
// operator believe the operation is allowed again. On error nothing is
// removed.
func Remove(l *List, patterns ...string) ([]string, error) {
	cur := l.Patterns()
	drop := make(map[string]bool, len(patterns))
	for _, p := range patterns {
		if _, found := slices.BinarySearch(cur, p); !found {
			if e, denied := l.Match(p); denied {
				return nil, fmt.Errorf("blacklist: %q: %w (it is denied by %q at line %d)", p, ErrNotListed, e.Pattern, e.Line)
			}
			return nil, fmt.Errorf("blacklist: %q: %w", p, ErrNotListed)
		}
		drop[p] = true
	}
	out := cur[:0:0]
	for _, p := range cur {
		if !drop[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

// Validate checks one pattern given on the command line or over XML-RPC
// (`blacklist add`, `blacklist check`) by the same rules as an entry in the
// file: valid characters, and at least one known operation matched. It exists
// so that a typo is refused when it is added, with the same message (and
// "did you mean" hint) that Parse would give at the next start, instead of
// being written to a file the server then refuses to load.
func Validate(pattern string, known []string) error {
	if reason, _ := checkSyntax(pattern); reason != "" {
		return fmt.Errorf("%q: %s", pattern, reason)
	}
	if reason := checkKnown(pattern, known); reason != "" {
		return errors.New(reason)
	}
	return nil
}

// isNameRune reports whether r may appear in an operation name or pattern.
// The set is narrow on purpose: it covers every operation name, keeps the
// line form unambiguous (no blanks, no '#') and lets Format write any pattern
// Parse accepted without quoting.
func isNameRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '.' || r == '_' || r == '-' || r == '@' || r == '*'
}

// checkSyntax returns why pattern is not a valid name or glob, and the index
// in runes of the offending character; "" if it is valid.
func checkSyntax(pattern string) (reason string, at int) {
	if pattern == "" {
		return "empty operation name", 0
	}
	i := 0
	for _, r := range pattern {
		if !isNameRune(r) {
			return invalidChar(r), i
		}
		i++
	}
	return "", 0
}

func invalidChar(r rune) string {
	return fmt.Sprintf("invalid character %q in operation name", r)
}

// checkKnown returns why pattern matches none of known, with a hint, or "" if
// it matches one.
func checkKnown(pattern string, known []string) string {
	g := compileGlob(pattern)
	for _, k := range known {
		if g.match(k) {
			return ""
		}
	}
	msg := fmt.Sprintf("unknown operation %q (matches no operation)", pattern)
	if hint := closest(pattern, known); hint != "" {
		msg += "; did you mean " + hint + "?"
	}
	return msg
}

// closest returns the known name a mistyped literal pattern most likely
// meant: one that differs only in case, else the nearest within edit distance
// 2 (ties go to the alphabetically first, so the message is stable). Globs
// get no hint: the distance to a glob says little.
func closest(pattern string, known []string) string {
	if strings.Contains(pattern, "*") {
		return ""
	}
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, pattern) {
			return k
		}
	}
	for _, k := range known {
		if d := editDistance(pattern, k, bestD); d < bestD || d == bestD && d <= 2 && k < best {
			best, bestD = k, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance between a and b
// (insertions, deletions, substitutions and swaps of adjacent characters each
// cost 1), in bytes, which is exact for the ASCII names it is used on. It
// returns limit+1 at once when the lengths alone rule out limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// glob is a compiled pattern: the literal parts between its '*'s.
type glob struct {
	parts []string // one part: a literal name; n parts: n-1 stars between them
}

func compileGlob(p string) glob { return glob{parts: strings.Split(p, "*")} }

// match reports whether s matches the glob. Anchoring the first and last parts
// and taking each middle part at its leftmost occurrence is exact for '*'-only
// globs and runs in linear time, so no pattern can make Match slow.
func (g glob) match(s string) bool {
	n := len(g.parts)
	if n == 1 {
		return s == g.parts[0]
	}
	first, last := g.parts[0], g.parts[n-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range g.parts[1 : n-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// Matches reports whether pattern (an operation name or * glob) denies
// the operation op, for tools that show what each entry covers.
func Matches(pattern, op string) bool { return compileGlob(pattern).match(op) }
