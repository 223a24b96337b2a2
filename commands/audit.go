package commands

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/jobxml"
)

// NewAuditCmd builds `scirectl audit`.
func NewAuditCmd(ios *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read the audit trail",
		Long: `Every state-changing operator operation (who, what, when, outcome) and every
refusal — by the ACL at submit or at dispatch, or of an admin permission — is
recorded in the database.`,
		Example: "  scirectl audit list --outcome denied --since 24h",
	}
	cmd.AddCommand(newAuditListCmd(ios))
	return cmd
}

func newAuditListCmd(ios *IOStreams) *cobra.Command {
	var r remote
	var actor, op, outcome, before string
	var since time.Duration
	var limit int
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return usageError("--limit: want 1..10000")
			}
			f := map[string]any{"limit": limit}
			for k, v := range map[string]string{"actor": actor, "operation": op, "outcome": outcome, "before": before} {
				if v != "" {
					f[k] = v
				}
			}
			// Before the first storable time, every entry is newer:
			// leave since out rather than send a time the server refuses.
			if t := time.Now().Add(-since).UTC(); since > 0 && !t.Before(jobxml.MinTime) {
				f["since"] = t
			}
			es, err := call[[]api.AuditEntry](cmd.Context(), &r, "audit.list", f)
			if err != nil {
				return err
			}
			return showList(ios, &r.out, es, func(e api.AuditEntry) string { return e.ID }, func(es []api.AuditEntry) error {
				now := clock()
				rows := make([][]string, len(es))
				for i, e := range es {
					rows[i] = []string{e.ID, ago(e.At, now), e.Actor, e.Name, dash(e.Target), e.Outcome, dash(e.Detail)}
				}
				return printTable(ios.Out, &r.out, []string{"ID", "WHEN", "ACTOR", "OPERATION", "TARGET", "OUTCOME", "DETAIL"}, rows)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "only entries by this user (or client:ID)")
	f.StringVar(&op, "operation", "", "only this operation, or a prefix such as 'acl.*'")
	f.StringVar(&outcome, "outcome", "", "only ok, error or denied")
	f.DurationVar(&since, "since", 0, "only entries newer than this (e.g. 1h, 7d is 168h)")
	f.IntVar(&limit, "limit", 100, "at most this many entries")
	f.StringVar(&before, "before", "", "only entries older than this id (paging)")
	r.addFlags(cmd)
	addQuietFlag(cmd, &r.out, "entry ids")
	return cmd
}
