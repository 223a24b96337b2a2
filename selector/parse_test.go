package selector

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// validCases are selectors Parse accepts, with their canonical form.
var validCases = []struct{ in, want string }{
	{"env=prod", "env=prod"},
	{"env==prod", "env=prod"},
	{" env = prod ", "env=prod"},
	{"env!=prod", "env!=prod"},
	{"env != prod", "env!=prod"},
	{"env in (prod,staging)", "env in (prod,staging)"},
	{"env in(prod , staging )", "env in (prod,staging)"},
	{"env  in  ( staging,prod )", "env in (staging,prod)"},
	{"env notin (a,b,a)", "env notin (a,b)"},
	{"env notin(a)", "env notin (a)"},
	{"env", "env"},
	{"!env", "!env"},
	{"! env", "!env"},
	{"env=", "env="},
	{"env==,x", "env=,x"},
	{"env = , x", "env=,x"},
	{"env!=", "env!="},
	{"fact.os=linux", "fact.os=linux"},
	{"fact.kernel=6.6.31+rpt-rpi-v8", "fact.kernel=6.6.31+rpt-rpi-v8"},
	{"fact.agent_version = 1.2.0+build.7", "fact.agent_version=1.2.0+build.7"},
	{"fact.kernel in (4.19.0+, +x)", "fact.kernel in (4.19.0+,+x)"},
	{"!fact.gpu", "!fact.gpu"},
	{"fact.gpu", "fact.gpu"},
	{"fact.example.com/rack in (r1,r2)", "fact.example.com/rack in (r1,r2)"},
	{"example.com/team=ops", "example.com/team=ops"},
	{"a-1.example/x", "a-1.example/x"},
	{"a.b-c_d=E.f-G_h", "a.b-c_d=E.f-G_h"},
	{"in in (in,notin)", "in in (in,notin)"},
	{"notin notin (in)", "notin notin (in)"},
	{"in", "in"},
	{"notin,!in", "notin,!in"},
	{"fact", "fact"},
	{"facts.os", "facts.os"},
	{"env=prod,tier in (web, db),!canary,fact.os=linux", "env=prod,tier in (web,db),!canary,fact.os=linux"},
	{"\tenv=prod\r\n,\ntier", "env=prod,tier"},
	{"x=1,x=1", "x=1,x=1"},
	{"9=9", "9=9"},
	{"env=Prod", "env=Prod"},
	{"cpus=4,fact.memory_bytes=8589934592", "cpus=4,fact.memory_bytes=8589934592"},
	{strings.Repeat("k", 63) + "=" + strings.Repeat("v", 63), strings.Repeat("k", 63) + "=" + strings.Repeat("v", 63)},
	{strings.Repeat("p", 253) + "/" + strings.Repeat("n", 63), strings.Repeat("p", 253) + "/" + strings.Repeat("n", 63)},
	{"fact.hostname=" + strings.Repeat("h", 253), "fact.hostname=" + strings.Repeat("h", 253)},
	{"h in (a,b,c,d,e,f,g,h,i,j,a)", "h in (a,b,c,d,e,f,g,h,i,j)"},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		s, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if s.Empty() {
			t.Errorf("Parse(%q) is empty", tc.in)
		}
		got := s.String()
		if got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
		again, err := Parse(got)
		if err != nil {
			t.Errorf("Parse(%q) (canonical of %q): %v", got, tc.in, err)
			continue
		}
		if !reflect.DeepEqual(again, s) {
			t.Errorf("round trip of %q: %#v, then %#v", tc.in, s, again)
		}
		if again.String() != got {
			t.Errorf("String not stable: %q, then %q", got, again.String())
		}
	}
}

func TestParseStructure(t *testing.T) {
	s, err := Parse("env==prod, !fact.gpu, fact.os notin (a,b), x")
	if err != nil {
		t.Fatal(err)
	}
	want := []requirement{
		{key: "env", op: opEquals, values: []string{"prod"}},
		{key: "gpu", fact: true, op: opNotExists},
		{key: "os", fact: true, op: opNotIn, values: []string{"a", "b"}},
		{key: "x", op: opExists},
	}
	if !reflect.DeepEqual(s.reqs, want) {
		t.Errorf("got %#v\nwant %#v", s.reqs, want)
	}
}

const (
	allowed     = "(allowed: letters, digits, '-', '_' and '.')"
	allowedFact = "(allowed: letters, digits, '-', '_', '.' and '+')"
	dns         = "(a DNS subdomain: lowercase letters, digits, '-' and '.')"
	noOp        = "expected an operator (=, ==, !=, in, notin) or ','"
	bangOp      = "expected ',' (!KEY takes no operator: write KEY!=VALUE or KEY notin (...))"
	partBegin   = "each dot-separated part of a key prefix must begin with a lowercase letter or digit"
	partEnd     = "each dot-separated part of a key prefix must end with a lowercase letter or digit"
)

