package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/scirectl/scirectl/db"
)

// ReclaimSpace gives up to pages free pages back to the file system with
// PRAGMA incremental_vacuum (the database is in auto_vacuum=INCREMENTAL
// mode since schema version 9), in a transaction of the writer like any
// other write, so a step waits its turn and holds the writer as long as
// moving that many pages takes. In WAL mode the file shrinks at the next
// checkpoint. A database in another mode frees nothing: freed is 0 and
// the caller stops.
func (s *Store) ReclaimSpace(ctx context.Context, pages int) (freed, left int64, err error) {
	if pages < 1 {
		return 0, 0, fmt.Errorf("reclaim space: %d pages: %w", pages, db.ErrInvalid)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var before int64
		if err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&before); err != nil {
			return err
		}
		if before == 0 {
			return nil
		}
		// PRAGMA takes no parameter: pages is a number formatted here.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, pages)); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&left); err != nil {
			return err
		}
		freed = before - left
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("reclaim space: %w", err)
	}
	return freed, left, nil
}

// TryLock takes the named lock within this process: a SQLite database has
// one daemon (datadir.LockDatabase), so the process is the cluster.
func (s *Store) TryLock(_ context.Context, name string) (func(), error) {
	return s.locks.try(name)
}

// namedLocks are the locks TryLock hands out, by name.
type namedLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *namedLocks) try(name string) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[name] {
		return nil, fmt.Errorf("lock %q: held: %w", name, db.ErrConflict)
	}
	if l.held == nil {
		l.held = map[string]bool{}
	}
	l.held[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, name)
			l.mu.Unlock()
		})
	}, nil
}
