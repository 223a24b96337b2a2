package commands

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// NewJobCmd builds `scirectl job`.
func NewJobCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit jobs and follow their runs",
		Long: `A job is a script for one or more clients; each (job, client) pair is a run with its own state, exit code and output.

A job for many machines can go out as a rollout: a few at a time
(--max-parallel), stopping once too many have failed (--max-failures), with
canaries first (--canary); see "scirectl job submit --help". A rollout can be
paused and resumed, and a job run again where it did not succeed. Finished
jobs are deleted after 90 days by the server (serve --retain), or by hand
with job delete and job prune.`,
		Example: `  scirectl job submit --target web1 -c 'df -h'
  scirectl job list
  scirectl job status 42
  scirectl job output 42
  scirectl job output 42 -f
  scirectl job submit --group web --max-parallel 10% --max-failures 2 --canary 1 -c 'apt-get -y upgrade'
  scirectl job pause 42
  scirectl job resume 42
  scirectl job rerun 42 --failed --wait
  scirectl job delete 42
  scirectl job prune --older-than 30d --dry-run`,
	}
	cmd.AddCommand(NewJobSubmitCmd(f, nil), NewJobListCmd(f, nil), NewJobStatusCmd(f, nil), NewJobOutputCmd(f, nil), NewJobCancelCmd(f, nil),
		NewJobPauseCmd(f, nil), NewJobResumeCmd(f, nil), NewJobRerunCmd(f, nil), NewJobDeleteCmd(f, nil), NewJobPruneCmd(f, nil))
	return cmd
}

// JobSubmitOptions are the flags of `job submit`.
type JobSubmitOptions struct {
	remote
	jobFlags
	At      string
	Expires string
	// IdempotencyKey makes a retry safe (api.SubmitRequest).
	IdempotencyKey string
	Wait           bool
	watch          watchOptions
}

// jobFlags are the flags that say what a job is: its targets, its script,
// how it runs and how it rolls out. job submit and schedule add both take
// them (schedule add without --at and --expires, fixed times a job made
// again at each tick has no use for); request turns them into job.submit's
// param.
type jobFlags struct {
	Targets     []string
	Groups      []string
	Selectors   []string // --selector, as written: the clients any of them matches
	Command     string
	ScriptFile  string
	Interpreter string
	Name        string
	Priority    int
	Timeout     time.Duration
	Permission  string
	MaxAttempts int
	// The rollout, as written: N or P% (MaxParallel, MaxFailures), P%
	// (SuccessThreshold); empty when not given.
	MaxParallel      string
	MaxFailures      string
	Canary           int
	SuccessThreshold string
}

// addJobFlags adds the job flags to cmd, with the completion of --target
// and --group from r's server; when says when --selector chooses the
// machines ("now", "at each tick").
func addJobFlags(cmd *cobra.Command, j *jobFlags, r *remote, when string) {
	fl := cmd.Flags()
	fl.StringSliceVarP(&j.Targets, "target", "t", nil, "target client name, id or fingerprint, or a name pattern with * and ? (quote it: 'web*') (repeatable, or comma-separated)")
	fl.StringSliceVarP(&j.Groups, "group", "g", nil, "target every accepted client of this client group (repeatable, or comma-separated)")
	addSelectorFlag(cmd, &j.Selectors, "target the active clients this selector matches "+when+", e.g. 'env=prod,fact.os_id=debian' (repeatable: any of them; commas mean AND)")
	fl.StringVarP(&j.Command, "command", "c", "", "the script as a command line")
	fl.StringVar(&j.ScriptFile, "script", "", "read the script from FILE, or from standard input with -")
	fl.StringVar(&j.Interpreter, "interpreter", "/bin/sh", "program that runs the script on the client")
	fl.StringVar(&j.Name, "name", "", "job name (default: the script's first line)")
	fl.IntVar(&j.Priority, "priority", 0, "priority: higher runs first")
	fl.DurationVar(&j.Timeout, "timeout", 0, "kill the script after this long (e.g. 30s, 10m; 0 = no limit)")
	fl.StringVar(&j.Permission, "permission", "run", "ACL permission the job needs")
	fl.IntVar(&j.MaxAttempts, "max-attempts", 0, "hand the job out at most this many times (0 = no limit)")
	fl.StringVar(&j.MaxParallel, "max-parallel", "", "at most N runs out at a time, or P% of the runs (e.g. 5 or 10%; default no limit)")
	fl.StringVar(&j.MaxFailures, "max-failures", "", "halt the job once more than N runs (or P% of them) have failed; its runs not yet sent are skipped (default no budget)")
	fl.IntVar(&j.Canary, "canary", 0, "send the first N targets alone; the rest go once every one of them has succeeded")
	fl.StringVar(&j.SuccessThreshold, "success-threshold", "", "the job succeeds when at least P% of its runs succeed (default 100%)")
	cmd.MarkFlagsMutuallyExclusive("command", "script")
	_ = cmd.RegisterFlagCompletionFunc("target", completeClients(r, "active"))
	_ = cmd.RegisterFlagCompletionFunc("group", completeGroups(r, "client"))
}

