// Package gcpace bounds the garbage collector's headroom in bytes.
//
// Go collects when the heap has grown by GOGC percent (100 by default) of
// what the last collection found live. That suits a program whose live heap
// is small next to its garbage. A job server with a fleet connected is the
// other kind: its live heap is mostly long-lived connection state (net/http's
// read and write buffers, TLS keys, each agent's parsed certificate: about
// 19 KiB per connected agent), so 100% headroom doubles what thousands of
// idle connections cost in memory, while a server draining jobs for a
// handful of agents has a live heap of 10–20 MiB and loses CPU when it
// collects more often. A fixed lower GOGC trades one for the other; a
// headroom bounded in bytes gives each its due.
package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Percent bounds: never more headroom than Go's default, never so little
// that a large heap is collected continuously.
const (
	MaxPercent = 100
	MinPercent = 25
)

// Percent is the GC percent that lets a heap whose collections start from
// base bytes (live heap, goroutine stacks and globals: what Go's pacer
// scales by GOGC) grow by at most headroom bytes, within
// [MinPercent, MaxPercent].
func Percent(base, headroom uint64) int {
	if base == 0 {
		return MaxPercent
	}
	p := headroom * 100 / base
	switch {
	case p > MaxPercent:
		return MaxPercent
	case p < MinPercent:
		return MinPercent
	}
	return int(p)
}

// Pacer re-sets the GC percent after every collection from what it left
// live. The zero value is not usable; call Start.
type Pacer struct {
	headroom uint64

	mu      sync.Mutex
	stopped bool
	percent int // last set, 0 before the first collection
	samples []metrics.Sample
}

// sentinel is garbage whose finalizer runs after each collection. It holds
// a pointer so that it is never merged into a tiny-allocator block, whose
// finalizers can be delayed by the block's other objects.
type sentinel struct{ p *Pacer }

// Start makes the collector keep its headroom at most headroom bytes (see
// Percent), from the next collection on, until Stop.
func Start(headroom uint64) *Pacer {
	p := &Pacer{
		headroom: headroom,
		samples: []metrics.Sample{
			{Name: "/gc/heap/live:bytes"},
			{Name: "/gc/scan/stack:bytes"},
			{Name: "/gc/scan/globals:bytes"},
		},
	}
	p.arm()
	return p
}

func (p *Pacer) arm() {
	runtime.SetFinalizer(&sentinel{p: p}, func(s *sentinel) { s.p.afterGC() })
}

// afterGC runs on the finalizer goroutine once per collection.
func (p *Pacer) afterGC() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	metrics.Read(p.samples)
	var base uint64
	for _, s := range p.samples {
		if s.Value.Kind() == metrics.KindUint64 {
			base += s.Value.Uint64()
		}
	}
	if pc := Percent(base, p.headroom); pc != p.percent {
		debug.SetGCPercent(pc)
		p.percent = pc
	}
	p.arm()
}

// current is the GC percent the pacer last set, 0 before the first
// collection it saw.
func (p *Pacer) current() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.percent
}

// Stop ends the pacing and puts back Go's default GC percent if the pacer
// changed it.
func (p *Pacer) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped && p.percent != 0 {
		debug.SetGCPercent(MaxPercent)
	}
	p.stopped = true
}
