package sqlite

import (
	"math"
	"sync"
	"sync/atomic"
)

// Idle marks: a client found with nothing due is not asked again until
// something may have changed that.
//
// Every poll of an idle agent asked the read pool whether it had a due
// pending run (hasDue): about a fifth of what an idle poll cost the
// server, and a fleet polling every second during a fan-out spent a core
// on its polls (docs/benchmarks.md). With SQLite every write goes through
// this process, so the store knows when a run may have become pending:
//
//   - pending counts the commits that may have made a run pending: every
//     write that changed rows (SQLite's total_changes) but those the
//     dispatch cycle makes (claims, acknowledgements, reports, renewals,
//     last-seen times: they only move runs out of pending, or leave them),
//     and a restore. It is bumped after the commit, so that a read that
//     starts after a bump sees the commit. A write that changed nothing —
//     the rescuer's pass every 5 s, most of the time — leaves it.
//   - time makes a pending run due at its not_before, with no write.
//
// A poll that finds nothing due marks its client with the count read
// before its read and the earliest not_before of its pending runs; the
// client's next polls answer "nothing" at once while the count is the same
// and that time has not come. A write that is not known to make no run
// pending moves the count, so a write added later is safe by default: at
// worst the marks are dropped more often than they must be.
type idleMarks struct {
	pending atomic.Uint64

	mu sync.Mutex
	m  map[int64]idleMark
}

type idleMark struct {
	pending uint64 // the count when the client's read began
	until   int64  // Unix nanoseconds when its earliest pending run becomes due
}

// noUntil is the mark of a client with no pending run at all.
const noUntil = math.MaxInt64

// generation is the count to read before a read that may mark a client.
func (im *idleMarks) generation() uint64 { return im.pending.Load() }

// changed says that a commit may have made runs pending.
func (im *idleMarks) changed() { im.pending.Add(1) }

// idle says whether client is known to have nothing due at now.
func (im *idleMarks) idle(client, now int64) bool {
	gen := im.pending.Load()
	im.mu.Lock()
	m, ok := im.m[client]
	im.mu.Unlock()
	return ok && m.pending == gen && now < m.until
}

// mark records that client had nothing due at the count gen (read before
// the read that found so), until the time until.
func (im *idleMarks) mark(client int64, gen uint64, until int64) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.m == nil {
		im.m = make(map[int64]idleMark)
	}
	if len(im.m) > maxIdleMarks {
		clear(im.m) // clients come and go: never let the map grow for good
	}
	im.m[client] = idleMark{pending: gen, until: until}
}

// maxIdleMarks bounds the marks kept: far above any fleet one daemon
// serves, and 40 bytes or so each.
const maxIdleMarks = 1 << 20