// NewJobSubmitCmd builds `job submit`; runF, when not nil, is called with
// the options instead of submitting.
func NewJobSubmitCmd(f *Factory, runF func(*JobSubmitOptions) error) *cobra.Command {
	o := &JobSubmitOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "submit",
		Short: "Submit a job to one or more clients",
		Long: `Submit a script to run on the target clients.

The script comes from -c (a command line), --script FILE, or --script - (standard
input). Targets are client names, ids or fingerprints; each must be accepted.
A target that holds * or ? is a pattern on client names (* stands for any run
of characters, ? for one character): quote it, --target 'web*', so that the
shell leaves it alone; the server resolves it to the matching clients (a
client whose name is the pattern itself is taken by name).
--group adds every accepted member of a client group (nested groups too), as
the group is now: a machine added to the group later does not get this job.
--selector adds the active clients a selector matches, in Kubernetes'
label-selector syntax (env=prod, env!=prod, env in (a,b), env notin (a,b),
env, !env; commas mean AND). A key names a label ("scirectl client label");
fact.KEY names a fact the machine reports: fact.os_id=debian, fact.arch=arm64,
fact.hostname. Repeat --selector for a union: a machine any of them matches
is a target. As with --group, the machines are chosen now: one labelled
later does not get this job. A selector that does not parse is refused before
anything is sent. --target, --group and --selector add up, and a machine
named more than once gets one run.
The job is checked against the ACL now, and each run again when it is handed out.

A job for many machines need not go out to all of them at once:
  --max-parallel N|P%     at most N runs (P% of them, rounded up)
                          are out at a time; the others wait
  --max-failures N|P%     the failure budget: once more than N runs
                          (P%) have failed, the job halts and its
                          runs not yet sent are skipped; runs
                          already out finish (0: halt at the first
                          failure)
  --canary N              the first N targets go first, alone; the
                          rest start once all of them succeeded (if
                          one does not, the job halts)
  --success-threshold P%  the job succeeds when at least P% of its
                          runs do (default 100%)

The server enforces these at dispatch and keeps them in its database, so they
hold across daemons and restarts. "scirectl job pause ID" holds a rollout
where it is, "scirectl job resume ID" lets it go on, and
"scirectl job rerun ID --failed" tries again where it did not succeed.

With --wait the command follows the job until every run is final: on a
terminal a single progress line is rewritten in place ("job 7: 3/10 done,
1 failed, 0 denied, 12s"; a rollout adds the runs out and the failure
budget: "2/3 out, 1/2 failures"), in a pipe a line is printed per change
(both on standard error); then the runs are printed and the exit code tells
the outcome: 0 every run succeeded (or, with --success-threshold, enough of
them), 3 some run failed, 4 some run was denied (none failed), 5 some run
expired, was cancelled or was skipped by a halt (none failed or was denied),
6 --wait-timeout passed first. Ctrl-C stops waiting (exit code 130) but not
the job: "scirectl job status ID --watch" picks it up again.

-q prints only the job id, for id=$(scirectl job submit -q …); with --wait it
prints the id at once and nothing more, and the exit code still tells.`,
		Example: `  scirectl job submit --target web1 -c 'uptime'
  scirectl job submit --target web1,web2 --script deploy.sh --timeout 10m --priority 5
  scirectl job submit --group web -c 'systemctl reload nginx' --wait
  scirectl job submit --selector 'env=prod,fact.os_id=debian' -c 'apt-get -y upgrade' --max-parallel 10%
  scirectl job submit --selector 'tier=web' --selector 'tier=cache' -c 'systemctl reload nginx'
  scirectl job submit --target 'web*' -c 'uptime'
  scirectl job submit --group web --max-parallel 10% --max-failures 2 --canary 1 -c 'apt-get -y upgrade'
  scirectl job submit --group web --max-parallel 5 --success-threshold 90% --script patch.sh --wait
  echo 'apt-get -y upgrade' | scirectl job submit --target db1 --script - --wait
  id=$(scirectl job submit -q --target web1 -c true)
  scirectl job submit --idempotency-key "backup-$(date +%F)" --group db --script backup.sh   # safe to retry from cron
  scirectl job submit -q --target web1 -c 'make test' --wait --wait-timeout 30m || echo "failed with $?"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runJobSubmit(cmd.Context(), o)
		},
	}
	addJobFlags(cmd, &o.jobFlags, &o.remote, "now")
	fl := cmd.Flags()
	fl.StringVar(&o.At, "at", "", "do not start before this time (RFC 3339 up to 2262-04-11T23:47:16Z, or a delay such as 10m)")
	fl.StringVar(&o.Expires, "expires", "", "give up if not started by this time (RFC 3339 up to 2262-04-11T23:47:16Z, or a delay such as 1h)")
	fl.StringVar(&o.IdempotencyKey, "idempotency-key", "", "a key that makes a retry safe: the same key from you within 24 hours returns the first job and creates nothing")
	fl.BoolVar(&o.Wait, "wait", false, "wait until every run is final, showing progress; the exit code tells the outcome (see scirectl(1))")
	addWatchFlags(cmd, &o.watch, "--wait")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "the job id")
	return cmd
}

// parseWhen reads an absolute RFC 3339 time or a delay from now, within
// the times the server can store (jobxml.TimeRange).
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if d, err := time.ParseDuration(v); err == nil {
		t = now.Add(d).UTC()
	} else if t, err = time.Parse(time.RFC3339, v); err != nil {
		return time.Time{}, usageError(fmt.Sprintf("--%s %q: want an RFC 3339 time (2026-11-22T10:00:00Z) or a delay (10m)", flag, v))
	}
	if err := jobxml.CheckTime(t); err != nil {
		return time.Time{}, usageError(fmt.Sprintf("--%s %q: %v", flag, v, err))
	}
	return t.UTC(), nil
}

func runJobSubmit(ctx context.Context, o *JobSubmitOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := o.watch.validate(o.Wait); err != nil {
		return err
	}
	job, err := o.request(ios.In)
	if err != nil {
		return err
	}
	now := time.Now()
	if job.NotBefore, err = parseWhen("at", o.At, now); err != nil {
		return err
	}
	if job.ExpiresAt, err = parseWhen("expires", o.Expires, now); err != nil {
		return err
	}
	job.IdempotencyKey = o.IdempotencyKey
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var res api.SubmitResult
	if err := c.Call(ctx, api.MethodJobSubmit, &res, job); err != nil {
		return err
	}
	return followSubmitted(ctx, c, ios, &o.out, res, o.Wait, o.watch, now)
}

// request checks the job flags as the server would and makes job.submit's
// param of them, without the times (not_before, expires_at); a script
// given as --script - is read from in.
func (j *jobFlags) request(in io.Reader) (api.SubmitRequest, error) {
	if len(j.Targets) == 0 && len(j.Groups) == 0 && len(j.Selectors) == 0 {
		return api.SubmitRequest{}, usageError("no target: use --target NAME, --group NAME or --selector SEL")
	}
	if err := checkSelectors(j.Selectors); err != nil {
		return api.SubmitRequest{}, err
	}
	script := j.Command
	switch {
	case j.ScriptFile == "-":
		b, err := io.ReadAll(in)
		if err != nil {
			return api.SubmitRequest{}, fmt.Errorf("read script from standard input: %w", err)
		}
		script = string(b)
	case j.ScriptFile != "":
		b, err := os.ReadFile(j.ScriptFile)
		if err != nil {
			return api.SubmitRequest{}, fmt.Errorf("read script: %w", err)
		}
		script = string(b)
	case j.Command == "":
		return api.SubmitRequest{}, usageError("no script: use -c 'command' or --script FILE")
	}
	if strings.TrimSpace(script) == "" {
		return api.SubmitRequest{}, usageError("the script is empty")
	}
	// XML cannot carry most control characters; an encoder would quietly
	// replace them, so the script that ran would not be the one submitted.
	if err := jobxml.ValidateText("script", script); err != nil {
		return api.SubmitRequest{}, usageError(err.Error())
	}
	if j.Timeout < 0 || j.Timeout%time.Second != 0 {
		return api.SubmitRequest{}, usageError(fmt.Sprintf("--timeout %s: want a whole, non-negative number of seconds", j.Timeout))
	}
	req := api.SubmitRequest{
		Script: script, Targets: nonNil(j.Targets), Groups: nonNil(j.Groups), Selectors: j.Selectors, Interpreter: j.Interpreter, Name: j.Name,
		Priority: j.Priority, Timeout: int(j.Timeout / time.Second), Permission: j.Permission, MaxAttempts: j.MaxAttempts,
	}
	if err := j.setRollout(&req); err != nil {
		return api.SubmitRequest{}, err
	}
	return req, nil
}

// setRollout checks the rollout flags, as the server would, and puts them in
// req in the form the server reads ("10%", "2"); a flag not given stays
// empty, so the server applies its default.
func (j *jobFlags) setRollout(req *api.SubmitRequest) error {
	par, err := rollout.ParseLimit("--max-parallel", j.MaxParallel)
	if err != nil {
		return usageError(err.Error())
	}
	fail, err := rollout.ParseLimit("--max-failures", j.MaxFailures)
	if err != nil {
		return usageError(err.Error())
	}
	if j.Canary < 0 {
		return usageError(fmt.Sprintf("--canary: %d is negative", j.Canary))
	}
	if strings.TrimSpace(j.SuccessThreshold) != "" {
		p, err := rollout.ParseThreshold("--success-threshold", j.SuccessThreshold)
		if err != nil {
			return usageError(err.Error())
		}
		req.SuccessThreshold = strconv.Itoa(p) + "%"
	}
	req.MaxParallel, req.MaxFailures, req.Canary = par.String(), fail.String(), j.Canary
	return nil
}

// followSubmitted prints what job submit and job rerun print once the
// server has made the job res, as followNewJob does.
func followSubmitted(ctx context.Context, c API, ios *IOStreams, o *outputOptions, res api.SubmitResult, wait bool, w watchOptions, since time.Time) error {
	what := fmt.Sprintf("job %s submitted (%d runs)", res.ID, res.Runs)
	if res.Duplicate {
		what = fmt.Sprintf("job %s already submitted with this idempotency key (%d runs); nothing new was created", res.ID, res.Runs)
	}
	if res.RerunOf != "" {
		what = fmt.Sprintf("job %s submitted (%d runs, a rerun of job %s)", res.ID, res.Runs, res.RerunOf)
	}
	return followNewJob(ctx, c, ios, o, res.ID, what, res, wait, w, since)
}

// followNewJob prints what a command prints once the server has made the
// job id for it: the id with -q, result (the server's reply) with -o json,
// else the line what ("job 9 submitted (3 runs)"). With wait it then
// follows the job as --wait does (the elapsed time counts from since) and
// the exit code tells the outcome.
func followNewJob(ctx context.Context, c API, ios *IOStreams, o *outputOptions, id, what string, result any, wait bool, w watchOptions, since time.Time) error {
	if o.Quiet {
		fmt.Fprintln(ios.Out, id)
	}
	if !wait {
		switch {
		case o.Quiet:
		case o.json():
			return printJSON(ios.Out, result)
		default:
			fmt.Fprintln(ios.Out, what)
		}
		return nil
	}
	// Progress goes to standard error: standard output carries the id or
	// the result. With -o json it shows only on a terminal.
	var progressOut io.Writer
	switch {
	case o.Quiet:
	case o.json():
		if isTerminal(ios.ErrOut) {
			progressOut = ios.ErrOut
		}
	default:
		fmt.Fprintf(ios.ErrOut, "%s, waiting…\n", what)
		progressOut = ios.ErrOut
	}
	j, err := watchJob(ctx, c, id, progressOut, since, w)
	return finishWatch(ios, o, j, err)
}

// JobListOptions are the flags of `job list`.
type JobListOptions struct {
	remote
	Limit int
}

// NewJobListCmd builds `job list`; runF, when not nil, is called with the
// options instead of listing.
func NewJobListCmd(f *Factory, runF func(*JobListOptions) error) *cobra.Command {
	o := &JobListOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		Long: `List jobs, newest first, with how many of their runs succeeded. -o wide adds
the targets, the permission, the priority and the timeout; -q prints only the
ids.`,
		Example: `  scirectl job list
  scirectl job list --limit 10 -o wide
  scirectl job list -o json | jq -r '.[] | select(.status=="failed") | .id'
  for id in $(scirectl job list -q --limit 5); do scirectl job status "$id"; done`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runJobList(cmd.Context(), o)
		},
	}
	cmd.Flags().IntVar(&o.Limit, "limit", 100, "show at most this many jobs")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "job ids")
	return cmd
}

func runJobList(ctx context.Context, o *JobListOptions) error {
	ios := o.io()
	jobs, err := call[[]api.Job](ctx, &o.remote, api.MethodJobList, api.JobListRequest{Limit: o.Limit})
	if err != nil {
		return err
	}
	return showList(ios, &o.out, jobs, func(j api.Job) string { return j.ID }, func(jobs []api.Job) error { return printJobs(ios.Out, &o.out, jobs) })
}

func printJobs(w io.Writer, o *outputOptions, jobs []api.Job) error {
	now := clock()
	header := []string{"ID", "NAME", "STATUS", "SUCCEEDED", "SUBMITTED BY", "CREATED"}
	if o.wide() {
		header = append(header, "TARGETS", "PERMISSION", "PRIORITY", "TIMEOUT")
	}
	rows := make([][]string, len(jobs))
	for i, j := range jobs {
		total := 0
		for _, n := range j.Counts {
			total += n
		}
		rows[i] = []string{j.ID, j.Name, statusText(j), fmt.Sprintf("%d/%d", j.Counts["succeeded"], total), j.SubmittedBy, ago(j.CreatedAt, now)}
		if o.wide() {
			timeout := "-"
			if j.Timeout > 0 {
				timeout = durationText(time.Duration(j.Timeout) * time.Second)
			}
			rows[i] = append(rows[i], dash(strings.Join(j.Targets, ",")), j.Permission, strconv.Itoa(j.Priority), timeout)
		}
	}
	return printTable(w, o, header, rows)
}

// statusText is a job's status as the job list shows it: a halted or a
// paused rollout says so, "failed (halted)", "running (paused)".
func statusText(j api.Job) string {
	var marks []string
	if j.Halted {
		marks = append(marks, "halted")
	}
	if j.Paused {
		marks = append(marks, "paused")
	}
	if len(marks) == 0 {
		return j.Status
	}
	return j.Status + " (" + strings.Join(marks, ", ") + ")"
}

// JobStatusOptions are the flags and argument of `job status`.
type JobStatusOptions struct {
	remote
	JobID string
	Watch bool
	watch watchOptions
}

// NewJobStatusCmd builds `job status`; runF, when not nil, is called with
// the options instead of asking the server.
func NewJobStatusCmd(f *Factory, runF func(*JobStatusOptions) error) *cobra.Command {
	o := &JobStatusOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "status JOB-ID",
		Short: "Show a job and the state of each of its runs",
		Long: `Show a job and each of its runs: client, state, exit code, attempts, when it
finished and why (a denial or a failure names its reason). -o wide adds the
client id and when each run was sent and started.

A rollout adds lines above the runs: the runs out against --max-parallel,
the failures against the budget, the canaries and the success threshold
("rollout:   2/3 out, 1/2 failures, canary passed, 80% must succeed"); whether
the job is paused, or halted and why; and the job a rerun repeats. A canary's
state reads "succeeded (canary)".

With --watch the command follows the job until every run is final, as
"job submit --wait" does: on a terminal a single progress line is rewritten in
place, in a pipe a line is printed per change; then the runs are printed and
the exit code tells the outcome (0 all succeeded, or enough of them for the
job's success threshold, 3 some failed, 4 some denied, 5 some expired,
cancelled or skipped, 6 --wait-timeout passed). Ctrl-C stops
watching (exit code 130) and leaves the job alone. With -o json the progress
goes to standard error, and only on a terminal.`,
		Example: `  scirectl job status 42
  scirectl job status 42 -o json | jq '.runs[] | {client, state, exit_code}'
  scirectl job status 42 --watch
  scirectl job status 42 --watch --wait-timeout 10m >/dev/null; echo "outcome $?"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs(&o.remote),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.JobID = args[0]
			if runF != nil {
				return runF(o)
			}
			return runJobStatus(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "follow the job until every run is final; the exit code tells the outcome")
	addWatchFlags(cmd, &o.watch, "--watch")
	o.addFlags(cmd)
	return cmd
}

