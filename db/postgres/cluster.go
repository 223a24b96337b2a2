package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/gate"
)

// GateLockKey is the advisory lock key of the cluster-wide gate: the bytes
// "scirgate". Advisory locks are per database, so two scirectl databases on
// one server never share it.
const GateLockKey int64 = 0x7363697267617465

// ClusterLock is the cluster-wide half of the job-server gate (docs/protocol.md, "The gate and the blacklist") for
// the daemons sharing this database: a session-level advisory lock on
// GateLockKey, shared for non-modifiers (pg_advisory_lock_shared) and
// exclusive for modifiers (pg_advisory_lock). Each lock is taken on a
// session of its own from a separate pool (lock_pool_max_conns), because
// advisory locks of one session never conflict with each other. A lock dies
// with its session: a daemon that crashes, or loses its connection, holds
// nothing.
func (s *Store) ClusterLock() gate.ClusterLock { return clusterLock{s} }

type clusterLock struct{ s *Store }

var _ gate.ClusterLock = clusterLock{}

// heldLocks are the sessions holding a cluster lock, which Close ends.
type heldLocks struct {
	mu     sync.Mutex
	conns  map[*pgxpool.Conn]bool
	closed bool
}

// add registers a session holding a lock; false when the store is closed.
func (h *heldLocks) add(c *pgxpool.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.conns == nil {
		h.conns = map[*pgxpool.Conn]bool{}
	}
	h.conns[c] = true
	return true
}

// take unregisters a session; false when Close took it first.
func (h *heldLocks) take(c *pgxpool.Conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.conns[c] {
		return false
	}
	delete(h.conns, c)
	return true
}

// closeAll ends every session holding a lock, and refuses new ones.
func (h *heldLocks) closeAll() {
	h.mu.Lock()
	conns := h.conns
	h.conns, h.closed = nil, true
	h.mu.Unlock()
	for c := range conns {
		discard(c)
	}
}

// Lock takes the lock in the mode of class c. While it waits, PostgreSQL
// queues it fairly with the other sessions' requests (a waiting exclusive
// request holds back later shared ones). When ctx ends the wait is cancelled
// (a cancel request) and the session is closed, so nothing stays taken
// whatever the race; with noWait a lock held elsewhere is an error wrapping
// gate.ErrClusterBusy at once. The unlock function gives the lock back and
// the session to the pool, or closes the session if the unlock failed.
func (l clusterLock) Lock(ctx context.Context, c gate.Class, noWait bool) (func(), error) {
	fn := "pg_advisory_lock"
	if noWait {
		fn = "pg_try_advisory_lock"
	}
	if c == gate.NonModifier {
		fn += "_shared"
	}
	conn, err := l.s.locks.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster lock (%s): no database session: %w", c, err)
	}
	if noWait {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT `+fn+`($1)`, GateLockKey).Scan(&ok); err != nil {
			discard(conn)
			return nil, fmt.Errorf("cluster lock (%s): %w", c, err)
		}
		if !ok {
			conn.Release()
			return nil, fmt.Errorf("cluster lock (%s): %w", c, gate.ErrClusterBusy)
		}
	} else if _, err := conn.Exec(ctx, `SELECT `+fn+`($1)`, GateLockKey); err != nil {
		// Cancelled, or the session broke: either way it may have been
		// granted at the last moment, and closing the session frees it.
		discard(conn)
		if cerr := context.Cause(ctx); cerr != nil {
			return nil, fmt.Errorf("cluster lock (%s): gave up waiting: %w", c, errors.Join(cerr, ctx.Err()))
		}
		return nil, fmt.Errorf("cluster lock (%s): %w", c, err)
	}
	if !l.s.held.add(conn) {
		discard(conn)
		return nil, fmt.Errorf("cluster lock (%s): the store is closed", c)
	}
	unlockFn := "pg_advisory_unlock"
	if c == gate.NonModifier {
		unlockFn += "_shared"
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if !l.s.held.take(conn) {
				return // Close ended the session already
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ok bool
			if err := conn.QueryRow(ctx, `SELECT `+unlockFn+`($1)`, GateLockKey).Scan(&ok); err != nil || !ok {
				discard(conn) // the session's end releases whatever it held
				return
			}
			conn.Release()
		})
	}, nil
}

// discard closes a pooled connection instead of returning it: its session
// ends, and with it every advisory lock it held.
func discard(conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Hijack().Close(ctx)
}
