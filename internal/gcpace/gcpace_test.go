package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercentBoundsTheHeadroomInBytes(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		base, headroom uint64
		want           int
	}{
		{0, 64 * mib, MaxPercent},
		{16 * mib, 64 * mib, MaxPercent}, // a small heap keeps Go's default
		{64 * mib, 64 * mib, 100},
		{128 * mib, 64 * mib, 50},
		{160 * mib, 64 * mib, 40},
		{1024 * mib, 64 * mib, MinPercent}, // a huge heap is not collected continuously
	} {
		if got := Percent(c.base, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.base/mib, c.headroom/mib, got, c.want)
		}
	}
}

// waitPercent collects until the pacer has set want after a collection.
func waitPercent(t *testing.T, p *Pacer, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.current() != want {
		if time.Now().After(deadline) {
			t.Fatalf("GC percent set by the pacer: %d, want %d", p.current(), want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPacerFollowsTheLiveHeapAfterEachCollection(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	live := make([]byte, 64<<20) // 64 MiB kept live by the test
	for i := range live {
		live[i] = byte(i)
	}
	p := Start(16 << 20) // 16 MiB of headroom over 64+ MiB live: the floor
	defer p.Stop()
	waitPercent(t, p, MinPercent)
	if got := debug.SetGCPercent(MinPercent); got != MinPercent {
		t.Fatalf("runtime GC percent %d, want %d", got, MinPercent)
	}
	runtime.KeepAlive(live)

	// With the big slice gone the live heap is small again: back to 100.
	live = nil
	waitPercent(t, p, MaxPercent)

	p.Stop()
	debug.SetGCPercent(70)
	runtime.GC()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got := debug.SetGCPercent(100); got != 70 {
		t.Fatalf("after Stop the pacer changed the GC percent to %d", got)
	}
}