// errorCases are selectors Parse refuses, with the whole error text.
var errorCases = []struct{ in, want string }{
	{"", "position 1: empty selector"},
	{"   ", "position 1: empty selector"},
	{"env in (prod", "position 12: missing ')'"},
	{"env in (prod ", "position 13: missing ')'"},
	{"env in (prod,", "position 13: missing ')'"},
	{"env in (", "position 8: missing ')'"},
	{"env prod", "position 5: " + noOp},
	{"env In (a)", "position 5: " + noOp},
	{"env !prod", "position 5: " + noOp},
	{"env)", "position 4: " + noOp},
	{"en v", "position 4: " + noOp},
	{"env in ()", "position 9: empty value list"},
	{"env in ( )", "position 10: empty value list"},
	{"env in (prod staging)", "position 14: expected ',' or ')'"},
	{"env in (a=b)", "position 10: expected ',' or ')'"},
	{"env in (,prod)", "position 9: expected a value"},
	{"env in (prod,)", "position 14: expected a value"},
	{"env in (prod,,a)", "position 14: expected a value"},
	{"env in prod", "position 8: expected '(' after 'in'"},
	{"env notin", "position 9: expected '(' after 'notin'"},
	{"env in (a)(b)", "position 11: expected ','"},
	{"env in (a)b", "position 11: expected ','"},
	{"env=prod staging", "position 10: expected ','"},
	{"env=a=b", "position 6: expected ','"},
	{"env=prod,", "position 9: expected a key after ','"},
	{"env=prod , ", "position 11: expected a key after ','"},
	{",", "position 1: expected a key"},
	{"(", "position 1: expected a key"},
	{"env,,tier", "position 5: expected a key"},
	{"=prod", "position 1: expected a key"},
	{"!=prod", "position 1: expected a key"},
	{"env=(prod)", "position 5: expected a value"},
	{"env===prod", "position 6: expected a value"},
	{"env=!prod", "position 5: expected a value"},
	{"!", "position 1: expected a key after '!'"},
	{"!!env", "position 2: expected a key after '!'"},
	{"!,", "position 2: expected a key after '!'"},
	{"!env=prod", "position 5: " + bangOp},
	{"!env in (a)", "position 6: " + bangOp},
	{"!env prod", "position 6: expected ','"},
	{"fact.=x", "position 6: expected a fact's key after 'fact.'"},
	{"fact.", "position 6: expected a fact's key after 'fact.'"},
	{"-env", "position 1: key must begin with a letter or digit"},
	{"_env", "position 1: key must begin with a letter or digit"},
	{"env-", "position 4: key must end with a letter or digit"},
	{"fact.os.", "position 8: key must end with a letter or digit"},
	{"énv", "position 1: invalid character 'é' in key " + allowed},
	{"env=pröd", "position 7: invalid character 'ö' in value " + allowed},
	{"env=prod;rm", "position 9: invalid character ';' in value " + allowed},
	{"env\u00a0=prod", `position 4: invalid character '\u00a0' in key ` + allowed},
	{"cpus>4", "position 5: invalid character '>' in key " + allowed + "; there are no '<' and '>' operators: values are compared for equality"},
	{"fact.cpus>=4", "position 10: invalid character '>' in key " + allowed + "; there are no '<' and '>' operators: values are compared for equality"},
	{"env='prod'", `position 5: invalid character '\'' in value ` + allowed + "; values are not quoted"},
	{`env="prod"`, `position 5: invalid character '"' in value ` + allowed + "; values are not quoted"},
	{"name=web*", "position 9: invalid character '*' in value " + allowed + "; selectors have no wildcards: list the values with KEY in (A,B)"},
	{"a&&b", "position 2: invalid character '&' in key " + allowed + "; requirements are joined by ',' (and); repeat --selector for or"},
	{strings.Repeat("k", 64), "position 64: key longer than 63 characters"},
	{"k=" + strings.Repeat("v", 64), "position 66: value longer than 63 characters"},
	{"fact.k=" + strings.Repeat("v", 254), "position 261: value longer than 253 characters"},
	{"k=1+2", "position 4: invalid character '+' in value " + allowed},
	{"fact.k=1 2", "position 10: expected ','"},
	{"fact.k=-x", "position 8: value must begin with a letter, digit or '+'"},
	{"fact.k=x_", "position 9: value must end with a letter, digit or '+'"},
	{"fact.k=x!y", "position 9: expected ','"},
	{"fact.k=x^y", "position 9: invalid character '^' in value " + allowedFact},
	{"k=a-", "position 4: value must end with a letter or digit"},
	{"k in (a,.b)", "position 9: value must begin with a letter or digit"},
	{"/env", "position 1: empty key prefix before '/'"},
	{"example.com/", "position 13: empty key name after '/'"},
	{"example.com/=x", "position 13: empty key name after '/'"},
	{"example.com/a/b", "position 14: more than one '/' in key"},
	{"example.com/-a", "position 13: key name must begin with a letter or digit"},
	{"example.com/" + strings.Repeat("n", 64), "position 76: key name longer than 63 characters"},
	{"Example.com/a", "position 1: invalid character 'E' in key prefix " + dns},
	{"ex_ample.com/a", "position 3: invalid character '_' in key prefix " + dns},
	{"example..com/a", "position 9: " + partBegin},
	{".example.com/a", "position 1: " + partBegin},
	{"-example.com/a", "position 1: " + partBegin},
	{"example.-com/a", "position 9: " + partBegin},
	{"example-.com/a", "position 8: " + partEnd},
	{"example.com-/a", "position 12: " + partEnd},
	{"example.com./a", "position 12: " + partEnd},
	{strings.Repeat("p", 254) + "/n", "position 254: key prefix longer than 253 characters"},
	{"fact.Example.com/x", "position 6: invalid character 'E' in key prefix " + dns},
	{"env=prod\xff", "position 9: invalid UTF-8 in value"},
	{"\xffenv", "position 1: invalid UTF-8 in key"},
	{"é\xff/x", "position 1: invalid character 'é' in key prefix " + dns},
	{"ab/\xff", "position 4: invalid UTF-8 in key name"},
	{"ab/ü/x", "position 4: invalid character 'ü' in key name " + allowed},
	{"ab/x\xff/y", "position 5: invalid UTF-8 in key name"},
	{"ab/x-/y", "position 5: key name must end with a letter or digit"},
	{"ab//y", "position 4: more than one '/' in key"},
	{"héllo=x, wörld", "position 2: invalid character 'é' in key " + allowed},
	{"x=1,  héllo", "position 8: invalid character 'é' in key " + allowed},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		s, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error %q", tc.in, s, tc.want)
			continue
		}
		if got := err.Error(); got != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.in, got, tc.want)
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): error %T is not an *Error", tc.in, err)
		}
		if !s.Empty() {
			t.Errorf("Parse(%q) returned a selector with its error", tc.in)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"env", "prod", ""},
		{"example.com/team", "", ""},
		{"a_b.c-d", "X.y_z-9", ""},
		{"fact", "x", ""},
		{"fact.os", "linux", `label key "fact.os": keys beginning with "fact." name facts, not labels`},
		{"", "x", "label key is empty"},
		{"-env", "x", `label key "-env": key must begin with a letter or digit`},
		{"Example.com/x", "x", `label key "Example.com/x": invalid character 'E' in key prefix ` + dns},
		{"env", "a b", `label value "a b": invalid character ' ' in value ` + allowed},
		{"env", "1+2", `label value "1+2": invalid character '+' in value ` + allowed},
		{"env", strings.Repeat("v", 64), `label value "` + strings.Repeat("v", 64) + `": value longer than 63 characters`},
	} {
		err := CheckLabel(tc.key, tc.value)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckLabel(%q, %q) = %q, want %q", tc.key, tc.value, got, tc.want)
		}
	}
}

