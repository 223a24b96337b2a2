package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/webhook"
)

// NewWebhookCmd builds `scirectl webhook`.
func NewWebhookCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Have the server POST its events to a URL",
		Long: `A webhook is a URL the server POSTs events to: every job, run and client
change and every schedule tick whose type matches the webhook's globs
(--events; all of them by default), from the moment it is added, one POST
per event, as the event's JSON (what "scirectl events -o json" prints).

Each POST carries the headers X-Scire-Event (the type, run.failed),
X-Scire-Delivery (the event's id) and, when the webhook has a secret,
X-Scire-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>.
A receiver answers 2xx to take an event. Any other answer, a redirect, no
answer within 10 seconds: the event is tried again, after 1s, 2s, 4s … at
most an hour apart, for 24 hours from its first failure; then it is
recorded as failed and the next events go. The events of one webhook go
in their order, one at a time, whatever the number of servers; a server
that dies mid-delivery leaves the event to another, which sends it again:
an event may come twice (drop a repeat by X-Scire-Delivery), never not at
all while it is retried.

Every webhook command needs the webhook.write permission: a webhook's URL
often holds a token, and a webhook gets every event. docs/events.md lists
the events, their JSON, and how to check a signature.`,
		Example: `  scirectl webhook add https://hooks.example.com/scire --events 'run.failed,job.finished' --secret-file ~/.config/scire/hook.secret
  scirectl webhook list
  scirectl webhook test 1
  scirectl webhook deliveries 1
  scirectl webhook remove 1`,
	}
	cmd.AddCommand(NewWebhookAddCmd(f, nil), NewWebhookListCmd(f, nil), NewWebhookRemoveCmd(f, nil), NewWebhookTestCmd(f, nil),
		NewWebhookDeliveriesCmd(f, nil))
	return cmd
}

// WebhookAddOptions are the argument and flags of `webhook add`.
type WebhookAddOptions struct {
	remote
	URL        string
	Events     []string
	SecretFile string
}

