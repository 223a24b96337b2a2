package xmlrpc

import (
	"errors"
	"strings"
	"time"
)

// wireTime is the one layout we write: the XML-RPC specification's example
// form, which Python's use_builtin_types parser (strptime "%Y%m%dT%H:%M:%S")
// and kolo both read. It carries no zone, so it is always UTC by contract.
const wireTime = "20060102T15:04:05"

// readLayouts are what clients are known to send: the compact form with or
// without a zone, and the dashed ISO 8601 / RFC 3339 form with or without one.
// time.Parse also accepts a fractional second after the seconds field.
var readLayouts = []string{
	"20060102T15:04:05",
	"20060102T15:04:05Z07:00",
	"20060102T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05Z0700",
}

var errTimeRange = errors.New("year outside 0000..9999 in UTC")

// parseDateTime reads a dateTime in any accepted form and returns it in UTC
// truncated to whole seconds, so that writing it back is exact.
func parseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range readLayouts {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		t = t.UTC()
		t = t.Add(-time.Duration(t.Nanosecond()))
		if y := t.Year(); y < 0 || y > 9999 {
			return time.Time{}, errTimeRange
		}
		return t, nil
	}
	return time.Time{}, errors.New("not a dateTime: want 20060102T15:04:05 or 2006-01-02T15:04:05, optionally with Z or an offset")
}