func TestCheckFact(t *testing.T) {
	long := strings.Repeat("v", 253)
	for _, tc := range []struct{ key, value, want string }{
		{"os", "linux", ""},
		{"kernel", "6.6.31+rpt-rpi-v8", ""},
		{"fqdn", "web1.example.com", ""},
		{"example.com/role", "", ""},
		{"fact", "x", ""},
		{"os", long, ""},
		{"fact.os", "linux", `fact key "fact.os": write "os": selectors add "fact." themselves`},
		{"fact.", "x", `fact key "fact.": key must end with a letter or digit`},
		{"", "x", "fact key is empty"},
		{"r le", "x", `fact key "r le": invalid character ' ' in key ` + allowed},
		{strings.Repeat("k", 64), "x", `fact key "` + strings.Repeat("k", 64) + `": key longer than 63 characters`},
		{"role", "a b", `fact value "a b": invalid character ' ' in value ` + allowedFact},
		{"role", "-x", `fact value "-x": value must begin with a letter, digit or '+'`},
		{"role", long + "v", `fact value "` + long + `v": value longer than 253 characters`},
	} {
		err := CheckFact(tc.key, tc.value)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckFact(%q, %q) = %q, want %q", tc.key, tc.value, got, tc.want)
		}
		if err != nil {
			continue
		}
		// What CheckFact accepts, a selector can name and compare.
		sel, err := Parse("fact." + tc.key + "=" + tc.value)
		if err != nil {
			t.Errorf("CheckFact(%q, %q) accepts a fact that selectors cannot name: %v", tc.key, tc.value, err)
		} else if !sel.Matches(nil, map[string]string{tc.key: tc.value}) {
			t.Errorf("%q does not match the fact %s=%s", sel, tc.key, tc.value)
		}
	}
}
