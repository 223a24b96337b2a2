package commands

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/scirectl/scirectl/api"
)

// Completion of dynamic values (job ids, client names, group names, …)
// asks the server with the command's own connection settings: flags on
// the command line so far, the environment and the configuration file.
// Any error (no server, no token) quietly completes nothing.

// completionTimeout bounds the call a completion makes: a shell waits for it.
const completionTimeout = 3 * time.Second

// completeFrom calls list for the candidates of an argument, given the
// arguments so far; already given values are left out.
func completeFrom(r *remote, list func(ctx context.Context, c API, args []string) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		c, err := r.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer c.Close()
		var out []string
		for _, v := range list(ctx, c, args) {
			if !slices.Contains(args, completionValue(v)) {
				out = append(out, v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionValue is the value of a "value\tdescription" candidate.
func completionValue(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '\t' {
			return v[:i]
		}
	}
	return v
}

// onlyFirst completes the first argument only.
func onlyFirst(f cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return f(cmd, args, toComplete)
	}
}

// completeJobs completes a job id: the 50 newest jobs.
func completeJobs(r *remote) cobra.CompletionFunc {
	return onlyFirst(completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var jobs []api.Job
		if c.Call(ctx, api.MethodJobList, &jobs, api.JobListRequest{Limit: 50}) != nil {
			return nil
		}
		out := make([]string, len(jobs))
		for i, j := range jobs {
			out[i] = fmt.Sprintf("%s\t%s (%s)", j.ID, j.Name, j.Status)
		}
		return out
	}))
}

// completeClients completes client names, of clients in one of statuses
// (any status when none is given).
func completeClients(r *remote, statuses ...string) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		return clientNames(ctx, c, statuses...)
	})
}

func clientNames(ctx context.Context, c API, statuses ...string) []string {
	var cs []api.Client
	if c.Call(ctx, api.MethodClientList, &cs, api.ClientListRequest{}) != nil {
		return nil
	}
	var out []string
	for _, cl := range cs {
		if len(statuses) == 0 || slices.Contains(statuses, cl.Status) {
			out = append(out, fmt.Sprintf("%s\t%s, id %s", cl.Name, cl.Status, cl.ID))
		}
	}
	return out
}

// completeGroups completes group names of one kind.
func completeGroups(r *remote, kind string) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		return groupNames(ctx, c, kind)
	})
}

func groupNames(ctx context.Context, c API, kind string) []string {
	var gs []api.Group
	if c.Call(ctx, api.MethodGroupList, &gs, kind) != nil {
		return nil
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.Name
		if g.Note != "" {
			out[i] += "\t" + g.Note
		}
	}
	return out
}

// completeSchedules completes schedule names, each described by its
// expression, and whether it is paused.
func completeSchedules(r *remote) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var ss []api.Schedule
		if c.Call(ctx, api.MethodScheduleList, &ss) != nil {
			return nil
		}
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.Name + "\t" + cronText(s)
			if s.Paused {
				out[i] += ", paused"
			}
		}
		return out
	})
}

// completeGroupArgs completes the arguments of the group commands: the
// kind, then a group of that kind, then (members) clients or users, or for
// remove the group's members.
func completeGroupArgs(r *remote, members string) cobra.CompletionFunc {
	list := completeFrom(r, func(ctx context.Context, c API, args []string) []string {
		kind := args[0]
		if len(args) == 1 {
			return groupNames(ctx, c, kind)
		}
		switch members {
		case "add":
			var out []string
			for _, g := range groupNames(ctx, c, kind) {
				out = append(out, "group:"+completionValue(g))
			}
			if kind == "client" {
				return append(clientNames(ctx, c), out...)
			}
			return append(userNames(ctx, c), out...)
		case "remove":
			var g api.Group
			if c.Call(ctx, api.MethodGroupGet, &g, kind, args[1]) != nil {
				return nil
			}
			out := slices.Clone(g.Members)
			for _, n := range g.Groups {
				out = append(out, "group:"+n)
			}
			return out
		}
		return nil
	})
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return groupKinds, cobra.ShellCompDirectiveNoFileComp
		}
		if kindArg(args[0]) != nil || len(args) > 1 && members == "" {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return list(cmd, args, toComplete)
	}
}

func userNames(ctx context.Context, c API) []string {
	var us []api.User
	if c.Call(ctx, api.MethodUserList, &us) != nil {
		return nil
	}
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name
	}
	return out
}

// completeUsers completes a user name.
func completeUsers(r *remote) cobra.CompletionFunc {
	return onlyFirst(completeFrom(r, func(ctx context.Context, c API, _ []string) []string { return userNames(ctx, c) }))
}

// completeTokens completes the id of a token not yet revoked.
func completeTokens(r *remote) cobra.CompletionFunc {
	return onlyFirst(completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var ts []api.Token
		if c.Call(ctx, api.MethodUserTokenList, &ts) != nil {
			return nil
		}
		var out []string
		for _, t := range ts {
			if !t.Revoked {
				out = append(out, fmt.Sprintf("%s\t%s of %s", t.ID, t.Name, t.User))
			}
		}
		return out
	}))
}

// completeRules completes an ACL rule id.
func completeRules(r *remote) cobra.CompletionFunc {
	return onlyFirst(completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var rs []api.ACLRule
		if c.Call(ctx, api.MethodACLList, &rs) != nil {
			return nil
		}
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%s\t%s %s %s on %s", r.ID, r.Action, r.Subject, r.Permission, r.Target)
		}
		return out
	}))
}

// completeOps completes the id of an operation at the gate.
func completeOps(r *remote) cobra.CompletionFunc {
	return onlyFirst(completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var ops []api.Op
		if c.Call(ctx, api.MethodOpsList, &ops) != nil {
			return nil
		}
		out := make([]string, len(ops))
		for i, o := range ops {
			out[i] = fmt.Sprintf("%s\t%s %s (%s)", o.ID, o.State, o.Name, o.User)
		}
		return out
	}))
}

// completeBlacklisted completes a pattern now on the blacklist.
func completeBlacklisted(r *remote) cobra.CompletionFunc {
	return completeFrom(r, func(ctx context.Context, c API, _ []string) []string {
		var es []api.BlacklistEntry
		if c.Call(ctx, api.MethodBlacklistList, &es) != nil {
			return nil
		}
		out := make([]string, len(es))
		for i, e := range es {
			out[i] = e.Pattern
		}
		return out
	})
}