// NewWebhookAddCmd builds `webhook add`; runF, when not nil, is called
// with the options instead of adding.
func NewWebhookAddCmd(f *Factory, runF func(*WebhookAddOptions) error) *cobra.Command {
	o := &WebhookAddOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "add URL",
		Short: "Add a webhook: the events from now on are POSTed to URL",
		Long: `Add a webhook: the events that come from now on, those --events matches,
are POSTed to URL one at a time, in order (see "scirectl webhook --help").

URL is https://. http:// is for a receiver on the server's own host (a
loopback address: 127.0.0.1, ::1, localhost), unless the server's
configuration allows it anywhere (webhooks: {allow_http: true} in
server.yaml). A user name or password in the URL is refused: give a
secret, or put a token in the path.

--events takes globs on the event type, separated by commas or given
several times: run.failed, 'run.*', 'job.fin*'; * and ? are wildcards. The
types are in docs/events.md. Without --events every event is sent.

--secret-file names a file holding the secret that signs each body (its
last newline is not part of it; - reads standard input). The file must be
private to you (chmod 600): the secret is read here, sent once, kept by
the server, and never shown again, not even in the audit trail.`,
		Example: `  scirectl webhook add https://hooks.example.com/scire
  scirectl webhook add https://ci.example.com/hooks/scire --events run.failed,job.halted --secret-file ~/.config/scire/hook.secret
  openssl rand -hex 32 > hook.secret && chmod 600 hook.secret && scirectl webhook add https://x.example/h --secret-file hook.secret
  scirectl webhook add http://127.0.0.1:8080/events --events 'client.*'
  id=$(scirectl webhook add https://hooks.example.com/scire -o json | jq -r .id) && scirectl webhook test "$id"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              runE(o, func(args []string) { o.URL = args[0] }, runF, runWebhookAdd),
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Events, "events", nil, "send only the events of these types: globs such as run.failed or 'job.*', comma-separated (default every event)")
	fl.StringVar(&o.SecretFile, "secret-file", "", "a file (mode 600) holding the secret that signs each body; - reads standard input")
	o.addFlags(cmd)
	_ = cmd.RegisterFlagCompletionFunc("events", completeEventTypes)
	_ = cmd.RegisterFlagCompletionFunc("secret-file", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveDefault
	})
	return cmd
}

// eventTypes are the types of docs/events.md, for completion.
var eventTypes = []string{
	"job.submitted", "job.finished", "job.halted", "job.*",
	"run.sent", "run.received", "run.running", "run.succeeded", "run.failed", "run.denied", "run.expired", "run.cancelled",
	"run.skipped", "run.requeued", "run.*",
	"client.registered", "client.accepted", "client.rejected", "client.revoked", "client.*",
	"schedule.tick",
}

func completeEventTypes(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	// Completes the glob after the last comma.
	done, _ := splitLast(toComplete)
	var out []string
	for _, t := range eventTypes {
		out = append(out, done+t)
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
}

// splitLast splits "a,b,c" into "a,b," and "c".
func splitLast(s string) (string, string) {
	i := strings.LastIndexByte(s, ',')
	return s[:i+1], s[i+1:]
}

func runWebhookAdd(ctx context.Context, o *WebhookAddOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	req, err := o.request(ios.In)
	if err != nil {
		return err
	}
	w, err := call[api.Webhook](ctx, &o.remote, api.MethodWebhookAdd, req)
	if err != nil {
		return err
	}
	w.Events = nonNil(w.Events)
	return show(ios, &o.remote, w, func(w api.Webhook) error {
		signed := "unsigned"
		if w.Signed {
			signed = "signed"
		}
		fmt.Fprintf(ios.Out, "webhook %s added: %s, %s, %s; the events from now on go to it (try it: scirectl webhook test %s)\n",
			w.ID, w.URL, eventsText(w.Events), signed, w.ID)
		return nil
	})
}

// request checks the URL's form and the globs, reads the secret, and
// makes webhook.add's param of them. Whether http:// is allowed is the
// server's to say.
func (o *WebhookAddOptions) request(stdin io.Reader) (api.WebhookAddRequest, error) {
	if _, err := webhook.CheckURL(o.URL, true); err != nil {
		return api.WebhookAddRequest{}, usageError("URL: " + err.Error())
	}
	req := api.WebhookAddRequest{URL: o.URL}
	for _, g := range o.Events {
		if g = strings.TrimSpace(g); g != "" {
			req.Events = append(req.Events, g)
		}
	}
	if err := service.CheckEventTypes(req.Events); err != nil {
		return api.WebhookAddRequest{}, usageError("--events: " + strings.TrimPrefix(err.Error(), "types: "))
	}
	if o.SecretFile != "" {
		s, err := readSecretFile(o.SecretFile, stdin)
		if err != nil {
			return api.WebhookAddRequest{}, err
		}
		req.Secret = s
	}
	return req, nil
}

// readSecretFile reads a webhook's secret: the file's content without its
// last line break. The file must be private to its owner (no access for
// its group or others), as the data directory must be: the secret signs
// every body, and whoever reads it can forge them. "-" reads stdin.
func readSecretFile(path string, stdin io.Reader) (string, error) {
	var b []byte
	if path == "-" {
		var err error
		if b, err = io.ReadAll(io.LimitReader(stdin, webhook.MaxSecretLength+2)); err != nil {
			return "", fmt.Errorf("--secret-file -: %w", err)
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("--secret-file: %w", err)
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", fmt.Errorf("--secret-file: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return "", usageError(fmt.Sprintf("--secret-file %s is not a regular file", path))
		}
		if m := fi.Mode().Perm(); runtime.GOOS != "windows" && m&0o077 != 0 {
			return "", usageError(fmt.Sprintf("--secret-file %s is mode %04o: its group or others could read the secret; chmod 600 '%s'", path, m, path))
		}
		if b, err = io.ReadAll(io.LimitReader(f, webhook.MaxSecretLength+2)); err != nil {
			return "", fmt.Errorf("--secret-file: %w", err)
		}
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case s == "":
		return "", usageError(fmt.Sprintf("--secret-file %s is empty", path))
	case len(s) > webhook.MaxSecretLength:
		return "", usageError(fmt.Sprintf("--secret-file %s: the secret is longer than %d bytes", path, webhook.MaxSecretLength))
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		return "", usageError(fmt.Sprintf("--secret-file %s: the secret must be text (openssl rand -hex 32 makes one)", path))
	}
	return s, nil
}

// eventsText is a webhook's globs for people: "run.failed, job.*", or
// "every event".
func eventsText(globs []string) string {
	if len(globs) == 0 {
		return "every event"
	}
	return strings.Join(globs, ", ")
}

// WebhookListOptions are the flags of `webhook list`.
type WebhookListOptions struct {
	remote
}

// NewWebhookListCmd builds `webhook list`; runF, when not nil, is called
// with the options instead of listing.
func NewWebhookListCmd(f *Factory, runF func(*WebhookListOptions) error) *cobra.Command {
	o := &WebhookListOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List webhooks and how their deliveries go",
		Long: `List the webhooks by id: the URL, the events it gets ("*" for every event),
whether its bodies are signed (the secret itself is never shown), and how
its deliveries go: STATE is "ok", or "failing" while the next event keeps
failing (with the attempts so far and when the next one is due); LAST is
the latest attempt: its outcome and HTTP status, and when. -o wide adds
the cursor (the last event delivered or given up), who added the webhook
and when; -q prints only the ids.`,
		Example: `  scirectl webhook list
  scirectl webhook list -o wide
  scirectl webhook list -o json | jq -r '.[] | select(.attempts > 0) | .url'`,
		Args: cobra.NoArgs,
		RunE: runE(o, nil, runF, runWebhookList),
	}
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "webhook ids")
	return cmd
}

func runWebhookList(ctx context.Context, o *WebhookListOptions) error {
	ios := o.io()
	ws, err := call[[]api.Webhook](ctx, &o.remote, api.MethodWebhookList)
	if err != nil {
		return err
	}
	for i := range ws {
		ws[i].Events = nonNil(ws[i].Events)
	}
	return showList(ios, &o.out, ws, func(w api.Webhook) string { return w.ID }, func(ws []api.Webhook) error {
		now := clock()
		header := []string{"ID", "URL", "EVENTS", "SIGNED", "STATE", "LAST"}
		if o.out.wide() {
			header = append(header, "CURSOR", "CREATED BY", "CREATED")
		}
		rows := make([][]string, len(ws))
		for i, w := range ws {
			events, signed := strings.Join(w.Events, ","), "no"
			if events == "" {
				events = "*"
			}
			if w.Signed {
				signed = "yes"
			}
			rows[i] = []string{w.ID, w.URL, events, signed, webhookState(w, now), lastDelivery(w.Last, now)}
			if o.out.wide() {
				rows[i] = append(rows[i], w.Cursor, w.CreatedBy, ago(w.CreatedAt, now))
			}
		}
		return printTable(ios.Out, &o.out, header, rows)
	})
}

// webhookState is how a webhook's deliveries go: "ok", or "failing: 3
// attempts since 5m ago, next in 8s".
func webhookState(w api.Webhook, now time.Time) string {
	if w.Attempts == 0 {
		return "ok"
	}
	s := fmt.Sprintf("failing: %d attempts", w.Attempts)
	if w.FailingSince != nil {
		s += " since " + ago(*w.FailingSince, now)
	}
	if w.NextAttempt != nil {
		s += ", next " + ago(*w.NextAttempt, now)
	}
	return s
}

// lastDelivery sums up an attempt: "delivered 204, 3s ago".
func lastDelivery(d *api.WebhookDelivery, now time.Time) string {
	if d == nil {
		return "-"
	}
	s := d.Outcome
	if d.Status != 0 {
		s += " " + strconv.Itoa(d.Status)
	}
	return s + ", " + ago(d.At, now)
}

// WebhookRemoveOptions are the arguments and flags of `webhook remove`.
type WebhookRemoveOptions struct {
	remote
	IDs []string
}

// NewWebhookRemoveCmd builds `webhook remove`; runF, when not nil, is
// called with the options instead of removing.
func NewWebhookRemoveCmd(f *Factory, runF func(*WebhookRemoveOptions) error) *cobra.Command {
	o := &WebhookRemoveOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "remove ID...",
		Short: "Remove webhooks",
		Long: `Remove webhooks: they get no more events, and their delivery history goes
with them. A delivery under way is their last. The webhooks are removed one
at a time, in the order given; the first that cannot be removed stops the
command, and those before it stay removed.`,
		Example: `  scirectl webhook remove 3
  scirectl webhook remove 3 4`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: completeWebhooks(&o.remote),
		RunE:              runE(o, func(args []string) { o.IDs = args }, runF, runWebhookRemove),
	}
	o.addFlags(cmd)
	return cmd
}

func runWebhookRemove(ctx context.Context, o *WebhookRemoveOptions) error {
	ios := o.io()
	if err := o.out.validate(); err != nil {
		return err
	}
	for _, id := range o.IDs {
		if err := checkID("webhook id", id); err != nil {
			return err
		}
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	defer c.Close()
	removed := []api.Webhook{}
	for _, id := range o.IDs {
		var w api.Webhook
		if err = c.Call(ctx, api.MethodWebhookRemove, &w, id); err != nil {
			break
		}
		w.Events = nonNil(w.Events)
		if !o.out.json() {
			fmt.Fprintf(ios.Out, "removed webhook %s (%s)\n", w.ID, w.URL)
		}
		removed = append(removed, w)
	}
	if o.out.json() {
		if jerr := printJSON(ios.Out, removed); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// WebhookTestOptions are the argument and flags of `webhook test`.
type WebhookTestOptions struct {
	remote
	ID string
}

// NewWebhookTestCmd builds `webhook test`; runF, when not nil, is called
// with the options instead of testing.
func NewWebhookTestCmd(f *Factory, runF func(*WebhookTestOptions) error) *cobra.Command {
	o := &WebhookTestOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "test ID",
		Short: "Send a webhook a test event now, and say how it went",
		Long: `Send the webhook a test event now, outside its queue: the server POSTs it as
it POSTs events, with the same headers and signature, and says how the
receiver answered. The event is {"id": "0", "type": "webhook.test",
"time": …}, and its X-Scire-Delivery is "test-" and a number, new each
time. It is not recorded in "webhook deliveries".

The exit code is 0 when the receiver took it (a 2xx answer), 3 when it did
not (the reason is printed).`,
		Example: `  scirectl webhook test 3
  scirectl webhook test 3 -o json | jq .status`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeWebhooks(&o.remote)),
		RunE:              runE(o, func(args []string) { o.ID = args[0] }, runF, runWebhookTest),
	}
	o.addFlags(cmd)
	return cmd
}

func runWebhookTest(ctx context.Context, o *WebhookTestOptions) error {
	ios := o.io()
	if err := checkID("webhook id", o.ID); err != nil {
		return err
	}
	res, err := call[api.WebhookTestResult](ctx, &o.remote, api.MethodWebhookTest, o.ID)
	if err != nil {
		return err
	}
	err = show(ios, &o.remote, res, func(r api.WebhookTestResult) error {
		took := durationText(time.Duration(r.DurationMS) * time.Millisecond)
		if r.Delivered {
			fmt.Fprintf(ios.Out, "webhook %s: delivered (HTTP %d) in %s\n", r.WebhookID, r.Status, took)
		} else {
			fmt.Fprintf(ios.Out, "webhook %s: not delivered after %s: %s\n", r.WebhookID, took, r.Error)
		}
		return nil
	})
	if err == nil && !res.Delivered {
		return &exitError{code: ExitJobFailed}
	}
	return err
}

// WebhookDeliveriesOptions are the argument and flags of `webhook
// deliveries`.
type WebhookDeliveriesOptions struct {
	remote
	ID     string
	Limit  int
	Before string
}

// NewWebhookDeliveriesCmd builds `webhook deliveries`; runF, when not
// nil, is called with the options instead of asking the server.
func NewWebhookDeliveriesCmd(f *Factory, runF func(*WebhookDeliveriesOptions) error) *cobra.Command {
	o := &WebhookDeliveriesOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "deliveries ID",
		Short: "List a webhook's delivery attempts, newest first",
		Long: `List a webhook's delivery attempts, newest first: the event (its id is the
X-Scire-Delivery header), the attempt's number for that event, its
OUTCOME — delivered (a 2xx answer), retrying (it failed and is tried
again) or failed (the last try, 24 hours after its first failure: the
event is given up) — the HTTP status, how long it took, and the error.
The server keeps about the last thousand attempts of each webhook.

-o wide adds the daemon that made the attempt; -q prints only the attempt
ids. Page back with --before ID.`,
		Example: `  scirectl webhook deliveries 3
  scirectl webhook deliveries 3 --limit 10 -o wide
  scirectl webhook deliveries 3 -o json | jq -r '.[] | select(.outcome == "failed") | .event_id'`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: onlyFirst(completeWebhooks(&o.remote)),
		RunE:              runE(o, func(args []string) { o.ID = args[0] }, runF, runWebhookDeliveries),
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Limit, "limit", 50, "at most this many attempts (1 to 1000)")
	fl.StringVar(&o.Before, "before", "", "only attempts older than this id (paging)")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "attempt ids")
	return cmd
}

