package commands

import (
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

func TestJobDelete(t *testing.T) {
	deleted := map[string]func(xmlrpc.Params) any{"job.delete": func(p xmlrpc.Params) any {
		ids, _ := p.StringSlice(0, "job_ids")
		return api.DeleteResult{JobIDs: ids, Jobs: len(ids), Runs: 2 * len(ids)}
	}}
	refused := map[string]func(xmlrpc.Params) any{"job.delete": fixed(&xmlrpc.Fault{Code: 409,
		Message: "delete jobs: job 43 has 1 run not final: cancel it first: conflict"})}
	runCases(t, []runCase{
		{args: []string{"job", "delete", "42"}, replies: deleted, method: "job.delete", params: []any{[]string{"42"}},
			out: "deleted 1 job (2 runs): 42\n"},
		{args: []string{"job", "delete", "40", "41", "42"}, replies: deleted, method: "job.delete", params: []any{[]string{"40", "41", "42"}},
			out: "deleted 3 jobs (6 runs): 40 41 42\n"},
		{args: []string{"job", "delete", "40", "41", "-q"}, replies: deleted, method: "job.delete", params: []any{[]string{"40", "41"}},
			out: "40\n41\n"},
		{args: []string{"job", "delete", "42", "-o", "json"}, replies: deleted, method: "job.delete", params: []any{[]string{"42"}},
			out: "{\n  \"job_ids\": [\n    \"42\"\n  ],\n  \"jobs\": 1,\n  \"runs\": 2\n}\n"},
		{args: []string{"job", "delete", "42", "43"}, replies: refused, method: "job.delete", params: []any{[]string{"42", "43"}},
			code: ExitConflict, errOut: "job 43 has 1 run not final"},
		{args: []string{"job", "delete"}, replies: deleted, code: ExitUsage, errOut: "requires at least 1 arg"},
		{args: []string{"job", "delete", "42", "x"}, replies: deleted, code: ExitUsage, errOut: `JOB-ID "x": want a positive number`},
	})
}

func TestJobPrune(t *testing.T) {
	pruned := func(dry bool, jobs int) map[string]func(xmlrpc.Params) any {
		return map[string]func(xmlrpc.Params) any{"job.prune": func(p xmlrpc.Params) any {
			in, _ := p.Struct(0, "options")
			age, _, _ := in.String("older_than")
			d, _ := api.ParseAge(age)
			return api.PruneResult{OlderThan: api.FormatAge(d), Before: goldenNow.Add(-d), DryRun: dry, Jobs: jobs, Runs: 3 * jobs}
		}}
	}
	runCases(t, []runCase{
		{args: []string{"job", "prune", "--older-than", "30d"}, replies: pruned(false, 12), method: "job.prune",
			params: []any{api.PruneRequest{OlderThan: "30d"}},
			out:    "deleted 12 jobs (36 runs) finished before 2026-10-23T10:00:00Z (older than 30d)\n"},
		{args: []string{"job", "prune", "--older-than", "1d12h", "--dry-run"}, replies: pruned(true, 1), method: "job.prune",
			params: []any{api.PruneRequest{OlderThan: "1d12h", DryRun: true}},
			out:    "would delete 1 job (3 runs) finished before 2026-11-20T22:00:00Z (older than 1d12h)\n"},
		{args: []string{"job", "prune", "--older-than", "30d", "-o", "json"}, replies: pruned(false, 0), method: "job.prune",
			params: []any{api.PruneRequest{OlderThan: "30d"}},
			out:    "{\n  \"older_than\": \"30d\",\n  \"before\": \"2026-10-23T10:00:00Z\",\n  \"dry_run\": false,\n  \"jobs\": 0,\n  \"runs\": 0\n}\n"},
		{args: []string{"job", "prune"}, replies: pruned(false, 0), code: ExitUsage, errOut: `required flag(s) "older-than" not set`},
		{args: []string{"job", "prune", "--older-than", "30"}, replies: pruned(false, 0), code: ExitUsage,
			errOut: `--older-than "30" is not a duration such as 90d, 36h or 30m`},
		{args: []string{"job", "prune", "--older-than", "-1d"}, replies: pruned(false, 0), code: ExitUsage, errOut: "--older-than"},
		{args: []string{"job", "prune", "--older-than", "30d", "extra"}, replies: pruned(false, 0), code: ExitUsage, errOut: "unknown command"},
		{args: []string{"job", "prune", "--older-than", "30d"}, replies: map[string]func(xmlrpc.Params) any{
			"job.prune": fixed(&xmlrpc.Fault{Code: 403, Message: `denied: no rule allows alice "job.delete" on the server`})},
			method: "job.prune", params: []any{api.PruneRequest{OlderThan: "30d"}}, code: ExitForbidden, errOut: "job.delete"},
	})
}
