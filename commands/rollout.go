package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// JobPauseOptions are the argument and flags of `job pause` and `job
// resume`.
type JobPauseOptions struct {
	remote
	JobID string
	Pause bool // pause; false: resume
}

// NewJobPauseCmd builds `job pause`; runF, when not nil, is called with
// the options instead of pausing.
func NewJobPauseCmd(f *Factory, runF func(*JobPauseOptions) error) *cobra.Command {
	return newJobPauseCmd(f, runF, true)
}

// NewJobResumeCmd builds `job resume`; runF, when not nil, is called with
// the options instead of resuming.
func NewJobResumeCmd(f *Factory, runF func(*JobPauseOptions) error) *cobra.Command {
	return newJobPauseCmd(f, runF, false)
}

func newJobPauseCmd(f *Factory, runF func(*JobPauseOptions) error, pause bool) *cobra.Command {
	o := &JobPauseOptions{remote: newRemote(f), Pause: pause}
	cmd := &cobra.Command{
		Use:   "pause JOB-ID",
		Short: "Hold a job: no new run of it goes out",
		Long: `Pause a job: the server hands out no new run of it until it is resumed. Runs
already out (sent, received or running) finish as usual; the others stay
pending, and a paused job can still be cancelled. Pausing a job that is
already paused changes nothing and says so.

Use it to stop a rollout that looks wrong while you find out why, then
"scirectl job resume" to let it go on, or "scirectl job cancel" to end it.`,
		Example: `  scirectl job pause 42
  scirectl job pause 42 && scirectl job status 42
  scirectl job pause 42 -o json | jq .changed`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs(&o.remote),
		RunE:              runE(o, func(args []string) { o.JobID = args[0] }, runF, runJobPause),
	}
	if !pause {
		cmd.Use = "resume JOB-ID"
		cmd.Short = "Let a paused job go on"
		cmd.Long = `Resume a paused job: the server hands out its pending runs again, within
the job's --max-parallel window and behind its canaries. Resuming a job that
is not paused changes nothing and says so. A halted job (its failure budget
spent, or a canary failed) stays halted: its skipped runs do not come back;
"scirectl job rerun ID --failed" tries them again as a new job.`
		cmd.Example = `  scirectl job resume 42
  scirectl job resume 42 && scirectl job status 42 --watch`
	}
	o.addFlags(cmd)
	return cmd
}

func runJobPause(ctx context.Context, o *JobPauseOptions) error {
	ios := o.io()
	if err := checkID("JOB-ID", o.JobID); err != nil {
		return err
	}
	method := api.MethodJobPause
	if !o.Pause {
		method = api.MethodJobResume
	}
	res, err := call[api.PauseResult](ctx, &o.remote, method, o.JobID)
	if err != nil {
		return err
	}
	return show(ios, &o.remote, res, func(res api.PauseResult) error {
		_, err := fmt.Fprintln(ios.Out, pausedLine("job", res.JobID, res.Changed, res.Paused))
		return err
	})
}

// pausedLine says what a pause or a resume of what did: "job 42 paused",
// "schedule nightly was already paused".
func pausedLine(what, name string, changed, paused bool) string {
	switch {
	case changed && paused:
		return what + " " + name + " paused"
	case changed:
		return what + " " + name + " resumed"
	case paused:
		return what + " " + name + " was already paused"
	}
	return what + " " + name + " was not paused"
}

// JobRerunOptions are the argument and flags of `job rerun`.
type JobRerunOptions struct {
	remote
	JobID  string
	Failed bool
	Wait   bool
	watch  watchOptions
}

// NewJobRerunCmd builds `job rerun`; runF, when not nil, is called with
// the options instead of submitting the rerun.
func NewJobRerunCmd(f *Factory, runF func(*JobRerunOptions) error) *cobra.Command {
	o := &JobRerunOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "rerun JOB-ID",
		Short: "Submit a job again, to all its targets or only where it did not succeed",
		Long: `Submit a job again as a new job, the same script with the same options, for
every target of the old job, or with --failed only for the targets whose runs
did not succeed (failed, denied, expired, cancelled, or skipped when the job
halted). The new job names the old one: "rerun of" in job status, rerun_of
in JSON. The old job is left as it is.

It prints the new job's id as "job submit" does, and takes the same -q, -o
json and --wait (with --wait-interval and --wait-timeout): with --wait it
follows the new job to its end and the exit code tells the outcome (see
"scirectl job submit --help").`,
		Example: `  scirectl job rerun 42
  scirectl job rerun 42 --failed --wait
  id=$(scirectl job rerun -q 42 --failed)`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeJobs(&o.remote),
		RunE:              runE(o, func(args []string) { o.JobID = args[0] }, runF, runJobRerun),
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Failed, "failed", false, "only the targets whose runs did not succeed")
	fl.BoolVar(&o.Wait, "wait", false, "wait until every run of the new job is final, showing progress; the exit code tells the outcome (see scirectl(1))")
	addWatchFlags(cmd, &o.watch, "--wait")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "the new job's id")
	return cmd
}

func runJobRerun(ctx context.Context, o *JobRerunOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := checkID("JOB-ID", o.JobID); err != nil {
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
	var res api.SubmitResult
	if err := c.Call(ctx, api.MethodJobRerun, &res, o.JobID, api.RerunRequest{Failed: o.Failed}); err != nil {
		return err
	}
	return followSubmitted(ctx, c, ios, &o.out, res, o.Wait, o.watch, now)
}
