package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/jobxml"
)

// TestParseWhenBounds: --at and --expires take only times the server can
// store (jobxml.TimeRange); beyond them the flag is a usage error naming
// it, not a job that runs at once because its time wrapped around.
func TestParseWhenBounds(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, v := range []string{"9999-01-01T00:00:00Z", "2263-01-01T00:00:00Z", "2262-04-11T23:47:17Z",
		"1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2562047h"} { // now + 292 years
		_, err := parseWhen("at", v, now)
		if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), `--at "`+v+`": `) || !strings.Contains(err.Error(), "is outside "+jobxml.TimeRange) {
			t.Errorf("--at %s: err = %v, want a usage error naming --at and the range", v, err)
		}
	}
	for v, want := range map[string]time.Time{
		"2262-04-11T23:47:16Z":      jobxml.MaxTime,
		"2262-04-12T00:47:16+01:00": jobxml.MaxTime,
		"1970-01-01T00:00:01Z":      jobxml.MinTime,
		"10m":                       now.Add(10 * time.Minute),
		"":                          {},
	} {
		got, err := parseWhen("expires", v, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("--expires %q = %v, %v; want %v", v, got, err, want)
		}
	}
}
