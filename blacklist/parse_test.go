package blacklist

import (
	"errors"
	"reflect"
	"testing"
)

// known is a realistic set of operation names.
var known = []string{
	"job.submit", "job.list", "job.get", "job.status", "job.output", "job.cancel",
	"db.reset", "db.backup", "db.restore", "db.migrate",
	"agent.register", "agent.getJobs", "agent.ackJobs", "agent.reportStatus", "agent.heartbeat",
	"client.list", "client.accept", "client.reject", "client.revoke", "client.delete",
	"acl.list", "acl.add", "acl.remove",
	"group.list", "group.add", "user.list", "user.add",
	"blacklist.list", "blacklist.add", "blacklist.remove",
	"ops.list", "ops.cancel", "system.multicall", "system.listMethods",
}

func e(p string, line, col int) Entry { return Entry{Pattern: p, Line: line, Col: col} }

var validCases = []struct {
	name string
	in   string
	want []Entry
}{
	// Erlang-term form.
	{"erl simple", "[job.submit, db.reset].", []Entry{e("job.submit", 1, 2), e("db.reset", 1, 14)}},
	{"erl refactorerl style", "[job.submit,db.reset].\n", []Entry{e("job.submit", 1, 2), e("db.reset", 1, 13)}},
	{"erl empty", "[].", nil},
	{"erl empty spaced", "  [ \n ] \n .\n", nil},
	{"erl empty with comments", "% nothing\n[ % still nothing\n]. % done\n", nil},
	{"erl comments quoting globs", "% header comment\n[ job.submit,   % trailing comment\n  'db.reset',\n  \"acl.*\" ,'*.list'\n] .   % done\n",
		[]Entry{e("job.submit", 2, 3), e("db.reset", 3, 3), e("acl.*", 4, 3), e("*.list", 4, 12)}},
	{"erl unquoted globs", "[acl.*, *.list, *, db.re*t, job.*t*].",
		[]Entry{e("acl.*", 1, 2), e("*.list", 1, 9), e("*", 1, 17), e("db.re*t", 1, 20), e("job.*t*", 1, 29)}},
	{"erl camel case", "[agent.getJobs, system.multicall].", []Entry{e("agent.getJobs", 1, 2), e("system.multicall", 1, 17)}},
	{"erl quoted any case", "['agent.getJobs', 'job.s*t' , '*Jobs'] . ",
		[]Entry{e("agent.getJobs", 1, 2), e("job.s*t", 1, 19), e("*Jobs", 1, 31)}},
	{"erl duplicates", "[job.submit, 'job.submit', \"job.submit\"].",
		[]Entry{e("job.submit", 1, 2), e("job.submit", 1, 14), e("job.submit", 1, 28)}},
	{"erl dot then comment", "[job.submit].% done", []Entry{e("job.submit", 1, 2)}},
	{"erl percent in string is not comment", "[\"job.submit\"] . % x\n", []Entry{e("job.submit", 1, 2)}},
	{"erl crlf", "[job.submit,\r\n db.reset\r\n].\r\n", []Entry{e("job.submit", 1, 2), e("db.reset", 2, 2)}},
	{"erl tabs", "[\tjob.submit,\t\tdb.reset].", []Entry{e("job.submit", 1, 3), e("db.reset", 1, 16)}},
	{"erl bom", "\uFEFF[job.submit].", []Entry{e("job.submit", 1, 2)}},
	{"erl bom and comment", "\uFEFF% é comment\n[job.submit].", []Entry{e("job.submit", 2, 2)}},
	{"erl one per line", "[\n  job.submit,\n  db.reset\n].\n", []Entry{e("job.submit", 2, 3), e("db.reset", 3, 3)}},

	// Line form.
	{"lines simple", "job.submit\ndb.reset\n", []Entry{e("job.submit", 1, 1), e("db.reset", 2, 1)}},
	{"lines no final newline", "job.submit", []Entry{e("job.submit", 1, 1)}},
	{"lines comments blanks trim", "# comment\n\n  job.submit  \ndb.reset# comment\n\tacl.*\t# tab\n*.list\n   \n# end",
		[]Entry{e("job.submit", 3, 3), e("db.reset", 4, 1), e("acl.*", 5, 2), e("*.list", 6, 1)}},
	{"lines crlf", "job.submit\r\n\r\ndb.reset\r\n", []Entry{e("job.submit", 1, 1), e("db.reset", 3, 1)}},
	{"lines bom", "\uFEFFjob.submit\n", []Entry{e("job.submit", 1, 1)}},
	{"lines star", "*\n", []Entry{e("*", 1, 1)}},
	{"lines uppercase first glob", "*Jobs\n", []Entry{e("*Jobs", 1, 1)}},
	{"lines duplicates", "job.submit\njob.submit\n", []Entry{e("job.submit", 1, 1), e("job.submit", 2, 1)}},
	{"lines unicode in comment", "# ünïcödé ☃\njob.submit # ☃\n", []Entry{e("job.submit", 2, 1)}},

	// Empty files.
	{"empty", "", nil},
	{"blank", " \n\t\r\n", nil},
	{"bom only", "\uFEFF", nil},
	{"hash comments only", "# nothing\n  # at all\n", nil},
	{"percent comments only", "% nothing\n% at all", nil},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse("bl", []byte(tc.in), known)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := l.Entries(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%q) entries\n got %v\nwant %v", tc.in, got, tc.want)
			}
		})
	}
}

