package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/runstate"
)

// watchOptions are the flags that go with job submit --wait and job
// status --watch.
type watchOptions struct {
	Interval time.Duration
	Timeout  time.Duration
	what     string         // --wait or --watch
	flags    *pflag.FlagSet // to tell a flag given from its default
}

func addWatchFlags(cmd *cobra.Command, o *watchOptions, what string) {
	f := cmd.Flags()
	f.DurationVar(&o.Interval, "wait-interval", time.Second, "how often "+what+" asks the server")
	f.DurationVar(&o.Timeout, "wait-timeout", 0, "with "+what+": give up waiting after this long, with exit code 6 (the job goes on; 0 = no limit)")
	o.what, o.flags = what, f
}

// validate checks the flags before anything is done; on is whether
// --wait (--watch) was given.
func (o *watchOptions) validate(on bool) error {
	if !on {
		for _, name := range []string{"wait-interval", "wait-timeout"} {
			if o.flags != nil && o.flags.Changed(name) {
				return usageError(fmt.Sprintf("--%s only applies with %s", name, o.what))
			}
		}
		return nil
	}
	if o.Interval <= 0 {
		return usageError(fmt.Sprintf("--wait-interval %s: want more than 0", o.Interval))
	}
	if o.Timeout < 0 {
		return usageError(fmt.Sprintf("--wait-timeout %s: want 0 (no limit) or more", o.Timeout))
	}
	return nil
}

// watchJob follows a job until every run is final, --wait-timeout passes
// or Ctrl-C (SIGINT) stops it; the job itself is left alone. Progress goes
// to w (nothing when w is nil): on a terminal one line rewritten in place,
// elsewhere a line each time the counts change. Elapsed time counts from
// since, or from the job's creation when since is zero. It returns the last
// state seen and, when it stopped early, an exit error (6 or 130).
func watchJob(ctx context.Context, c API, id string, w io.Writer, since time.Time, o watchOptions) (api.Job, error) {
	if err := o.validate(true); err != nil {
		return api.Job{}, err
	}
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt)
	defer stopSignals()
	callCtx, cancel := sigCtx, context.CancelFunc(func() {})
	if o.Timeout > 0 {
		callCtx, cancel = context.WithTimeout(sigCtx, o.Timeout)
	}
	defer cancel()
	p := newProgressLine(w)
	defer p.end()
	stopped := func(j api.Job, err error) (api.Job, error) {
		switch {
		case ctx.Err() != nil:
			return j, ctx.Err()
		case sigCtx.Err() != nil:
			p.end()
			return j, &exitError{code: ExitInterrupted, msg: fmt.Sprintf("stopped watching; job %s goes on (scirectl job status %s --watch)", id, id)}
		case callCtx.Err() != nil:
			p.end()
			return j, &exitError{code: ExitWaitTimeout, msg: fmt.Sprintf("--wait-timeout %s passed; job %s goes on (scirectl job status %s --watch)", o.Timeout, id, id)}
		}
		return j, err
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	var last api.Job
	for {
		var j api.Job
		if err := c.Call(callCtx, api.MethodJobGet, &j, id); err != nil {
			return stopped(last, err)
		}
		last = j
		if since.IsZero() {
			since = j.CreatedAt
		}
		if p.update(j, clock().Sub(since)) {
			return j, nil
		}
		select {
		case <-callCtx.Done():
			return stopped(last, callCtx.Err())
		case <-tick.C:
		}
	}
}

// finishWatch prints what watchJob saw and turns the outcome into the exit
// code. A watch stopped early prints the state so far, then its exit error.
func finishWatch(ios *IOStreams, o *outputOptions, j api.Job, err error) error {
	var ee *exitError
	if err != nil && (!errors.As(err, &ee) || (ee.code != ExitWaitTimeout && ee.code != ExitInterrupted) || j.ID == "") {
		return err
	}
	if !o.Quiet {
		if perr := printJob(ios, o, j); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	if code := outcomeExit(j); code != ExitOK {
		return &exitError{code: code}
	}
	return nil
}

// progressSummary counts a job's runs: whether all are final, and
// "3/10 done, 1 failed, 0 denied" (expired, cancelled and skipped runs are
// named when there are any). A rollout adds the runs out against its
// window ("2/3 out"), counts the failures against its budget ("1/2
// failures") and says when the job is paused or halted.
func progressSummary(j api.Job) (bool, string) {
	total, final := 0, 0
	for _, st := range runstate.All {
		n := j.Counts[string(st)]
		total += n
		if st.Final() {
			final += n
		}
	}
	parts := []string{fmt.Sprintf("%d/%d done", final, total)}
	if j.MaxParallel != nil {
		parts = append(parts, fmt.Sprintf("%d/%d out", outRuns(j), *j.MaxParallel))
	}
	failed := j.Counts[string(runstate.Failed)]
	if j.MaxFailures != nil {
		parts = append(parts, fmt.Sprintf("%d/%d failures", failed, *j.MaxFailures))
	} else {
		parts = append(parts, fmt.Sprintf("%d failed", failed))
	}
	parts = append(parts, fmt.Sprintf("%d denied", j.Counts[string(runstate.Denied)]))
	for _, st := range []runstate.State{runstate.Expired, runstate.Cancelled, runstate.Skipped} {
		if n := j.Counts[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	switch {
	case j.Halted && j.HaltReason != "":
		parts = append(parts, "halted ("+j.HaltReason+")")
	case j.Halted:
		parts = append(parts, "halted")
	case j.Paused:
		parts = append(parts, "paused")
	}
	return final == total, strings.Join(parts, ", ")
}

// progressLine shows a job's progress: on a terminal one line rewritten in
// place with \r, elsewhere one line per change.
type progressLine struct {
	w     io.Writer
	tty   bool
	width int
	last  string // the counts last printed (not a terminal)
	shown bool   // a live line is on the terminal
}

func newProgressLine(w io.Writer) *progressLine {
	p := &progressLine{w: w}
	if w != nil {
		p.width = terminalWidth(w)
		p.tty = p.width > 0 || isTerminal(w)
	}
	return p
}

// update shows j and reports whether every run is final.
func (p *progressLine) update(j api.Job, elapsed time.Duration) bool {
	done, counts := progressSummary(j)
	if p.w == nil {
		return done
	}
	line := fmt.Sprintf("job %s: %s, %s", j.ID, counts, elapsed.Round(time.Second))
	if p.tty {
		if p.width > 1 {
			line = truncate(line, p.width-1)
		}
		// \r back to the start, the line, then erase what a longer line
		// left behind.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.shown = true
		return done
	}
	if counts != p.last {
		fmt.Fprintln(p.w, line)
		p.last = counts
	}
	return done
}

// end leaves the terminal on a fresh line.
func (p *progressLine) end() {
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}
