package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
)

// NewJobCmd builds `scirectl job`.
func NewJobCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit jobs and follow their runs",
		Long:  "A job is a script for one or more clients; each (job, client) pair is a run with its own state, exit code and output.",
		Example: `  scirectl job submit --target web1 -c 'df -h'
  scirectl job list
  scirectl job status 42
  scirectl job output 42`,
	}
	cmd.AddCommand(NewJobSubmitCmd(f, nil), NewJobListCmd(f, nil), NewJobStatusCmd(f, nil), NewJobOutputCmd(f, nil), NewJobCancelCmd(f, nil))
	return cmd
}

// JobSubmitOptions are the flags of `job submit`.
type JobSubmitOptions struct {
	remote
	Targets     []string
	Groups      []string
	Command     string
	ScriptFile  string
	Interpreter string
	Name        string
	Priority    int
	Timeout     time.Duration
	Permission  string
	MaxAttempts int
	At          string
	Expires     string
	Wait        bool
	watch       watchOptions
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
--group adds every accepted member of a client group (nested groups too), as
the group is now: a machine added to the group later does not get this job.
The job is checked against the ACL now, and each run again when it is handed out.

With --wait the command follows the job until every run is final: on a
terminal a single progress line is rewritten in place ("job 7: 3/10 done,
1 failed, 0 denied, 12s"), in a pipe a line is printed per change (both on
standard error); then the runs are printed and the exit code tells the
outcome: 0 every run succeeded, 3 some run failed, 4 some run was denied
(none failed), 5 some run expired or was cancelled (none failed or was
denied), 6 --wait-timeout passed first. Ctrl-C stops waiting (exit code 130)
but not the job: "scirectl job status ID --watch" picks it up again.

-q prints only the job id, for id=$(scirectl job submit -q …); with --wait it
prints the id at once and nothing more, and the exit code still tells.`,
		Example: `  scirectl job submit --target web1 -c 'uptime'
  scirectl job submit --target web1,web2 --script deploy.sh --timeout 10m --priority 5
  scirectl job submit --group web -c 'systemctl reload nginx' --wait
  echo 'apt-get -y upgrade' | scirectl job submit --target db1 --script - --wait
  id=$(scirectl job submit -q --target web1 -c true)
  scirectl job submit -q --target web1 -c 'make test' --wait --wait-timeout 30m || echo "failed with $?"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(o)
			}
			return runJobSubmit(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&o.Targets, "target", "t", nil, "target client name, id or fingerprint (repeatable, or comma-separated)")
	fl.StringSliceVarP(&o.Groups, "group", "g", nil, "target every accepted client of this client group (repeatable, or comma-separated)")
	fl.StringVarP(&o.Command, "command", "c", "", "the script as a command line")
	fl.StringVar(&o.ScriptFile, "script", "", "read the script from FILE, or from standard input with -")
	fl.StringVar(&o.Interpreter, "interpreter", "/bin/sh", "program that runs the script on the client")
	fl.StringVar(&o.Name, "name", "", "job name (default: the script's first line)")
	fl.IntVar(&o.Priority, "priority", 0, "priority: higher runs first")
	fl.DurationVar(&o.Timeout, "timeout", 0, "kill the script after this long (e.g. 30s, 10m; 0 = no limit)")
	fl.StringVar(&o.Permission, "permission", "run", "ACL permission the job needs")
	fl.IntVar(&o.MaxAttempts, "max-attempts", 0, "hand the job out at most this many times (0 = no limit)")
	fl.StringVar(&o.At, "at", "", "do not start before this time (RFC 3339 up to 2262-04-11T23:47:16Z, or a delay such as 10m)")
	fl.StringVar(&o.Expires, "expires", "", "give up if not started by this time (RFC 3339 up to 2262-04-11T23:47:16Z, or a delay such as 1h)")
	fl.BoolVar(&o.Wait, "wait", false, "wait until every run is final, showing progress; the exit code tells the outcome (see scirectl(1))")
	addWatchFlags(cmd, &o.watch, "--wait")
	cmd.MarkFlagsMutuallyExclusive("command", "script")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "the job id")
	_ = cmd.RegisterFlagCompletionFunc("target", completeClients(&o.remote, "active"))
	_ = cmd.RegisterFlagCompletionFunc("group", completeGroups(&o.remote, "client"))
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
	if len(o.Targets) == 0 && len(o.Groups) == 0 {
		return usageError("no target: use --target NAME or --group NAME")
	}
	script := o.Command
	switch {
	case o.ScriptFile == "-":
		b, err := io.ReadAll(ios.In)
		if err != nil {
			return fmt.Errorf("read script from standard input: %w", err)
		}
		script = string(b)
	case o.ScriptFile != "":
		b, err := os.ReadFile(o.ScriptFile)
		if err != nil {
			return fmt.Errorf("read script: %w", err)
		}
		script = string(b)
	case o.Command == "":
		return usageError("no script: use -c 'command' or --script FILE")
	}
	if strings.TrimSpace(script) == "" {
		return usageError("the script is empty")
	}
	// XML cannot carry most control characters; an encoder would quietly
	// replace them, so the script that ran would not be the one submitted.
	if err := jobxml.ValidateText("script", script); err != nil {
		return usageError(err.Error())
	}
	if o.Timeout < 0 || o.Timeout%time.Second != 0 {
		return usageError(fmt.Sprintf("--timeout %s: want a whole, non-negative number of seconds", o.Timeout))
	}
	now := time.Now()
	at, err := parseWhen("at", o.At, now)
	if err != nil {
		return err
	}
	exp, err := parseWhen("expires", o.Expires, now)
	if err != nil {
		return err
	}
	job := api.SubmitRequest{
		Script: script, Targets: nonNil(o.Targets), Groups: nonNil(o.Groups), Interpreter: o.Interpreter, Name: o.Name,
		Priority: o.Priority, Timeout: int(o.Timeout / time.Second), Permission: o.Permission, MaxAttempts: o.MaxAttempts,
		NotBefore: at, ExpiresAt: exp,
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	var res api.SubmitResult
	if err := c.Call(ctx, api.MethodJobSubmit, &res, job); err != nil {
		return err
	}
	if o.out.Quiet {
		fmt.Fprintln(ios.Out, res.ID)
	}
	if !o.Wait {
		switch {
		case o.out.Quiet:
		case o.out.json():
			return printJSON(ios.Out, res)
		default:
			fmt.Fprintf(ios.Out, "job %s submitted (%d runs)\n", res.ID, res.Runs)
		}
		return nil
	}
	// Progress goes to standard error: standard output carries the id or
	// the result. With -o json it shows only on a terminal.
	var progressOut io.Writer
	switch {
	case o.out.Quiet:
	case o.out.json():
		if isTerminal(ios.ErrOut) {
			progressOut = ios.ErrOut
		}
	default:
		fmt.Fprintf(ios.ErrOut, "job %s submitted (%d runs), waiting…\n", res.ID, res.Runs)
		progressOut = ios.ErrOut
	}
	j, err := watchJob(ctx, c, res.ID, progressOut, now, o.watch)
	return finishWatch(ios, &o.out, j, err)
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
		rows[i] = []string{j.ID, j.Name, j.Status, fmt.Sprintf("%d/%d", j.Counts["succeeded"], total), j.SubmittedBy, ago(j.CreatedAt, now)}
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

With --watch the command follows the job until every run is final, as
"job submit --wait" does: on a terminal a single progress line is rewritten in
place, in a pipe a line is printed per change; then the runs are printed and
the exit code tells the outcome (0 all succeeded, 3 some failed, 4 some
denied, 5 some expired or cancelled, 6 --wait-timeout passed). Ctrl-C stops
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
	fmt.Fprintf(ios.Out, "Job %s %q: %s (submitted by %s, priority %d)\n\n", j.ID, j.Name, j.Status, j.SubmittedBy, j.Priority)
	return printRuns(ios.Out, o, j)
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
		rows[i] = []string{r.ID, r.Client, r.State, exit, strconv.Itoa(r.Attempts), when(r.FinishedAt), dash(r.Reason)}
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

// JobOutputOptions are the flags and argument of `job output`.
type JobOutputOptions struct {
	remote
	JobID  string
	Client string // only the run on this client
}

// NewJobOutputCmd builds `job output`; runF, when not nil, is called with
// the options instead of asking the server.
func NewJobOutputCmd(f *Factory, runF func(*JobOutputOptions) error) *cobra.Command {
	o := &JobOutputOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "output JOB-ID",
		Short: "Print the output of a job's runs",
		Long: `Print what each run wrote to stdout and stderr. With one run the output is
printed as is; with several, each is preceded by a header line naming the client.`,
		Example:           "  scirectl job output 42\n  scirectl job output 42 --client web1 > web1.log",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs(&o.remote),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.JobID = args[0]
			if runF != nil {
				return runF(o)
			}
			return runJobOutput(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Client, "client", "", "only the run on this client (name or id)")
	o.addFlags(cmd)
	return cmd
}

func runJobOutput(ctx context.Context, o *JobOutputOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := checkID("JOB-ID", o.JobID); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	callArgs := []any{o.JobID}
	if o.Client != "" {
		callArgs = append(callArgs, o.Client)
	}
	var outs []api.Output
	if err := c.Call(ctx, api.MethodJobOutput, &outs, callArgs...); err != nil {
		return err
	}
	if o.out.json() {
		if outs == nil {
			outs = []api.Output{}
		}
		return printJSON(ios.Out, outs)
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i].Client < outs[j].Client })
	for _, r := range outs {
		if len(outs) > 1 {
			exit := ""
			if r.ExitCode != nil {
				exit = fmt.Sprintf(", exit %d", *r.ExitCode)
			}
			fmt.Fprintf(ios.Out, "==> %s (run %s, %s%s) <==\n", r.Client, r.RunID, r.State, exit)
		}
		io.WriteString(ios.Out, r.Output)
		if r.Output != "" && !strings.HasSuffix(r.Output, "\n") && len(outs) > 1 {
			fmt.Fprintln(ios.Out)
		}
		if r.Truncated {
			fmt.Fprintf(ios.ErrOut, "scirectl: output of run %s on %s was truncated\n", r.RunID, r.Client)
		}
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
