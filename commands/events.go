package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// EventsOptions are the flags of `scirectl events`.
type EventsOptions struct {
	remote
	Follow bool
	Since  string
	Types  []string
	Tail   int
}

// NewEventsCmd builds `scirectl events`; runF, when not nil, is called
// with the options instead of reading.
func NewEventsCmd(f *Factory, runF func(*EventsOptions) error) *cobra.Command {
	o := &EventsOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Read and follow what happens: jobs, runs, machines, schedules",
		Long: `Print the events: every change of a job, a run, a client and every schedule
tick, in the order they happened, each with an increasing id (docs/events.md
lists the types and their fields).

Without --since, the last --tail events (20); with --since ID, every event
after ID. --follow then goes on printing new events as they come (the server
holds the request until there is one, so a follower waiting costs next to
nothing) until Ctrl-C; without --since it starts at the newest event. A
script that keeps the last id it saw and passes it to --since next time
misses nothing and sees nothing twice.

--type keeps the events whose type matches a glob (repeatable, or
comma-separated): run.*, job.finished, client.*. -o json prints one JSON
object per line, the same object a webhook receives.`,
		Example: `  scirectl events
  scirectl events --follow
  scirectl events -f --type job.finished --type 'run.failed' -o json | jq -c 'select(.exit_code != 0)'
  scirectl events --since 1200 --type 'client.*'
  last=$(scirectl events --tail 1 -o json | jq -r .id)`,
		Args: cobra.NoArgs,
		RunE: runE(o, nil, runF, runEvents),
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.Follow, "follow", "f", false, "go on printing new events as they come, until Ctrl-C")
	fl.StringVar(&o.Since, "since", "", "only events after this id")
	fl.StringSliceVar(&o.Types, "type", nil, "only events whose type matches this glob (run.*, job.finished); repeatable")
	fl.IntVar(&o.Tail, "tail", 20, "without --since: the last N events first (0: none)")
	o.addFlags(cmd)
	return cmd
}

// eventsWait is how long one read of a follower waits for an event.
var eventsWait = 25

func runEvents(ctx context.Context, o *EventsOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	if o.Since != "" {
		if err := checkID("--since", o.Since); err != nil && o.Since != "0" {
			return err
		}
	}
	if o.Tail < 0 || o.Tail > 1000 {
		return usageError("--tail: want 0..1000")
	}
	for _, g := range o.Types {
		if g == "" || strings.ToLower(g) != g {
			return usageError(fmt.Sprintf("--type %q: event types are lower case, such as run.failed or 'run.*'", g))
		}
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	print := func(evs []api.Event) error {
		for _, e := range evs {
			if err := printEvent(ios, o.out.json(), e); err != nil {
				return err
			}
		}
		return nil
	}
	req := api.EventsRequest{Since: o.Since, Types: o.Types, Limit: 1000}
	if o.Since == "" {
		// The last --tail, and where to go on from.
		var res api.EventsResult
		if err := c.Call(ctx, api.MethodEventsList, &res, api.EventsRequest{Types: o.Types, Tail: max(o.Tail, 1)}); err != nil {
			return err
		}
		if o.Tail > 0 {
			if err := print(res.Events); err != nil {
				return err
			}
		}
		req.Since = res.Last
	}
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt)
	defer stopSignals()
	for {
		if o.Follow {
			req.Wait = eventsWait
		}
		var res api.EventsResult
		err := c.Call(sigCtx, api.MethodEventsList, &res, req)
		switch {
		case sigCtx.Err() != nil && ctx.Err() == nil:
			return &exitError{code: ExitInterrupted, msg: "stopped following; go on with: scirectl events -f --since " + req.Since}
		case err != nil:
			return err
		}
		if err := print(res.Events); err != nil {
			return err
		}
		caughtUp := res.Last == req.Since || len(res.Events) < req.Limit
		req.Since = res.Last
		if caughtUp && !o.Follow {
			return nil
		}
	}
}

// printEvent prints one event: a JSON object on a line, or a line of
// text: id, time, type, then what it is about.
func printEvent(ios *IOStreams, asJSON bool, e api.Event) error {
	if asJSON {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(ios.Out, "%s\n", line)
		return err
	}
	parts := []string{e.ID, e.Time.Local().Format("2006-01-02 15:04:05.000"), e.Type}
	for _, kv := range [][2]string{{"job", e.JobID}, {"run", e.RunID}, {"client", e.Client}, {"schedule", e.Schedule}, {"outcome", e.Outcome}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if e.Client == "" && e.ClientID != "" {
		parts = append(parts, "client_id="+e.ClientID)
	}
	if e.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit=%d", *e.ExitCode))
	}
	if e.Reason != "" {
		parts = append(parts, fmt.Sprintf("reason=%q", e.Reason))
	}
	_, err := fmt.Fprintln(ios.Out, strings.Join(parts, "  "))
	return err
}
