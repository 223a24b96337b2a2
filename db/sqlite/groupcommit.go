package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
)

// Group commit. SQLite has one writer, and with synchronous=FULL every
// COMMIT waits for an fsync (~0.25 ms here): one transaction per agent call
// caps the server at a few thousand calls per second however many agents
// there are. The committer instead runs every write that arrives while a
// commit is in progress in the next transaction, one SAVEPOINT each, and
// commits them together: one fsync for the batch. Durability is unchanged —
// no caller returns before the COMMIT that holds its work has returned —
// and isolation per call is kept by the savepoints: a call that fails is
// rolled back to its savepoint alone, the others in the batch commit.
//
// On two cores the writes of a burst (a job sent to thousands of agents)
// often reach the committer one by one, each just after the last commit:
// before it commits a write alone, or closes a group, the committer yields
// once to the goroutines that are ready to run — handlers about to queue
// their writes — so that they join (docs/benchmarks.md, 2026-12-07: lone
// commits took 0.69 s of the writer's 1.24 s in a fan-out to 4,000
// agents, 0.14 s after). An idle server has nothing ready: no delay.

// maxGroup bounds a batch, so one commit never waits on a long queue.
const maxGroup = 128

type writeReq struct {
	ctx     context.Context
	fn      func(tx *sql.Tx) error
	done    chan error
	neutral bool // makes no run pending (idlemarks.go)
}

type committer struct {
	w       *sql.DB
	hot     *hotStatements
	ckpt    *checkpointer // kicked every checkpointEvery commits
	commits int           // since the last checkpoint request
	idle    *idleMarks    // told after each commit that may have made runs pending
	reqs    chan *writeReq
	stop    chan struct{}
	quit    chan struct{}
}

func newCommitter(w *sql.DB, hot *hotStatements, ckpt *checkpointer, idle *idleMarks) *committer {
	c := &committer{w: w, hot: hot, ckpt: ckpt, idle: idle, reqs: make(chan *writeReq, maxGroup), stop: make(chan struct{}), quit: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a write transaction shared with other concurrent writes
// and returns fn's error, or the COMMIT's. neutral says that fn makes no
// run pending (idlemarks.go).
func (c *committer) do(ctx context.Context, fn func(tx *sql.Tx) error, neutral bool) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), neutral: neutral}
	select {
	case <-c.stop:
		return errClosed
	default:
	}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errClosed
	}
	// Once queued, wait for the outcome even if ctx ends: the batch may
	// already hold fn's work, and the caller must learn whether it stuck.
	// A request queued as the store closed, after run stopped answering,
	// is answered here.
	select {
	case err := <-r.done:
		return err
	case <-c.quit:
		select {
		case err := <-r.done:
			return err
		default:
			return errClosed
		}
	}
}

var errClosed = errors.New("sqlite: store closed")

func (c *committer) close() {
	close(c.stop)
	<-c.quit
}

func (c *committer) run() {
	defer close(c.quit)
	batch := make([]*writeReq, 0, maxGroup)
	for {
		var first *writeReq
		select {
		case first = <-c.reqs:
		case <-c.stop:
			// Answer whatever is still queued, then stop.
			for {
				select {
				case r := <-c.reqs:
					r.done <- errClosed
				default:
					return
				}
			}
		}
		if len(c.reqs) == 0 {
			// Alone, for now: let the goroutines that are ready run first
			// (on a loaded server, handlers about to queue writes), so
			// that they join this commit instead of each paying one of
			// their own. Idle, nothing else is ready and this costs
			// nothing.
			runtime.Gosched()
		}
		if len(c.reqs) == 0 { // alone: no savepoint needed
			if err := first.ctx.Err(); err != nil {
				first.done <- err
				continue
			}
			first.done <- c.single(first)
			continue
		}
		batch = c.group(append(batch[:0], first))
		clear(batch)
	}
}

// group runs writes in one transaction until none is waiting (or maxGroup
// is reached), then commits and answers every caller. Writes that arrive
// while the group executes join it rather than wait for the next commit:
// under load the groups grow by themselves, and each fsync serves more
// callers, without a timer adding latency when the load is light.
func (c *committer) group(batch []*writeReq) []*writeReq {
	var errs []error
	fail := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	tx, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		fail(err)
		return batch
	}
	savepoint, release, rollback := tx.Stmt(c.hot.savepoint), tx.Stmt(c.hot.release), tx.Stmt(c.hot.rollback)
	pending := false // a write may have made runs pending
	for i := 0; i < len(batch); i++ {
		r := batch[i]
		errs = append(errs, r.ctx.Err())
		if errs[i] == nil {
			if _, err := savepoint.Exec(); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("group commit: savepoint: %w", err))
				return batch
			}
			if errs[i] = c.apply(tx, r, &pending); errs[i] != nil {
				if _, err := rollback.Exec(); err != nil {
					tx.Rollback()
					fail(fmt.Errorf("group commit: roll back one write (%v): %w", errs[i], err))
					return batch
				}
			}
			if _, err := release.Exec(); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("group commit: release: %w", err))
				return batch
			}
		}
		if i == len(batch)-1 && len(batch) < maxGroup {
			if len(c.reqs) == 0 {
				runtime.Gosched() // as in run: writes about to come join
			}
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
			}
		}
	}
	err = c.commit(tx)
	if pending {
		// After the COMMIT, failed or not: whether a failed one stuck is
		// not known for sure, and a needless change only drops marks.
		c.idle.changed()
	}
	if err != nil {
		fail(err)
		return batch
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
	return batch
}

// apply runs r's fn in tx and sets *pending when the write may have made
// runs pending (idlemarks.go): it is not neutral, and it changed rows. A
// write that changed none — a rescuer's pass with nothing to do, every
// few seconds — leaves the idle marks alone.
func (c *committer) apply(tx *sql.Tx, r *writeReq, pending *bool) error {
	if r.neutral || *pending {
		return r.fn(tx)
	}
	changes := tx.Stmt(c.hot.changes)
	var before, after int64
	if err := changes.QueryRow().Scan(&before); err != nil {
		return fmt.Errorf("group commit: changes: %w", err)
	}
	err := r.fn(tx)
	if err := changes.QueryRow().Scan(&after); err != nil || after != before {
		*pending = true
	}
	return err
}

func (c *committer) single(r *writeReq) error {
	tx, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	pending := false
	if err := c.apply(tx, r, &pending); err != nil {
		tx.Rollback()
		return err
	}
	err = c.commit(tx)
	if pending {
		c.idle.changed()
	}
	return err
}

// commit commits tx and, every checkpointEvery commits, asks the
// checkpointer to copy the log into the database file (checkpoint.go).
func (c *committer) commit(tx *sql.Tx) error {
	if err := tx.Commit(); err != nil {
		return err
	}
	if c.commits++; c.commits >= checkpointEvery {
		c.commits = 0
		c.ckpt.request()
	}
	return nil
}
