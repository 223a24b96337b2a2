package blacklist

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t testing.TB, in string) *List {
	t.Helper()
	l, err := Parse("bl", []byte(in), known)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMatch(t *testing.T) {
	l := mustParse(t, "# c\ndb.reset\nacl.*\n*.list\njob.s*t\n*multi*\nacl.add\n")
	for _, tc := range []struct {
		op   string
		want string // "" = allowed
		line int
	}{
		{"db.reset", "db.reset", 2},
		{"db.backup", "", 0},
		{"acl.add", "acl.*", 3}, // first match in file order, not the exact one
		{"acl.remove", "acl.*", 3},
		{"acl.list", "acl.*", 3}, // acl.* comes before *.list
		{"job.list", "*.list", 4},
		{"client.list", "*.list", 4},
		{"job.submit", "job.s*t", 5},
		{"job.status", "", 0}, // "job.status" does not end in t
		{"job.st", "job.s*t", 5},
		{"system.multicall", "*multi*", 6},
		{"Db.reset", "", 0}, // case-sensitive
		{"db.reset ", "", 0},
		{"", "", 0},
		{"acl", "", 0},
		{"acl.", "acl.*", 3}, // '*' matches the empty run
	} {
		got, ok := l.Match(tc.op)
		if ok != (tc.want != "") || got.Pattern != tc.want || got.Line != tc.line {
			t.Errorf("Match(%q) = %+v, %v; want %q at line %d", tc.op, got, ok, tc.want, tc.line)
		}
	}
}

func TestMatchFirstEntry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Entry
	}{
		{"job.*\njob.submit\n", e("job.*", 1, 1)},
		{"job.submit\njob.*\n", e("job.submit", 1, 1)},
		{"job.submit\n  job.submit\n", e("job.submit", 1, 1)},
		{"[acl.add, *, job.submit, job.submit].", e("*", 1, 11)},
		{"[acl.add, 'job.submit', *].", e("job.submit", 1, 11)},
	} {
		got, ok := mustParse(t, tc.in).Match("job.submit")
		if !ok || got != tc.want {
			t.Errorf("%q: Match = %+v, %v; want %+v", tc.in, got, ok, tc.want)
		}
	}
}

