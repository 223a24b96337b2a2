package service

import (
	"context"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
)

// PermJobDelete is the admin permission to delete other users' jobs
// (job.delete; one's own need none) and to prune old jobs (job.prune,
// whosever they are).
const PermJobDelete = "job.delete"

// DeleteJobs deletes jobs by id, with their runs and their output, all or
// none: every id must be a job (404 naming the first that is not), every
// run of each must be final (409 naming the job: cancel it first). One's
// own jobs need no permission; others' need job.delete, as cancelling
// them needs job.cancel. A repeated id counts once.
func (s *Service) DeleteJobs(ctx context.Context, caller db.User, ids []int64) (db.PruneResult, error) {
	if len(ids) == 0 {
		return db.PruneResult{}, refuse(ErrInvalid, "no job id")
	}
	if len(ids) > api.MaxDeleteJobs {
		return db.PruneResult{}, refuse(ErrInvalid, "%d job ids: at most %d per call", len(ids), api.MaxDeleteJobs)
	}
	others := false
	for _, id := range ids {
		j, err := s.Store.Job(ctx, id)
		if err != nil {
			return db.PruneResult{}, err
		}
		others = others || j.SubmittedBy != caller.Name
	}
	if others {
		if err := s.authorize(ctx, PermJobDelete); err != nil {
			return db.PruneResult{}, err
		}
	}
	return s.Store.DeleteJobs(ctx, ids)
}

// PruneJobs deletes every job whose runs are all final and whose last
// run ended more than olderThan before at, with their runs and output,
// as the cleaner does (Store.PruneJobs), in batches of
// db.DefaultPruneLimit, each a transaction of its own; with dryRun it
// counts them and deletes nothing. When ctx ends between two batches, what
// the batches before deleted stays deleted, and the error says so with
// the counts.
func (s *Service) PruneJobs(ctx context.Context, olderThan time.Duration, at time.Time, dryRun bool) (db.PruneResult, error) {
	if olderThan < 0 {
		return db.PruneResult{}, refuse(ErrInvalid, "older_than: %s is negative", olderThan)
	}
	var sum db.PruneResult
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		r, err := s.Store.PruneJobs(ctx, db.PruneOptions{Before: at.Add(-olderThan), After: sum.Next, DryRun: dryRun})
		if err != nil {
			return sum, err
		}
		sum.Add(r)
		if r.Examined < db.DefaultPruneLimit {
			return sum, nil
		}
	}
}
