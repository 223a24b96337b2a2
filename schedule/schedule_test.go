package schedule

import (
	"strings"
	"testing"
	"time"

	// The tests need Europe/Paris and America/New_York on any machine.
	_ "time/tzdata"
)

func mustParse(t testing.TB, expr, zone string) Spec {
	t.Helper()
	s, err := Parse(expr, zone)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, zone, err)
	}
	return s
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// nexts is the n ticks after after.
func nexts(s Spec, after time.Time, n int) []string {
	var out []string
	for range n {
		after = s.Next(after)
		out = append(out, after.Format(time.RFC3339))
	}
	return out
}

func TestNext(t *testing.T) {
	// 2025-01-15 is a Wednesday.
	const from = "2025-01-15T10:20:30.5Z"
	for _, tc := range []struct {
		expr, zone string
		want       []string
	}{
		{"@hourly", "", []string{"2025-01-15T11:00:00Z", "2025-01-15T12:00:00Z", "2025-01-15T13:00:00Z"}},
		{"@daily", "", []string{"2025-01-16T00:00:00Z", "2025-01-17T00:00:00Z"}},
		{"@midnight", "", []string{"2025-01-16T00:00:00Z", "2025-01-17T00:00:00Z"}},
		{"@weekly", "", []string{"2025-01-19T00:00:00Z", "2025-01-26T00:00:00Z"}}, // Sundays
		{"@monthly", "", []string{"2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"}},
		{"@yearly", "", []string{"2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"}},
		{"@annually", "", []string{"2026-01-01T00:00:00Z"}},
		// @every counts from the whole second of after, and then from
		// each tick.
		{"@every 90s", "", []string{"2025-01-15T10:22:00Z", "2025-01-15T10:23:30Z", "2025-01-15T10:25:00Z"}},
		{"@every 1h30m", "", []string{"2025-01-15T11:50:30Z", "2025-01-15T13:20:30Z"}},
		{"@every 1s", "", []string{"2025-01-15T10:20:31Z", "2025-01-15T10:20:32Z"}},
		{"@every 1h", "Europe/Paris", []string{"2025-01-15T11:20:30Z"}}, // the zone means nothing to it
		{"* * * * *", "", []string{"2025-01-15T10:21:00Z", "2025-01-15T10:22:00Z"}},
		{"*/15 * * * *", "", []string{"2025-01-15T10:30:00Z", "2025-01-15T10:45:00Z", "2025-01-15T11:00:00Z"}},
		{"0 9 * * 1-5", "", []string{"2025-01-16T09:00:00Z", "2025-01-17T09:00:00Z", "2025-01-20T09:00:00Z"}},
		{"30 4 1,15 * *", "", []string{"2025-02-01T04:30:00Z", "2025-02-15T04:30:00Z", "2025-03-01T04:30:00Z"}},
		{"0 12 1 jan,jul *", "", []string{"2025-07-01T12:00:00Z", "2026-01-01T12:00:00Z"}},
		{"0 0 * * sun", "", []string{"2025-01-19T00:00:00Z"}},
		{"0 0 ? * SAT", "", []string{"2025-01-18T00:00:00Z"}},
		// Day of month and day of week both restricted: either matches
		// (the 13th, and Fridays), as in Vixie cron.
		{"0 0 13 * 5", "", []string{"2025-01-17T00:00:00Z", "2025-01-24T00:00:00Z", "2025-01-31T00:00:00Z", "2025-02-07T00:00:00Z", "2025-02-13T00:00:00Z"}},
		{"0 0 29 2 *", "", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"0 9 * * *", "Europe/Paris", []string{"2025-01-16T08:00:00Z"}},
		{"0 9 * * *", "America/New_York", []string{"2025-01-15T14:00:00Z"}},
		{"0 9 * * *", "UTC", []string{"2025-01-16T09:00:00Z"}},
	} {
		s := mustParse(t, tc.expr, tc.zone)
		got := nexts(s, utc(from), len(tc.want))
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q in %q after %s:\n got %v\nwant %v", tc.expr, tc.zone, from, got, tc.want)
		}
	}
}