var errorCases = []struct {
	name      string
	in        string
	line, col int
	reason    string
}{
	// Erlang-term form: structure.
	{"erl missing dot", "[job.submit, db.reset]", 1, 23, "missing '.' after the closing ']'"},
	{"erl missing dot newline", "[job.submit,\n db.reset]\n\n", 2, 11, "missing '.' after the closing ']'"},
	{"erl missing bracket", "[job.submit, db.reset", 1, 22, "unexpected end of file: the list opened at 1:1 is not closed with ']'"},
	{"erl missing bracket after comma", "% c\n  [job.submit,\n", 2, 15, "unexpected end of file: the list opened at 2:3 is not closed with ']'"},
	{"erl only open", "[", 1, 2, "unexpected end of file: the list opened at 1:1 is not closed with ']'"},
	{"erl dot instead of bracket", "[job.submit.", 1, 12, `expected ',' or ']' after "job.submit", found '.'`},
	{"erl missing comma", "[job.submit db.reset].", 1, 13, `expected ',' or ']' after "job.submit", found name "db.reset"`},
	{"erl double comma", "[job.submit,,db.reset].", 1, 13, "expected an operation name after ',', found ','"},
	{"erl trailing comma", "[job.submit, ].", 1, 14, "expected an operation name after ',', found ']'"},
	{"erl leading comma", "[,job.submit].", 1, 2, "expected an operation name or ']', found ','"},
	{"erl dot inside", "[job.submit.].", 1, 12, `expected ',' or ']' after "job.submit", found '.'`},
	{"erl double bracket", "[job.submit]]", 1, 13, "expected '.' after the closing ']', found ']'"},
	{"erl trailing garbage", "[job.submit].  x", 1, 16, `unexpected name "x" after the final '.': the file holds a single list`},
	{"erl second term", "[job.submit].\n[db.reset].\n", 2, 1, "unexpected '[' (nested lists are not allowed: the list holds only names) after the final '.': the file holds a single list"},
	{"erl double dot", "[job.submit]..", 1, 14, "unexpected '.' after the final '.': the file holds a single list"},
	{"erl number", "[1].", 1, 2, "expected an operation name or ']', found number 1"},
	{"erl float", "[job.submit, 12.5e3].", 1, 14, "expected an operation name after ',', found number 12.5e3"},
	{"erl tuple", "[{job, submit}].", 1, 2, "expected an operation name or ']', found '{' (tuples are not allowed: the list holds only names)"},
	{"erl nested list", "[job.submit, [db.reset]].", 1, 14, "expected an operation name after ',', found '[' (nested lists are not allowed: the list holds only names)"},
	{"erl variable", "[Job].", 1, 2, "expected an operation name or ']', found variable Job (unquoted names start with a lowercase letter)"},
	{"erl underscore variable", "[_job].", 1, 2, "expected an operation name or ']', found variable _job (unquoted names start with a lowercase letter)"},
	{"erl dash", "[job.submit, -].", 1, 14, "expected an operation name after ',', found '-'"},
	{"erl unquoted dash", "[job-submit].", 1, 5, `expected ',' or ']' after "job", found '-'`},
	{"erl hash comment", "[job.submit # no\n].", 1, 13, `expected ',' or ']' after "job.submit", found '#' (comments start with % in the Erlang-term form)`},
	{"erl bom inside", "[job.submit, \uFEFF].", 1, 14, `expected an operation name after ',', found '\ufeff'`},
	{"erl non-ascii atom", "[über].", 1, 2, "expected an operation name or ']', found 'ü'"},

	// Erlang-term form: quoting.
	{"erl unterminated quote", "['job.submit].", 1, 2, "unterminated quoted name: missing closing '"},
	{"erl unterminated string", "[job.submit,\n \"db.reset].\n", 2, 2, `unterminated quoted name: missing closing "`},
	{"erl quote across lines", "['job.\nsubmit'].", 1, 2, "unterminated quoted name: missing closing '"},
	{"erl escaped closing quote", `['job.submit\'].`, 1, 2, "unterminated quoted name: missing closing '"},
	{"erl empty quoted", "[''].", 1, 2, "empty operation name"},
	{"erl empty string", "[job.submit, \"\"].", 1, 14, "empty operation name"},
	{"erl space in quoted", "['job submit'].", 1, 6, "invalid character ' ' in operation name"},
	{"erl escaped quote", `['job\'s'].`, 1, 6, `invalid character '\'' in operation name`},
	{"erl escaped backslash", `['job\\'].`, 1, 6, `invalid character '\\' in operation name`},
	{"erl escaped dquote in string", `["a\"b"].`, 1, 4, `invalid character '"' in operation name`},
	{"erl unsupported escape", `['job\nsubmit'].`, 1, 6, `unsupported escape \n in quoted name (only \\, \' and \" are allowed)`},
	{"erl quoted non-ascii", "['jöb.submit'].", 1, 4, "invalid character 'ö' in operation name"},
	{"erl quote in string", `["it's"].`, 1, 5, `invalid character '\'' in operation name`},
	{"erl nul in quoted", "['a\x00'].", 1, 4, `invalid character '\x00' in operation name`},

	// Erlang-term form: names.
	{"erl unknown with hint", "% c\n[ job.submit,\n  db.rest\n].", 3, 3, `unknown operation "db.rest" (matches no operation); did you mean db.reset?`},
	{"erl unknown glob", "[acl.*, nothing.*].", 1, 9, `unknown operation "nothing.*" (matches no operation)`},
	{"erl unknown case", "[job.Submit].", 1, 2, `unknown operation "job.Submit" (matches no operation); did you mean job.submit?`},
	{"erl unknown crlf", "[job.submit,\r\n db.rest].\r\n", 2, 2, `unknown operation "db.rest" (matches no operation); did you mean db.reset?`},
	{"erl unknown far", "[jobs].", 1, 2, `unknown operation "jobs" (matches no operation)`},
	{"erl bom columns", "\uFEFF[job.submit x].", 1, 13, `expected ',' or ']' after "job.submit", found name "x"`},

	// Line form.
	{"lines two names", "job.submit db.reset", 1, 12, "more than one name on the line: write one name per line"},
	{"lines two names tab", "job.submit\n\tdb.reset\tacl.add # x", 2, 11, "more than one name on the line: write one name per line"},
	{"lines comma", "job.submit, db.reset", 1, 11, "invalid character ',' in operation name (write one name per line)"},
	{"lines percent after", "job.submit % comment", 1, 12, "unexpected '%' after the name: comments start with # in the one-name-per-line form"},
	{"lines percent comment then names", "% comment\njob.submit\n", 1, 1, "invalid character '%' in operation name (comments start with # in the one-name-per-line form)"},
	{"lines quoted", "'job.submit'\n", 1, 1, `invalid character '\'' in operation name (the Erlang-term form must start with '[' as the first thing in the file; this file is read as one name per line)`},
	{"lines late bracket", "# c\n[job.submit].\n", 2, 1, `invalid character '[' in operation name (the Erlang-term form must start with '[' as the first thing in the file; this file is read as one name per line)`},
	{"lines non-ascii", "job.\u00e9", 1, 5, "invalid character 'é' in operation name"},
	{"lines nbsp", "job.submit\u00a0", 1, 11, `invalid character '\u00a0' in operation name`},
	{"lines unknown hint", "job.submit\n  db.rest # x\n", 2, 3, `unknown operation "db.rest" (matches no operation); did you mean db.reset?`},
	{"lines unknown transposed", "job.submit\n\tjob.sbumit", 2, 2, `unknown operation "job.sbumit" (matches no operation); did you mean job.submit?`},
	{"lines unknown case", "JOB.SUBMIT", 1, 1, `unknown operation "JOB.SUBMIT" (matches no operation); did you mean job.submit?`},
	{"lines unknown trailing dot", "job.submit.", 1, 1, `unknown operation "job.submit." (matches no operation); did you mean job.submit?`},
	{"lines unknown no hint", "job.submit\r\nfoo\r\n", 2, 1, `unknown operation "foo" (matches no operation)`},
	{"lines unknown glob", "*.nothing", 1, 1, `unknown operation "*.nothing" (matches no operation)`},
	{"lines glob is case-sensitive", "Job.*", 1, 1, `unknown operation "Job.*" (matches no operation)`},

	// Encoding.
	{"invalid utf8", "\tx\xffy", 1, 3, "invalid UTF-8 encoding"},
	{"invalid utf8 after rune", "% é\xff\n[].", 1, 4, "invalid UTF-8 encoding"},
	{"invalid utf8 in comment line 2", "job.submit\n# \xc3\n", 2, 3, "invalid UTF-8 encoding"},
	{"invalid utf8 in erl", "[job.submit, '\xff'].", 1, 15, "invalid UTF-8 encoding"},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := Parse("data/blacklist", []byte(tc.in), known)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.in, l.Entries())
			}
			if l != nil {
				t.Errorf("Parse(%q) returned a list with its error", tc.in)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T %v, want *ParseError", tc.in, err, err)
			}
			want := ParseError{File: "data/blacklist", Line: tc.line, Col: tc.col, Reason: tc.reason}
			if *pe != want {
				t.Errorf("Parse(%q)\n got %d:%d: %s\nwant %d:%d: %s", tc.in, pe.Line, pe.Col, pe.Reason, want.Line, want.Col, want.Reason)
			}
		})
	}
}

