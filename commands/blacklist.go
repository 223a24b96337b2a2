package commands

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/blacklist"
	"github.com/scirectl/scirectl/server"
	"github.com/scirectl/scirectl/service"
)

// NewBlacklistCmd builds `scirectl blacklist`.
func NewBlacklistCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "blacklist",
		Short: "Deny operations outright, for everyone",
		Long: `The file "blacklist" in the server's data directory names operations the server
refuses to everyone, admin included, with fault 405 (exit code 15). It is read
at start — a malformed file or an unknown name stops the server with the
file, line and column — and again on SIGHUP or after an edit through these
commands.

Two forms are accepted: one name per line with # comments, or RefactorErl's
Erlang term, [job.submit, 'db.reset']. with % comments. A * matches any run
of characters: acl.* denies every ACL operation.

The commands edit the file through the running server (atomic rewrite and
reload). With --offline they edit <data-dir>/blacklist directly, for when the
server is down; start it (or send it SIGHUP) afterwards.`,
		Example: `  scirectl blacklist add job.submit 'acl.*'
  scirectl blacklist check job.submit
  scirectl blacklist remove job.submit
  scirectl blacklist list --offline --data-dir /var/lib/scire`,
	}
	cmd.AddCommand(newBlacklistListCmd(f, nil), newBlacklistEditCmd(f, nil, true), newBlacklistEditCmd(f, nil, false), newBlacklistCheckCmd(f, nil))
	return cmd
}

// offlineList loads the data directory's blacklist without a server.
func offlineList(r *remote) (string, *blacklist.List, error) {
	path := filepath.Join(r.conn.dataDir(), "blacklist")
	l, err := blacklist.Load(path, server.OperationNames())
	return path, l, err
}

// entries describes a list the way blacklist.list does.
func entries(l *blacklist.List) []api.BlacklistEntry {
	out := []api.BlacklistEntry{}
	for _, e := range l.Entries() {
		m := []string{}
		for _, n := range server.OperationNames() {
			if blacklist.Matches(e.Pattern, n) {
				m = append(m, n)
			}
		}
		out = append(out, api.BlacklistEntry{Pattern: e.Pattern, Line: e.Line, Matches: m})
	}
	return out
}

func printBlacklist(ios *IOStreams, o *outputOptions, es []api.BlacklistEntry) error {
	rows := make([][]string, len(es))
	for i, e := range es {
		rows[i] = []string{e.Pattern, fmt.Sprint(e.Line), strings.Join(e.Matches, ",")}
	}
	return printTable(ios.Out, o, []string{"PATTERN", "LINE", "DENIES"}, rows)
}

func addOfflineFlag(cmd *cobra.Command, offline *bool) {
	cmd.Flags().BoolVar(offline, "offline", false, "work on <data-dir>/blacklist directly instead of through the server")
}

// serverDown adds a hint when the server could not be reached at all.
func serverDown(err error) error {
	if err != nil && api.FaultCode(err) == 0 && strings.Contains(err.Error(), "connect") {
		return fmt.Errorf("%w\n(is the server down? --offline edits the file in --data-dir directly)", err)
	}
	return err
}

// BlacklistOptions are the arguments and flags of the blacklist verbs.
type BlacklistOptions struct {
	remote
	Offline   bool
	Force     bool     // add
	Patterns  []string // add, remove
	Operation string   // check
}

func newBlacklistListCmd(f *Factory, runF func(*BlacklistOptions) error) *cobra.Command {
	o := &BlacklistOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the blacklisted patterns and what they deny",
		Long: `List the blacklist's patterns, the line of the file each is on, and the
operations each denies. -q prints only the patterns.`,
		Example: "  scirectl blacklist list\n  scirectl blacklist list --offline --data-dir /var/lib/scire",
		Args:    cobra.NoArgs,
		RunE:    runE(o, nil, runF, runBlacklistList),
	}
	addOfflineFlag(cmd, &o.Offline)
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "patterns")
	return cmd
}

func runBlacklistList(ctx context.Context, o *BlacklistOptions) error {
	ios := o.io()
	var es []api.BlacklistEntry
	var err error
	if o.Offline {
		var l *blacklist.List
		if _, l, err = offlineList(&o.remote); err == nil {
			es = entries(l)
		}
	} else {
		es, err = call[[]api.BlacklistEntry](ctx, &o.remote, api.MethodBlacklistList)
	}
	if err != nil {
		return serverDown(err)
	}
	return showList(ios, &o.out, es, func(e api.BlacklistEntry) string { return e.Pattern },
		func(es []api.BlacklistEntry) error { return printBlacklist(ios, &o.out, es) })
}

