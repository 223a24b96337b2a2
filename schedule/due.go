package schedule

import (
	"fmt"
	"strings"
	"time"
)

// CatchUp is what a schedule does with ticks that passed while no daemon
// ran (--catch-up).
type CatchUp string

const (
	// CatchUpLatest fires the latest tick that passed, however late, and
	// skips the ones before it: a week without daemons makes one job, not
	// a week of them. The default, and what the zero CatchUp means.
	CatchUpLatest CatchUp = "latest"
	// CatchUpNone fires a tick only on time, within its grace, and skips
	// it otherwise: for a job that must not run at another time than the
	// one written, such as a backup outside working hours.
	CatchUpNone CatchUp = "none"
)

// ParseCatchUp reads --catch-up; empty is the default, latest.
func ParseCatchUp(s string) (CatchUp, error) {
	switch c := CatchUp(strings.TrimSpace(s)); c {
	case "":
		return CatchUpLatest, nil
	case CatchUpLatest, CatchUpNone:
		return c, nil
	}
	return "", fmt.Errorf("--catch-up: %q is not latest or none", s)
}

// MaxSkipped bounds Plan.Skipped: an "@every 1s" schedule after a month
// without daemons has missed 2.6 million ticks, and its history needs
// the latest few and the fact that there were more, not all of them.
const MaxSkipped = 10

// The grace of a tick under CatchUpNone: half the time to the following
// tick, at least minGrace and at most maxGrace.
const (
	// minGrace leaves a daemon that wakes on time the time to do it.
	minGrace = time.Second
	// maxGrace is long enough for another daemon to take over from one
	// that died, short enough that "not at another time" still holds.
	maxGrace = time.Minute
)

// grace is how late tick may fire under CatchUpNone. Half the interval
// keeps a late job at least half an interval from the next one; for
// intervals of 2s and less, the minimum makes the latest tick always on
// time, and none then behaves as latest.
func (s Spec) grace(tick time.Time) time.Duration {
	next := s.Next(tick)
	if next.IsZero() {
		return maxGrace
	}
	return min(max(next.Sub(tick)/2, minGrace), maxGrace)
}

// Plan is what to do with the ticks that are due: fire one (make its job)
// and record the others as skipped.
type Plan struct {
	// Fire is the tick to make a job for; the zero Time when none.
	Fire time.Time
	// Skipped are ticks passed over without a job, oldest first, all
	// before Fire: the latest MaxSkipped of them at most.
	Skipped []time.Time
	// Truncated: more ticks were skipped, before Skipped[0] and after the
	// last tick, than Skipped lists.
	Truncated bool
}

// Last is the latest tick the plan handles, fired or skipped: the last
// tick for the next call of Due. The zero Time when nothing was due.
func (p Plan) Last() time.Time {
	if !p.Fire.IsZero() {
		return p.Fire
	}
	if n := len(p.Skipped); n > 0 {
		return p.Skipped[n-1]
	}
	return time.Time{}
}

// Due says which of the ticks after lastTick and at or before now to fire
// and which to skip. lastTick is the latest tick already handled, fired or
// skipped (Plan.Last of the previous call), or, for a schedule that has
// none, the time it started from: when it was added or resumed, so that
// ticks while it was paused are not due, and so that an @every interval
// counts from there. A zero lastTick has nothing due.
//
// At most one tick fires, the latest: with CatchUpLatest always, with
// CatchUpNone only if now is within its grace (half the time to the
// following tick, at least 1s, at most 1 minute); the ticks before it are
// skipped, and so is the latest when it is later than that. The work is
// bounded whatever the gap: an @every schedule is arithmetic, and a cron
// expression looks back from now in doubling windows until it has seen
// MaxSkipped+1 ticks.
func Due(spec Spec, lastTick, now time.Time, catchUp CatchUp) Plan {
	if lastTick.IsZero() {
		return Plan{}
	}
	ticks, more := spec.ticks(lastTick, now, MaxSkipped+1)
	if len(ticks) == 0 {
		return Plan{}
	}
	latest := ticks[len(ticks)-1]
	if catchUp == CatchUpNone && now.Sub(latest) > spec.grace(latest) {
		if len(ticks) > MaxSkipped {
			ticks, more = ticks[1:], true
		}
		return Plan{Skipped: ticks, Truncated: more}
	}
	p := Plan{Fire: latest, Truncated: more}
	if len(ticks) > 1 {
		p.Skipped = ticks[:len(ticks)-1]
	}
	return p
}

// ticks returns the latest n ticks after last and at or before now, oldest
// first, and whether there are earlier ones.
func (s Spec) ticks(last, now time.Time, n int) ([]time.Time, bool) {
	if s.sched == nil || !now.After(last) {
		return nil, false
	}
	if s.every > 0 {
		// The k-th tick is k intervals after last's whole second (as
		// the cron library counts); k runs from 1 to count.
		base := last.Unix()
		count := (now.Unix() - base) / s.every
		if count <= 0 {
			return nil, false
		}
		first := max(1, count-int64(n)+1)
		out := make([]time.Time, 0, count-first+1)
		for k := first; k <= count; k++ {
			out = append(out, time.Unix(base+k*s.every, 0).UTC())
		}
		return out, first > 1
	}
	// A cron expression has no previous tick to ask for: walk forward
	// from now-w, keeping the last n ticks, and double w until they are n
	// or w reaches back to last. A window that had fewer than n ticks
	// bounds the walk of the next: it is twice as long.
	gap := now.Sub(last) // at most the largest Duration (292 years)
	ring := make([]time.Time, 0, n)
	for w := time.Duration(n) * time.Minute; ; {
		whole := w >= gap
		from := last
		if !whole {
			from = now.Add(-w)
		}
		ring = ring[:0]
		for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
			if len(ring) == n {
				copy(ring, ring[1:])
				ring = ring[:n-1]
			}
			ring = append(ring, t)
		}
		if len(ring) == n || whole {
			if len(ring) == 0 {
				return nil, false
			}
			return ring, s.Next(last).Before(ring[0])
		}
		if w > gap/2 {
			w = gap
		} else {
			w *= 2
		}
	}
}