func runJobStatus(ctx context.Context, o *JobStatusOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := checkID("JOB-ID", o.JobID); err != nil {
		return err
	}
	if err := o.watch.validate(o.Watch); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if o.Watch {
		var w io.Writer = ios.Out
		if o.out.json() {
			w = nil
			if isTerminal(ios.ErrOut) {
				w = ios.ErrOut
			}
		}
		j, err := watchJob(ctx, c, o.JobID, w, time.Time{}, o.watch)
		return finishWatch(ios, &o.out, j, err)
	}
	var j api.Job
	if err := c.Call(ctx, api.MethodJobGet, &j, o.JobID); err != nil {
		return err
	}
	return printJob(ios, &o.out, j)
}

// printJob prints a job with its runs, as job status does.
func printJob(ios *IOStreams, o *outputOptions, j api.Job) error {
	if o.json() {
		if j.Runs == nil {
			j.Runs = []api.Run{}
		}
		return printJSON(ios.Out, j)
	}
	fmt.Fprintf(ios.Out, "Job %s %q: %s (submitted by %s, priority %d)\n", j.ID, j.Name, j.Status, j.SubmittedBy, j.Priority)
	for _, l := range rolloutLines(j) {
		fmt.Fprintf(ios.Out, "%-10s %s\n", l[0]+":", l[1])
	}
	fmt.Fprintln(ios.Out)
	return printRuns(ios.Out, o, j)
}

