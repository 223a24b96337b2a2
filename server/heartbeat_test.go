package server

import (
	"context"
	"testing"
	"time"
)

func TestServerHeartbeatLifecycle(t *testing.T) {
	st := newStubStore()
	h := newServerHeartbeat(st, func() int64 { return 7 }, discardLog())
	h.interval = 5 * time.Millisecond
	checkLifecycle(t, h, st, "HeartbeatServer", nil)
}

func TestServerHeartbeatRunOnce(t *testing.T) {
	st := newStubStore()
	id := int64(3)
	h := newServerHeartbeat(st, func() int64 { return id }, discardLog())
	before := time.Now().UTC()
	if err := h.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The id is asked for at each beat: db.restore registers the daemon again.
	id = 4
	if err := h.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if at := st.beats[3]; at.Before(before) || at.Location() != time.UTC {
		t.Errorf("beat of 3 at %v, want now in UTC", at)
	}
	if _, ok := st.beats[4]; !ok || st.count("HeartbeatServer") != 2 {
		t.Errorf("beats %v", st.beats)
	}
}