func runWebhookDeliveries(ctx context.Context, o *WebhookDeliveriesOptions) error {
	ios := o.io()
	if err := checkID("webhook id", o.ID); err != nil {
		return err
	}
	if o.Limit < 1 || o.Limit > 1000 {
		return usageError(fmt.Sprintf("--limit %d: want 1 to 1000", o.Limit))
	}
	if o.Before != "" {
		if err := checkID("--before", o.Before); err != nil {
			return err
		}
	}
	ds, err := call[[]api.WebhookDelivery](ctx, &o.remote, api.MethodWebhookDeliveries, o.ID,
		api.WebhookDeliveriesRequest{Limit: o.Limit, Before: o.Before})
	if err != nil {
		return err
	}
	return showList(ios, &o.out, ds, func(d api.WebhookDelivery) string { return d.ID }, func(ds []api.WebhookDelivery) error {
		now := clock()
		header := []string{"ID", "EVENT", "TYPE", "ATTEMPT", "OUTCOME", "STATUS", "TOOK", "WHEN", "ERROR"}
		if o.out.wide() {
			header = append(header, "SERVER")
		}
		rows := make([][]string, len(ds))
		for i, d := range ds {
			status := "-"
			if d.Status != 0 {
				status = strconv.Itoa(d.Status)
			}
			rows[i] = []string{d.ID, d.EventID, d.EventType, strconv.Itoa(d.Attempt), d.Outcome, status,
				durationText(time.Duration(d.DurationMS) * time.Millisecond), ago(d.At, now), dash(d.Error)}
			if o.out.wide() {
				rows[i] = append(rows[i], dash(d.ServerID))
			}
		}
		return printTable(ios.Out, &o.out, header, rows)
	})
}

// completeWebhooks completes webhook ids, each described by its URL
// (without its path, which may hold a token).
func completeWebhooks(r *remote) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var ws []api.Webhook
		if c.Call(ctx, api.MethodWebhookList, &ws) != nil {
			return nil
		}
		out := make([]string, len(ws))
		for i, w := range ws {
			out[i] = w.ID + "\t" + webhook.Redact(w.URL) + " (" + eventsText(w.Events) + ")"
		}
		return out
	})
}
