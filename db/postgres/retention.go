package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/scirectl/scirectl/db"
)

// ReclaimSpace does nothing: PostgreSQL's autovacuum makes the space of
// deleted rows reusable by itself (docs/maintenance.md, "Retention").
func (s *Store) ReclaimSpace(context.Context, int) (freed, left int64, err error) { return 0, 0, nil }

// LockKey is the advisory lock key of a TryLock name: the FNV-1a hash of
// "scirectl:" and the name, so that the names of one database never share
// a key with each other or with the gate's (GateLockKey).
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("scirectl:" + name))
	return int64(h.Sum64())
}

// TryLock takes the session-level advisory lock of name (LockKey) on a
// session of its own from the lock pool, without waiting: ErrConflict when
// another session (another daemon, or this one) holds it. The lock dies
// with the session: a daemon that crashes or loses its connection holds
// nothing, and Close ends the sessions still holding one.
func (s *Store) TryLock(ctx context.Context, name string) (func(), error) {
	key := LockKey(name)
	conn, err := s.locks.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock %q: no database session: %w", name, err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		discard(conn)
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, fmt.Errorf("lock %q: held by another session: %w", name, db.ErrConflict)
	}
	if !s.held.add(conn) {
		discard(conn)
		return nil, fmt.Errorf("lock %q: the store is closed", name)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if !s.held.take(conn) {
				return // Close ended the session already
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var ok bool
			if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&ok); err != nil || !ok {
				discard(conn) // the session's end releases whatever it held
				return
			}
			conn.Release()
		})
	}, nil
}
