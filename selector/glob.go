package selector

import (
	"strings"
	"unicode/utf8"
)

// IsGlob reports whether s holds a wildcard, '*' or '?', and so is a
// pattern for MatchName rather than a name. Client names may hold both
// characters (they are data, docs/limits.md), so a command should look a
// target up as a name first and treat it as a pattern only when no client
// has that name.
func IsGlob(s string) bool { return strings.ContainsAny(s, "*?") }

// MatchName reports whether a client name matches a --target pattern.
// '*' matches any run of characters, the empty one included, and '?'
// exactly one character; every other character, '/', '[' and the
// backslash included, matches itself, case-sensitively. This is
// path.Match without its special cases: client names are not paths, and
// a '[' or a backslash in a name must not make the pattern that names it
// malformed. A pattern without wildcards matches that name alone.
//
// It takes time proportional to len(pattern)*len(name) at worst, without
// allocating, so it can be run over every client.
func MatchName(pattern, name string) bool {
	p, n := 0, 0
	// Where to resume after the last '*': the pattern just after it, and
	// the name from where that '*' would match one more character.
	star, resume := -1, 0
	for p < len(pattern) || n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				star, resume = p, n
				p++
				continue
			case '?':
				if n < len(name) {
					_, w := utf8.DecodeRuneInString(name[n:])
					p, n = p+1, n+w
					continue
				}
			default:
				if n < len(name) && name[n] == c {
					p, n = p+1, n+1
					continue
				}
			}
		}
		// A mismatch: let the last '*' swallow one more character. The
		// stars before it need never swallow more, since this one can.
		if star < 0 || resume >= len(name) {
			return false
		}
		_, w := utf8.DecodeRuneInString(name[resume:])
		resume += w
		p, n = star+1, resume
	}
	return true
}
