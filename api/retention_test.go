package api

import (
	"testing"
	"time"
)

func TestParseAge(t *testing.T) {
	const day = 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"90d": 90 * day, "1d12h": 36 * time.Hour, "1.5d": 36 * time.Hour, "36h": 36 * time.Hour, "30m": 30 * time.Minute,
		"1h30m": 90 * time.Minute, " 7d ": 7 * day, "0": 0, "0d": 0, "0s": 0, "2d3h4m": 2*day + 3*time.Hour + 4*time.Minute,
		"36500d": 36500 * day,
	} {
		got, err := ParseAge(in)
		if err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "90", "-1d", "-5m", "1x", "d5", "1dd", "1.2.3d", "36501d", "1e3d", "off", "5 d", "+1d"} {
		if got, err := ParseAge(in); err == nil {
			t.Errorf("ParseAge(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"off": 0, "never": 0, "OFF": 0, "0": 0, "0d": 0, "400d": 400 * 24 * time.Hour} {
		got, err := ParseRetention(in)
		if err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseRetention("soon"); err == nil {
		t.Error("ParseRetention(soon): no error")
	}
}

func TestFormatAge(t *testing.T) {
	for d, want := range map[time.Duration]string{90 * 24 * time.Hour: "90d", 36 * time.Hour: "1d12h", 0: "0s", 90 * time.Minute: "1h30m",
		12 * time.Hour: "12h", 45 * time.Second: "45s", 24*time.Hour + time.Minute: "1d1m", 1500 * time.Millisecond: "1.5s"} {
		if got := FormatAge(d); got != want {
			t.Errorf("FormatAge(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseAge(FormatAge(d)); err != nil || back != d {
			t.Errorf("ParseAge(FormatAge(%v)) = %v, %v", d, back, err)
		}
	}
}
