package commands

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/gcpace"
)

// gcPercentAfter collects a few times and reads the GC percent then in
// force (debug.SetGCPercent reports the old value; it is put back).
func gcPercentAfter(collections int) int {
	for range collections {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the pacer runs as a finalizer
	}
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGCBoundsAServersHeadroom(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	t.Setenv("GOGC", "")

	live := make([]byte, 4*serveGCHeadroom) // a fleet's worth of connection state
	stop := tuneGC()
	got := gcPercentAfter(3)
	stop()
	runtime.KeepAlive(live)
	if got != gcpace.MinPercent {
		t.Fatalf("GOGC unset, %d MiB live: GC percent %d, want %d", len(live)>>20, got, gcpace.MinPercent)
	}
	if got := gcPercentAfter(0); got != gcpace.MaxPercent {
		t.Fatalf("after stop: GC percent %d, want Go's default back", got)
	}
}

func TestTuneGCLeavesAnOperatorsGOGCAlone(t *testing.T) {
	before := debug.SetGCPercent(200)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	t.Setenv("GOGC", "200")

	live := make([]byte, 4*serveGCHeadroom)
	stop := tuneGC()
	got := gcPercentAfter(3)
	stop()
	runtime.KeepAlive(live)
	if got != 200 {
		t.Fatalf("GOGC=200 in the environment: GC percent %d after tuneGC, want 200", got)
	}
}
