package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/scirectl/scirectl/db/internal/dbcore"
	"github.com/scirectl/scirectl/runstate"
)

// The claim, the acknowledgement and the set-based reports write the
// events of the runs they move, in their transaction (migration 12): a
// batch's in one row (dbcore.BatchEvent), where the trigger wrote one row
// a run, which was most of what events cost dispatch.

// sentEvents writes run.sent for the runs a claim sent, with their jobs.
func (s *Store) sentEvents(ctx context.Context, tx *sql.Tx, clientID, now int64, runs, jobs []int64) error {
	var err error
	if len(runs) == 1 {
		_, err = tx.StmtContext(ctx, s.hot.runEvent).ExecContext(ctx, "run.sent", now, clientID, jobs[0], runs[0])
	} else {
		evs := make([]dbcore.BatchEvent, len(runs))
		for i := range runs {
			evs[i] = dbcore.BatchEvent{Run: runs[i], Job: jobs[i]}
		}
		_, err = tx.StmtContext(ctx, s.hot.batchEvent).ExecContext(ctx, "run.sent", now, clientID, len(runs), eventBatch(evs))
	}
	if err != nil {
		return fmt.Errorf("run.sent events: %w", err)
	}
	return nil
}

// reported is a run a set-based report moved, as the statement returns
// it (reportedCols).
type reported struct {
	run, job int64
	state    string
	exit     *int
	reason   string
}

// reportEvents writes the events of the runs the set-based reports moved
// (their own_events bumped, so the triggers skipped them): one row per
// state, then job.finished for their jobs whose runs have all ended.
func (s *Store) reportEvents(ctx context.Context, tx *sql.Tx, clientID, now int64, moved []reported) error {
	if len(moved) == 0 {
		return nil
	}
	var states []string
	byState := map[string][]dbcore.BatchEvent{}
	jobs := make([]int64, 0, len(moved))
	final := false
	for _, m := range moved {
		if _, ok := byState[m.state]; !ok {
			states = append(states, m.state)
		}
		e := dbcore.BatchEvent{Run: m.run, Job: m.job}
		if m.state != string(runstate.Running) {
			e.Exit, e.Detail, final = m.exit, m.reason, true
			jobs = append(jobs, m.job)
		}
		byState[m.state] = append(byState[m.state], e)
	}
	for _, st := range states {
		if _, err := tx.StmtContext(ctx, s.hot.batchEvent).ExecContext(ctx, "run."+st, now, clientID, len(byState[st]), eventBatch(byState[st])); err != nil {
			return fmt.Errorf("run.%s events: %w", st, err)
		}
	}
	if !final {
		return nil
	}
	if _, err := tx.StmtContext(ctx, s.hot.finished).ExecContext(ctx, now, idArray(sortedUnique(jobs))); err != nil {
		return fmt.Errorf("job.finished events: %w", err)
	}
	return nil
}

// ackEvents writes run.received for the runs among ids the
// acknowledgement at now moved: those it stamped acked_at = now (a run
// acknowledged before carries the time of its own acknowledgement), in
// the order of their ids.
func (s *Store) ackEvents(ctx context.Context, tx *sql.Tx, clientID int64, ids []int64, now int64) error {
	var err error
	if len(ids) == 1 {
		_, err = tx.StmtContext(ctx, s.hot.ackEvent).ExecContext(ctx, now, ids[0], clientID)
	} else {
		_, err = tx.StmtContext(ctx, s.hot.ackEvents).ExecContext(ctx, now, idArray(sortedUnique(slices.Clone(ids))), clientID)
	}
	if err != nil {
		return fmt.Errorf("run.received events: %w", err)
	}
	return nil
}

// eventBatch renders events as a batch (dbcore.BatchEvent's JSON), by
// hand: it runs on the writer, once per report of a batch.
func eventBatch(evs []dbcore.BatchEvent) string {
	b := make([]byte, 0, 2+len(evs)*40)
	b = append(b, '[')
	for i, e := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"r":`...)
		b = strconv.AppendInt(b, e.Run, 10)
		b = append(b, `,"j":`...)
		b = strconv.AppendInt(b, e.Job, 10)
		if e.Exit != nil {
			b = append(b, `,"x":`...)
			b = strconv.AppendInt(b, int64(*e.Exit), 10)
		}
		if e.Detail != "" {
			b = append(b, `,"d":`...)
			d, _ := json.Marshal(e.Detail) // a string always marshals
			b = append(b, d...)
		}
		b = append(b, '}')
	}
	return string(append(b, ']'))
}

// sortedUnique sorts ids and drops repeats, in place.
func sortedUnique(ids []int64) []int64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}
