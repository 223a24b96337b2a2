package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention (docs/maintenance.md, "Retention"): job.delete and job.prune,
// and the durations that say how old is old.

// PruneRequest is job.prune's param.
type PruneRequest struct {
	// OlderThan is the age of the jobs to delete: a duration ("30d",
	// "12h", "1d12h", ParseAge) or, on the wire, an int of seconds.
	OlderThan string `xmlrpc:"older_than"`
	DryRun    bool   `xmlrpc:"dry_run,omitempty"` // count, delete nothing
}

// DeleteResult is what job.delete returns.
type DeleteResult struct {
	JobIDs []string `xmlrpc:"job_ids" json:"job_ids"` // the jobs deleted
	Jobs   int      `xmlrpc:"jobs" json:"jobs"`
	Runs   int      `xmlrpc:"runs" json:"runs"` // deleted with them, and their output
}

// PruneResult is what job.prune returns: the jobs whose runs are all
// final and whose last run ended before Before (the call's time less
// older_than), deleted or, with dry_run, that would be.
type PruneResult struct {
	OlderThan string    `xmlrpc:"older_than" json:"older_than"` // as FormatAge writes it
	Before    time.Time `xmlrpc:"before" json:"before"`
	DryRun    bool      `xmlrpc:"dry_run" json:"dry_run"`
	Jobs      int       `xmlrpc:"jobs" json:"jobs"`
	Runs      int       `xmlrpc:"runs" json:"runs"`
}

// MaxDeleteJobs is the most job ids one job.delete call takes.
const MaxDeleteJobs = 1000

// ParseAge reads an age or a retention period: a Go duration ("36h",
// "90m", "1h30m") whose units may also include d, a day of 24 hours
// ("90d", "1d12h", "1.5d"); "0" is zero. Never negative, at most 100
// years (maxAgeDays). Off values are ParseRetention's.
func ParseAge(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a duration such as 90d, 36h or 30m", s)
	if in == "0" {
		return 0, nil
	}
	if in == "" {
		return 0, bad
	}
	const max = maxAgeDays * 24 * time.Hour
	var total time.Duration
	for rest := in; rest != ""; {
		// A number, then its unit.
		n := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if n <= 0 {
			return 0, bad // no number, or no unit
		}
		u := n + strings.IndexFunc(rest[n:], func(r rune) bool { return r >= '0' && r <= '9' || r == '.' })
		if u < n {
			u = len(rest)
		}
		num, unit := rest[:n], rest[n:u]
		var d time.Duration
		if unit == "d" {
			days, err := strconv.ParseFloat(num, 64)
			if err != nil || days > maxAgeDays {
				return 0, bad
			}
			d = time.Duration(days * float64(24*time.Hour))
		} else {
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, bad
			}
		}
		if d < 0 || d > max || total+d > max {
			return 0, bad
		}
		total += d
		rest = rest[u:]
	}
	return total, nil
}

// maxAgeDays bounds an age so that now less it is a time the server can
// store (Unix nanoseconds, from 1970): 100 years (MaxAge).
const maxAgeDays = 36500

// MaxAge is the longest age ParseAge reads, and job.prune's older_than
// takes.
const MaxAge = maxAgeDays * 24 * time.Hour

// ParseRetention reads a retention period (serve --retain,
// --retain-audit, server.yaml retain, retain_audit): an age as ParseAge
// reads it, or "off", "never" or any zero duration ("0", "0d"), which
// keep for ever (0).
func ParseRetention(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "off", "never", "0":
		return 0, nil
	}
	d, err := ParseAge(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a duration such as 90d, 36h or 30m nor off", s)
	}
	return d, nil
}

// FormatAge writes an age as ParseAge reads it, days first: "90d",
// "1d12h", "1h30m", "45s"; zero is "0s".
func FormatAge(d time.Duration) string {
	const day = 24 * time.Hour
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	if d >= day {
		b.WriteString(strconv.FormatInt(int64(d/day), 10) + "d")
		d %= day
	}
	if d > 0 {
		r := d.String() // 12h0m0s, 1h30m0s, 45s
		if strings.HasSuffix(r, "m0s") {
			r = strings.TrimSuffix(r, "0s")
		}
		if strings.HasSuffix(r, "h0m") {
			r = strings.TrimSuffix(r, "0m")
		}
		b.WriteString(r)
	}
	return b.String()
}
