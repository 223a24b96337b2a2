package server

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/serverconfig"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Hostile-input limits: their defaults, the file keys and flags that set
// them, and the request-slot middleware. docs/limits.md is the operator's
// table of the same; keep the two in step.

// Defaults of the limits. The decoder's come from package xmlrpc, so the
// codec and the daemon cannot drift apart.
const (
	DefaultMaxBodyBytes      = xmlrpc.DefaultMaxBodyBytes   // 16 MiB
	DefaultMaxDepth          = xmlrpc.DefaultMaxDepth       // 32
	DefaultMaxValues         = xmlrpc.DefaultMaxValues      // 10000
	DefaultMaxStringBytes    = xmlrpc.DefaultMaxStringBytes // 8 MiB
	DefaultMaxOutput         = 1 << 20
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxThreads        = 32
	DefaultMaxThreadsWait    = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
)

func (c *Config) limitDefaults() {
	setInt(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setInt(&c.MaxDepth, DefaultMaxDepth)
	setInt(&c.MaxValues, DefaultMaxValues)
	setInt(&c.MaxStringBytes, DefaultMaxStringBytes)
	setInt(&c.MaxOutput, DefaultMaxOutput)
	setInt(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setInt(&c.MaxThreads, DefaultMaxThreads)
	setInt(&c.MaxThreadsWait, DefaultMaxThreadsWait)
	setInt(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setInt(&c.ReadTimeout, DefaultReadTimeout)
	setInt(&c.WriteTimeout, DefaultWriteTimeout)
	setInt(&c.IdleTimeout, DefaultIdleTimeout)
}

func setInt[T int | int64 | time.Duration](dst *T, def T) {
	if *dst <= 0 {
		*dst = def
	}
}

// xmlrpcLimits are the decoder's share of the limits.
func (c *Config) xmlrpcLimits() xmlrpc.Limits {
	return xmlrpc.Limits{MaxBodyBytes: c.MaxBodyBytes, MaxDepth: c.MaxDepth, MaxValues: c.MaxValues, MaxStringBytes: c.MaxStringBytes}
}

// ApplyFileLimits copies the keys of the file's limits: section that were
// set into c; flags are applied after it and win.
func ApplyFileLimits(l serverconfig.FileLimits, c *Config) {
	set := func(dst *int64, v int64) {
		if v > 0 {
			*dst = v
		}
	}
	seti := func(dst *int, v int64) {
		if v > 0 {
			*dst = int(v)
		}
	}
	setd := func(dst *time.Duration, v serverconfig.Duration) {
		if v > 0 {
			*dst = time.Duration(v)
		}
	}
	set(&c.MaxBodyBytes, int64(l.MaxBody))
	seti(&c.MaxDepth, int64(l.MaxDepth))
	seti(&c.MaxValues, int64(l.MaxValues))
	seti(&c.MaxStringBytes, int64(l.MaxString))
	seti(&c.MaxOutput, int64(l.MaxOutput))
	seti(&c.MaxHeaderBytes, int64(l.MaxHeader))
	seti(&c.MaxThreads, int64(l.MaxThreads))
	setd(&c.MaxThreadsWait, l.MaxThreadsWait)
	setd(&c.ReadHeaderTimeout, l.ReadHeaderTimeout)
	setd(&c.ReadTimeout, l.ReadTimeout)
	setd(&c.WriteTimeout, l.WriteTimeout)
	setd(&c.IdleTimeout, l.IdleTimeout)
}

// limited wraps the whole HTTP handler in limitRequests. It sits outside the
// request log and authentication on purpose: a refused request costs no
// token lookup and no log line of its own (refusals are summarised, see
// limiter). It also warns once, at start, about timeouts that cannot work
// together: the write timeout runs from the end of the request headers
// (after any wait for a slot) to the end of the reply, so it must cover
// reading the body, waiting for the gate and the work itself.
func (s *Server) limited(h http.Handler) http.Handler {
	if c := s.cfg; c.WriteTimeout <= c.GateMaxWait {
		s.log.Warn("write_timeout is not above the gate's max_wait: a call that waits that long for the gate cannot be answered",
			"write_timeout", c.WriteTimeout, "gate_max_wait", c.GateMaxWait)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.limitRequests(w, r, h.ServeHTTP) })
}

// limitRequests is the negroni-style concurrency cap (Config.MaxThreads):
// a request takes one of MaxThreads slots before anything else is done
// with it, is handled on one of the workers (workers.go) and gives the
// slot back when its reply is written. A request that
// finds every slot taken waits for one up to MaxThreadsWait (not at all when
// it carries X-Scire-No-Wait), or until it is abandoned, and is then
// answered XML-RPC fault 423 — the same "busy, retry later" that the gate
// gives — so that every XML-RPC client, Python's included, reads the
// refusal as a fault and the CLI exits with its busy code (18). The
// liveness and readiness probes never take a slot: a saturated server is
// alive, and must not be restarted for being busy.
func (s *Server) limitRequests(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
		next(w, r)
		return
	}
	select {
	case s.limit.slots <- struct{}{}:
	default:
		if !s.waitSlot(r) {
			s.refuseBusy(w, r)
			return
		}
		// The time spent waiting for a slot was the server's, not the
		// client's: the body and the reply get their whole timeouts.
		rc := http.NewResponseController(w)
		now := time.Now()
		rc.SetReadDeadline(now.Add(s.cfg.ReadTimeout))
		rc.SetWriteDeadline(now.Add(s.cfg.WriteTimeout))
	}
	defer func() { <-s.limit.slots }()
	h := &handoff{}
	r = r.WithContext(context.WithValue(r.Context(), handoffKey{}, h))
	// Off the connection's goroutine (workers.go); then, if the handler
	// handed a long poll's wait off, back on it (handoff.go).
	s.limit.workers.run(func() { next(&handoffWriter{ResponseWriter: w, h: h}, r) })
	s.serveParked(w, h)
}

// yieldSlot gives back a request slot while the calling handler waits for
// news (agent.getJobs' and events.list's long polls): a fleet waiting for
// work must not hold max_threads slots for nothing. Slots are anonymous, so
// any one may be given back; the func returned takes one again, waiting
// for it as long as it must (slots free as requests end), and must be
// called before the handler returns, for limitRequests gives one back
// then. A handler served without the limiter (tests) holds none and
// yields none.
func (s *Server) yieldSlot() (again func()) {
	select {
	case <-s.limit.slots:
		return func() { s.limit.slots <- struct{}{} }
	default:
		return func() {}
	}
}

// boundWait shortens a long poll's wait (agent.getJobs', events.list's)
// to what the write timeout leaves for the answer: the timeout runs from
// the request's headers, so a call that waits past it could no longer be
// answered. With the defaults (60 s, waits of at most 30 s) it changes
// nothing.
func (s *Server) boundWait(d time.Duration) time.Duration {
	return max(0, min(d, s.cfg.WriteTimeout-5*time.Second))
}

func (s *Server) waitSlot(r *http.Request) bool {
	switch strings.ToLower(r.Header.Get(api.NoWaitHeader)) {
	case "1", "true", "yes":
		return false
	}
	t := time.NewTimer(s.cfg.MaxThreadsWait)
	defer t.Stop()
	select {
	case s.limit.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

// limiter holds the request slots and summarises refusals in the log: at
// most one line a second, with the count since the last line, so that an
// overload does not also flood the log.
type limiter struct {
	slots   chan struct{}
	workers workers // run the handlers of the requests holding a slot
	refused atomic.Int64
	logged  atomic.Int64 // unix nanoseconds of the last line
}

func (s *Server) refuseBusy(w http.ResponseWriter, r *http.Request) {
	l := &s.limit
	n := l.refused.Add(1)
	now := time.Now().UnixNano()
	if last := l.logged.Load(); now-last >= int64(time.Second) && l.logged.CompareAndSwap(last, now) {
		l.refused.Add(-n)
		s.log.Warn("requests refused: every request slot is in use (fault 423)", "refused", n,
			"max_threads", s.cfg.MaxThreads, "max_threads_wait", s.cfg.MaxThreadsWait, "last_remote", r.RemoteAddr)
	}
	var buf bytes.Buffer
	xmlrpc.EncodeFault(&buf, xmlrpc.Faultf(xmlrpc.CodeBusy,
		"server busy: all %d request slots are in use (max_threads); retry later", s.cfg.MaxThreads))
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Retry-After", "1")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
