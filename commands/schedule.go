package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	// The zones of --timezone, checked here before anything is sent, are
	// the same on every machine, whatever its system's zoneinfo.
	_ "time/tzdata"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/schedule"
)

// NewScheduleCmd builds `scirectl schedule`.
func NewScheduleCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Submit a job again and again, at the times of a cron expression",
		Long: `A schedule submits a job at each tick of a cron expression, read in a time
zone: the script and the targets given to "schedule add", submitted as the
user who added the schedule and checked at each tick as "job submit" is
(by the ACL, the blacklist and the gate). The server keeps schedules in its
database: whatever the number of daemons, their restarts and failovers, a
tick makes one job at most.

Ticks that passed while no daemon ran make one job, for the latest of them
(--catch-up latest), or none (--catch-up none). A tick that comes while the
previous job still has runs out is skipped (--overlap skip), unless the
schedule says --overlap allow. A tick that is skipped or refused is
recorded in the schedule's history ("schedule history NAME"), and the
schedule goes on.`,
		Example: `  scirectl schedule add nightly-apt --cron '0 3 * * *' --timezone Europe/Paris --selector role=web -c 'apt-get -y upgrade'
  scirectl schedule list
  scirectl schedule show nightly-apt
  scirectl schedule history nightly-apt
  scirectl schedule run nightly-apt --wait
  scirectl schedule pause nightly-apt
  scirectl schedule remove nightly-apt`,
	}
	cmd.AddCommand(NewScheduleAddCmd(f, nil), NewScheduleListCmd(f, nil), NewScheduleShowCmd(f, nil), NewScheduleRemoveCmd(f, nil),
		NewSchedulePauseCmd(f, nil), NewScheduleResumeCmd(f, nil), NewScheduleRunCmd(f, nil), NewScheduleHistoryCmd(f, nil))
	return cmd
}

// ScheduleAddOptions are the argument and flags of `schedule add`: the
// schedule's, and those of the job it submits (as job submit's).
type ScheduleAddOptions struct {
	remote
	jobFlags
	Schedule string // NAME
	Cron     string
	Timezone string
	CatchUp  string // as written; empty: the server's default
	Overlap  string // as written; empty: the server's default
	Paused   bool
}

