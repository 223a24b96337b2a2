package commands

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/runstate"
)

// JobOutputOptions are the flags and argument of `job output`.
type JobOutputOptions struct {
	remote
	JobID    string
	Client   string // only the run on this client
	Follow   bool   // print new output as it arrives, until every run is final
	Collapse bool   // each distinct output once, under the clients that wrote it
}

// NewJobOutputCmd builds `job output`; runF, when not nil, is called with
// the options instead of asking the server.
func NewJobOutputCmd(f *Factory, runF func(*JobOutputOptions) error) *cobra.Command {
	o := &JobOutputOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "output JOB-ID",
		Short: "Print the output of a job's runs, or follow it live",
		Long: `Print what each run wrote to stdout and stderr. With one run the output is
printed as is; with several, each is preceded by a header line naming the
client. A run that is still running shows what it has written so far.

The server keeps at most "serve --max-output" bytes of each run (1 MiB by
default), and keeps both ends: a run that wrote more has its first half and
its last half, with one line between them saying how much is missing,
"[... 52428800 bytes omitted ...]".

--follow (-f) prints what is there, then new output as it arrives (it asks
the server twice a second), until every run is final. With several runs
each line is prefixed by the client's name ("web2: Setting up nginx ...")
and printed once it is complete, or once its run has ended; at the end a
line on standard error sums the job up ("job 42: 40/40 done, 1 failed,
0 denied"). With one run, or with --client NAME, the output is printed as it
comes. The exit code tells the outcome, as "job submit --wait" does: 0 every
run succeeded (or enough of them, with --success-threshold), 3 some run
failed, 4 some run was denied, 5 some run expired, was cancelled or was
skipped; with --client, the outcome of that one run. Ctrl-C stops following
(exit code 130) and leaves the job alone.

With -o json, --follow prints JSON Lines: one object per line, in the shape
"job output -o json" gives for a run, whenever a run has new output (in
"output", only what is new; "size" counts all of it so far) or a new state.

--collapse prints each distinct output once, under a line naming the
clients that wrote it, the largest group first (as "dshbak -c" does for
pdsh): on a hundred machines, the few that said something else stand out.
It does not go with --follow.

  ---------------- web1,web3,web4 (3) ----------------
  Reading package lists... Done
  ---------------- web2 (1) ----------------
  E: Could not get lock /var/lib/dpkg/lock-frontend

With -o json it prints the groups: [{"clients": [...], "count": 3,
"output": "..."}, ...].`,
		Example: `  scirectl job output 42
  scirectl job output 42 --client web1 > web1.log
  scirectl job output 42 -f
  id=$(scirectl job submit -q --group web -c 'apt-get -y upgrade') && scirectl job output "$id" -f
  scirectl job output 42 -f --client web2 | tee web2.log
  scirectl job output 42 --collapse
  scirectl job output 42 -f -o json | jq -j 'select(.client == "web2") | .output'`,
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
	fl := cmd.Flags()
	fl.StringVar(&o.Client, "client", "", "only the run on this client (name or id)")
	fl.BoolVarP(&o.Follow, "follow", "f", false, "print new output as it arrives until every run is final; the exit code tells the outcome")
	fl.BoolVar(&o.Collapse, "collapse", false, "print each distinct output once, under the clients that wrote it")
	o.addFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("client", completeJobClients(&o.remote))
	return cmd
}

// completeJobClients completes --client with the clients of the job named
// by the first argument.
func completeJobClients(r *remote) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, args []string) []string {
		if len(args) == 0 {
			return nil
		}
		var j api.Job
		if c.Call(ctx, api.MethodJobGet, &j, args[0]) != nil {
			return nil
		}
		out := make([]string, len(j.Runs))
		for i, r := range j.Runs {
			out[i] = r.Client + "\t" + r.State
		}
		return out
	})
}

