package blacklist

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParse checks, on any input, that Parse does not panic; that an error is
// a *ParseError with a position inside the file; and that an accepted file
// survives the tool's rewrite (Format then Parse gives the same set) and
// matches exactly what a naive glob matcher says.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add([]byte(tc.in))
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.in))
	}
	f.Add(Format([]string{"job.submit", "acl.*", "*.list"}))
	f.Add([]byte("[*, 'a*b', \"*.*\"].\n"))
	f.Add([]byte("['\\\\', '\\'', \"\\\"\"]."))
	f.Add([]byte("[1.2.3, 0#1, A@b, a@b.c]."))

	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("fuzz", data, known)
		if err != nil {
			if l != nil {
				t.Fatalf("list returned with error %v", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			if pe.Line < 1 || pe.Col < 1 || pe.Line > lines || pe.File != "fuzz" || pe.Reason == "" {
				t.Fatalf("bad error position or fields (file has %d lines): %#v", lines, pe)
			}
			return
		}
		ps := l.Patterns()
		for _, en := range l.Entries() {
			if en.Line < 1 || en.Col < 1 {
				t.Fatalf("entry without position: %+v", en)
			}
			if err := Validate(en.Pattern, known); err != nil {
				t.Fatalf("accepted entry %q fails Validate: %v", en.Pattern, err)
			}
		}
		again, err := Parse("fuzz", Format(ps), known)
		if err != nil {
			t.Fatalf("Format(%q) does not parse: %v", ps, err)
		}
		if got := again.Patterns(); !reflect.DeepEqual(got, ps) {
			t.Fatalf("round trip: %q became %q", ps, got)
		}
		for _, op := range known {
			got, ok := l.Match(op)
			var want Entry
			var wantOK bool
			for _, en := range l.Entries() {
				if refMatch(en.Pattern, op) {
					want, wantOK = en, true
					break
				}
			}
			if ok != wantOK || got != want {
				t.Fatalf("Match(%q) = %+v, %v; reference %+v, %v", op, got, ok, want, wantOK)
			}
		}
	})
}

// FuzzGlob compares the linear-time matcher with the reference one on any
// pattern and name.
func FuzzGlob(f *testing.F) {
	f.Add("a*b*c", "aXbYc")
	f.Add("a*a", "a")
	f.Add("*a*a*", "aa")
	f.Add("**", "")
	f.Add("job.*", "job.submit")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64 || len(name) > 64 {
			return // the reference matcher is quadratic
		}
		if got, want := compileGlob(pattern).match(name), refMatch(pattern, name); got != want {
			t.Fatalf("glob %q on %q = %v, reference %v", pattern, name, got, want)
		}
	})
}
