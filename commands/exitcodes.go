package commands

import (
	"errors"
	"strings"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/rollout"
	"github.com/scirectl/scirectl/runstate"
)

// Exit codes. Scripts branch on them, so they never change meaning; the
// table is in the README, in "scirectl --help" and so in scirectl(1)
// (exitCodesHelp below).
const (
	ExitOK          = 0
	ExitError       = 1   // any other failure (server unreachable, I/O, …)
	ExitUsage       = 2   // bad flags or arguments
	ExitJobFailed   = 3   // --wait/--watch: a run failed; acl check: denied; blacklist check: blacklisted; webhook test: not delivered
	ExitJobDenied   = 4   // --wait/--watch: no run failed, but one was denied by the ACL
	ExitJobGaveUp   = 5   // --wait/--watch: no run failed or was denied, but one expired, was cancelled or was skipped
	ExitWaitTimeout = 6   // --wait/--watch: --wait-timeout passed before every run was final
	ExitBadRequest  = 10  // fault 400
	ExitUnauth      = 11  // fault 401
	ExitNotAccepted = 12  // fault 402
	ExitForbidden   = 13  // fault 403
	ExitNotFound    = 14  // fault 404
	ExitBlacklisted = 15  // fault 405
	ExitConflict    = 16  // fault 409
	ExitTooLarge    = 17  // fault 413
	ExitBusy        = 18  // fault 423
	ExitInternal    = 19  // fault 500
	ExitInterrupted = 130 // --wait/--watch/--follow: stopped by Ctrl-C (SIGINT); the job goes on
)

// exitCodesHelp is the table of exit codes, for the root command's help
// and so for scirectl(1).
const exitCodesHelp = `Exit codes:
  0    success; --wait/--watch: every run succeeded, or at least
       the job's --success-threshold share of them
  1    other error (server unreachable, I/O, bad config file)
  2    usage: bad flags or arguments
  3    --wait/--watch: a run failed; acl check: denied;
       blacklist check: blacklisted; webhook test: not delivered
  4    --wait/--watch: a run was denied (none failed)
  5    --wait/--watch: a run expired, was cancelled or was
       skipped by a halted rollout (none failed or was denied)
  6    --wait/--watch: --wait-timeout passed (the job goes on)
  10   fault 400: malformed request or invalid argument
  11   fault 401: not authenticated
  12   fault 402: client not accepted
  13   fault 403: forbidden by the ACL
  14   fault 404: not found
  15   fault 405: operation blacklisted
  16   fault 409: conflict (wrong state)
  17   fault 413: request too large
  18   fault 423: busy (gate held and --no-wait given)
  19   fault 500: internal error (see the request id)
  130  --wait/--watch/--follow: stopped by Ctrl-C (the job goes on)

"job output --follow" ends as --wait does: 0, 3, 4 or 5 once every run
it follows is final.`

// outcomeExit is the exit code of a job whose runs are all final. A job
// whose success threshold is below 100% exits 0 when at least that share
// of its runs succeeded (rollout.Succeeded). Otherwise failed beats denied
// beats expired, cancelled or skipped beats succeeded, so a script learns
// the worst thing that happened.
func outcomeExit(j api.Job) int {
	counts := j.Counts
	total, final := 0, 0
	for st, n := range counts {
		total += n
		if runstate.State(st).Final() {
			final += n
		}
	}
	if j.SuccessThreshold > 0 && j.SuccessThreshold < 100 && final == total &&
		rollout.Succeeded(j.SuccessThreshold, counts[string(runstate.Succeeded)], total) {
		return ExitOK
	}
	switch {
	case counts["failed"] > 0:
		return ExitJobFailed
	case counts["denied"] > 0:
		return ExitJobDenied
	case counts["expired"] > 0 || counts["cancelled"] > 0 || counts["skipped"] > 0:
		return ExitJobGaveUp
	}
	return ExitOK
}

var faultExit = map[int]int{
	api.CodeInvalid: ExitBadRequest, api.CodeUnauthenticated: ExitUnauth, api.CodeNotAccepted: ExitNotAccepted,
	api.CodeForbidden: ExitForbidden, api.CodeNotFound: ExitNotFound, api.CodeBlacklisted: ExitBlacklisted,
	api.CodeConflict: ExitConflict, api.CodeTooLarge: ExitTooLarge, api.CodeBusy: ExitBusy, api.CodeInternal: ExitInternal,
}

// exitError carries a chosen exit code; an empty msg prints nothing more.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError marks bad flags or arguments.
func usageError(msg string) error { return &exitError{code: ExitUsage, msg: msg} }

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if code, ok := faultExit[api.FaultCode(err)]; ok {
		return code
	}
	// cobra's own argument and flag errors.
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command", "accepts ", "requires at least",
		"invalid argument", "flag needs an argument", "required flag", "if any flags in the group"} {
		if strings.Contains(msg, p) {
			return ExitUsage
		}
	}
	return ExitError
}
