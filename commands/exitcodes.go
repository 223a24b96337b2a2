package commands

import (
	"errors"
	"strings"

	"github.com/scirectl/scirectl/client"
)

// Exit codes. Scripts branch on them, so they never change meaning; the
// table is in the README and docs/protocol.md.
const (
	ExitOK          = 0
	ExitError       = 1  // any other failure (server unreachable, I/O, …)
	ExitUsage       = 2  // bad flags or arguments
	ExitJobFailed   = 3  // --wait: a run failed, was denied, expired or was cancelled
	ExitBadRequest  = 10 // fault 400
	ExitUnauth      = 11 // fault 401
	ExitNotAccepted = 12 // fault 402
	ExitForbidden   = 13 // fault 403
	ExitNotFound    = 14 // fault 404
	ExitBlacklisted = 15 // fault 405
	ExitConflict    = 16 // fault 409
	ExitTooLarge    = 17 // fault 413
	ExitBusy        = 18 // fault 423
	ExitInternal    = 19 // fault 500
)

var faultExit = map[int]int{
	400: ExitBadRequest, 401: ExitUnauth, 402: ExitNotAccepted, 403: ExitForbidden, 404: ExitNotFound,
	405: ExitBlacklisted, 409: ExitConflict, 413: ExitTooLarge, 423: ExitBusy, 500: ExitInternal,
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
	if code, ok := faultExit[client.FaultCode(err)]; ok {
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