// NewScheduleAddCmd builds `schedule add`; runF, when not nil, is called
// with the options instead of adding.
func NewScheduleAddCmd(f *Factory, runF func(*ScheduleAddOptions) error) *cobra.Command {
	o := &ScheduleAddOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "add NAME --cron EXPR",
		Short: "Add a schedule: a job submitted at each tick of a cron expression",
		Long: `Add a schedule named NAME. At each tick of --cron the server submits a job,
as you: the job that "job submit" would make of the same flags. Targets
(--target, --group, --selector), the script (-c, or --script FILE, or
--script - for standard input) and the other job flags (--interpreter,
--name, --permission, --priority, --timeout, --max-attempts, and the
rollout: --max-parallel, --max-failures, --canary, --success-threshold)
mean what they mean there; see "scirectl job submit --help". A group and a
selector are resolved at each tick, so a machine labelled today is in
tomorrow's job. There is no --at or --expires: each tick is its own time.

--cron takes the five fields of cron, minute hour day-of-month month
day-of-week ('0 3 * * *' is 03:00 every day, '*/15 8-18 * * 1-5' every
quarter of an hour in working hours, Monday to Friday), or @hourly, @daily,
@weekly, @monthly, @yearly, or @every DURATION ('@every 90m', whole seconds,
at least 1s). The fields are read in --timezone, an IANA name such as
Europe/Paris (default UTC). Where that zone changes its clocks, a time in
the hour skipped in spring has no tick that day and one in the hour
repeated in autumn has two: keep a daily job out of those hours (02:00 to
03:00 in Europe/Paris), or use UTC.

--catch-up says what happens to ticks that passed while no daemon ran:
latest (the default) makes one job, for the latest of them; none makes no
job for a tick that is late, for a job that must not run at another time.
--overlap says what a tick does while the previous job still has runs
out: skip (the default) skips it and records why; allow submits anyway.

The expression, the zone, --catch-up, --overlap and the job flags are
checked before anything is sent. With --paused the schedule makes no job
until "scirectl schedule resume NAME". It prints the schedule's next tick.`,
		Example: `  scirectl schedule add nightly-apt --cron '0 3 * * *' --timezone Europe/Paris --selector role=web -c 'apt-get -y upgrade'
  scirectl schedule add disk-check --cron @hourly --group web -c 'df -h /' --overlap allow
  scirectl schedule add backup --cron '30 1 * * *' --target db1 --script backup.sh --timeout 2h --catch-up none
  scirectl schedule add rotate --cron '@every 6h' --selector 'env=prod,fact.os_id=debian' -c 'logrotate -f /etc/logrotate.conf' --max-parallel 10%
  scirectl schedule add patch --cron '0 4 * * 0' --group web --script patch.sh --canary 1 --max-failures 2 --paused`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runE(o, func(args []string) { o.Schedule = args[0] }, runF, runScheduleAdd),
	}
	addJobFlags(cmd, &o.jobFlags, &o.remote, "at each tick")
	fl := cmd.Flags()
	fl.StringVar(&o.Cron, "cron", "", "when to submit the job: five cron fields ('0 3 * * *'), @hourly, @daily, @weekly, @monthly, @yearly or '@every DURATION' (required)")
	fl.StringVar(&o.Timezone, "timezone", "", "the time zone the cron fields are read in, an IANA name such as Europe/Paris (default UTC)")
	fl.StringVar(&o.CatchUp, "catch-up", "", "ticks missed while no daemon ran: latest (one job for the latest of them) or none (default latest)")
	fl.StringVar(&o.Overlap, "overlap", "", "a tick while the previous job still has runs out: skip or allow (default skip)")
	fl.BoolVar(&o.Paused, "paused", false, "add the schedule paused: no job until schedule resume")
	o.addFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("cron", cobra.FixedCompletions([]string{"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@every "},
		cobra.ShellCompDirectiveNoFileComp|cobra.ShellCompDirectiveNoSpace))
	_ = cmd.RegisterFlagCompletionFunc("timezone", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("catch-up", cobra.FixedCompletions([]string{string(schedule.CatchUpLatest), string(schedule.CatchUpNone)},
		cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("overlap", cobra.FixedCompletions([]string{string(schedule.OverlapSkip), string(schedule.OverlapAllow)},
		cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func runScheduleAdd(ctx context.Context, o *ScheduleAddOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	req, err := o.addRequest(ios)
	if err != nil {
		return err
	}
	s, err := call[api.Schedule](ctx, &o.remote, api.MethodScheduleAdd, req)
	if err != nil {
		return err
	}
	s = withJobLists(s)
	return show(ios, &o.remote, s, func(s api.Schedule) error {
		if s.Paused {
			fmt.Fprintf(ios.Out, "schedule %s added, paused: %s; no job until \"scirectl schedule resume %s\"\n", s.Name, cronText(s), s.Name)
			return nil
		}
		fmt.Fprintf(ios.Out, "schedule %s added: %s, next tick %s\n", s.Name, cronText(s), tickText(s.Next, s.Timezone, clock()))
		return nil
	})
}

// addRequest checks the schedule's flags and the job's, and makes
// schedule.add's param of them. --cron, --timezone, --catch-up and
// --overlap are read by the rules the server applies (package schedule),
// so that a mistake is a usage error before anything is sent; a value the
// server has a default for stays empty when not given.
func (o *ScheduleAddOptions) addRequest(ios *IOStreams) (api.ScheduleAddRequest, error) {
	if strings.TrimSpace(o.Schedule) == "" {
		return api.ScheduleAddRequest{}, usageError("NAME is empty")
	}
	if strings.TrimSpace(o.Cron) == "" {
		return api.ScheduleAddRequest{}, usageError("no --cron: say when to submit the job, e.g. --cron '0 3 * * *' or --cron @daily")
	}
	spec, err := schedule.Parse(o.Cron, o.Timezone)
	if err != nil {
		return api.ScheduleAddRequest{}, usageError("--" + err.Error())
	}
	req := api.ScheduleAddRequest{Name: o.Schedule, Cron: spec.Expr(), Timezone: strings.TrimSpace(o.Timezone), Paused: o.Paused}
	if strings.TrimSpace(o.CatchUp) != "" {
		c, err := schedule.ParseCatchUp(o.CatchUp)
		if err != nil {
			return api.ScheduleAddRequest{}, usageError(err.Error())
		}
		req.CatchUp = string(c)
	}
	if strings.TrimSpace(o.Overlap) != "" {
		ov, err := schedule.ParseOverlap(o.Overlap)
		if err != nil {
			return api.ScheduleAddRequest{}, usageError(err.Error())
		}
		req.Overlap = string(ov)
	}
	if req.Job, err = o.jobFlags.request(ios.In); err != nil {
		return api.ScheduleAddRequest{}, err
	}
	return req, nil
}

// ScheduleListOptions are the flags of `schedule list`.
type ScheduleListOptions struct {
	remote
}

// NewScheduleListCmd builds `schedule list`; runF, when not nil, is called
// with the options instead of listing.
func NewScheduleListCmd(f *Factory, runF func(*ScheduleListOptions) error) *cobra.Command {
	o := &ScheduleListOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List schedules with their next tick and their last job",
		Long: `List schedules by name: the cron expression (with its time zone, when not
UTC), the next tick ("paused" for a paused schedule, which has none), the
last job the schedule made and that job's status, and the owner, the user
its jobs are submitted as. -o wide adds the targets, --catch-up, --overlap
and the last tick handled; -q prints only the names.`,
		Example: `  scirectl schedule list
  scirectl schedule list -o wide
  scirectl schedule list -o json | jq -r '.[] | select(.last_job_status == "failed") | .name'
  for s in $(scirectl schedule list -q); do scirectl schedule history "$s" --limit 3; done`,
		Args: cobra.NoArgs,
		RunE: runE(o, nil, runF, runScheduleList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "schedule names")
	return cmd
}

func runScheduleList(ctx context.Context, o *ScheduleListOptions) error {
	ios := o.io()
	ss, err := call[[]api.Schedule](ctx, &o.remote, api.MethodScheduleList)
	if err != nil {
		return err
	}
	for i := range ss {
		ss[i] = withJobLists(ss[i])
	}
	return showList(ios, &o.out, ss, func(s api.Schedule) string { return s.Name }, func(ss []api.Schedule) error {
		return printSchedules(ios, &o.out, ss)
	})
}

func printSchedules(ios *IOStreams, o *outputOptions, ss []api.Schedule) error {
	now := clock()
	header := []string{"NAME", "CRON", "NEXT", "LAST JOB", "STATUS", "OWNER"}
	if o.wide() {
		header = append(header, "TARGETS", "CATCH-UP", "OVERLAP", "LAST TICK")
	}
	rows := make([][]string, len(ss))
	for i, s := range ss {
		next := "-"
		switch {
		case s.Paused:
			next = "paused"
		case s.Next != nil:
			next = ago(*s.Next, now)
		}
		rows[i] = []string{s.Name, cronText(s), next, dash(s.LastJobID), dash(s.LastJobStatus), s.Owner}
		if o.wide() {
			last := "-"
			if s.LastTick != nil {
				last = ago(*s.LastTick, now)
			}
			rows[i] = append(rows[i], dash(targetsText(s.Job)), s.CatchUp, s.Overlap, last)
		}
	}
	return printTable(ios.Out, o, header, rows)
}

// ScheduleShowOptions are the argument and flags of `schedule show`.
type ScheduleShowOptions struct {
	remote
	Name string
}

// NewScheduleShowCmd builds `schedule show`; runF, when not nil, is called
// with the options instead of asking the server.
func NewScheduleShowCmd(f *Factory, runF func(*ScheduleShowOptions) error) *cobra.Command {
	o := &ScheduleShowOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a schedule and the job it submits, script included",
		Long: `Show one schedule: its expression and time zone, its next tick and the last
one handled (in the schedule's time zone as well as relative), the last job
it made and that job's status, --catch-up and --overlap, then the job each
tick submits: its targets, groups and selectors, how it runs, its rollout,
and its script.`,
		Example: `  scirectl schedule show nightly-apt
  scirectl schedule show nightly-apt -o json | jq -r .job.script`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeSchedules(&o.remote)),
		RunE:              runE(o, func(args []string) { o.Name = args[0] }, runF, runScheduleShow),
	}
	o.addFlags(cmd)
	return cmd
}

func runScheduleShow(ctx context.Context, o *ScheduleShowOptions) error {
	ios := o.io()
	s, err := call[api.Schedule](ctx, &o.remote, api.MethodScheduleGet, o.Name)
	if err != nil {
		return err
	}
	s = withJobLists(s)
	return show(ios, &o.remote, s, func(s api.Schedule) error {
		printSchedule(ios, s)
		return nil
	})
}

// printSchedule prints a schedule as schedule show does: a line per
// property of the schedule, then of its job, then the script.
func printSchedule(ios *IOStreams, s api.Schedule) {
	now := clock()
	fmt.Fprintf(ios.Out, "Schedule %s: %s, owned by %s\n", s.Name, cronText(s), s.Owner)
	next := tickText(s.Next, s.Timezone, now)
	if s.Paused {
		next = fmt.Sprintf("none, paused (scirectl schedule resume %s)", s.Name)
	}
	lastJob := "-"
	if s.LastJobID != "" {
		lastJob = s.LastJobID
		if s.LastJobStatus != "" {
			lastJob += " (" + s.LastJobStatus + ")"
		}
	}
	j := s.Job
	timeout, attempts := "none", "no limit"
	if j.Timeout > 0 {
		timeout = durationText(time.Duration(j.Timeout) * time.Second)
	}
	if j.MaxAttempts > 0 {
		attempts = strconv.Itoa(j.MaxAttempts)
	}
	lines := [][2]string{
		{"next", next}, {"last tick", tickText(s.LastTick, s.Timezone, now)}, {"last job", lastJob},
		{"catch-up", dash(s.CatchUp)}, {"overlap", dash(s.Overlap)}, {"created", ago(s.CreatedAt, now)},
		{"job name", dash(j.Name)}, {"targets", dash(strings.Join(j.Targets, ","))}, {"groups", dash(strings.Join(j.Groups, ","))},
		{"selectors", dash(strings.Join(j.Selectors, "; "))}, {"interpreter", j.Interpreter}, {"permission", j.Permission},
		{"priority", strconv.Itoa(j.Priority)}, {"timeout", timeout}, {"max attempts", attempts},
	}
	if r := rolloutText(j); r != "" {
		lines = append(lines, [2]string{"rollout", r})
	}
	for _, l := range lines {
		fmt.Fprintf(ios.Out, "%-14s %s\n", l[0]+":", l[1])
	}
	fmt.Fprintln(ios.Out, "\nscript:")
	fmt.Fprint(ios.Out, j.Script)
	if !strings.HasSuffix(j.Script, "\n") {
		fmt.Fprintln(ios.Out)
	}
}

// ScheduleRemoveOptions are the arguments and flags of `schedule remove`.
type ScheduleRemoveOptions struct {
	remote
	Names []string
}

// NewScheduleRemoveCmd builds `schedule remove`; runF, when not nil, is
// called with the options instead of removing.
func NewScheduleRemoveCmd(f *Factory, runF func(*ScheduleRemoveOptions) error) *cobra.Command {
	o := &ScheduleRemoveOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "remove NAME...",
		Short: "Remove schedules",
		Long: `Remove schedules: they make no more jobs. The jobs they made are left as they
are, runs out included ("scirectl job cancel ID" stops one). The schedules
are removed one at a time, in the order given; the first that cannot be
removed stops the command, and those before it stay removed.`,
		Example: `  scirectl schedule remove nightly-apt
  scirectl schedule remove disk-check backup`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeSchedules(&o.remote),
		RunE:              runE(o, func(args []string) { o.Names = args }, runF, runScheduleRemove),
	}
	o.addFlags(cmd)
	return cmd
}

func runScheduleRemove(ctx context.Context, o *ScheduleRemoveOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	removed := []api.Schedule{}
	for _, name := range o.Names {
		var s api.Schedule
		if err = c.Call(ctx, api.MethodScheduleRemove, &s, name); err != nil {
			break
		}
		if !o.out.json() {
			fmt.Fprintf(ios.Out, "removed schedule %s\n", name)
		}
		removed = append(removed, withJobLists(s))
	}
	if o.out.json() {
		if jerr := printJSON(ios.Out, removed); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// SchedulePauseOptions are the argument and flags of `schedule pause` and
// `schedule resume`.
type SchedulePauseOptions struct {
	remote
	Name  string
	Pause bool // pause; false: resume
}

// NewSchedulePauseCmd builds `schedule pause`; runF, when not nil, is
// called with the options instead of pausing.
func NewSchedulePauseCmd(f *Factory, runF func(*SchedulePauseOptions) error) *cobra.Command {
	return newSchedulePauseCmd(f, runF, true)
}

// NewScheduleResumeCmd builds `schedule resume`; runF, when not nil, is
// called with the options instead of resuming.
func NewScheduleResumeCmd(f *Factory, runF func(*SchedulePauseOptions) error) *cobra.Command {
	return newSchedulePauseCmd(f, runF, false)
}

func newSchedulePauseCmd(f *Factory, runF func(*SchedulePauseOptions) error, pause bool) *cobra.Command {
	o := &SchedulePauseOptions{remote: newRemote(f), Pause: pause}
	cmd := &cobra.Command{
		Use:   "pause NAME",
		Short: "Hold a schedule: its ticks make no job",
		Long: `Pause a schedule: no tick makes a job until it is resumed, and it has no
next tick meanwhile. A job it made already goes on ("scirectl job pause ID"
holds that one). Pausing a schedule that is already paused changes nothing
and says so.`,
		Example: `  scirectl schedule pause nightly-apt
  scirectl schedule pause nightly-apt -o json | jq .changed`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeSchedules(&o.remote)),
		RunE:              runE(o, func(args []string) { o.Name = args[0] }, runF, runSchedulePause),
	}
	if !pause {
		cmd.Use = "resume NAME"
		cmd.Short = "Let a paused schedule make jobs again"
		cmd.Long = `Resume a paused schedule: its ticks make jobs again, from the next one
on ("schedule list" shows when). Resuming a schedule that is not paused
changes nothing and says so.`
		cmd.Example = `  scirectl schedule resume nightly-apt
  scirectl schedule resume nightly-apt && scirectl schedule list`
	}
	o.addFlags(cmd)
	return cmd
}

func runSchedulePause(ctx context.Context, o *SchedulePauseOptions) error {
	ios := o.io()
	method := api.MethodSchedulePause
	if !o.Pause {
		method = api.MethodScheduleResume
	}
	res, err := call[api.SchedulePauseResult](ctx, &o.remote, method, o.Name)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, res, func(res api.SchedulePauseResult) error {
		_, err := fmt.Fprintln(ios.Out, pausedLine("schedule", res.Name, res.Changed, res.Paused))
		return err
	})
}

// ScheduleRunOptions are the argument and flags of `schedule run`.
type ScheduleRunOptions struct {
	remote
	Name  string
	Wait  bool
	watch watchOptions
}

// NewScheduleRunCmd builds `schedule run`; runF, when not nil, is called
// with the options instead of starting the job.
func NewScheduleRunCmd(f *Factory, runF func(*ScheduleRunOptions) error) *cobra.Command {
	o := &ScheduleRunOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "run NAME",
		Short: "Submit a schedule's job now, outside its ticks",
		Long: `Submit the schedule's job now, outside its ticks: to try a schedule just
added, or to do tonight's work at once. The job is in the schedule's
history with the outcome "run", and "schedule list" shows it as the last
job.

It prints the job's id as "job submit" does, and takes the same -q, -o json
and --wait (with --wait-interval and --wait-timeout): with --wait it
follows the job to its end and the exit code tells the outcome (see
"scirectl job submit --help").`,
		Example: `  scirectl schedule run nightly-apt
  scirectl schedule run nightly-apt --wait
  id=$(scirectl schedule run -q nightly-apt) && scirectl job output "$id" -f`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeSchedules(&o.remote)),
		RunE:              runE(o, func(args []string) { o.Name = args[0] }, runF, runScheduleRun),
	}
	cmd.Flags().BoolVar(&o.Wait, "wait", false, "wait until every run of the job is final, showing progress; the exit code tells the outcome (see scirectl(1))")
	addWatchFlags(cmd, &o.watch, "--wait")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "the job id")
	return cmd
}