// A tick is the same instant in UTC, a whole second, whatever the zone of
// the time it is asked from.
func TestNextUTC(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	for _, expr := range []string{"0 9 * * *", "@every 45s", "@hourly"} {
		s := mustParse(t, expr, "Europe/Paris")
		after := utc("2025-06-01T12:34:56.789Z")
		want := s.Next(after)
		if want.Location() != time.UTC || want.Nanosecond() != 0 || !want.After(after) {
			t.Errorf("%q: Next = %v, want a whole second in UTC after %v", expr, want, after)
		}
		for _, in := range []time.Time{after.In(paris), after.In(tokyo), after.Local()} {
			if got := s.Next(in); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("%q: Next(%v) = %v, want %v", expr, in, got, want)
			}
		}
	}
}

// The cron library looks five years ahead; Next goes on, so that a
// schedule on 29 February finds its tick across 2100, not a leap year.
func TestNextFarAhead(t *testing.T) {
	s := mustParse(t, "0 0 29 2 *", "")
	if got, want := s.Next(utc("2097-03-01T00:00:00Z")), utc("2104-02-29T00:00:00Z"); !got.Equal(want) {
		t.Errorf("Next after 2097-03-01 = %v, want %v", got, want)
	}
	if got := (Spec{}).Next(utc("2025-01-01T00:00:00Z")); !got.IsZero() {
		t.Errorf("zero Spec: Next = %v, want the zero Time", got)
	}
}

// A daily 09:00 in Europe/Paris is 08:00 UTC in winter and 07:00 UTC in
// summer, and still one tick a day on the days the clocks change.
func TestZoneAcrossDST(t *testing.T) {
	s := mustParse(t, "0 9 * * *", "Europe/Paris")
	for _, tc := range []struct {
		from string
		want []string
	}{
		// 2025-03-30: 02:00 CET becomes 03:00 CEST.
		{"2025-03-28T12:00:00Z", []string{"2025-03-29T08:00:00Z", "2025-03-30T07:00:00Z", "2025-03-31T07:00:00Z"}},
		// 2025-10-26: 03:00 CEST becomes 02:00 CET.
		{"2025-10-24T12:00:00Z", []string{"2025-10-25T07:00:00Z", "2025-10-26T08:00:00Z", "2025-10-27T08:00:00Z"}},
	} {
		if got := nexts(s, utc(tc.from), len(tc.want)); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("after %s:\n got %v\nwant %v", tc.from, got, tc.want)
		}
	}
}

// What the package doc says of the hours the clocks skip and repeat.
func TestDSTGapAndRepeat(t *testing.T) {
	for _, tc := range []struct {
		name, expr, from string
		want             []string
	}{
		// Spring forward: 02:30 does not exist on 2025-03-30 in Paris;
		// that day has no tick.
		{"gap daily", "30 2 * * *", "2025-03-28T12:00:00Z", []string{
			"2025-03-29T01:30:00Z", // 02:30 CET
			"2025-03-31T00:30:00Z", // 02:30 CEST
		}},
		// A schedule through the night loses the ticks of the missing hour.
		{"gap quarter-hours", "*/15 * * * *", "2025-03-30T00:30:00Z", []string{
			"2025-03-30T00:45:00Z", // 01:45 CET
			"2025-03-30T01:00:00Z", // 03:00 CEST
			"2025-03-30T01:15:00Z", // 03:15 CEST
		}},
		// Fall back: 02:30 happens twice on 2025-10-26 in Paris, an hour
		// apart; both are ticks.
		{"repeat daily", "30 2 * * *", "2025-10-25T12:00:00Z", []string{
			"2025-10-26T00:30:00Z", // 02:30 CEST
			"2025-10-26T01:30:00Z", // 02:30 CET
			"2025-10-27T01:30:00Z", // 02:30 CET
		}},
		{"repeat hourly", "@hourly", "2025-10-25T23:30:00Z", []string{
			"2025-10-26T00:00:00Z", // 02:00 CEST
			"2025-10-26T01:00:00Z", // 02:00 CET
			"2025-10-26T02:00:00Z", // 03:00 CET
		}},
		// @every ignores the clocks: always an hour apart.
		{"every across the gap", "@every 1h", "2025-03-29T23:30:00Z", []string{
			"2025-03-30T00:30:00Z", "2025-03-30T01:30:00Z", "2025-03-30T02:30:00Z",
		}},
	} {
		s := mustParse(t, tc.expr, "Europe/Paris")
		if got := nexts(s, utc(tc.from), len(tc.want)); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: %q after %s:\n got %v\nwant %v", tc.name, tc.expr, tc.from, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		expr, zone             string
		wantExpr, wantZone, st string
	}{
		{"  0   9 * *\t1-5 ", "", "0 9 * * 1-5", "UTC", "0 9 * * 1-5"},
		{"@daily", "UTC", "@daily", "UTC", "@daily"},
		{" @every   1h30m ", " Europe/Paris ", "@every 1h30m", "Europe/Paris", "@every 1h30m (Europe/Paris)"},
		{"@every 1.5h", "", "@every 1.5h", "UTC", "@every 1.5h"}, // 5400 whole seconds
	} {
		s := mustParse(t, tc.expr, tc.zone)
		if s.Expr() != tc.wantExpr || s.Zone() != tc.wantZone || s.String() != tc.st {
			t.Errorf("Parse(%q, %q): Expr %q Zone %q String %q; want %q %q %q",
				tc.expr, tc.zone, s.Expr(), s.Zone(), s.String(), tc.wantExpr, tc.wantZone, tc.st)
		}
	}
}

