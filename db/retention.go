package db

import (
	"context"
	"time"
)

// RetentionStore deletes what is kept no longer (docs/maintenance.md,
// "Retention"): final jobs with their runs and output, by age or by id,
// and old audit records; and it gives the space back where the database
// needs to be asked (SQLite). Every deletion is in small transactions of
// the store's ordinary writer, so that the agents' calls interleave.
type RetentionStore interface {
	// PruneJobs deletes, in one transaction, the old final jobs among the
	// next o.Limit jobs created before o.Before (by creation time, then
	// id, after o.After): those whose runs are all final and whose last
	// run changed before o.Before (the time the server recorded its end;
	// a job without runs, its creation). Their runs and the runs' output
	// go with them; a schedule's tick that made one keeps its place in
	// the schedule's history, without a job. The result counts what went,
	// how many jobs were examined, and where the next batch starts: when
	// Examined < o.Limit there is no more. With o.DryRun nothing is
	// deleted: the counts are of what would be.
	PruneJobs(ctx context.Context, o PruneOptions) (PruneResult, error)
	// DeleteJobs deletes the given jobs with their runs and output, all
	// in one transaction, whatever their age: ErrNotFound naming the first
	// id that is not a job, ErrConflict naming the first job with a run
	// not final (cancel it first); then nothing is deleted. A repeated id
	// counts once.
	DeleteJobs(ctx context.Context, ids []int64) (PruneResult, error)
	// PruneOperations deletes the oldest audit records recorded before
	// before, at most limit of them (1 or more), in one transaction, and
	// returns how many; fewer than limit: there is no more.
	PruneOperations(ctx context.Context, before time.Time, limit int) (int, error)
	// PruneEvents deletes the oldest events that happened before before,
	// at most limit rows of them (a row may hold a batch's events), and
	// returns how many events.
	PruneEvents(ctx context.Context, before time.Time, limit int) (int, error)
	// PruneIdempotencyKeys deletes up to limit idempotency keys made
	// before before (no longer naming their jobs: IdempotencyWindow).
	PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int, error)
	// ReclaimSpace gives back to the file system up to pages pages the
	// deletions freed in the database file (SQLite: PRAGMA
	// incremental_vacuum, in one write transaction) and says how many it
	// gave back and how many free pages are left. A store whose database
	// reuses the space itself (PostgreSQL's autovacuum) does nothing and
	// returns zeros.
	ReclaimSpace(ctx context.Context, pages int) (freed, left int64, err error)
	// TryLock takes, without waiting, the lock called name shared by every
	// daemon on the database: one of them at a time does what it guards
	// (a cleaner's pass). It returns the function that gives it back, or
	// ErrConflict while another holder has it. A lock dies with the
	// daemon that holds it (PostgreSQL: with its database session); a
	// store alone on its database (SQLite) needs it within the process
	// only.
	TryLock(ctx context.Context, name string) (release func(), err error)
}

// DefaultPruneLimit is the batch of PruneJobs when PruneOptions.Limit is
// 0: the jobs examined, and at most deleted, in one transaction.
const DefaultPruneLimit = 500

// PruneOptions drive Store.PruneJobs.
type PruneOptions struct {
	Before time.Time // delete the final jobs whose last run changed before this
	Limit  int       // jobs examined in this batch; 0: DefaultPruneLimit
	After  PruneCursor
	DryRun bool
}

// PruneCursor is where a batch of PruneJobs stopped: the last job it
// examined, by creation time and id. The zero cursor is the oldest job.
type PruneCursor struct {
	CreatedAt int64 // Unix nanoseconds, as stored
	ID        int64
}

// PruneResult says what PruneJobs or DeleteJobs deleted (or, with DryRun,
// would have).
type PruneResult struct {
	Jobs     int // jobs deleted
	Runs     int // their runs, with their output
	Examined int // jobs looked at (PruneJobs)
	Next     PruneCursor
}

// Add counts r's deletions into p (a pass of several batches).
func (p *PruneResult) Add(r PruneResult) {
	p.Jobs += r.Jobs
	p.Runs += r.Runs
	p.Examined += r.Examined
	p.Next = r.Next
}