func runJobOutput(ctx context.Context, o *JobOutputOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if err := checkID("JOB-ID", o.JobID); err != nil {
		return err
	}
	if o.Follow && o.Collapse {
		return usageError("--collapse compares whole outputs and --follow prints them as they grow: use one or the other")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	if o.Follow {
		return followOutput(ctx, c, ios, o)
	}
	callArgs := []any{o.JobID}
	if o.Client != "" {
		callArgs = append(callArgs, o.Client)
	}
	var outs []api.Output
	if err := c.Call(ctx, api.MethodJobOutput, &outs, callArgs...); err != nil {
		return err
	}
	switch {
	case o.Collapse:
		err = printCollapsed(ios, &o.out, outs)
	case o.out.json():
		return printJSON(ios.Out, nonNil(outs))
	default:
		err = printOutputs(ios.Out, outs)
	}
	for _, r := range outs {
		if r.Truncated {
			warnTruncated(ios.ErrOut, r)
		}
	}
	return err
}

// printOutputs prints each run's output as job output does: as is for one
// run, under a header line per run for several.
func printOutputs(w io.Writer, outs []api.Output) error {
	sortOutputs(outs)
	var b bytes.Buffer
	for _, r := range outs {
		if len(outs) > 1 {
			exit := ""
			if r.ExitCode != nil {
				exit = fmt.Sprintf(", exit %d", *r.ExitCode)
			}
			fmt.Fprintf(&b, "==> %s (run %s, %s%s) <==\n", r.Client, r.RunID, r.State, exit)
		}
		b.WriteString(r.Output)
		if r.Output != "" && !strings.HasSuffix(r.Output, "\n") && len(outs) > 1 {
			b.WriteByte('\n')
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// sortOutputs orders runs by client name, then run id.
func sortOutputs(outs []api.Output) {
	slices.SortStableFunc(outs, func(a, b api.Output) int {
		return cmp.Or(strings.Compare(a.Client, b.Client), cmp.Compare(len(a.RunID), len(b.RunID)), strings.Compare(a.RunID, b.RunID))
	})
}

// warnTruncated says on standard error that the middle of a run's output
// is missing.
func warnTruncated(w io.Writer, r api.Output) {
	if r.OmittedBytes > 0 {
		fmt.Fprintf(w, "scirectl: output of run %s on %s was truncated: %d bytes omitted in the middle\n", r.RunID, r.Client, r.OmittedBytes)
		return
	}
	fmt.Fprintf(w, "scirectl: output of run %s on %s was truncated\n", r.RunID, r.Client)
}

// outputGroup is one distinct output of job output --collapse, with the
// clients whose runs wrote it.
type outputGroup struct {
	Clients []string `json:"clients"`
	Count   int      `json:"count"`
	Output  string   `json:"output"`
}

// collapseOutputs groups runs whose outputs are identical: each group's
// clients in name order, the largest group first, groups of a size in the
// order of their first client.
func collapseOutputs(outs []api.Output) []outputGroup {
	index := map[string]int{}
	var groups []outputGroup
	for _, r := range outs {
		i, ok := index[r.Output]
		if !ok {
			i = len(groups)
			index[r.Output] = i
			groups = append(groups, outputGroup{Output: r.Output})
		}
		groups[i].Clients = append(groups[i].Clients, r.Client)
	}
	for i := range groups {
		slices.Sort(groups[i].Clients)
		groups[i].Count = len(groups[i].Clients)
	}
	slices.SortStableFunc(groups, func(a, b outputGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Clients[0], b.Clients[0]))
	})
	return groups
}

// collapseRule is the dashes either side of a group's header line.
const collapseRule = "----------------"

// printCollapsed prints job output --collapse: each distinct output once,
// under a header line naming its clients; with -o json, the groups.
func printCollapsed(ios *IOStreams, o *outputOptions, outs []api.Output) error {
	groups := collapseOutputs(outs)
	if o.json() {
		return printJSON(ios.Out, nonNil(groups))
	}
	var b bytes.Buffer
	for _, g := range groups {
		fmt.Fprintf(&b, "%s %s (%d) %s\n", collapseRule, strings.Join(g.Clients, ","), g.Count, collapseRule)
		b.WriteString(g.Output)
		if g.Output != "" && !strings.HasSuffix(g.Output, "\n") {
			b.WriteByte('\n')
		}
	}
	_, err := ios.Out.Write(b.Bytes())
	return err
}

// followInterval is how often job output --follow asks for new output. An
// idle follower's request carries its offsets and gets no output back.
var followInterval = 500 * time.Millisecond

// followOutput is job output --follow: it prints the output there is, then
// asks for what follows each run's offset until every run is final, and
// ends with the exit code --wait would give. Ctrl-C (SIGINT) stops it and
// leaves the job alone.
func followOutput(ctx context.Context, c API, ios *IOStreams, o *JobOutputOptions) error {
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt)
	defer stopSignals()
	fw := newFollower(ios.Out, o.out.json())
	stopped := func(err error) error {
		fw.flush()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case sigCtx.Err() != nil:
			again := "scirectl job output " + o.JobID + " -f"
			if o.Client != "" {
				again += " --client " + o.Client
			}
			return &exitError{code: ExitInterrupted, msg: fmt.Sprintf("stopped following; job %s goes on (%s)", o.JobID, again)}
		}
		return err
	}
	// The first call is the one job output makes: each run's whole kept
	// output. The next ones carry the offsets read so far.
	args := []any{o.JobID}
	if o.Client != "" {
		args = append(args, o.Client)
	}
	tick := time.NewTicker(followInterval)
	defer tick.Stop()
	for {
		var outs []api.Output
		if err := c.Call(sigCtx, api.MethodJobOutput, &outs, args...); err != nil {
			return stopped(err)
		}
		if err := fw.add(outs); err != nil {
			return err
		}
		if fw.done() {
			break
		}
		select {
		case <-sigCtx.Done():
			return stopped(sigCtx.Err())
		case <-tick.C:
		}
		args = []any{o.JobID, o.Client, api.OutputRequest{Offsets: fw.offsets()}}
	}
	if o.Client != "" {
		// One run followed: its outcome, not the job's.
		return outcomeError(outcomeExit(api.Job{Counts: fw.counts()}))
	}
	var j api.Job
	if err := c.Call(sigCtx, api.MethodJobGet, &j, o.JobID); err != nil {
		return stopped(err)
	}
	if fw.prefix && !fw.json {
		_, counts := progressSummary(j)
		fmt.Fprintf(ios.ErrOut, "job %s: %s\n", j.ID, counts)
	}
	return outcomeError(outcomeExit(j))
}