func TestParseErrorString(t *testing.T) {
	_, err := Parse("/srv/scire/blacklist", []byte("job.submit\ndb.rest\n"), known)
	const want = `/srv/scire/blacklist:2:1: unknown operation "db.rest" (matches no operation); did you mean db.reset?`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	noFile := &ParseError{Line: 3, Col: 4, Reason: "x"}
	if got := noFile.Error(); got != "3:4: x" {
		t.Errorf("without file: %q", got)
	}
}

// An unknown operation is reported even when known is empty: a server that
// forgot to pass its operations must not start with a blacklist it cannot
// check.
func TestParseNoKnown(t *testing.T) {
	if _, err := Parse("bl", []byte("job.submit\n"), nil); err == nil {
		t.Error("entry accepted with no known operations")
	}
	if l, err := Parse("bl", []byte("[].\n"), nil); err != nil || len(l.Entries()) != 0 {
		t.Errorf("empty list: %v, %v", l, err)
	}
}

func TestParseDoesNotKeepInput(t *testing.T) {
	data := []byte("job.submit\n")
	l, err := Parse("bl", data, known)
	if err != nil {
		t.Fatal(err)
	}
	copy(data, "xxxxxxxxxx")
	if got := l.Entries()[0].Pattern; got != "job.submit" {
		t.Errorf("pattern changed with the input buffer: %q", got)
	}
}
