package db

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNormalizeRefusesUnstorableTimes: the drivers keep Unix nanoseconds,
// so a not_before or expires_at past 2262 (or before 1970) is refused
// before any driver stores it wrapped around.
func TestNormalizeRefusesUnstorableTimes(t *testing.T) {
	far := time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC)
	old := time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		field string
		nj    NewJob
	}{
		{"not_before", NewJob{ClientIDs: []int64{1}, NotBefore: far}},
		{"not_before", NewJob{ClientIDs: []int64{1}, NotBefore: old}},
		{"expires_at", NewJob{ClientIDs: []int64{1}, ExpiresAt: far}},
	} {
		_, err := c.nj.Normalize()
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), c.field+": ") {
			t.Errorf("%+v: err = %v, want ErrInvalid naming %s", c.nj, err, c.field)
		}
	}
	ok := NewJob{ClientIDs: []int64{1}, NotBefore: time.Date(2262, 4, 11, 23, 47, 16, 0, time.UTC)}
	if _, err := ok.Normalize(); err != nil {
		t.Errorf("the last storable second: %v", err)
	}
}
