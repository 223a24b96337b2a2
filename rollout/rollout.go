// Package rollout holds the rules of a job that goes out to many machines
// in steps (docs/protocol.md, "Rollouts"): at most so many runs out at
// once, a failure budget that halts the job, canaries that go first, and
// the share of runs that must succeed. The rules are arithmetic on counts
// of runs, kept here once; the stores count the runs, in the database, so
// the limits hold on every daemon together and survive a crash.
package rollout

import (
	"fmt"
	"strconv"
	"strings"
)

// Limit is a number of runs as an operator writes it: N, or P% of the
// job's runs. The zero Limit is "not given".
type Limit struct {
	N       int
	Percent bool
	Set     bool
}

// MaxCount bounds the N of a Limit.
const MaxCount = 1000000

// ParseLimit reads "N" or "P%" for field (which names it in errors).
// N is 0..MaxCount; P is 0..100. An empty s is the zero Limit.
func ParseLimit(field, s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Limit{}, nil
	}
	num, pct := strings.CutSuffix(s, "%")
	n, err := strconv.Atoi(num)
	if err != nil || strings.HasPrefix(num, "+") {
		return Limit{}, fmt.Errorf("%s: %q is not a number of runs (N) or a percentage of them (P%%)", field, s)
	}
	switch {
	case n < 0:
		return Limit{}, fmt.Errorf("%s: %q is negative", field, s)
	case pct && n > 100:
		return Limit{}, fmt.Errorf("%s: %q is more than 100%%", field, s)
	case !pct && n > MaxCount:
		return Limit{}, fmt.Errorf("%s: %d is more than %d", field, n, MaxCount)
	}
	return Limit{N: n, Percent: pct, Set: true}, nil
}

// String is the limit as it was written.
func (l Limit) String() string {
	if !l.Set {
		return ""
	}
	if l.Percent {
		return strconv.Itoa(l.N) + "%"
	}
	return strconv.Itoa(l.N)
}

// Parallel is the max-parallel limit for a job of runs runs: N, or P% of
// them rounded up, and at least 1. 0 means no limit (not given).
func (l Limit) Parallel(runs int) int {
	if !l.Set {
		return 0
	}
	n := l.N
	if l.Percent {
		n = (l.N*runs + 99) / 100
	}
	return max(n, 1)
}

// Failures is the failure budget for a job of runs runs: the job halts
// once more than this many have failed. P% is P% of the runs rounded down
// (more than P% failed is then exactly more than the budget). ok is false
// when the limit was not given: no budget.
func (l Limit) Failures(runs int) (n int, ok bool) {
	if !l.Set {
		return 0, false
	}
	if l.Percent {
		return l.N * runs / 100, true
	}
	return l.N, true
}

// ParseThreshold reads a success threshold, "P%" or "P", P in 1..100; an
// empty s is 100 (every run must succeed).
func ParseThreshold(field, s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 1 || n > 100 {
		return 0, fmt.Errorf("%s: %q is not a percentage from 1%% to 100%%", field, s)
	}
	return n, nil
}

// Spec is a job's rollout as stored: the limits resolved against its
// number of runs when it was submitted. The zero Spec is no rollout: no
// window, no budget, no canary, every run must succeed.
type Spec struct {
	MaxParallel int // runs out at once at most; 0: no limit
	// Budgeted: the job has a failure budget, MaxFailures failed runs
	// allowed before it halts (0: it halts at the first failure).
	Budgeted    bool
	MaxFailures int
	Canary      int // the first Canary runs go first, alone
	// SuccessThreshold is the percent of runs that must succeed for the
	// job to count as succeeded; 0 means 100.
	SuccessThreshold int
}

// Threshold is the success threshold in percent, 100 when unset.
func (s Spec) Threshold() int {
	if s.SuccessThreshold < 1 || s.SuccessThreshold > 100 {
		return 100
	}
	return s.SuccessThreshold
}