func TestMatchStarDeniesAll(t *testing.T) {
	l := mustParse(t, "[*].")
	for _, op := range known {
		if _, ok := l.Match(op); !ok {
			t.Errorf("%s allowed by *", op)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"acl.*", "acl.add", true},
		{"acl.*", "acl.", true},
		{"acl.*", "acl", false},
		{"acl.*", "xacl.add", false},
		{"*", "", true},
		{"*", "anything.at.all", true},
		{"**", "x", true},
		{"*.list", "job.list", true},
		{"*.list", "a.b.list", true},
		{"*.list", "job.lister", false},
		{"a*a", "a", false}, // prefix and suffix must not overlap
		{"a*a", "aa", true},
		{"a*a", "aba", true},
		{"*a*a*", "aa", true},
		{"*a*a*", "a", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*b*c", "abcbc", true},
		{"a*bc*bc", "abcbc", true},
		{"a*bc*bc", "abc", false},
		{"Job.*", "job.submit", false},
		{"job.submit", "job.submit", true},
		{"job.submit", "job.submi", false},
	} {
		if got := compileGlob(tc.pattern).match(tc.name); got != tc.want {
			t.Errorf("glob %q on %q = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
		if got := refMatch(tc.pattern, tc.name); got != tc.want {
			t.Errorf("reference glob %q on %q = %v, want %v (test is wrong)", tc.pattern, tc.name, got, tc.want)
		}
	}
}

// refMatch is an obviously correct (and slow) glob matcher: dynamic
// programming over pattern and name.
func refMatch(pattern, name string) bool {
	p, s := []byte(pattern), []byte(name)
	// m[j] reports whether p[:i] matches s[:j].
	m := make([]bool, len(s)+1)
	m[0] = true
	for i := range p {
		next := make([]bool, len(s)+1)
		for j := 0; j <= len(s); j++ {
			if p[i] == '*' {
				next[j] = m[j] || j > 0 && next[j-1]
			} else {
				next[j] = j > 0 && m[j-1] && s[j-1] == p[i]
			}
		}
		m = next
	}
	return m[len(s)]
}

func TestEmptyList(t *testing.T) {
	var zero List
	var nilList *List
	for name, l := range map[string]*List{"zero": &zero, "nil": nilList, "parsed": mustParse(t, "")} {
		if en, ok := l.Match("job.submit"); ok {
			t.Errorf("%s: Match = %+v", name, en)
		}
		if got := l.Patterns(); got == nil || len(got) != 0 {
			t.Errorf("%s: Patterns = %#v, want empty", name, got)
		}
		if got := l.Entries(); len(got) != 0 {
			t.Errorf("%s: Entries = %v", name, got)
		}
	}
}

func TestPatternsAndEntries(t *testing.T) {
	l := mustParse(t, "job.submit\nacl.*\njob.submit\ndb.reset\n")
	if got, want := l.Patterns(), []string{"acl.*", "db.reset", "job.submit"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Patterns = %v, want %v", got, want)
	}
	entries := l.Entries()
	if len(entries) != 4 || entries[2] != e("job.submit", 3, 1) {
		t.Errorf("Entries = %v", entries)
	}
	entries[0].Pattern = "x"
	if l.Entries()[0].Pattern != "job.submit" {
		t.Error("Entries returned the list's own slice")
	}
}

func TestAdd(t *testing.T) {
	l := mustParse(t, "job.submit\nacl.*\n")
	if got, want := Add(l, "db.reset", "acl.*", "db.reset"), []string{"acl.*", "db.reset", "job.submit"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Add = %v, want %v", got, want)
	}
	if got := Add(nil, "b", "a"); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Add(nil) = %v", got)
	}
	if got := l.Patterns(); !reflect.DeepEqual(got, []string{"acl.*", "job.submit"}) {
		t.Errorf("Add changed the list: %v", got)
	}
}

func TestRemove(t *testing.T) {
	l := mustParse(t, "job.submit\nacl.*\ndb.reset\njob.submit\n")
	got, err := Remove(l, "job.submit", "db.reset")
	if err != nil || !reflect.DeepEqual(got, []string{"acl.*"}) {
		t.Errorf("Remove = %v, %v", got, err)
	}
	got, err = Remove(l, "acl.*", "acl.*")
	if err != nil || !reflect.DeepEqual(got, []string{"db.reset", "job.submit"}) {
		t.Errorf("Remove twice = %v, %v", got, err)
	}

	_, err = Remove(l, "job.submit", "db.backup")
	if !errors.Is(err, ErrNotListed) || err.Error() != `blacklist: "db.backup": not in the blacklist` {
		t.Errorf("Remove(absent) error = %v", err)
	}
	_, err = Remove(l, "acl.add")
	if !errors.Is(err, ErrNotListed) || err.Error() != `blacklist: "acl.add": not in the blacklist (it is denied by "acl.*" at line 2)` {
		t.Errorf("Remove(covered by glob) error = %v", err)
	}
	if _, err := Remove(nil, "x"); !errors.Is(err, ErrNotListed) {
		t.Errorf("Remove(nil) error = %v", err)
	}
	if got := l.Patterns(); len(got) != 3 {
		t.Errorf("Remove changed the list: %v", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct{ pattern, err string }{
		{"job.submit", ""},
		{"acl.*", ""},
		{"*", ""},
		{"agent.getJobs", ""},
		{"job.sbmit", `unknown operation "job.sbmit" (matches no operation); did you mean job.submit?`},
		{"client.acept", `unknown operation "client.acept" (matches no operation); did you mean client.accept?`},
		{"AGENT.GETJOBS", `unknown operation "AGENT.GETJOBS" (matches no operation); did you mean agent.getJobs?`},
		{"nothing.*", `unknown operation "nothing.*" (matches no operation)`},
		{"", `"": empty operation name`},
		{"job submit", `"job submit": invalid character ' ' in operation name`},
		{"job.submit\n", `"job.submit\n": invalid character '\n' in operation name`},
		{"#", `"#": invalid character '#' in operation name`},
	} {
		err := Validate(tc.pattern, known)
		if got := errString(err); got != tc.err {
			t.Errorf("Validate(%q) = %s, want %s", tc.pattern, got, tc.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestClosestTies(t *testing.T) {
	// Equidistant candidates: the alphabetically first wins, whatever the
	// order of known.
	k1 := []string{"job.get", "job.set"}
	k2 := []string{"job.set", "job.get"}
	if a, b := closest("job.let", k1), closest("job.let", k2); a != "job.get" || b != "job.get" {
		t.Errorf("closest = %q, %q", a, b)
	}
	if got := closest("job.xyz", []string{"job.abc"}); got != "" {
		t.Errorf("distance 3 hinted: %q", got)
	}
	if got := closest("job.sub*", known); got != "" {
		t.Errorf("glob hinted: %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "abc", 0},
		{"abc", "abd", 1},
		{"abc", "acb", 1},
		{"abc", "ab", 1},
		{"ab", "abc", 1},
		{"abcd", "badc", 2},
		{"kitten", "sitting", 3},
		{"a", "abcdef", 3}, // limit+1 from the lengths
	} {
		if got := editDistance(tc.a, tc.b, 2); min(got, 3) != min(tc.want, 3) {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestIsNameRuneCoversOperations(t *testing.T) {
	for _, op := range known {
		if !strings.ContainsFunc(op, func(r rune) bool { return !isNameRune(r) }) {
			continue
		}
		t.Errorf("operation %q has a character a blacklist cannot name", op)
	}
}
