package rollout

import (
	"strings"
	"testing"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in             string
		want           Limit
		parallel, fail int // for 40 runs; fail -1: no budget
		err            string
	}{
		{"", Limit{}, 0, -1, ""},
		{"3", Limit{N: 3, Set: true}, 3, 3, ""},
		{"0", Limit{N: 0, Set: true}, 1, 0, ""},
		{"10%", Limit{N: 10, Percent: true, Set: true}, 4, 4, ""},
		{"1%", Limit{N: 1, Percent: true, Set: true}, 1, 0, ""},
		{"15%", Limit{N: 15, Percent: true, Set: true}, 6, 6, ""},
		{"12%", Limit{N: 12, Percent: true, Set: true}, 5, 4, ""},
		{"100%", Limit{N: 100, Percent: true, Set: true}, 40, 40, ""},
		{"101%", Limit{}, 0, 0, "more than 100%"},
		{"-1", Limit{}, 0, 0, "negative"},
		{"+3", Limit{}, 0, 0, "not a number"},
		{"three", Limit{}, 0, 0, "not a number"},
		{"3 %", Limit{}, 0, 0, "not a number"},
		{"2000000", Limit{}, 0, 0, "more than"},
	} {
		got, err := ParseLimit("max_parallel", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "max_parallel: ") {
				t.Errorf("ParseLimit(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if p := got.Parallel(40); p != tc.parallel {
			t.Errorf("%q.Parallel(40) = %d, want %d", tc.in, p, tc.parallel)
		}
		if f, ok := got.Failures(40); !ok && tc.fail != -1 || ok && f != tc.fail {
			t.Errorf("%q.Failures(40) = %d, want %d", tc.in, f, tc.fail)
		}
		if got.String() != strings.TrimSpace(tc.in) {
			t.Errorf("%q.String() = %q", tc.in, got.String())
		}
	}
}

// More than P% failed is exactly more than the budget, whatever the
// rounding.
func TestFailuresPercentIsExact(t *testing.T) {
	for runs := 1; runs <= 120; runs++ {
		for p := 0; p <= 100; p++ {
			budget, _ := Limit{N: p, Percent: true, Set: true}.Failures(runs)
			for failed := 0; failed <= runs; failed++ {
				if over, want := failed > budget, failed*100 > p*runs; over != want {
					t.Fatalf("runs %d, %d%%, failed %d: over budget %v, more than %d%% %v", runs, p, failed, over, p, want)
				}
			}
		}
	}
}

func TestParseThreshold(t *testing.T) {
	for in, want := range map[string]int{"": 100, "80%": 80, "80": 80, "100%": 100, "1%": 1} {
		if got, err := ParseThreshold("success_threshold", in); err != nil || got != want {
			t.Errorf("ParseThreshold(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0%", "101%", "x", "-5%"} {
		if _, err := ParseThreshold("success_threshold", in); err == nil || !strings.HasPrefix(err.Error(), "success_threshold: ") {
			t.Errorf("ParseThreshold(%q) error = %v", in, err)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{MaxParallel: 2, Canary: 1, SuccessThreshold: 100}
	if err := ok.Validate(3); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    Spec
		runs int
		want string
	}{
		{Spec{Canary: 3, SuccessThreshold: 100}, 3, "canary: 3 canaries for 3 runs"},
		{Spec{Canary: -1, SuccessThreshold: 100}, 3, "canary: -1"},
		{Spec{SuccessThreshold: 101}, 3, "success_threshold"},
	} {
		if err := tc.s.Validate(tc.runs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Validate(%d) = %v, want %q", tc.s, tc.runs, err, tc.want)
		}
	}
}

func TestGated(t *testing.T) {
	if (Spec{SuccessThreshold: 80}).Gated() || (Spec{}).Gated() {
		t.Error("a success threshold alone gates dispatch")
	}
	for _, s := range []Spec{{MaxParallel: 1}, {Budgeted: true}, {Canary: 1}} {
		if !s.Gated() {
			t.Errorf("%+v not gated", s)
		}
	}
}

func TestAdmit(t *testing.T) {
	window := Spec{MaxParallel: 3, SuccessThreshold: 100}
	budget := Spec{Budgeted: true, MaxFailures: 1}
	canary := Spec{Canary: 2, SuccessThreshold: 100}
	for _, tc := range []struct {
		name                   string
		s                      Spec
		c                      Counts
		paused, halted, isCana bool
		want                   Verdict
	}{
		{"window has room", window, Counts{Total: 12, Out: 2}, false, false, false, Send},
		{"window full", window, Counts{Total: 12, Out: 3}, false, false, false, Hold},
		{"paused", window, Counts{Total: 12}, true, false, false, Hold},
		{"halted", window, Counts{Total: 12}, false, true, false, Skip},
		{"halted and paused", window, Counts{Total: 12}, true, true, false, Skip},
		{"budget not spent", budget, Counts{Total: 12, Failed: 1}, false, false, false, Send},
		{"budget spent", budget, Counts{Total: 12, Failed: 2}, false, false, false, Hold},
		{"canary goes first", canary, Counts{Total: 12, Canaries: 2}, false, false, true, Send},
		{"the rest waits", canary, Counts{Total: 12, Canaries: 2, CanariesSucceeded: 1}, false, false, false, Hold},
		{"the rest follows", canary, Counts{Total: 12, Canaries: 2, CanariesSucceeded: 2}, false, false, false, Send},
		{"a canary failed", canary, Counts{Total: 12, Canaries: 2, CanariesSucceeded: 1, CanariesBad: 1}, false, false, true, Hold},
	} {
		if got := tc.s.Admit(tc.c, tc.paused, tc.halted, tc.isCana); got != tc.want {
			t.Errorf("%s: Admit = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHaltReason(t *testing.T) {
	s := Spec{Budgeted: true, MaxFailures: 2, Canary: 1}
	if r := s.HaltReason(Counts{Total: 40, Failed: 2, Canaries: 1, CanariesSucceeded: 1}); r != "" {
		t.Errorf("within budget: %q", r)
	}
	if r := s.HaltReason(Counts{Total: 40, Failed: 3, Canaries: 1, CanariesSucceeded: 1}); r != "failure budget exceeded: 3 of 40 failed" {
		t.Errorf("over budget: %q", r)
	}
	if r := s.HaltReason(Counts{Total: 40, Failed: 1, Canaries: 1, CanariesBad: 1, BadCanary: "web-01 failed"}); r != "canary web-01 failed" {
		t.Errorf("canary: %q", r)
	}
	if p := s.Phase(Counts{Canaries: 1}); p != CanaryRunning {
		t.Errorf("phase = %q", p)
	}
}

func TestSucceeded(t *testing.T) {
	if !Succeeded(80, 8, 10) || Succeeded(80, 7, 10) || !Succeeded(100, 10, 10) || Succeeded(100, 9, 10) || Succeeded(0, 9, 10) || Succeeded(50, 0, 0) {
		t.Error("Succeeded")
	}
}
