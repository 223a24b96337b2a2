// Package schedule holds the time rules of schedules (SPEC §13): which
// expressions and time zones a schedule takes, when its ticks fall, which
// ticks to fire after a pause of the daemons (--catch-up) and whether a
// tick fires while the previous job still runs (--overlap). The rules are
// pure functions of the times they are given, with no clock of their own,
// so that every daemon that asks gets the same answer and the tests need
// no sleeping; the scheduler service keeps schedules and ticks in the
// database and asks this package what to do.
//
// # Expressions
//
// Parse takes the standard five fields of cron (minute, hour, day of
// month, month, day of week), read by github.com/robfig/cron/v3: numbers,
// "*", ranges "a-b", steps "*/n" and "a-b/n", lists "a,b", the names
// jan..dec and sun..sat, and "?" for "*". Day of week is 0..6 with Sunday
// 0 (7 is refused). When both day of month and day of week are restricted,
// a day matches if either does, as in Vixie cron. The descriptors are
// @hourly, @daily (or @midnight), @weekly (Sunday), @monthly, @yearly (or
// @annually), all at minute 0, and "@every DURATION" in Go's syntax
// ("@every 90s", "@every 1h30m").
//
// # Ticks
//
// A tick is an instant at which the schedule makes a job. Its identity is
// that instant in UTC, a whole second (the unique key of the database is
// the schedule and the tick), so that daemons in different zones, and the
// same daemon before and after a restart, name the same tick the same way.
//
// An @every interval is whole seconds, at least one: "@every 500ms" and
// "@every 1.5s" are refused rather than rounded to a second as the cron
// library would, so that a schedule does what its expression says. Its
// ticks count from the previous one: the first comes one interval after the
// time the schedule started from (see Due), then one interval after each
// other, whatever the time zone.
//
// # Time zones and daylight saving time
//
// The five fields are read in the schedule's time zone, an IANA name
// (Europe/Paris; default UTC): "0 9 * * *" in Europe/Paris is 08:00 UTC in
// winter and 07:00 UTC in summer. "Local" is refused, since each daemon
// would read it as its own zone. Where a zone changes its clocks, the
// ticks are the cron library's:
//
//   - Spring forward (Europe/Paris, last Sunday of March, 02:00 becomes
//     03:00): a time of day inside the gap does not exist that day and
//     has no tick; "30 2 * * *" skips that day and fires at 02:30 the next.
//     A schedule whose hours include the gap loses those ticks:
//     "*/15 * * * *" goes from 01:45 to 03:00.
//   - Fall back (last Sunday of October, 03:00 becomes 02:00, so the hour
//     from 02:00 happens twice): a time of day inside the repeated hour
//     happens twice and has two ticks, an hour apart; "30 2 * * *" fires
//     at 02:30 CEST (00:30 UTC) and again at 02:30 CET (01:30 UTC). Both
//     are distinct instants, so both are ticks with keys of their own.
//
// A schedule that must run once a day whatever the clocks do avoids the
// hours the zone changes (02:00 to 03:00 in Europe/Paris), or uses UTC. An
// @every schedule ignores the clocks: its ticks are always the interval
// apart.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Spec is a parsed schedule: its expression and its time zone. The zero
// Spec has no ticks.
type Spec struct {
	expr  string
	zone  string
	sched cron.Schedule
	every int64 // seconds between ticks of an @every schedule, else 0
}

// parser reads the five standard fields and the descriptors.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ref is an instant from which Parse looks for a first tick: the start of
// a leap year, so that every day a calendar has (29 February too) comes
// within the cron library's search.
var ref = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Parse reads a schedule's expression (--cron) in the time zone zone
// (--timezone, an IANA name; empty is UTC). Errors name the field they
// are about: `cron: "61 * * * *": …`, `timezone: unknown time zone
// "Mars/Olympus"`. Blanks around the expression and between its fields
// are not significant; Expr gives it back with single spaces.
func Parse(expr, zone string) (Spec, error) {
	expr = strings.Join(strings.Fields(expr), " ")
	loc, zone, err := loadZone(zone)
	if err != nil {
		return Spec{}, err
	}
	switch {
	case expr == "":
		return Spec{}, errors.New("cron: empty; want five fields (minute hour day-of-month month day-of-week), @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		// The cron library would take the zone from the expression; a
		// schedule has its own field for it, and one place is enough.
		return Spec{}, fmt.Errorf("cron: %q: give the time zone with --timezone, not in the expression", expr)
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		return Spec{}, fmt.Errorf("cron: %q: %v", expr, err)
	}
	s := Spec{expr: expr, zone: zone, sched: sched}
	switch c := sched.(type) {
	case *cron.SpecSchedule:
		c.Location = loc
	case cron.ConstantDelaySchedule:
		// The library rounds what it cannot do (under a second, fractions
		// of one); refuse instead, reading the duration it read.
		d, _ := time.ParseDuration(strings.TrimPrefix(expr, "@every "))
		switch {
		case d < time.Second:
			return Spec{}, fmt.Errorf("cron: %q: the interval must be at least 1s", expr)
		case d%time.Second != 0:
			return Spec{}, fmt.Errorf("cron: %q: the interval must be whole seconds", expr)
		}
		s.every = int64(d / time.Second)
	default:
		return Spec{}, fmt.Errorf("cron: %q: unexpected schedule %T", expr, sched)
	}
	if s.Next(ref).IsZero() {
		return Spec{}, fmt.Errorf("cron: %q: never fires (no day of the calendar matches)", expr)
	}
	return s, nil
}

// loadZone loads an IANA time zone; empty is UTC.
func loadZone(zone string) (*time.Location, string, error) {
	zone = strings.TrimSpace(zone)
	if zone == "" {
		return time.UTC, "UTC", nil
	}
	if zone == "Local" {
		return nil, "", fmt.Errorf("timezone: %q is each daemon's own zone; name one, such as UTC or Europe/Paris", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, "", fmt.Errorf("timezone: unknown time zone %q", zone)
	}
	return loc, zone, nil
}

// Expr is the expression as parsed, blanks made single spaces.
func (s Spec) Expr() string { return s.expr }

// Zone is the time zone's IANA name, UTC when none was given.
func (s Spec) Zone() string { return s.zone }

// String is the expression, with its zone when that is not UTC.
func (s Spec) String() string {
	if s.zone == "UTC" || s.zone == "" {
		return s.expr
	}
	return s.expr + " (" + s.zone + ")"
}

// searches is how many times Next asks the cron library, which looks five
// years ahead each time: a schedule on 29 February finds its next tick
// across 2100, which is not a leap year (2097 to 2104).
const searches = 3

// Next is the first tick strictly after after, in UTC; the zero Time when
// the schedule has none in the next 18 years, and always for the zero Spec.
func (s Spec) Next(after time.Time) time.Time {
	if s.sched == nil {
		return time.Time{}
	}
	for range searches {
		if t := s.sched.Next(after); !t.IsZero() {
			return t.UTC()
		}
		// The library gave up at the end of the fifth year after the year
		// of after; go on from there.
		c, ok := s.sched.(*cron.SpecSchedule) // @every always has a next tick
		if !ok {
			break
		}
		y := after.In(c.Location).Year() + 6
		after = time.Date(y, time.January, 1, 0, 0, 0, 0, c.Location).Add(-time.Second)
	}
	return time.Time{}
}