var parseErrors = []struct {
	expr, zone string
	want       string // the whole error, or its start and a part of it
}{
	{"61 * * * *", "", `cron: "61 * * * *": end of range (61) above maximum (59)`},
	{"* 24 * * *", "", `cron: "* 24 * * *": end of range (24) above maximum (23)`},
	{"* * 0 * *", "", `cron: "* * 0 * *": beginning of range (0) below minimum (1)`},
	{"* * * 13 *", "", `cron: "* * * 13 *": end of range (13) above maximum (12)`},
	{"* * * * 7", "", `cron: "* * * * 7": end of range (7) above maximum (6)`},
	{"*/0 * * * *", "", `cron: "*/0 * * * *": step of range should be a positive number`},
	{"5-1 * * * *", "", `cron: "5-1 * * * *": beginning of range (5) beyond end of range (1)`},
	{"a * * * *", "", `cron: "a * * * *": failed to parse int from a`},
	{"* * * *", "", `cron: "* * * *": expected exactly 5 fields, found 4`},
	{"0 * * * * *", "", `cron: "0 * * * * *": expected exactly 5 fields, found 6`},
	{"", "", "cron: empty; want five fields"},
	{"   ", "", "cron: empty; want five fields"},
	{"@fortnightly", "", `cron: "@fortnightly": unrecognized descriptor`},
	{"@DAILY", "", `cron: "@DAILY": unrecognized descriptor`},
	{"@every", "", `cron: "@every": unrecognized descriptor`},
	{"@every soon", "", `cron: "@every soon": failed to parse duration`},
	{"@every 500ms", "", `cron: "@every 500ms": the interval must be at least 1s`},
	{"@every 0s", "", `cron: "@every 0s": the interval must be at least 1s`},
	{"@every -1m", "", `cron: "@every -1m": the interval must be at least 1s`},
	{"@every 1.5s", "", `cron: "@every 1.5s": the interval must be whole seconds`},
	{"@every 1m500ms", "", `cron: "@every 1m500ms": the interval must be whole seconds`},
	{"0 0 31 2 *", "", `cron: "0 0 31 2 *": never fires`},
	{"0 0 30 2 *", "Europe/Paris", `cron: "0 0 30 2 *": never fires`},
	{"TZ=Europe/Paris 0 9 * * *", "", `cron: "TZ=Europe/Paris 0 9 * * *": give the time zone with --timezone`},
	{"CRON_TZ=UTC @daily", "", `cron: "CRON_TZ=UTC @daily": give the time zone with --timezone`},
	{"TZ=x", "", `cron: "TZ=x": give the time zone with --timezone`}, // the library would panic
	{"0 9 * * *", "Mars/Olympus", `timezone: unknown time zone "Mars/Olympus"`},
	{"0 9 * * *", "europe/paris", `timezone: unknown time zone "europe/paris"`},
	{"0 9 * * *", "../etc/passwd", `timezone: unknown time zone "../etc/passwd"`},
	{"0 9 * * *", "Local", `timezone: "Local" is each daemon's own zone`},
	// The zone is checked first, whatever the expression.
	{"61 * * * *", "Mars/Olympus", `timezone: unknown time zone "Mars/Olympus"`},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range parseErrors {
		s, err := Parse(tc.expr, tc.zone)
		if err == nil {
			t.Errorf("Parse(%q, %q) = %v, want an error %q", tc.expr, tc.zone, s, tc.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) error:\n got %q\nwant %q...", tc.expr, tc.zone, err, tc.want)
		}
		if s != (Spec{}) {
			t.Errorf("Parse(%q, %q) returned %#v with its error", tc.expr, tc.zone, s)
		}
	}
}
