package schedule

import (
	"fmt"
	"strings"
)

// Overlap is what a tick does when the job of the schedule's previous tick
// still has runs out (--overlap).
type Overlap string

const (
	// OverlapSkip skips the tick and records why: a job that takes
	// longer than its interval does not pile up copies of itself on the
	// same machines. The default, and what the zero Overlap means.
	OverlapSkip Overlap = "skip"
	// OverlapAllow fires the tick anyway.
	OverlapAllow Overlap = "allow"
)

// ParseOverlap reads --overlap; empty is the default, skip.
func ParseOverlap(s string) (Overlap, error) {
	switch o := Overlap(strings.TrimSpace(s)); o {
	case "":
		return OverlapSkip, nil
	case OverlapSkip, OverlapAllow:
		return o, nil
	}
	return "", fmt.Errorf("--overlap: %q is not skip or allow", s)
}

// Decide says whether a tick fires, given whether the job of the
// previous tick still has runs out (sent, received or running) and that
// job's id, which only the reason uses (0: not known). When the tick does
// not fire, reason says why, for the schedule's history: "previous job 42
// still has runs out"; it is empty when it fires.
func (o Overlap) Decide(prevJob int64, prevOut bool) (fire bool, reason string) {
	if !prevOut || o == OverlapAllow {
		return true, ""
	}
	if prevJob == 0 {
		return false, "previous job still has runs out"
	}
	return false, fmt.Sprintf("previous job %d still has runs out", prevJob)
}
