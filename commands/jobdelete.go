package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/runstate"
)

// JobDeleteOptions are the arguments and flags of `job delete`.
type JobDeleteOptions struct {
	remote
	JobIDs []string
}

// NewJobDeleteCmd builds `job delete`; runF, when not nil, is called with
// the options instead of deleting.
func NewJobDeleteCmd(f *Factory, runF func(*JobDeleteOptions) error) *cobra.Command {
	o := &JobDeleteOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "delete JOB-ID...",
		Short: "Delete finished jobs with their runs and output",
		Long: `Delete jobs for good, with their runs and their output, whatever their age.
Every run of each job must be final (succeeded, failed, denied, expired,
cancelled or skipped): cancel a job that still runs first. The ids are
deleted all together or not at all: an id that is not a job (exit code 14)
or a job with a run not final (exit code 16) deletes nothing, and the
message names it. At most 1000 ids per call.

One's own jobs need no permission; other users' need the job.delete
permission. Every call is recorded in the audit trail.

The server deletes old jobs by itself (serve --retain, 90 days by default);
"scirectl job prune" does the same by hand.`,
		Example: `  scirectl job delete 42
  scirectl job delete 40 41 42 -o json
  scirectl job cancel 43 && scirectl job delete 43`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeFinalJobs(&o.remote),
		RunE:              runE(o, func(args []string) { o.JobIDs = args }, runF, runJobDelete),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "the ids of the jobs deleted")
	return cmd
}

func runJobDelete(ctx context.Context, o *JobDeleteOptions) error {
	ios := o.io()
	for _, id := range o.JobIDs {
		if err := checkID("JOB-ID", id); err != nil {
			return err
		}
	}
	if len(o.JobIDs) > api.MaxDeleteJobs {
		return usageError(fmt.Sprintf("%d job ids: at most %d per call", len(o.JobIDs), api.MaxDeleteJobs))
	}
	res, err := call[api.DeleteResult](ctx, &o.remote, api.MethodJobDelete, o.JobIDs)
	if err != nil {
		return err
	}
	if o.out.Quiet {
		return printIDs(ios.Out, res.JobIDs)
	}
	return show(ios, &o.remote, res, func(res api.DeleteResult) error {
		fmt.Fprintf(ios.Out, "deleted %s (%s): %s\n", count(res.Jobs, "job", "jobs"), count(res.Runs, "run", "runs"), strings.Join(res.JobIDs, " "))
		return nil
	})
}

// count is "1 job", "3 jobs".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// JobPruneOptions are the flags of `job prune`.
type JobPruneOptions struct {
	remote
	OlderThan string
	DryRun    bool
}

// NewJobPruneCmd builds `job prune`; runF, when not nil, is called with
// the options instead of pruning.
func NewJobPruneCmd(f *Factory, runF func(*JobPruneOptions) error) *cobra.Command {
	o := &JobPruneOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "prune --older-than DURATION",
		Short: "Delete the finished jobs older than a duration",
		Long: `Delete every job whose runs are all final and whose last run ended longer
ago than --older-than, with its runs and output, whoever submitted it: what
the server's cleaner does by itself with serve --retain (90 days by
default), now and with another age. Jobs with a run not final are kept
whatever their age. --dry-run counts what would go and deletes nothing.

DURATION is a number and a unit: d (days of 24 hours), h, m or s, or a
combination: 30d, 12h, 1d12h.

It needs the job.delete permission and is recorded in the audit trail. It
passes the server's gate as a modifier: agents' calls and other operations
wait until it is done. The server deletes in batches of 500 jobs, so a
large prune is seen in "scirectl ops list" and can be stopped with "scirectl
ops cancel" (what was deleted stays deleted). For a first clean of a very
large history, prefer the cleaner (serve --retain), which lets agents in
between its batches.`,
		Example: `  # how many finished jobs are older than 30 days?
  scirectl job prune --older-than 30d --dry-run

  # delete them
  scirectl job prune --older-than 30d

  # everything finished more than 12 hours ago, as JSON
  scirectl job prune --older-than 12h -o json`,
		Args: cobra.NoArgs,
		RunE: runE(o, nil, runF, runJobPrune),
	}
	cmd.Flags().StringVar(&o.OlderThan, "older-than", "", "delete the final jobs whose last run ended longer ago than this: 30d, 12h, 1d12h (required)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "count what would be deleted; delete nothing")
	_ = cmd.MarkFlagRequired("older-than")
	o.addFlags(cmd)
	return cmd
}

func runJobPrune(ctx context.Context, o *JobPruneOptions) error {
	ios := o.io()
	if _, err := api.ParseAge(o.OlderThan); err != nil {
		return usageError("--older-than " + err.Error())
	}
	res, err := call[api.PruneResult](ctx, &o.remote, api.MethodJobPrune, api.PruneRequest{OlderThan: o.OlderThan, DryRun: o.DryRun})
	if err != nil {
		return err
	}
	return show(ios, &o.remote, res, func(res api.PruneResult) error {
		verb := "deleted"
		if res.DryRun {
			verb = "would delete"
		}
		fmt.Fprintf(ios.Out, "%s %s (%s) finished before %s (older than %s)\n", verb, count(res.Jobs, "job", "jobs"),
			count(res.Runs, "run", "runs"), res.Before.UTC().Format(time.RFC3339), res.OlderThan)
		return nil
	})
}

// completeFinalJobs completes the ids of the newest jobs whose runs are
// all final (the ones job delete takes), each one once.
func completeFinalJobs(r *remote) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var jobs []api.Job
		if c.Call(ctx, api.MethodJobList, &jobs, api.JobListRequest{Limit: 50}) != nil {
			return nil
		}
		var out []string
		for _, j := range jobs {
			final := true
			for st, n := range j.Counts {
				final = final && (n == 0 || runstate.State(st).Final())
			}
			if final {
				out = append(out, fmt.Sprintf("%s\t%s (%s)", j.ID, j.Name, j.Status))
			}
		}
		return out
	})
}