// rolloutLines are the lines job status adds for a job's rollout, each a
// label and its text: the limits and where the job stands against them,
// whether it is paused or halted (and why), and the job it reruns. A job
// without a rollout has none.
func rolloutLines(j api.Job) [][2]string {
	var limits []string
	if j.MaxParallel != nil {
		limits = append(limits, fmt.Sprintf("%d/%d out", outRuns(j), *j.MaxParallel))
	}
	if j.MaxFailures != nil {
		limits = append(limits, fmt.Sprintf("%d/%d failures", j.Counts[string(runstate.Failed)], *j.MaxFailures))
	}
	if j.Canary > 0 {
		c := "canary"
		if j.Canary > 1 {
			c = fmt.Sprintf("canary (%d runs)", j.Canary)
		}
		if j.CanaryPhase != "" {
			c += " " + j.CanaryPhase
		}
		limits = append(limits, c)
	}
	if j.SuccessThreshold > 0 && j.SuccessThreshold < 100 {
		limits = append(limits, fmt.Sprintf("%d%% must succeed", j.SuccessThreshold))
	}
	var lines [][2]string
	if len(limits) > 0 {
		lines = append(lines, [2]string{"rollout", strings.Join(limits, ", ")})
	}
	if j.Paused {
		lines = append(lines, [2]string{"paused", fmt.Sprintf("yes, no new run goes out (scirectl job resume %s)", j.ID)})
	}
	if j.Halted {
		lines = append(lines, [2]string{"halted", cmp.Or(j.HaltReason, "yes")})
	}
	if j.RerunOf != "" {
		lines = append(lines, [2]string{"rerun of", j.RerunOf})
	}
	return lines
}

