package db

import (
	"context"
	"time"
)

// ScheduleStore keeps schedules and their ticks (docs/protocol.md,
// "Schedules"). The rules of time (which ticks are due) are package
// schedule's; the store keeps the one promise only a database can: a tick
// is recorded once per schedule, whichever daemons handle it.
type ScheduleStore interface {
	// CreateSchedule stores a schedule; ErrConflict when the name is taken.
	CreateSchedule(ctx context.Context, s NewSchedule) (Schedule, error)
	// Schedule reads one schedule by name (ErrNotFound).
	Schedule(ctx context.Context, name string) (Schedule, error)
	// ListSchedules lists every schedule, by name.
	ListSchedules(ctx context.Context) ([]Schedule, error)
	// DeleteSchedule deletes a schedule and its history; the jobs it made
	// stay.
	DeleteSchedule(ctx context.Context, name string) error
	// PauseSchedule pauses or resumes a schedule; resuming makes at its
	// Since, so that the ticks that passed while it was paused are not
	// due. changed is false when it already was as asked.
	PauseSchedule(ctx context.Context, name string, paused bool, at time.Time) (changed bool, err error)
	// FireTick stores a tick's job (SubmitJobs), the tick with the job's
	// id and the audit record of the submission in one transaction. When
	// the tick is already recorded (another daemon, or this one before a
	// restart, handled it), or the schedule is paused (since the caller
	// read it), nothing is stored and fired is false. A tick whose Tick is
	// zero (schedule.run) is always stored.
	FireTick(ctx context.Context, t NewTick, j NewJob, audit AuditEntry) (job Job, fired bool, err error)
	// RecordTicks stores ticks that made no job (skipped, denied, failed),
	// each with its audit record (audit[i] goes with ts[i]) in one
	// transaction; a tick already recorded, or of a paused schedule, is
	// left out, without its audit record. It returns how many it stored.
	RecordTicks(ctx context.Context, ts []NewTick, audit []AuditEntry) (int, error)
	// ScheduleTicks lists a schedule's history, newest first.
	ScheduleTicks(ctx context.Context, scheduleID int64, f TickFilter) ([]Tick, error)
}

// NewSchedule is a schedule as added.
type NewSchedule struct {
	Name     string
	Owner    string // the user its ticks submit as
	Cron     string
	Timezone string
	CatchUp  string // latest or none
	Overlap  string // skip or allow
	// Job is the template each tick submits, as the service encodes it
	// (JSON); the store keeps it as it is.
	Job       []byte
	Paused    bool
	CreatedAt time.Time
}

// Schedule is a stored schedule and where it stands.
type Schedule struct {
	ID int64
	NewSchedule
	// Since is when it was added or last resumed: ticks at or before it
	// are not due.
	Since time.Time
	// LastTick is the latest tick recorded (fired, skipped, denied or
	// failed); zero before the first.
	LastTick time.Time
	// LastJobID is the latest job it made, by a tick or schedule.run; 0
	// before the first.
	LastJobID int64
}

// Tick outcomes.
const (
	TickFired   = "fired"   // a tick made its job
	TickRun     = "run"     // schedule.run made a job, outside the ticks
	TickSkipped = "skipped" // --overlap or --catch-up passed over it
	TickDenied  = "denied"  // the owner may not submit the job (ACL, blacklist, account)
	TickFailed  = "failed"  // the job was refused (no target, bad values)
)

// NewTick is a tick, or a schedule.run, as recorded.
type NewTick struct {
	ScheduleID int64
	// Tick is the instant the tick is for, a whole second (the unique key
	// with the schedule); zero for schedule.run.
	Tick    time.Time
	At      time.Time // when it was handled
	Outcome string
	Reason  string // why it made no job
	By      string // the user its job was (or would have been) submitted as
}

// Tick is one entry of a schedule's history.
type Tick struct {
	ID int64
	NewTick
	JobID int64 // 0: none, or deleted since
}

// TickFilter narrows ScheduleTicks; zero values match everything.
type TickFilter struct {
	Limit    int   // 0: driver default (100)
	BeforeID int64 // paging: entries with a smaller id
}
