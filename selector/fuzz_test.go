package selector

import (
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks, on any input, that Parse does not panic; that an error
// is an *Error placed inside the input or just past it; and that an
// accepted selector survives its canonical form: Parse(String()) is an
// equal selector whose String is the same.
func FuzzParse(f *testing.F) {
	for _, tc := range validCases {
		f.Add(tc.in)
	}
	for _, tc := range errorCases {
		f.Add(tc.in)
	}
	labels := map[string]string{"env": "prod", "a": "", "in": "notin"}
	facts := map[string]string{"os": "linux", "env": "staging"}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if n := utf8.RuneCountInString(in); pe.Pos < 1 || pe.Pos > n+1 || pe.Msg == "" {
				t.Fatalf("error %q outside the input of %d characters", err, n)
			}
			if !s.Empty() {
				t.Fatalf("selector %q returned with error %v", s, err)
			}
			return
		}
		if s.Empty() {
			t.Fatalf("Parse(%q) accepted an empty selector", in)
		}
		out := s.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", in, out, err)
		}
		if !reflect.DeepEqual(again, s) {
			t.Fatalf("round trip of %q through %q:\n%#v\n%#v", in, out, s, again)
		}
		if again.String() != out {
			t.Fatalf("String not stable: %q, then %q", out, again.String())
		}
		if got, want := again.Matches(labels, facts), s.Matches(labels, facts); got != want {
			t.Fatalf("%q and %q match differently", in, out)
		}
	})
}