func newBlacklistEditCmd(f *Factory, runF func(*BlacklistOptions) error, add bool) *cobra.Command {
	o := &BlacklistOptions{remote: newRemote(f)}
	use, short, method := "add", "Blacklist operations", api.MethodBlacklistAdd
	example := "  scirectl blacklist add job.submit\n  scirectl blacklist add 'acl.*' db.reset"
	if !add {
		use, short, method = "remove", "Remove patterns from the blacklist", api.MethodBlacklistRemove
		example = "  scirectl blacklist remove job.submit\n  scirectl blacklist remove 'acl.*' --offline --data-dir /var/lib/scire"
	}
	cmd := &cobra.Command{
		Use:   use + " PATTERN...",
		Short: short,
		Long: short + `. A PATTERN is an operation name (completion lists them)
or a glob with *; the server rewrites its blacklist file atomically and
applies it at once. A pattern that would blacklist blacklist.remove itself
needs --force, since only an edit of the file could undo it.`,
		Example: example,
		Args:    cobra.MinimumNArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if !add {
				return completeBlacklisted(&o.remote)(cmd, args, toComplete)
			}
			return server.OperationNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: runE(o, func(args []string) { o.Patterns = args }, runF, func(ctx context.Context, o *BlacklistOptions) error {
			return runBlacklistEdit(ctx, o, add, method)
		}),
	}
	if add {
		cmd.Flags().BoolVar(&o.Force, "force", false, "allow a pattern that blacklists blacklist.remove itself")
	}
	addOfflineFlag(cmd, &o.Offline)
	o.addFlags(cmd)
	return cmd
}

// runBlacklistEdit adds patterns (add) or removes them, through method on
// the server or in the file with --offline.
func runBlacklistEdit(ctx context.Context, o *BlacklistOptions, add bool, method string) error {
	ios := o.io()
	for _, a := range o.Patterns {
		if add && blacklist.Matches(a, api.SelfLockout) {
			if !o.Force {
				return usageError(fmt.Sprintf("%q would blacklist %s itself: afterwards only an edit of the file can undo it; add --force to do it anyway", a, api.SelfLockout))
			}
			fmt.Fprintf(ios.ErrOut, "warning: %q blacklists %s: only an edit of the blacklist file can undo it\n", a, api.SelfLockout)
		}
	}
	var es []api.BlacklistEntry
	var err error
	if o.Offline {
		path := filepath.Join(o.conn.dataDir(), "blacklist")
		if _, err = service.EditBlacklist(path, server.OperationNames(), add, o.Force, o.Patterns); err == nil {
			var l *blacklist.List
			if _, l, err = offlineList(&o.remote); err == nil {
				es = entries(l)
			}
		}
	} else {
		callArgs := []any{o.Patterns}
		if add {
			callArgs = append(callArgs, o.Force)
		}
		es, err = call[[]api.BlacklistEntry](ctx, &o.remote, method, callArgs...)
	}
	if err != nil {
		return serverDown(offlineError(err))
	}
	return show(ios, &o.remote, nonNil(es), func(es []api.BlacklistEntry) error { return printBlacklist(ios, &o.out, es) })
}

func newBlacklistCheckCmd(f *Factory, runF func(*BlacklistOptions) error) *cobra.Command {
	o := &BlacklistOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "check OPERATION",
		Short: "Tell whether an operation is blacklisted",
		Long: `Tell whether an operation is blacklisted and by which entry. Exit code 0 when
it is allowed, 3 when it is blacklisted.`,
		Example: "  scirectl blacklist check job.submit && echo allowed",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return server.OperationNames(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: runE(o, func(args []string) { o.Operation = args[0] }, runF, runBlacklistCheck),
	}
	addOfflineFlag(cmd, &o.Offline)
	o.addFlags(cmd)
	return cmd
}

func runBlacklistCheck(ctx context.Context, o *BlacklistOptions) error {
	ios := o.io()
	var res api.BlacklistCheck
	var err error
	if o.Offline {
		if !slices.Contains(server.OperationNames(), o.Operation) {
			return &exitError{code: ExitNotFound, msg: fmt.Sprintf("no operation %q", o.Operation)}
		}
		var l *blacklist.List
		if _, l, err = offlineList(&o.remote); err == nil {
			res.Operation = o.Operation
			if e, ok := l.Match(o.Operation); ok {
				res.Blacklisted, res.Pattern, res.Line = true, e.Pattern, e.Line
			}
		}
	} else {
		res, err = call[api.BlacklistCheck](ctx, &o.remote, api.MethodBlacklistCheck, o.Operation)
	}
	if err != nil {
		return serverDown(err)
	}
	err = show(ios, &o.remote, res, func(res api.BlacklistCheck) error {
		if res.Blacklisted {
			fmt.Fprintf(ios.Out, "%s is blacklisted by %q (line %d)\n", res.Operation, res.Pattern, res.Line)
		} else {
			fmt.Fprintf(ios.Out, "%s is not blacklisted\n", res.Operation)
		}
		return nil
	})
	if err == nil && res.Blacklisted {
		return &exitError{code: ExitJobFailed}
	}
	return err
}
