package schedule

import "testing"

func TestParseOverlap(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Overlap
		err  string
	}{
		{"", OverlapSkip, ""},
		{"skip", OverlapSkip, ""},
		{" allow", OverlapAllow, ""},
		{"queue", "", `--overlap: "queue" is not skip or allow`},
		{"SKIP", "", `--overlap: "SKIP" is not skip or allow`},
	} {
		got, err := ParseOverlap(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseOverlap(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseOverlap(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		o       Overlap
		prevJob int64
		prevOut bool
		fire    bool
		reason  string
	}{
		{OverlapSkip, 42, true, false, "previous job 42 still has runs out"},
		{OverlapSkip, 42, false, true, ""},
		{OverlapSkip, 0, false, true, ""}, // the first tick
		{OverlapSkip, 0, true, false, "previous job still has runs out"},
		{OverlapAllow, 42, true, true, ""},
		{OverlapAllow, 42, false, true, ""},
		{"", 7, true, false, "previous job 7 still has runs out"}, // the zero Overlap is skip
	} {
		fire, reason := tc.o.Decide(tc.prevJob, tc.prevOut)
		if fire != tc.fire || reason != tc.reason {
			t.Errorf("%q.Decide(%d, %v) = %v, %q; want %v, %q", tc.o, tc.prevJob, tc.prevOut, fire, reason, tc.fire, tc.reason)
		}
	}
}
