package dbcore

// Schedules and their ticks (db.ScheduleStore), once for both drivers.
// The promise of one job per tick is the unique key (schedule_id, tick) of
// schedule_ticks: a tick's row is inserted, with ON CONFLICT DO NOTHING, in
// the transaction that stores its job, and a tick found taken rolls the
// job back. On PostgreSQL a second daemon inserting the same tick waits on
// the first's uncommitted row and then finds it; SQLite has one writer.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
)

// errTickTaken rolls back a tick's job when its tick is already recorded.
var errTickTaken = errors.New("tick already recorded")

const scheduleColumns = `s.id, s.name, s.owner, s.cron, s.timezone, s.catch_up, s.overlap, s.job, s.paused, s.since, s.created_at,
	(SELECT max(t.tick) FROM schedule_ticks t WHERE t.schedule_id = s.id),
	(SELECT t.job_id FROM schedule_ticks t WHERE t.schedule_id = s.id AND t.job_id IS NOT NULL ORDER BY t.id DESC LIMIT 1)`

func scanSchedule(row Scanner) (db.Schedule, error) {
	var s db.Schedule
	var job string
	var since, created int64
	var last, lastJob *int64
	err := row.Scan(&s.ID, &s.Name, &s.Owner, &s.Cron, &s.Timezone, &s.CatchUp, &s.Overlap, &job, &s.Paused, &since, &created, &last, &lastJob)
	s.Job, s.Since, s.CreatedAt = []byte(job), Time(since), Time(created)
	if last != nil {
		s.LastTick = time.Unix(*last, 0).UTC()
	}
	if lastJob != nil {
		s.LastJobID = *lastJob
	}
	return s, err
}

// CreateSchedule is Store.CreateSchedule.
func (s Store) CreateSchedule(ctx context.Context, ns db.NewSchedule) (db.Schedule, error) {
	if err := db.CheckNewName("schedule", ns.Name); err != nil {
		return db.Schedule{}, fmt.Errorf("create schedule: %w", err)
	}
	for _, v := range []string{ns.Owner, ns.Cron, ns.Timezone, string(ns.Job)} {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return db.Schedule{}, fmt.Errorf("create schedule %q: not valid UTF-8 text: %w", ns.Name, db.ErrInvalid)
		}
	}
	if ns.CreatedAt.IsZero() {
		ns.CreatedAt = time.Now().UTC()
	}
	out := db.Schedule{NewSchedule: ns, Since: ns.CreatedAt}
	d := s.db.Dialect()
	err := s.db.Write(ctx, func(q Querier) (err error) {
		out.ID, err = q.Insert(ctx, `INSERT INTO schedules (name, owner, cron, timezone, catch_up, overlap, job, paused, since, created_at)
			VALUES (`+placeholders(d, 10)+`)`,
			ns.Name, ns.Owner, ns.Cron, ns.Timezone, ns.CatchUp, ns.Overlap, string(ns.Job), ns.Paused, ns.CreatedAt.UnixNano(), ns.CreatedAt.UnixNano())
		return err
	})
	if d.IsUnique(err) {
		return db.Schedule{}, fmt.Errorf("create schedule %q: the name is taken: %w", ns.Name, db.ErrConflict)
	} else if err != nil {
		return db.Schedule{}, fmt.Errorf("create schedule %q: %w", ns.Name, d.Classify(err))
	}
	out.CreatedAt, out.Since = Time(ns.CreatedAt.UnixNano()), Time(ns.CreatedAt.UnixNano())
	return out, nil
}

