package server

import (
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
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
	var ids []int
	for range 20 {
		ws.run(func() { ids = append(ids, goroutineID()) })
	}
	if ids[0] == caller {
		t.Fatalf("handler ran on the caller's goroutine %d", caller)
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("run %d was on goroutine %d, run 0 on %d: a worker waiting was not reused", i, id, ids[0])
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