func runScheduleRun(ctx context.Context, o *ScheduleRunOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := o.watch.validate(o.Wait); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	now := time.Now()
	var res api.ScheduleRunResult
	if err := c.Call(ctx, api.MethodScheduleRun, &res, o.Name); err != nil {
		return err
	}
	what := fmt.Sprintf("schedule %s: job %s submitted (%d runs)", o.Name, res.ID, res.Runs)
	return followNewJob(ctx, c, ios, &o.out, res.ID, what, res, o.Wait, o.watch, now)
}

// ScheduleHistoryOptions are the argument and flags of `schedule history`.
type ScheduleHistoryOptions struct {
	remote
	Name   string
	Limit  int
	Before string
}

// NewScheduleHistoryCmd builds `schedule history`; runF, when not nil, is
// called with the options instead of asking the server.
func NewScheduleHistoryCmd(f *Factory, runF func(*ScheduleHistoryOptions) error) *cobra.Command {
	o := &ScheduleHistoryOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "List what a schedule's ticks did, newest first",
		Long: `List a schedule's history, newest first: each tick and what came of it, and
each job "schedule run" started. OUTCOME is fired (the tick made the job
in JOB), run (a job started by "schedule run"), skipped (--overlap: the
previous job still had runs out; or --catch-up: a tick missed while no
daemon ran), denied (the owner may not: the ACL, the blacklist, the
account) or failed (the server refused the job: no target left, a bad
value); REASON says why. STATUS is the job's status now.

-o wide adds when each entry was handled and the user its job was
submitted as; -q prints only the entry ids. Page back with --before ID.`,
		Example: `  scirectl schedule history nightly-apt
  scirectl schedule history nightly-apt --limit 10 -o wide
  scirectl schedule history nightly-apt --before 120
  scirectl schedule history nightly-apt -o json | jq -r '.[] | select(.outcome != "fired") | .reason'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeSchedules(&o.remote)),
		RunE:              runE(o, func(args []string) { o.Name = args[0] }, runF, runScheduleHistory),
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Limit, "limit", 50, "at most this many entries (1 to 1000)")
	fl.StringVar(&o.Before, "before", "", "only entries older than this id (paging)")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "entry ids")
	return cmd
}

func runScheduleHistory(ctx context.Context, o *ScheduleHistoryOptions) error {
	ios := o.io()
	if o.Limit < 1 || o.Limit > 1000 {
		return usageError(fmt.Sprintf("--limit %d: want 1 to 1000", o.Limit))
	}
	if o.Before != "" {
		if err := checkID("--before", o.Before); err != nil {
			return err
		}
	}
	ts, err := call[[]api.ScheduleTick](ctx, &o.remote, api.MethodScheduleHistory, o.Name,
		api.ScheduleHistoryRequest{Limit: o.Limit, Before: o.Before})
	if err != nil {
		return err
	}
	return showList(ios, &o.out, ts, func(t api.ScheduleTick) string { return t.ID }, func(ts []api.ScheduleTick) error {
		now := clock()
		header := []string{"ID", "TICK", "OUTCOME", "JOB", "STATUS", "REASON"}
		if o.out.wide() {
			header = append(header, "HANDLED", "BY")
		}
		rows := make([][]string, len(ts))
		for i, t := range ts {
			tick := "-"
			if t.Tick != nil {
				tick = ago(*t.Tick, now)
			}
			rows[i] = []string{t.ID, tick, t.Outcome, dash(t.JobID), dash(t.JobStatus), dash(t.Reason)}
			if o.out.wide() {
				rows[i] = append(rows[i], ago(t.At, now), dash(t.By))
			}
		}
		return printTable(ios.Out, &o.out, header, rows)
	})
}

// cronText is a schedule's expression for people, with its time zone when
// that is not UTC: "0 3 * * * (Europe/Paris)", as schedule.Spec.String
// writes it.
func cronText(s api.Schedule) string {
	if s.Timezone == "" || s.Timezone == "UTC" {
		return s.Cron
	}
	return s.Cron + " (" + s.Timezone + ")"
}

// tickText is a tick for people: relative, then the time in the schedule's
// zone, "in 17h (2026-11-23 03:00 CET)"; "-" when there is none.
func tickText(t *time.Time, zone string, now time.Time) string {
	if t == nil {
		return "-"
	}
	at := t.UTC()
	// "Local" would be this machine's zone, not the schedule's.
	if zone != "Local" {
		if loc, err := time.LoadLocation(zone); err == nil {
			at = t.In(loc)
		}
	}
	return ago(*t, now) + " (" + at.Format("2006-01-02 15:04 MST") + ")"
}

// targetsText is the machines a schedule's job goes to, for a table cell:
// its targets, then its groups and selectors, "web1,web2; group web;
// selector env=prod".
func targetsText(j api.ScheduleJob) string {
	var parts []string
	if len(j.Targets) > 0 {
		parts = append(parts, strings.Join(j.Targets, ","))
	}
	if len(j.Groups) > 0 {
		parts = append(parts, "group "+strings.Join(j.Groups, ","))
	}
	for _, s := range j.Selectors {
		parts = append(parts, "selector "+s)
	}
	return strings.Join(parts, "; ")
}

// rolloutText is a schedule's job's rollout flags as given, or "" when it
// has none: "max-parallel 10%, max-failures 2, canary 1".
func rolloutText(j api.ScheduleJob) string {
	var parts []string
	for _, f := range [][2]string{{"max-parallel", j.MaxParallel}, {"max-failures", j.MaxFailures}, {"success-threshold", j.SuccessThreshold}} {
		if f[1] != "" {
			parts = append(parts, f[0]+" "+f[1])
		}
	}
	if j.Canary > 0 {
		parts = append(parts, "canary "+strconv.Itoa(j.Canary))
	}
	return strings.Join(parts, ", ")
}

// withJobLists gives a schedule's job empty lists where it has none, so
// that -o json prints [] rather than null, whatever the server sent.
func withJobLists(s api.Schedule) api.Schedule {
	s.Job.Targets, s.Job.Groups, s.Job.Selectors = nonNil(s.Job.Targets), nonNil(s.Job.Groups), nonNil(s.Job.Selectors)
	return s
}