// outRuns counts a job's runs that are out: sent, received or running.
func outRuns(j api.Job) int {
	n := 0
	for _, st := range runstate.All {
		if st.Out() {
			n += j.Counts[string(st)]
		}
	}
	return n
}

// printRuns prints a job's runs; -o wide adds the client id and when each
// run was sent and started.
func printRuns(w io.Writer, o *outputOptions, j api.Job) error {
	now := clock()
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return ago(*t, now)
	}
	header := []string{"RUN", "CLIENT", "STATE", "EXIT", "ATTEMPTS", "FINISHED", "REASON"}
	if o.wide() {
		header = append(header, "CLIENT ID", "SENT", "STARTED")
	}
	rows := make([][]string, len(j.Runs))
	for i, r := range j.Runs {
		exit := "-"
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		state := r.State
		if r.Canary {
			state += " (canary)"
		}
		rows[i] = []string{r.ID, r.Client, state, exit, strconv.Itoa(r.Attempts), when(r.FinishedAt), dash(r.Reason)}
		if o.wide() {
			rows[i] = append(rows[i], r.ClientID, when(r.SentAt), when(r.StartedAt))
		}
	}
	return printTable(w, o, header, rows)
}

func checkID(what, v string) error {
	if id, err := strconv.ParseInt(v, 10, 64); err != nil || id <= 0 {
		return usageError(fmt.Sprintf("%s %q: want a positive number", what, v))
	}
	return nil
}

