package dbcore

import (
	"encoding/json"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/runstate"
)

// PreparedJob is a job of a SubmitJobs call, checked and ready to store.
type PreparedJob struct {
	Job     db.NewJob // normalized (db.NewJob.Normalize)
	Targets []byte    // Job.Targets as stored: a JSON array
	// Filled in by the driver as it stores the job.
	ID   int64
	Runs int
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
