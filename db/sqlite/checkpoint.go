package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checkpoints. In WAL mode SQLite copies the log back into the database
// file (a checkpoint) from inside the COMMIT that takes the log past
// wal_autocheckpoint pages, 1,000 by default. That COMMIT runs on the
// writer, so the whole group waits for the copy and for the database
// file's fsync: 80 ms seen under a steady 1,000 jobs/s, against 0.5 ms for
// an ordinary commit, and every agent call queued behind it waits too.
//
// The checkpointer runs PASSIVE checkpoints on a connection of its own
// instead, kicked by the committer every checkpointEvery commits. A
// passive checkpoint takes no writer lock: the writer keeps appending to
// the log while the checkpointer copies and syncs the database file.
// Durability is unchanged — a commit is durable once the log is fsynced,
// checkpointed or not. The writer keeps an automatic checkpoint at
// writerAutoCheckpoint pages as a safety net: should passive checkpoints
// never let the log restart (a checkpoint can only finish when no write
// came in meanwhile), the writer checkpoints the little that is left
// itself and the log starts over.
const (
	checkpointEvery      = 128   // commits between kicks
	writerAutoCheckpoint = 10000 // pages (~40 MB of log)
)

type checkpointer struct {
	db   *sql.DB // one connection, not the writer's
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	runs, copied atomic.Int64 // checkpoints run, log pages they copied (tests)
}

func newCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// request asks for a checkpoint without waiting for it; requests made
// while one runs are served by the next.
func (c *checkpointer) request() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if err := c.checkpoint(); err != nil {
			slog.Warn("sqlite: passive checkpoint", "err", err)
		}
	}
}

// checkpoint copies what it can of the log into the database file. It
// reports an error only when SQLite does: a checkpoint that could not copy
// everything (a reader still needs old pages) is normal and is finished by
// a later one.
func (c *checkpointer) checkpoint() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var busy, logPages, copied int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &copied); err != nil {
		return err
	}
	c.runs.Add(1)
	c.copied.Add(max(copied, 0))
	return nil
}

// close stops the checkpointer after the checkpoint in progress, if any.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