// outcomeError is the error that makes exit code code (nil for 0).
func outcomeError(code int) error {
	if code == ExitOK {
		return nil
	}
	return &exitError{code: code}
}

// maxPartialLine bounds the unfinished last line a follower holds back
// for a run: a longer one (a progress bar redrawn with \r, say) is printed
// as a line of its own.
const maxPartialLine = 64 << 10

// follower prints the output of the runs job output --follow follows, as
// job.output hands it out.
type follower struct {
	w       io.Writer
	json    bool // JSON Lines: an object per new output or state
	started bool
	prefix  bool // several runs: each line goes out whole, prefixed by its client's name
	runs    map[string]*followedRun
}

// followedRun is what a follower knows of one run.
type followedRun struct {
	id, client string
	offset     int    // the output read so far: the next call asks for what follows
	state      string // the last state seen
	partial    []byte // with prefix: the last line, not yet ended
}

func newFollower(w io.Writer, json bool) *follower {
	return &follower{w: w, json: json, runs: map[string]*followedRun{}}
}

// add prints what one job.output call gave. The first call decides
// whether lines are prefixed: they are when it gave several runs.
func (f *follower) add(outs []api.Output) error {
	if !f.started {
		f.started, f.prefix = true, len(outs) > 1
	}
	sortOutputs(outs)
	var b bytes.Buffer
	for _, r := range outs {
		fr := f.runs[r.RunID]
		if fr == nil {
			fr = &followedRun{id: r.RunID, client: r.Client}
			f.runs[r.RunID] = fr
		}
		final := runstate.State(r.State).Final()
		switch {
		case f.json:
			if r.Output != "" || r.State != fr.state {
				line, err := json.Marshal(r)
				if err != nil {
					return err
				}
				b.Write(line)
				b.WriteByte('\n')
			}
		case f.prefix:
			fr.write(&b, r.Output, final)
		default:
			b.WriteString(r.Output)
		}
		// Size can only grow; a reply without it keeps the offset read.
		fr.offset = max(fr.offset, r.Size)
		fr.state = r.State
	}
	_, err := f.w.Write(b.Bytes())
	return err
}

// write prints the complete lines of s, after what was held back, each
// prefixed by the run's client; it holds back an unfinished last line
// unless the run is final.
func (fr *followedRun) write(b *bytes.Buffer, s string, final bool) {
	client := fr.client
	fr.partial = append(fr.partial, s...)
	for {
		i := bytes.IndexByte(fr.partial, '\n')
		if i < 0 {
			break
		}
		b.WriteString(client + ": ")
		b.Write(fr.partial[:i+1])
		fr.partial = fr.partial[i+1:]
	}
	if len(fr.partial) > 0 && (final || len(fr.partial) >= maxPartialLine) {
		b.WriteString(client + ": ")
		b.Write(fr.partial)
		b.WriteByte('\n')
		fr.partial = fr.partial[:0]
	}
	if len(fr.partial) == 0 {
		fr.partial = nil // let a long line's array go
	}
}

// flush prints the lines held back, when following stops early.
func (f *follower) flush() {
	if !f.prefix || f.json {
		return
	}
	var b bytes.Buffer
	for _, fr := range f.sorted() {
		if len(fr.partial) > 0 {
			fr.write(&b, "", true)
		}
	}
	f.w.Write(b.Bytes())
}

// sorted lists the runs by client name, then run id.
func (f *follower) sorted() []*followedRun {
	runs := make([]*followedRun, 0, len(f.runs))
	for _, fr := range f.runs {
		runs = append(runs, fr)
	}
	slices.SortFunc(runs, func(a, b *followedRun) int {
		return cmp.Or(strings.Compare(a.client, b.client), cmp.Compare(len(a.id), len(b.id)), strings.Compare(a.id, b.id))
	})
	return runs
}

// done reports whether every run is final.
func (f *follower) done() bool {
	if !f.started {
		return false
	}
	for _, fr := range f.runs {
		if !runstate.State(fr.state).Final() {
			return false
		}
	}
	return true
}

// offsets is the output read so far of each run, by run id: what the
// next job.output call asks to follow.
func (f *follower) offsets() map[string]int {
	m := make(map[string]int, len(f.runs))
	for id, fr := range f.runs {
		m[id] = fr.offset
	}
	return m
}

// counts is the number of runs in each state, as a job's counts are.
func (f *follower) counts() map[string]int {
	m := map[string]int{}
	for _, fr := range f.runs {
		m[fr.state]++
	}
	return m
}
