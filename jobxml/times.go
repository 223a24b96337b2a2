package jobxml

import (
	"fmt"
	"time"
)

// The times scirectl accepts from outside — a job's not_before and
// expires_at, a status's started and finished, the CLI's --at and
// --expires, the since of audit.list — must be times its databases can
// store: both drivers keep Unix nanoseconds in a signed 64-bit integer, so
// nothing after 2262-04-11T23:47:16Z fits (year 9999 would come back as
// 1816), and 0, the Unix epoch itself, stands for "no time". The range
// below is whole seconds on both ends so that it reads exactly as written.
var (
	// MinTime is the earliest time accepted: one second after the Unix epoch.
	MinTime = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	// MaxTime is the latest time accepted: the last whole second a 64-bit
	// count of nanoseconds since the epoch can hold.
	MaxTime = time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC)
)

// TimeRange is the accepted range in words, for messages and help texts.
const TimeRange = "1970-01-01T00:00:01Z..2262-04-11T23:47:16Z"

// CheckTime refuses a time outside MinTime..MaxTime, saying so in terms a
// caller can act on: "9999-01-01T00:00:00Z is outside
// 1970-01-01T00:00:01Z..2262-04-11T23:47:16Z, the times scirectl stores".
// Callers put the field's name in front.
func CheckTime(t time.Time) error {
	if msg := checkTime(t); msg != "" {
		return fmt.Errorf("%s %s", t.UTC().Format(time.RFC3339Nano), msg)
	}
	return nil
}

// checkTime is CheckTime's reason alone, for the decoder, which shows the
// time as the document wrote it.
func checkTime(t time.Time) string {
	if t.Before(MinTime) || t.After(MaxTime) {
		return "is outside " + TimeRange + ", the times scirectl stores"
	}
	return ""
}
