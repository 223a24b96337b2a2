package dbcore

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/scirectl/scirectl/rollout"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// PreparedJob is a job of a SubmitJobs call, checked and ready to store.
type PreparedJob struct {
	Job     db.NewJob // normalized (db.NewJob.Normalize)
	Targets []byte    // Job.Targets as stored: a JSON array
	// Filled in by the driver as it stores the job: its id and runs, or
	// the job its idempotency key names (Duplicate), when it stores none.
	ID        int64
	Runs      int
	Duplicate int64
}

// PrepareJobs normalizes the jobs of a SubmitJobs call; an error names the
// job that failed (db.SubmitError).
func PrepareJobs(njs []db.NewJob) ([]PreparedJob, error) {
	ps := make([]PreparedJob, len(njs))
	for i, nj := range njs {
		nj, err := nj.Normalize()
		if err != nil {
			return nil, db.SubmitError(len(njs), i, err)
		}
		targets, _ := json.Marshal(nj.Targets)
		ps[i] = PreparedJob{Job: nj, Targets: targets}
	}
	return ps, nil
}

// NewCounts are the run counts of a job just submitted with runs runs.
func NewCounts(runs int) map[runstate.State]int {
	counts := map[runstate.State]int{}
	if runs > 0 {
		counts[runstate.Pending] = runs
	}
	return counts
}

// SubmitJob stores a job and one pending run per target client
// (SubmitJobs, for one job).
func (s Store) SubmitJob(ctx context.Context, nj db.NewJob) (db.Job, error) {
	js, err := s.SubmitJobs(ctx, []db.NewJob{nj}, nil)
	if err != nil {
		return db.Job{}, err
	}
	return js[0], nil
}

// SubmitJobs stores jobs, each with one pending run per target client, and
// the audit records of their submission, in one transaction: all or
// nothing. An error names the job that failed (db.SubmitError).
func (s Store) SubmitJobs(ctx context.Context, njs []db.NewJob, audit []db.AuditEntry) ([]db.Job, error) {
	ps, err := PrepareJobs(njs)
	if err != nil {
		return nil, err
	}
	js, failed, err := s.db.InsertJobs(ctx, ps, audit, nil)
	if err != nil {
		return nil, db.SubmitError(len(ps), failed, s.db.Dialect().Classify(err))
	}
	for i, j := range js {
		if j.Duplicate {
			first, err := s.Job(ctx, j.ID)
			if err != nil {
				return nil, db.SubmitError(len(ps), i, fmt.Errorf("the job of idempotency key %q: %w", ps[i].Job.IdempotencyKey, err))
			}
			first.Duplicate = true
			js[i] = first
		}
	}
	return js, nil
}

// StoredRollout is a rollout as it reads back: the threshold 100 when
// unset.
func StoredRollout(s rollout.Spec) rollout.Spec {
	s.SuccessThreshold = s.Threshold()
	if !s.Budgeted {
		s.MaxFailures = 0
	}
	return s
}
