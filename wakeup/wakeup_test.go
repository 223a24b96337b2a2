package wakeup

import (
	"sync"
	"testing"
)

func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWakeReachesOnlyThatClient(t *testing.T) {
	var b Board
	a1, r1 := b.Wait(1)
	a2, r2 := b.Wait(1) // the same agent waiting twice (a second connection)
	c, r3 := b.Wait(2)
	defer r3()
	if got := b.Waiting(); got != 3 {
		t.Fatalf("Waiting = %d, want 3", got)
	}
	if !b.Wake(1) {
		t.Fatal("Wake(1) = false with two waiters")
	}
	if !woken(a1) || !woken(a2) {
		t.Fatal("a waiter of client 1 was not woken")
	}
	if woken(c) {
		t.Fatal("client 2 was woken by a wake for client 1")
	}
	r1()
	r2()
	if b.Wake(1) {
		t.Fatal("Wake(1) = true after both waiters left")
	}
	if got := b.Waiting(); got != 1 {
		t.Fatalf("Waiting = %d, want 1", got)
	}
}

func TestWakeBeforeTheWaitIsKept(t *testing.T) {
	var b Board
	ch, release := b.Wait(7)
	defer release()
	// The waiter registered, then looked for work and found none; the
	// wake comes before it blocks: it must still see it.
	b.Wake(7)
	b.Wake(7) // and a second collapses into the first
	if !woken(ch) {
		t.Fatal("a wake sent before the waiter blocked was lost")
	}
	if woken(ch) {
		t.Fatal("two wakes were kept: one is enough")
	}
}

func TestCloseWakesAllAndLaterWaiters(t *testing.T) {
	var b Board
	ch, release := b.Wait(3)
	defer release()
	b.Close()
	if !woken(ch) || !woken(ch) || !b.Closed() {
		t.Fatal("Close did not wake a waiter for good")
	}
	if b.Wake(3) || b.Waiting() != 0 {
		t.Fatal("waiters left after Close")
	}
	later, r := b.Wait(4)
	defer r()
	if !woken(later) {
		t.Fatal("a waiter registered after Close was not woken at once")
	}
}

func TestConcurrentUse(t *testing.T) {
	var b Board
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			for range 200 {
				ch, release := b.Wait(int64(i % 5))
				b.Wake(int64((i + 1) % 5))
				woken(ch)
				release()
			}
		})
	}
	wg.Wait()
	if got := b.Waiting(); got != 0 {
		t.Fatalf("Waiting = %d after every waiter left", got)
	}
}
