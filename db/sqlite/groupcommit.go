package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// maxGroup bounds a batch, so one commit never waits on a long queue.
const maxGroup = 128

type writeReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error
}

type committer struct {
	w    *sql.DB
	hot  *hotStatements
	reqs chan *writeReq
	stop chan struct{}
	quit chan struct{}
}

func newCommitter(w *sql.DB, hot *hotStatements) *committer {
	c := &committer{w: w, hot: hot, reqs: make(chan *writeReq, maxGroup), stop: make(chan struct{}), quit: make(chan struct{})}
	go c.run()
	return c
}

// do runs fn in a write transaction shared with other concurrent writes
// and returns fn's error, or the COMMIT's.
func (c *committer) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errors.New("sqlite: store closed")
	}
	// Once queued, wait for the outcome even if ctx ends: the batch may
	// already hold fn's work, and the caller must learn whether it stuck.
	return <-r.done
}

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
					r.done <- errors.New("sqlite: store closed")
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxGroup {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		c.commit(batch)
	}
}

// commit runs a batch in one transaction and answers every caller.
func (c *committer) commit(batch []*writeReq) {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, r := range batch {
			r.done <- err
		}
	}
	if len(batch) == 1 { // no savepoint needed for a batch of one
		r := batch[0]
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			return
		}
		r.done <- c.single(r)
		return
	}
	tx, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		fail(err)
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.Stmt(c.hot.savepoint).Exec(); err != nil {
			tx.Rollback()
			fail(fmt.Errorf("group commit: savepoint: %w", err))
			return
		}
		if errs[i] = r.fn(tx); errs[i] != nil {
			if _, err := tx.Stmt(c.hot.rollback).Exec(); err != nil {
				tx.Rollback()
				fail(fmt.Errorf("group commit: roll back one write (%v): %w", errs[i], err))
				return
			}
		}
		if _, err := tx.Stmt(c.hot.release).Exec(); err != nil {
			tx.Rollback()
			fail(fmt.Errorf("group commit: release: %w", err))
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

func (c *committer) single(r *writeReq) error {
	tx, err := c.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	if err := r.fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