// Gated reports whether dispatch must count the job's runs before sending
// one: it has a window, a budget or canaries. A job that is not gated
// costs dispatch nothing.
func (s Spec) Gated() bool {
	return s.MaxParallel > 0 || s.Budgeted || s.Canary > 0
}

// Validate checks a spec against the number of runs of its job.
func (s Spec) Validate(runs int) error {
	switch {
	case s.Canary < 0:
		return fmt.Errorf("canary: %d is negative", s.Canary)
	case s.Canary > 0 && s.Canary >= runs:
		return fmt.Errorf("canary: %d canaries for %d runs leaves no run to follow them", s.Canary, runs)
	case s.SuccessThreshold < 0 || s.SuccessThreshold > 100:
		return fmt.Errorf("success_threshold: %d%% is outside 1%%..100%%", s.SuccessThreshold)
	case s.MaxParallel < 0 || s.MaxFailures < 0:
		return fmt.Errorf("max_parallel, max_failures: negative")
	}
	return nil
}

// Counts are what the rules need of a job's runs, as a store counts them.
type Counts struct {
	Total  int // the job's runs
	Out    int // sent, received or running
	Failed int // failed (lost and out of attempts included)
	// Canaries: how many of them there are (runs marked canary), how many
	// succeeded, and how many ended otherwise (failed, denied, expired,
	// cancelled); BadCanary describes the first of those ("web-01 failed").
	Canaries, CanariesSucceeded, CanariesBad int
	BadCanary                                string
}

// CanaryPhase is where a job's canaries stand.
type CanaryPhase string

// The canary phases. A job without canaries has none ("").
const (
	CanaryRunning CanaryPhase = "running" // not every canary has succeeded yet
	CanaryPassed  CanaryPhase = "passed"  // every canary succeeded: the rest may go
	CanaryFailed  CanaryPhase = "failed"  // a canary did not succeed: the job halts
)

// Phase says where the canaries of a job stand.
func (s Spec) Phase(c Counts) CanaryPhase {
	switch {
	case s.Canary <= 0:
		return ""
	case c.CanariesBad > 0:
		return CanaryFailed
	case c.CanariesSucceeded >= c.Canaries:
		return CanaryPassed
	}
	return CanaryRunning
}

// HaltReason says why a job must halt, or "" while it may go on: its
// failure budget is spent (more than MaxFailures failed), or a canary
// did not succeed.
func (s Spec) HaltReason(c Counts) string {
	if s.Phase(c) == CanaryFailed {
		what := c.BadCanary
		if what == "" {
			what = "did not succeed"
		}
		return "canary " + what
	}
	if s.Budgeted && c.Failed > s.MaxFailures {
		return fmt.Sprintf("failure budget exceeded: %d of %d failed", c.Failed, c.Total)
	}
	return ""
}

// Verdict is what dispatch does with a pending run of a rollout.
type Verdict int

// The verdicts of Admit.
const (
	Send Verdict = iota // hand it out now
	Hold                // leave it pending: no slot, canaries first, or paused
	Skip                // the job halted: the run becomes skipped
)

// Admit decides about one pending run of a job with spec s, whose runs
// count c (the runs this claim already sent included), that is paused or
// halted as said, and the run a canary or not. It never sends a run the
// rules forbid: a job over its budget or with a failed canary holds every
// run (the caller halts it), a paused one too.
func (s Spec) Admit(c Counts, paused, halted, canary bool) Verdict {
	switch {
	case halted:
		return Skip
	case paused, s.HaltReason(c) != "":
		return Hold
	case s.MaxParallel > 0 && c.Out >= s.MaxParallel:
		return Hold
	case s.Canary > 0 && !canary && s.Phase(c) != CanaryPassed:
		return Hold
	}
	return Send
}

// Succeeded says whether a job whose runs are all final succeeded: at
// least threshold percent of its total runs did.
func Succeeded(threshold, succeeded, total int) bool {
	if threshold < 1 || threshold > 100 {
		threshold = 100
	}
	return total > 0 && succeeded*100 >= threshold*total
}