// Schedule is Store.Schedule.
func (s Store) Schedule(ctx context.Context, name string) (db.Schedule, error) {
	sc, err := scanSchedule(s.db.Reader().QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules s WHERE s.name = `+s.db.Dialect().P(1), name))
	if NoRows(err) {
		return db.Schedule{}, NotFound("schedule", fmt.Sprintf("%q", name))
	}
	if err != nil {
		return db.Schedule{}, fmt.Errorf("schedule %q: %w", name, err)
	}
	return sc, nil
}

// ListSchedules is Store.ListSchedules.
func (s Store) ListSchedules(ctx context.Context) ([]db.Schedule, error) {
	out := []db.Schedule{}
	err := s.db.Reader().Each(ctx, `SELECT `+scheduleColumns+` FROM schedules s ORDER BY s.name`, nil, func(row Scanner) error {
		sc, err := scanSchedule(row)
		out = append(out, sc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return out, nil
}

// DeleteSchedule is Store.DeleteSchedule.
func (s Store) DeleteSchedule(ctx context.Context, name string) error {
	d := s.db.Dialect()
	var n int64
	err := s.db.Write(ctx, func(q Querier) (err error) {
		n, err = q.Exec(ctx, `DELETE FROM schedules WHERE name = `+d.P(1), name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete schedule %q: %w", name, d.Classify(err))
	}
	if n == 0 {
		return NotFound("schedule", fmt.Sprintf("%q", name))
	}
	return nil
}

// PauseSchedule is Store.PauseSchedule.
func (s Store) PauseSchedule(ctx context.Context, name string, paused bool, at time.Time) (bool, error) {
	d := s.db.Dialect()
	var changed bool
	err := s.db.Write(ctx, func(q Querier) error {
		var was bool
		err := q.QueryRow(ctx, `SELECT paused FROM schedules WHERE name = `+d.P(1)+d.ForUpdate, name).Scan(&was)
		if NoRows(err) {
			return NotFound("schedule", fmt.Sprintf("%q", name))
		} else if err != nil || was == paused {
			return err
		}
		changed = true
		if paused {
			_, err = q.Exec(ctx, `UPDATE schedules SET paused = `+d.P(1)+` WHERE name = `+d.P(2), paused, name)
		} else {
			_, err = q.Exec(ctx, `UPDATE schedules SET paused = `+d.P(1)+`, since = `+d.P(2)+` WHERE name = `+d.P(3), paused, at.UnixNano(), name)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("pause schedule %q: %w", name, d.Classify(err))
	}
	return changed, nil
}

// tickKey is a tick's column value: Unix seconds, NULL for schedule.run.
func tickKey(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Unix()
}

// insertTick records a tick unless its key is taken or its schedule is
// paused; it says whether it did. The daemon that handles a tick read the
// schedule before: a schedule.pause may have committed and returned since,
// and then the tick makes no job. The schedule's row is locked, so that a
// pause that comes later waits for the tick's commit. schedule.run's
// entries (no tick) are recorded paused or not.
func insertTick(ctx context.Context, q Querier, d *Dialect, t db.NewTick, jobID int64) (bool, error) {
	if !t.Tick.IsZero() {
		var paused bool
		err := q.QueryRow(ctx, `SELECT paused FROM schedules WHERE id = `+d.P(1)+d.ForUpdate, t.ScheduleID).Scan(&paused)
		if err == nil && paused {
			return false, nil
		} else if err != nil && !NoRows(err) { // a schedule removed: the insert fails on its key
			return false, err
		}
	}
	n, err := q.Exec(ctx, `INSERT INTO schedule_ticks (schedule_id, tick, at, outcome, job_id, reason, by_user)
		VALUES (`+placeholders(d, 7)+`) ON CONFLICT (schedule_id, tick) DO NOTHING`,
		t.ScheduleID, tickKey(t.Tick), t.At.UnixNano(), t.Outcome, NullID(jobID), d.Storable(t.Reason), t.By)
	return n == 1, err
}

// FireTick is Store.FireTick.
func (s Store) FireTick(ctx context.Context, t db.NewTick, nj db.NewJob, audit db.AuditEntry) (db.Job, bool, error) {
	ps, err := PrepareJobs([]db.NewJob{nj})
	if err != nil {
		return db.Job{}, false, fmt.Errorf("fire tick: %w", err)
	}
	d := s.db.Dialect()
	js, _, err := s.db.InsertJobs(ctx, ps, []db.AuditEntry{audit}, func(q Querier, ps []PreparedJob) error {
		ok, err := insertTick(ctx, q, d, t, ps[0].ID)
		if err == nil && !ok {
			err = errTickTaken
		}
		return err
	})
	if errors.Is(err, errTickTaken) {
		return db.Job{}, false, nil
	} else if err != nil {
		return db.Job{}, false, fmt.Errorf("fire tick %s of schedule %d: %w", t.Tick.Format(time.RFC3339), t.ScheduleID, d.Classify(err))
	}
	return js[0], true, nil
}

// RecordTicks is Store.RecordTicks.
func (s Store) RecordTicks(ctx context.Context, ts []db.NewTick, audit []db.AuditEntry) (int, error) {
	if len(audit) != len(ts) {
		return 0, fmt.Errorf("record ticks: %d ticks, %d audit records: %w", len(ts), len(audit), db.ErrInvalid)
	}
	d := s.db.Dialect()
	var stored int
	err := s.db.Write(ctx, func(q Querier) error {
		stored = 0
		for i, t := range ts {
			ok, err := insertTick(ctx, q, d, t, 0)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			stored++
			if err := RecordAudit(ctx, q, d, audit[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("record ticks: %w", d.Classify(err))
	}
	return stored, nil
}

// ScheduleTicks is Store.ScheduleTicks.
func (s Store) ScheduleTicks(ctx context.Context, scheduleID int64, f db.TickFilter) ([]db.Tick, error) {
	a := NewArgs(s.db.Dialect())
	query := `SELECT id, schedule_id, tick, at, outcome, job_id, reason, by_user FROM schedule_ticks WHERE schedule_id = ` + a.Bind(scheduleID)
	if f.BeforeID > 0 {
		query += ` AND id < ` + a.Bind(f.BeforeID)
	}
	query += ` ORDER BY id DESC LIMIT ` + a.Bind(limitOf(f.Limit))
	out := []db.Tick{}
	err := s.db.Reader().Each(ctx, query, a.List, func(row Scanner) error {
		var t db.Tick
		var tick, job *int64
		var at int64
		err := row.Scan(&t.ID, &t.ScheduleID, &tick, &at, &t.Outcome, &job, &t.Reason, &t.By)
		t.At = Time(at)
		if tick != nil {
			t.Tick = time.Unix(*tick, 0).UTC()
		}
		if job != nil {
			t.JobID = *job
		}
		out = append(out, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("schedule %d history: %w", scheduleID, err)
	}
	return out, nil
}

// RecordAudit appends op to the audit trail in q's transaction.
func RecordAudit(ctx context.Context, q Querier, d *Dialect, op db.AuditEntry) error {
	if _, err := q.Exec(ctx, `INSERT INTO operations (at, server_id, actor, name, target, outcome, detail) VALUES (`+placeholders(d, 7)+`)`,
		op.At.UnixNano(), NullID(op.ServerID), d.Storable(op.Actor), d.Storable(op.Name), d.Storable(op.Target), d.Storable(op.Outcome), d.Storable(op.Detail)); err != nil {
		return fmt.Errorf("record operation %s: %w", op.Name, err)
	}
	return nil
}
