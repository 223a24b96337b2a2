package commands

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
)

// NewAuditCmd builds `scirectl audit`.
func NewAuditCmd(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit trail",
		Long: `Every state-changing operator operation (who, what, when, outcome) and every
refusal — by the ACL at submit or at dispatch, or of an admin permission — is
recorded in the database.`,
		Example: "  scirectl audit list --outcome denied --since 24h",
	}
	cmd.AddCommand(newAuditListCmd(f, nil))
	return cmd
}

// AuditListOptions are the flags of `audit list`.
type AuditListOptions struct {
	remote
	Actor, Operation, Outcome, Before string
	Since                             time.Duration
	Limit                             int
}

func newAuditListCmd(f *Factory, runF func(*AuditListOptions) error) *cobra.Command {
	o := &AuditListOptions{remote: newRemote(f)}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit entries, newest first",
		Long: `List audit entries, newest first: when, who, which operation, on what, and the
outcome (ok, error or denied). Filter by actor, operation (a prefix such as
'acl.*'), outcome and age; page back with --before. -q prints only the ids.`,
		Example: `  scirectl audit list
  scirectl audit list --outcome denied --since 24h
  scirectl audit list --actor alice --operation 'acl.*' -o json`,
		Args: cobra.NoArgs,
		RunE: runE(o, nil, runF, runAuditList),
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Actor, "actor", "", "only entries by this user (or client:ID)")
	fl.StringVar(&o.Operation, "operation", "", "only this operation, or a prefix such as 'acl.*'")
	fl.StringVar(&o.Outcome, "outcome", "", "only ok, error or denied")
	fl.DurationVar(&o.Since, "since", 0, "only entries newer than this (e.g. 1h, 7d is 168h)")
	fl.IntVar(&o.Limit, "limit", 100, "at most this many entries")
	fl.StringVar(&o.Before, "before", "", "only entries older than this id (paging)")
	o.addFlags(cmd)
	addQuietFlag(cmd, &o.out, "entry ids")
	return cmd
}

func runAuditList(ctx context.Context, o *AuditListOptions) error {
	ios := o.io()
	if o.Limit < 1 || o.Limit > 10000 {
		return usageError("--limit: want 1..10000")
	}
	req := api.AuditListRequest{Limit: o.Limit, Actor: o.Actor, Operation: o.Operation, Outcome: o.Outcome, Before: o.Before}
	// Before the first storable time, every entry is newer: leave since
	// out rather than send a time the server refuses.
	if t := time.Now().Add(-o.Since).UTC(); o.Since > 0 && !t.Before(jobxml.MinTime) {
		req.Since = t
	}
	es, err := call[[]api.AuditEntry](ctx, &o.remote, api.MethodAuditList, req)
	if err != nil {
		return err
	}
	return showList(ios, &o.out, es, func(e api.AuditEntry) string { return e.ID }, func(es []api.AuditEntry) error {
		now := clock()
		rows := make([][]string, len(es))
		for i, e := range es {
			rows[i] = []string{e.ID, ago(e.At, now), e.Actor, e.Name, dash(e.Target), e.Outcome, dash(e.Detail)}
		}
		return printTable(ios.Out, &o.out, []string{"ID", "WHEN", "ACTOR", "OPERATION", "TARGET", "OUTCOME", "DETAIL"}, rows)
	})
}
