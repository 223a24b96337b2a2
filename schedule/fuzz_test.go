package schedule

import (
	"testing"
	"time"
)

// FuzzParse checks, on any expression and zone, that Parse does not panic;
// that an error names its field and comes with the zero Spec; and that an
// accepted schedule parses again from its Expr and Zone, has a next tick,
// a whole second in UTC after the time asked, and gives Due a bounded plan
// of ticks in order between the last tick and now, from the next tick on
// unless truncated.
func FuzzParse(f *testing.F) {
	for _, e := range []string{
		"* * * * *", "*/15 * * * *", "0 9 * * 1-5", "30 4 1,15 * *", "0 12 1 jan,jul *",
		"0 0 13 * 5", "0 0 29 2 *", "@hourly", "@daily", "@midnight", "@weekly", "@monthly",
		"@yearly", "@annually", "@every 90s", "@every 1h30m",
	} {
		f.Add(e, "")
		f.Add(e, "Europe/Paris")
	}
	for _, tc := range parseErrors {
		f.Add(tc.expr, tc.zone)
	}
	f.Add("TZ=", "")
	f.Add("CRON_TZ=Europe/Paris", "")
	f.Add("1-2-3 */99999999999999999999 * * *", "UTC")
	f.Fuzz(func(t *testing.T, expr, zone string) {
		s, err := Parse(expr, zone)
		if err != nil {
			if msg := err.Error(); len(msg) < 6 || (msg[:6] != "cron: " && msg[:10] != "timezone: ") {
				t.Fatalf("Parse(%q, %q): error %q names no field", expr, zone, msg)
			}
			if s != (Spec{}) {
				t.Fatalf("Parse(%q, %q) returned %#v with its error", expr, zone, s)
			}
			return
		}
		again, err := Parse(s.Expr(), s.Zone())
		if err != nil || again.Expr() != s.Expr() || again.Zone() != s.Zone() {
			t.Fatalf("Parse(%q, %q) = %q in %q, which parses as %q in %q, %v", expr, zone, s.Expr(), s.Zone(), again.Expr(), again.Zone(), err)
		}
		after := time.Date(2025, 6, 1, 12, 34, 56, 789, time.UTC)
		next := s.Next(after)
		if next.IsZero() || !next.After(after) || next.Location() != time.UTC || next.Nanosecond() != 0 {
			t.Fatalf("%q in %q: Next(%v) = %v", expr, zone, after, next)
		}
		now := after.Add(40 * 24 * time.Hour)
		for _, c := range []CatchUp{CatchUpLatest, CatchUpNone} {
			p := Due(s, after, now, c)
			if len(p.Skipped) > MaxSkipped {
				t.Fatalf("%q %s: %d skipped", expr, c, len(p.Skipped))
			}
			prev := after
			for _, tk := range append(p.Skipped, p.Fire) {
				if tk.IsZero() {
					continue
				}
				if !tk.After(prev) || tk.After(now) {
					t.Fatalf("%q %s: plan out of order or place: %s", expr, c, fmtPlan(p))
				}
				prev = tk
			}
			if c == CatchUpLatest && p.Fire.IsZero() != next.After(now) {
				t.Fatalf("%q latest: next tick %v, now %v: %s", expr, next, now, fmtPlan(p))
			}
			if first := append(p.Skipped, p.Fire)[0]; !first.IsZero() && !p.Truncated && !first.Equal(next) {
				t.Fatalf("%q %s: next tick %v, plan %s", expr, c, next, fmtPlan(p))
			}
		}
	})
}