// JobCancelOptions are the argument and flags of `job cancel`.
type JobCancelOptions struct {
	remote
	JobID string
}

// NewJobCancelCmd builds `job cancel`; runF, when not nil, is called with
// the options instead of cancelling.
func NewJobCancelCmd(f *Factory, runF func(*JobCancelOptions) error) *cobra.Command {
	o := &JobCancelOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "cancel JOB_ID",
		Short: "Cancel a job: its runs not yet final stop",
		Long: `Cancel a job. Every run not yet final becomes cancelled at once; an agent that
holds one (queued or running) learns it on its next call to the server and
kills the script's process group or drops it from its queue. Runs already
final stay as they are. One's own jobs need no permission; others' need the
job.cancel permission.`,
		Example:           "  scirectl job cancel 42",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs(&o.remote),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.JobID = args[0]
			if runF != nil {
				return runF(o)
			}
			return runJobCancel(cmd.Context(), o)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func runJobCancel(ctx context.Context, o *JobCancelOptions) error {
	ios := o.io()
	res, err := call[api.CancelResult](ctx, &o.remote, api.MethodJobCancel, o.JobID)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, res, func(res api.CancelResult) error {
		fmt.Fprintf(ios.Out, "cancelled %d runs of job %s\n", res.Cancelled, res.JobID)
		return nil
	})
}
