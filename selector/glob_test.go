package selector

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchName(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"web*", "web1", true},
		{"web*", "web", true},
		{"web*", "db1", false},
		{"web*", "aweb1", false},
		{"*web*", "aweb1", true},
		{"*", "", true},
		{"*", "anything at all", true},
		{"**", "x", true},
		{"", "", true},
		{"", "x", false},
		{"web1", "web1", true}, // no wildcard: literal
		{"web1", "web10", false},
		{"web1", "Web1", false}, // case-sensitive
		{"web?", "web1", true},
		{"web?", "web", false},
		{"web?", "web12", false},
		{"web??", "web12", true},
		{"?", "é", true}, // one character, not one byte
		{"??", "é", false},
		{"w?b", "wéb", true},
		{"*.example.com", "web1.example.com", true},
		{"*.example.com", "example.com", false},
		{"rack-*-web*", "rack-3-web12", true},
		{"rack-*-web*", "rack-3-db12", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"*a*a*", "aa", true},
		{"*ab", "aab", true},
		{"*ab", "abab", true},
		{"*ab", "abba", false},
		{"dc1/*", "dc1/web", true}, // '/' is not special
		{"*", "dc1/web", true},
		{"web[12]", "web[12]", true}, // no classes: '[' is literal
		{"web[12]", "web1", false},
		{`web\*`, `web\x`, true},  // no escapes: '\' is literal
		{"web?", "web\xff", true}, // an invalid byte is one character
	} {
		if got := MatchName(tc.pattern, tc.name); got != tc.want {
			t.Errorf("MatchName(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestIsGlob(t *testing.T) {
	for s, want := range map[string]bool{
		"web*": true, "web?": true, "*": true, "web1": false, "": false, "web[1]": false, `web\`: false,
	} {
		if got := IsGlob(s); got != want {
			t.Errorf("IsGlob(%q) = %v, want %v", s, got, want)
		}
	}
}

// refMatchName is MatchName by regular expression.
func refMatchName(pattern, name string) bool {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String()).MatchString(name)
}

// FuzzMatchName compares MatchName with the regular expression it stands
// for, on valid UTF-8 (client names are).
func FuzzMatchName(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("*a*a*", "aa")
	f.Add("w?b*", "wéb1")
	f.Add("??*?", "abc")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(name) || len(pattern) > 64 || len(name) > 64 {
			return
		}
		if got, want := MatchName(pattern, name), refMatchName(pattern, name); got != want {
			t.Fatalf("MatchName(%q, %q) = %v, reference %v", pattern, name, got, want)
		}
	})
}
