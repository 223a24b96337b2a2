package selector

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, s string) Selector {
	t.Helper()
	sel, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return sel
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"env": "prod", "tier": "web", "blank": "", "example.com/team": "ops"}
	facts := map[string]string{"os": "linux", "kernel": "6.6.31+rpt-rpi-v8", "env": "staging", "cpus": "4"}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		// Exists and does not exist, on labels and on facts: each key is
		// looked up where its name says, never in the other map.
		{"env", true},
		{"!env", false},
		{"missing", false},
		{"!missing", true},
		{"fact.os", true},
		{"!fact.os", false},
		{"os", false}, // os is a fact, not a label
		{"!os", true},
		{"fact.tier", false}, // tier is a label, not a fact
		{"!fact.tier", true},
		{"fact.missing", false},
		{"!fact.missing", true},
		{"example.com/team", true},

		// Equality.
		{"env=prod", true},
		{"env==prod", true},
		{"env=staging", false}, // the label says prod; the fact says staging
		{"fact.env=staging", true},
		{"fact.env=prod", false},
		{"env=Prod", false}, // case-sensitive
		{"fact.kernel=6.6.31+rpt-rpi-v8", true},
		{"fact.cpus=4", true},
		{"missing=x", false},
		{"missing=", false},

		// Inequality holds when the key is absent, as in Kubernetes.
		{"env!=prod", false},
		{"env!=dev", true},
		{"missing!=x", true},
		{"fact.missing!=x", true},
		{"fact.os!=linux", false},
		{"missing,missing!=x", false},

		// Sets.
		{"env in (prod,dev)", true},
		{"env in (dev)", false},
		{"missing in (a)", false},
		{"env notin (prod)", false},
		{"env notin (dev,qa)", true},
		{"missing notin (a)", true},
		{"fact.os in (freebsd,linux)", true},
		{"fact.os notin (linux)", false},
		{"fact.missing notin (a)", true},
		{"env in (a,b,c,d,e,f,g,h,i,prod)", true}, // a long list, looked up in a set
		{"env in (a,b,c,d,e,f,g,h,i,j)", false},
		{"env notin (a,b,c,d,e,f,g,h,i,prod)", false},
		{"env notin (a,b,c,d,e,f,g,h,i,j)", true},
		{"missing notin (a,b,c,d,e,f,g,h,i,j)", true},

		// A present label with an empty value is present.
		{"blank", true},
		{"!blank", false},
		{"blank=", true},
		{"blank!=", false},
		{"blank!=x", true},
		{"blank notin (a)", true},
		{"blank in (a)", false},
		{"env=", false},
		{"env!=", true},

		// Requirements are ANDed.
		{"env=prod,fact.os=linux", true},
		{"env=prod,fact.os=windows", false},
		{"env=prod,tier=web,!canary,fact.cpus in (4,8)", true},
		{"env=prod,env=prod", true},
		{"env=prod,env!=prod", false},
	} {
		if got := mustParse(t, tc.sel).Matches(labels, facts); got != tc.want {
			t.Errorf("%q matches = %v, want %v", tc.sel, got, tc.want)
		}
	}
}

func TestMatchesNilMaps(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"env", false},
		{"!env", true},
		{"env=", false},
		{"env!=x", true},
		{"env in (a)", false},
		{"env notin (a)", true},
		{"fact.os", false},
		{"!fact.os", true},
	} {
		if got := mustParse(t, tc.sel).Matches(nil, nil); got != tc.want {
			t.Errorf("%q on nil maps = %v, want %v", tc.sel, got, tc.want)
		}
	}
}

func TestZeroSelector(t *testing.T) {
	var s Selector
	if !s.Empty() || !s.LabelsOnly() || s.String() != "" {
		t.Errorf("zero Selector: Empty %v, LabelsOnly %v, String %q", s.Empty(), s.LabelsOnly(), s.String())
	}
	if !s.Matches(nil, nil) || !s.Matches(map[string]string{"a": "b"}, map[string]string{"c": "d"}) {
		t.Error("the zero Selector must match every machine")
	}
	if mustParse(t, "a").Empty() {
		t.Error("a parsed selector is never empty")
	}
}

func TestLabelsOnly(t *testing.T) {
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"env=prod", true},
		{"env,!canary,tier in (web),x notin (y),a!=b", true},
		{"example.com/team=ops", true},
		{"fact", true},       // a label called fact
		{"facts.os=x", true}, // a label, "facts." is not "fact."
		{"fact.os=linux", false},
		{"env=prod,fact.os=linux", false},
		{"env,!fact.gpu", false},
		{"fact.gpu", false},
		{"fact.os notin (windows)", false},
	} {
		if got := mustParse(t, tc.sel).LabelsOnly(); got != tc.want {
			t.Errorf("%q LabelsOnly = %v, want %v", tc.sel, got, tc.want)
		}
	}
}

func TestUnion(t *testing.T) {
	u, err := ParseUnion([]string{"env=prod,tier=web", "env=staging", "fact.os=freebsd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels, facts map[string]string
		want          bool
	}{
		{map[string]string{"env": "prod", "tier": "web"}, nil, true},
		{map[string]string{"env": "prod", "tier": "db"}, nil, false},
		{map[string]string{"env": "staging"}, nil, true},
		{nil, map[string]string{"os": "freebsd"}, true},
		{map[string]string{"os": "freebsd"}, nil, false},
		{nil, nil, false},
	} {
		if got := u.Matches(tc.labels, tc.facts); got != tc.want {
			t.Errorf("union on %v, %v = %v, want %v", tc.labels, tc.facts, got, tc.want)
		}
	}
	if u.LabelsOnly() {
		t.Error("a union with a fact is not LabelsOnly")
	}
	if !u[:2].LabelsOnly() {
		t.Error("a union of label selectors is LabelsOnly")
	}

	var empty Union
	if empty.Matches(map[string]string{"a": "b"}, nil) {
		t.Error("the empty union matches nothing")
	}
	if u, err := ParseUnion(nil); err != nil || len(u) != 0 {
		t.Errorf("ParseUnion(nil) = %v, %v", u, err)
	}

	_, err = ParseUnion([]string{"env=prod", "env in (prod"})
	const want = `selector "env in (prod": position 12: missing ')'`
	if err == nil || err.Error() != want {
		t.Fatalf("ParseUnion error = %v, want %s", err, want)
	}
	var pe *Error
	if !errors.As(err, &pe) || pe.Pos != 12 || pe.Msg != "missing ')'" {
		t.Errorf("ParseUnion error does not wrap the *Error: %#v", pe)
	}
}

func TestStringKeepsOrder(t *testing.T) {
	in := "z=1, a in (c, b, a, b), !m, fact.k"
	if got, want := mustParse(t, in).String(), "z=1,a in (c,b,a),!m,fact.k"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if strings.Contains(mustParse(t, "a == b").String(), "==") {
		t.Error("== is written =")
	}
}
