package server

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goroutineID reads the calling goroutine's number from its stack header.
func goroutineID() int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	n, _ := strconv.Atoi(string(buf[:bytes.IndexByte(buf, ' ')]))
	return n
}

func TestWorkersRunOffTheCallerAndAreReused(t *testing.T) {
	ws := newWorkers()
	caller := goroutineID()
	var first int
	ws.run(func() { first = goroutineID() })
	if first == caller {
		t.Fatalf("handler ran on the caller's goroutine %d", caller)
	}
	// A worker that has finished its handler parks in work's select; run
	// hands the next handler to it with a send that succeeds only then
	// (otherwise it starts another worker). The worker parks a moment
	// after its handler returns, so offer each handler as run does until a
	// worker takes it: it must be the first one, every time.
	for i := range 20 {
		got := make(chan int, 1)
		deadline := time.Now().Add(5 * time.Second)
		for sent := false; !sent; {
			select {
			case ws.tasks <- func() { got <- goroutineID() }:
				sent = true
			default:
				if time.Now().After(deadline) {
					t.Fatalf("handler %d: no worker waiting after 5 s (the first should wait %v)", i, workerIdle)
				}
				runtime.Gosched()
			}
		}
		if id := <-got; id != first {
			t.Fatalf("handler %d ran on goroutine %d, the first on %d: the waiting worker was not reused", i, id, first)
		}
	}
}

func TestWorkersRunConcurrently(t *testing.T) {
	ws := newWorkers()
	const n = 8
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws.run(func() { started.Done(); release.Wait() })
		}()
	}
	started.Wait() // deadlocks, and the test times out, if a handler waited for another
	release.Done()
	wg.Wait()
}

func TestWorkersRaisePanicsInTheCaller(t *testing.T) {
	ws := newWorkers()
	for _, want := range []any{"boom", http.ErrAbortHandler} {
		func() {
			defer func() {
				if got := recover(); got != want {
					t.Errorf("recovered %v, want %v", got, want)
				}
			}()
			ws.run(func() { panic(want) })
		}()
	}
	ran := false
	ws.run(func() { ran = true }) // the worker that panicked is still there, or a new one is
	if !ran {
		t.Error("run after a panic did not run its function")
	}
}
