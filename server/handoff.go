package server

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/scirectl/scirectl/xmlrpc"
)

// Long polls wait off the workers.
//
// A handler runs on a worker (workers.go), whose stack the SQLite calls of
// earlier requests grew to tens of kilobytes. A call that waited there —
// agent.getJobs with a wait, the long poll of a daemon-mode agent — kept a
// worker and its stack for the whole wait: an idle fleet of 5,000
// daemon-mode agents held 5,000 grown stacks, about 21 KB an agent more
// than a polling fleet (docs/benchmarks.md, 2026-12-07).
//
// So a call that must wait, and has its HTTP request to itself (not one
// call of a system.multicall, whose reply it shares), hands its wait off:
// its handler parks a waiter on the request's handoff and returns, its
// reply is dropped, and limitRequests — back on the connection's own
// goroutine, whose stack stays small — waits, holding no request slot,
// then has a worker go on with the call, which writes the real reply. A
// call that cannot hand off waits where it is, as before.

// waiter is a call waiting for news, parked on a handoff.
type waiter interface {
	// await blocks until the call can go on: news when what it waited
	// for came, false when the wait ran out; err when the caller went
	// away. It runs on the connection's goroutine and touches nothing
	// shared but what it waits on.
	await() (news bool, err error)
	// proceed goes on with the call after await, on a worker. done false
	// means wait again.
	proceed(news bool, err error) (res any, done bool, rerr error)
	// method is the XML-RPC method, and ctx the handler's context, which
	// the reply is written with.
	method() string
	context() context.Context
	// end releases what the call held while it waited; called once,
	// when it is answered.
	end()
}

// handoff is where a handler parks its waiter, one per request (in the
// request's context, put there by limitRequests).
type handoff struct {
	parked waiter
}

type handoffKey struct{}

// handoffFor returns the handoff of ctx's request when a waiter may be
// parked on it: the request has one, and the call is not inside a
// system.multicall, whose reply it shares.
func handoffFor(ctx context.Context) *handoff {
	if xmlrpc.InMulticall(ctx) {
		return nil
	}
	h, _ := ctx.Value(handoffKey{}).(*handoff)
	return h
}

// park records w as the call's waiter; the handler then returns, and its
// reply is dropped.
func (h *handoff) park(w waiter) { h.parked = w }

func (h *handoff) take() waiter {
	w := h.parked
	h.parked = nil
	return w
}

// handoffWriter is the ResponseWriter of a request's handlers: once a
// waiter is parked, what they write is dropped (the waiter answers).
type handoffWriter struct {
	http.ResponseWriter
	h *handoff
}

func (w *handoffWriter) WriteHeader(code int) {
	if w.h.parked == nil {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *handoffWriter) Write(b []byte) (int, error) {
	if w.h.parked != nil {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *handoffWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serveParked waits for the waiters the request's handler parked, on the
// calling (connection's) goroutine and without the request slot, and has
// a worker go on with each, until one answers.
func (s *Server) serveParked(w http.ResponseWriter, h *handoff) {
	for p := h.take(); p != nil; p = h.take() {
		<-s.limit.slots
		news, err := p.await()
		s.limit.slots <- struct{}{} // limitRequests gives it back at the end
		s.limit.workers.run(func() {
			res, done, err := p.proceed(news, err)
			if !done {
				h.park(p)
				return
			}
			p.end()
			s.answer(w, p, res, err)
		})
	}
}

// answer writes the reply of a parked call, as the XML-RPC server would
// have, and logs it as logRequests does a call that was not parked: a
// fault at info, routine agent traffic at debug.
func (s *Server) answer(w http.ResponseWriter, p waiter, res any, err error) {
	ctx, method := p.context(), p.method()
	req := requestFrom(ctx)
	if err != nil {
		f := s.toFault(ctx, method, err)
		req.Fault, err = f.Code, f
	}
	s.rpc.Respond(ctx, w, method, res, err)
	level := slog.LevelDebug
	if req.Fault != 0 {
		level = slog.LevelInfo
	}
	if s.log.Enabled(ctx, level) {
		s.log.Log(ctx, level, "request answered after its wait", "request_id", req.ID, "method", method,
			"caller", req.Caller, "fault", req.Fault)
	}
}
