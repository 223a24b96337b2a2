package schedule

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCatchUp(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want CatchUp
		err  string
	}{
		{"", CatchUpLatest, ""},
		{"latest", CatchUpLatest, ""},
		{" none ", CatchUpNone, ""},
		{"sometimes", "", `--catch-up: "sometimes" is not latest or none`},
		{"Latest", "", `--catch-up: "Latest" is not latest or none`},
		{"all", "", `--catch-up: "all" is not latest or none`},
	} {
		got, err := ParseCatchUp(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseCatchUp(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCatchUp(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func times(ss ...string) []time.Time {
	var out []time.Time
	for _, s := range ss {
		out = append(out, utc(s))
	}
	return out
}

func samePlan(t *testing.T, what string, got, want Plan) {
	t.Helper()
	if !got.Fire.Equal(want.Fire) || !reflect.DeepEqual(got.Skipped, want.Skipped) || got.Truncated != want.Truncated {
		t.Errorf("%s:\n got %s\nwant %s", what, fmtPlan(got), fmtPlan(want))
	}
}

func fmtPlan(p Plan) string {
	var b strings.Builder
	b.WriteString("fire ")
	if p.Fire.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(p.Fire.Format(time.RFC3339))
	}
	b.WriteString(", skipped [")
	for i, s := range p.Skipped {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s.Format(time.RFC3339))
	}
	b.WriteString("]")
	if p.Truncated {
		b.WriteString(" and earlier")
	}
	return b.String()
}

// Three hourly ticks missed while no daemon ran: latest fires the last
// one and skips the two before it; none skips all three.
func TestDueMissedTicks(t *testing.T) {
	s := mustParse(t, "@hourly", "")
	last := utc("2025-01-15T09:00:00Z")
	now := utc("2025-01-15T12:30:00Z")
	latest := Due(s, last, now, CatchUpLatest)
	samePlan(t, "latest", latest, Plan{
		Fire:    utc("2025-01-15T12:00:00Z"),
		Skipped: times("2025-01-15T10:00:00Z", "2025-01-15T11:00:00Z"),
	})
	if got := latest.Last(); !got.Equal(utc("2025-01-15T12:00:00Z")) {
		t.Errorf("latest: Last = %v", got)
	}
	if got := Due(s, last, now, ""); !reflect.DeepEqual(got, latest) {
		t.Errorf("the zero CatchUp: %s, want latest's %s", fmtPlan(got), fmtPlan(latest))
	}
	none := Due(s, last, now, CatchUpNone)
	samePlan(t, "none", none, Plan{
		Skipped: times("2025-01-15T10:00:00Z", "2025-01-15T11:00:00Z", "2025-01-15T12:00:00Z"),
	})
	if got := none.Last(); !got.Equal(utc("2025-01-15T12:00:00Z")) {
		t.Errorf("none: Last = %v", got)
	}
	// The next call, from Last, has nothing due until 13:00.
	for _, p := range []Plan{latest, none} {
		if got := Due(s, p.Last(), now, CatchUpLatest); !reflect.DeepEqual(got, Plan{}) {
			t.Errorf("again from %v: %s, want nothing", p.Last(), fmtPlan(got))
		}
	}
}

func TestDueOnTime(t *testing.T) {
	s := mustParse(t, "*/5 * * * *", "")
	last := utc("2025-01-15T10:00:00Z")
	for _, tc := range []struct {
		now  string
		c    CatchUp
		want Plan
	}{
		{"2025-01-15T10:04:59.999Z", CatchUpLatest, Plan{}},
		{"2025-01-15T10:04:59.999Z", CatchUpNone, Plan{}},
		// A tick is due at its instant.
		{"2025-01-15T10:05:00Z", CatchUpLatest, Plan{Fire: utc("2025-01-15T10:05:00Z")}},
		{"2025-01-15T10:05:00Z", CatchUpNone, Plan{Fire: utc("2025-01-15T10:05:00Z")}},
		// none: within the grace of a 5-minute interval (1 minute) ...
		{"2025-01-15T10:06:00Z", CatchUpNone, Plan{Fire: utc("2025-01-15T10:05:00Z")}},
		// ... and not after it; latest fires it anyway.
		{"2025-01-15T10:06:00.001Z", CatchUpNone, Plan{Skipped: times("2025-01-15T10:05:00Z")}},
		{"2025-01-15T10:09:59Z", CatchUpLatest, Plan{Fire: utc("2025-01-15T10:05:00Z")}},
		// One late tick and one on time: none fires the one on time.
		{"2025-01-15T10:10:30Z", CatchUpNone, Plan{Fire: utc("2025-01-15T10:10:00Z"), Skipped: times("2025-01-15T10:05:00Z")}},
		// A clock behind the last tick (another daemon's) has nothing due.
		{"2025-01-15T09:59:00Z", CatchUpLatest, Plan{}},
		{"2025-01-15T10:00:00Z", CatchUpLatest, Plan{}},
	} {
		samePlan(t, tc.now+" "+string(tc.c), Due(s, last, utc(tc.now), tc.c), tc.want)
	}
	if got := Due(s, time.Time{}, utc("2025-01-15T10:05:00Z"), CatchUpLatest); !reflect.DeepEqual(got, Plan{}) {
		t.Errorf("zero last tick: %s, want nothing", fmtPlan(got))
	}
	if got := Due(Spec{}, last, utc("2025-01-15T10:05:00Z"), CatchUpLatest); !reflect.DeepEqual(got, Plan{}) {
		t.Errorf("zero Spec: %s, want nothing", fmtPlan(got))
	}
}

func TestGrace(t *testing.T) {
	for _, tc := range []struct {
		expr string
		tick string
		want time.Duration
	}{
		{"@every 1s", "2025-01-15T10:00:00Z", time.Second},
		{"@every 2s", "2025-01-15T10:00:00Z", time.Second},
		{"@every 10s", "2025-01-15T10:00:00Z", 5 * time.Second},
		{"* * * * *", "2025-01-15T10:00:00Z", 30 * time.Second},
		{"*/5 * * * *", "2025-01-15T10:00:00Z", time.Minute},
		{"@daily", "2025-01-15T00:00:00Z", time.Minute},
		// An irregular schedule: the interval is the one after the tick.
		{"0,1 9 * * *", "2025-01-15T09:00:00Z", 30 * time.Second},
		{"0,1 9 * * *", "2025-01-15T09:01:00Z", time.Minute},
	} {
		s := mustParse(t, tc.expr, "")
		if got := s.grace(utc(tc.tick)); got != tc.want {
			t.Errorf("%q at %s: grace %v, want %v", tc.expr, tc.tick, got, tc.want)
		}
	}
}

// With ticks a second apart, the latest is always within its grace: none
// fires it as latest does.
func TestDueNoneEverySecond(t *testing.T) {
	s := mustParse(t, "@every 1s", "")
	last := utc("2025-01-15T10:00:00Z")
	now := utc("2025-01-15T10:00:03.999Z")
	want := Plan{Fire: utc("2025-01-15T10:00:03Z"), Skipped: times("2025-01-15T10:00:01Z", "2025-01-15T10:00:02Z")}
	samePlan(t, "none", Due(s, last, now, CatchUpNone), want)
	samePlan(t, "latest", Due(s, last, now, CatchUpLatest), want)
}

// An @every schedule counts from the time it started from, to the second.
func TestDueEveryAnchor(t *testing.T) {
	s := mustParse(t, "@every 90s", "")
	added := utc("2025-01-15T10:00:00.7Z")
	samePlan(t, "before the first tick", Due(s, added, utc("2025-01-15T10:01:29.999Z"), CatchUpLatest), Plan{})
	p := Due(s, added, utc("2025-01-15T10:01:30Z"), CatchUpLatest)
	samePlan(t, "first tick", p, Plan{Fire: utc("2025-01-15T10:01:30Z")})
	samePlan(t, "from the first tick, 4 later", Due(s, p.Last(), utc("2025-01-15T10:07:35Z"), CatchUpLatest), Plan{
		Fire:    utc("2025-01-15T10:07:30Z"),
		Skipped: times("2025-01-15T10:03:00Z", "2025-01-15T10:04:30Z", "2025-01-15T10:06:00Z"),
	})
}

// A daily 09:00 in Paris, daemons down over the spring change of clocks:
// the ticks are 09:00 Paris time on both sides of it.
func TestDueAcrossDST(t *testing.T) {
	s := mustParse(t, "0 9 * * *", "Europe/Paris")
	last := utc("2025-03-29T08:00:00Z") // 09:00 CET
	now := utc("2025-03-31T07:00:10Z")  // 09:00:10 CEST
	samePlan(t, "latest", Due(s, last, now, CatchUpLatest), Plan{Fire: utc("2025-03-31T07:00:00Z"), Skipped: times("2025-03-30T07:00:00Z")})
	samePlan(t, "none", Due(s, last, now, CatchUpNone), Plan{Fire: utc("2025-03-31T07:00:00Z"), Skipped: times("2025-03-30T07:00:00Z")})
}

// Long downtimes give bounded plans: the latest MaxSkipped skipped ticks
// and the fact that there were more.
func TestDueBounded(t *testing.T) {
	for _, tc := range []struct {
		expr, last, now string
		c               CatchUp
		fire            string // "" none
		oldestSkipped   string
		truncated       bool
	}{
		// 2.6 million ticks of @every 1s in 30 days.
		{"@every 1s", "2025-01-01T00:00:00Z", "2025-01-31T00:00:00.5Z", CatchUpLatest, "2025-01-31T00:00:00Z", "2025-01-30T23:59:50Z", true},
		{"@every 1s", "2025-01-01T00:00:00Z", "2025-01-31T00:00:00.5Z", CatchUpNone, "2025-01-31T00:00:00Z", "2025-01-30T23:59:50Z", true},
		{"@every 7s", "2025-01-01T00:00:00Z", "2025-01-31T00:00:00Z", CatchUpNone, "", "2025-01-30T23:58:52Z", true},
		// Five million minutes in ten years.
		{"* * * * *", "2015-01-01T00:00:00Z", "2025-01-01T00:00:30Z", CatchUpLatest, "2025-01-01T00:00:00Z", "2024-12-31T23:50:00Z", true},
		{"* * * * *", "2015-01-01T00:00:00Z", "2025-01-01T00:00:31Z", CatchUpNone, "", "2024-12-31T23:51:00Z", true},
		// Sparse ticks far back.
		{"0 0 1 1 *", "2000-06-01T00:00:00Z", "2025-03-01T00:00:00Z", CatchUpLatest, "2025-01-01T00:00:00Z", "2015-01-01T00:00:00Z", true},
		{"0 0 29 2 *", "1950-06-01T00:00:00Z", "2025-03-01T00:00:00Z", CatchUpLatest, "2024-02-29T00:00:00Z", "1984-02-29T00:00:00Z", true},
		{"0 0 29 2 *", "1950-06-01T00:00:00Z", "2025-03-01T00:00:00Z", CatchUpNone, "", "1988-02-29T00:00:00Z", true},
		// A burst of ticks, then silence.
		{"* 9 * * *", "2025-01-14T00:00:00Z", "2025-01-15T23:00:00Z", CatchUpLatest, "2025-01-15T09:59:00Z", "2025-01-15T09:49:00Z", true},
		// Exactly MaxSkipped+1 ticks: nothing earlier.
		{"@hourly", "2025-01-15T00:00:00Z", "2025-01-15T11:00:00Z", CatchUpLatest, "2025-01-15T11:00:00Z", "2025-01-15T01:00:00Z", false},
		{"@hourly", "2025-01-15T00:00:00Z", "2025-01-15T11:30:00Z", CatchUpNone, "", "2025-01-15T02:00:00Z", true},
	} {
		what := tc.expr + " " + string(tc.c) + " " + tc.last + ".." + tc.now
		start := time.Now()
		p := Due(mustParse(t, tc.expr, ""), utc(tc.last), utc(tc.now), tc.c)
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", what, d)
		}
		if len(p.Skipped) != MaxSkipped {
			t.Errorf("%s: %d skipped, want %d", what, len(p.Skipped), MaxSkipped)
			continue
		}
		fire := ""
		if !p.Fire.IsZero() {
			fire = p.Fire.Format(time.RFC3339)
		}
		if fire != tc.fire || !p.Skipped[0].Equal(utc(tc.oldestSkipped)) || p.Truncated != tc.truncated {
			t.Errorf("%s: %s; want fire %q, oldest skipped %s, truncated %v", what, fmtPlan(p), tc.fire, tc.oldestSkipped, tc.truncated)
		}
	}
}

// Due agrees with walking the ticks one by one with Next.
func TestDueAgreesWithNext(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := utc("2025-01-01T00:00:00Z")
	for _, expr := range []string{
		"* * * * *", "*/7 * * * *", "0 9 * * 1-5", "* 9 * * *", "30 2 * * *", "0 0 1 * *",
		"0 0 29 2 *", "@hourly", "@every 1s", "@every 13s", "@every 25h",
	} {
		for _, zone := range []string{"", "Europe/Paris"} {
			s := mustParse(t, expr, zone)
			for range 30 {
				last := base.Add(time.Duration(rng.Int64N(int64(400 * 24 * time.Hour))))
				now := last.Add(time.Duration(rng.Int64N(int64([]time.Duration{time.Minute, time.Hour, 48 * time.Hour, 30 * 24 * time.Hour}[rng.IntN(4)]))))
				var all []time.Time
				for tk := s.Next(last); !tk.After(now) && len(all) <= 1000; tk = s.Next(tk) {
					all = append(all, tk)
				}
				if len(all) > 1000 {
					continue // too long a walk for the reference; TestDueBounded has those
				}
				for _, c := range []CatchUp{CatchUpLatest, CatchUpNone} {
					var want Plan
					if n := len(all); n > 0 {
						latest := all[n-1]
						skipped := all[:n-1]
						if c == CatchUpNone && now.Sub(latest) > s.grace(latest) {
							skipped = all
						} else {
							want.Fire = latest
						}
						if len(skipped) > MaxSkipped {
							want.Truncated = true
							skipped = skipped[len(skipped)-MaxSkipped:]
						}
						if len(skipped) > 0 {
							want.Skipped = skipped
						}
					}
					samePlan(t, expr+" in "+zone+" "+string(c)+" "+last.Format(time.RFC3339Nano)+".."+now.Format(time.RFC3339Nano), Due(s, last, now, c), want)
				}
			}
		}
	}
}

// A scheduler on an injected clock that asks every 20 seconds, with the
// daemons down for three hours: one job per tick while they run, and for
// the downtime one (latest) or none, its other ticks skipped (the latest
// MaxSkipped of them listed).
func TestDueSimulated(t *testing.T) {
	s := mustParse(t, "*/5 * * * *", "")
	start := utc("2025-01-15T00:00:00Z")
	downFrom, downTo := utc("2025-01-15T06:02:00Z"), utc("2025-01-15T09:01:10Z")
	for _, tc := range []struct {
		c         CatchUp
		fired     int
		after     string // the first tick fired after the downtime
		skipped   []time.Time
		truncated bool
	}{
		// 24 hours of 5-minute ticks are 288, 00:05 to 24:00; the
		// downtime has 36, 06:05 to 09:00.
		{CatchUpLatest, 288 - 36 + 1, "2025-01-15T09:00:00Z", times(
			"2025-01-15T08:10:00Z", "2025-01-15T08:15:00Z", "2025-01-15T08:20:00Z", "2025-01-15T08:25:00Z", "2025-01-15T08:30:00Z",
			"2025-01-15T08:35:00Z", "2025-01-15T08:40:00Z", "2025-01-15T08:45:00Z", "2025-01-15T08:50:00Z", "2025-01-15T08:55:00Z"), true},
		{CatchUpNone, 288 - 36, "2025-01-15T09:05:00Z", times(
			"2025-01-15T08:15:00Z", "2025-01-15T08:20:00Z", "2025-01-15T08:25:00Z", "2025-01-15T08:30:00Z", "2025-01-15T08:35:00Z",
			"2025-01-15T08:40:00Z", "2025-01-15T08:45:00Z", "2025-01-15T08:50:00Z", "2025-01-15T08:55:00Z", "2025-01-15T09:00:00Z"), true},
	} {
		last := start
		seen := map[time.Time]bool{}
		fired := 0
		var skipped []time.Time
		var after time.Time
		truncated := false
		for now := start; !now.After(start.Add(24 * time.Hour)); now = now.Add(20 * time.Second) {
			if !now.Before(downFrom) && now.Before(downTo) {
				continue
			}
			p := Due(s, last, now, tc.c)
			for _, tk := range append(p.Skipped, p.Fire) {
				if tk.IsZero() {
					continue
				}
				if seen[tk] || !tk.After(last) || tk.After(now) {
					t.Fatalf("%s at %v from %v: tick %v handled twice or out of place", tc.c, now, last, tk)
				}
				seen[tk] = true
			}
			skipped = append(skipped, p.Skipped...)
			truncated = truncated || p.Truncated
			if !p.Fire.IsZero() {
				fired++
				if after.IsZero() && !now.Before(downTo) {
					after = p.Fire
				}
			}
			if l := p.Last(); !l.IsZero() {
				last = l
			}
		}
		if fired != tc.fired || !after.Equal(utc(tc.after)) {
			t.Errorf("%s: fired %d, the first after the downtime %v; want %d, %s", tc.c, fired, after, tc.fired, tc.after)
		}
		if !reflect.DeepEqual(skipped, tc.skipped) || truncated != tc.truncated {
			t.Errorf("%s: skipped %v (truncated %v), want %v (%v)", tc.c, skipped, truncated, tc.skipped, tc.truncated)
		}
	}
}
