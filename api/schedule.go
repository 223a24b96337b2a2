package api

import "time"

// The schedules (docs/protocol.md, "Schedules"; SPEC §13).

// ScheduleAddRequest is schedule.add's param: a name, when to fire, and
// the job each tick submits as the schedule's owner (job.submit's param,
// without not_before and expires_at, which a recurring job has no use for).
type ScheduleAddRequest struct {
	Name     string        `xmlrpc:"name"`
	Cron     string        `xmlrpc:"cron"`               // five fields, @hourly … or @every DURATION
	Timezone string        `xmlrpc:"timezone,omitempty"` // IANA name; default UTC
	CatchUp  string        `xmlrpc:"catch_up,omitempty"` // latest (default) or none
	Overlap  string        `xmlrpc:"overlap,omitempty"`  // skip (default) or allow
	Paused   bool          `xmlrpc:"paused,omitempty"`   // added paused: no tick until resumed
	Job      SubmitRequest `xmlrpc:"job"`
}

// ScheduleHistoryRequest is schedule.history's options (its second param).
type ScheduleHistoryRequest struct {
	Limit  int    `xmlrpc:"limit,omitempty"`  // default 50, at most 1000
	Before string `xmlrpc:"before,omitempty"` // only entries older than this id
}

// Schedule is a schedule as schedule.list and schedule.get show it.
type Schedule struct {
	Name      string    `xmlrpc:"name" json:"name"`
	Owner     string    `xmlrpc:"owner" json:"owner"` // the user its ticks submit as
	Cron      string    `xmlrpc:"cron" json:"cron"`
	Timezone  string    `xmlrpc:"timezone" json:"timezone"`
	CatchUp   string    `xmlrpc:"catch_up" json:"catch_up"`
	Overlap   string    `xmlrpc:"overlap" json:"overlap"`
	Paused    bool      `xmlrpc:"paused" json:"paused"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
	// Next is the next tick; absent while paused.
	Next *time.Time `xmlrpc:"next,omitempty" json:"next,omitempty"`
	// LastTick is the latest tick handled (fired, skipped, denied or
	// failed); absent before the first.
	LastTick *time.Time `xmlrpc:"last_tick,omitempty" json:"last_tick,omitempty"`
	// LastJobID and LastJobStatus are the latest job it made (by a tick
	// or schedule.run); absent before the first.
	LastJobID     string `xmlrpc:"last_job_id,omitempty" json:"last_job_id,omitempty"`
	LastJobStatus string `xmlrpc:"last_job_status,omitempty" json:"last_job_status,omitempty"`
	// Job is what each tick submits; its script only in schedule.get.
	Job ScheduleJob `xmlrpc:"job" json:"job"`
}

// ScheduleJob is the job a schedule submits, as schedule.list and
// schedule.get show it.
type ScheduleJob struct {
	Name             string   `xmlrpc:"name,omitempty" json:"name,omitempty"`
	Script           string   `xmlrpc:"script,omitempty" json:"script,omitempty"`
	Targets          []string `xmlrpc:"targets" json:"targets"`
	Groups           []string `xmlrpc:"groups" json:"groups"`
	Selectors        []string `xmlrpc:"selectors" json:"selectors"`
	Interpreter      string   `xmlrpc:"interpreter" json:"interpreter"`
	Permission       string   `xmlrpc:"permission" json:"permission"`
	Priority         int      `xmlrpc:"priority" json:"priority"`
	Timeout          int      `xmlrpc:"timeout" json:"timeout"` // seconds, 0 = none
	MaxAttempts      int      `xmlrpc:"max_attempts" json:"max_attempts"`
	MaxParallel      string   `xmlrpc:"max_parallel,omitempty" json:"max_parallel,omitempty"`
	MaxFailures      string   `xmlrpc:"max_failures,omitempty" json:"max_failures,omitempty"`
	Canary           int      `xmlrpc:"canary,omitempty" json:"canary,omitempty"`
	SuccessThreshold string   `xmlrpc:"success_threshold,omitempty" json:"success_threshold,omitempty"`
}

// SchedulePauseResult is what schedule.pause and schedule.resume return.
type SchedulePauseResult struct {
	Name    string `xmlrpc:"name" json:"name"`
	Paused  bool   `xmlrpc:"paused" json:"paused"`
	Changed bool   `xmlrpc:"changed" json:"changed"` // false: it already was
}

// ScheduleTick is one entry of a schedule's history: a tick and what came
// of it, or a job started by schedule.run.
type ScheduleTick struct {
	ID string `xmlrpc:"id" json:"id"`
	// Tick is the instant the tick was for; absent for schedule.run.
	Tick *time.Time `xmlrpc:"tick,omitempty" json:"tick,omitempty"`
	At   time.Time  `xmlrpc:"at" json:"at"` // when it was handled
	// Outcome: fired (a job), run (a job by schedule.run), skipped
	// (--overlap, --catch-up), denied (the owner may not: ACL, blacklist,
	// account) or failed (the job was refused: no target, bad values).
	Outcome   string `xmlrpc:"outcome" json:"outcome"`
	JobID     string `xmlrpc:"job_id,omitempty" json:"job_id,omitempty"`
	JobStatus string `xmlrpc:"job_status,omitempty" json:"job_status,omitempty"`
	Reason    string `xmlrpc:"reason,omitempty" json:"reason,omitempty"`
	By        string `xmlrpc:"by" json:"by"` // the user the job was submitted as
}

// ScheduleRunResult is what schedule.run returns: the job it submitted.
type ScheduleRunResult struct {
	Schedule string `xmlrpc:"schedule" json:"schedule"`
	ID       string `xmlrpc:"id" json:"id"`
	Runs     int    `xmlrpc:"runs" json:"runs"`
}

// Schedule outcomes (ScheduleTick.Outcome).
const (
	TickFired   = "fired"
	TickRun     = "run"
	TickSkipped = "skipped"
	TickDenied  = "denied"
	TickFailed  = "failed"
)
