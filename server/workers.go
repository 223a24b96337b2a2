package server

import (
	"sync/atomic"
	"time"
)

// workers runs the requests' handlers on a few long-lived goroutines
// rather than on the connections' own.
//
// Why: net/http serves each connection on a goroutine of its own, and a
// handler's deep calls (the XML-RPC decoder, the gate, SQLite's translated
// C) grow that goroutine's stack to tens of kilobytes. An idle connection
// keeps the grown stack until a garbage collection halves it, and its next
// request grows it again, copying it each time. With 5,000 agents holding a
// connection each, that was 83 MB of stacks and a tenth of the server's CPU
// at idle (runtime.newstack; docs/benchmarks.md). Run here, a handler's
// stack is one of the workers', at most about max_threads of them (a
// request holds a slot while its handler runs), already grown by the
// requests before it; the connection's goroutine only reads the request
// and writes the reply.
//
// Make it with newWorkers. Workers start on demand and end after
// workerIdle without a handler to run.
type workers struct {
	tasks chan func()   // unbuffered: a send succeeds only if a worker waits
	busy  *atomic.Int64 // handlers running now
}

// workerIdle is how long a worker waits for its next handler before it
// ends: long enough to be reused from one request to the next of a busy
// server, short enough that a burst's workers do not stay for good.
const workerIdle = 10 * time.Second

func newWorkers() workers { return workers{tasks: make(chan func()), busy: new(atomic.Int64)} }

// running is the number of handlers running on the workers now.
func (ws workers) running() int64 { return ws.busy.Load() }

// run calls f on a worker and returns when f has returned. A panic in f
// is raised again here, on the caller's goroutine, so that net/http handles
// it as it would a panic of its own handler (http.ErrAbortHandler
// included) instead of crashing the process.
func (ws workers) run(f func()) {
	done := make(chan any, 1)
	task := func() {
		ws.busy.Add(1)
		defer func() {
			ws.busy.Add(-1)
			done <- recover()
		}()
		f()
	}
	select {
	case ws.tasks <- task:
	default:
		go ws.work(task)
	}
	if p := <-done; p != nil {
		panic(p)
	}
}

// work runs task, then whatever run hands it, until it has waited
// workerIdle for nothing.
func (ws workers) work(task func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		task()
		idle.Reset(workerIdle)
		select {
		case task = <-ws.tasks:
		case <-idle.C:
			return
		}
	}
}
