package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Fault codes (docs/protocol.md, "Fault codes"). They are part of the
// product contract: scripts and the CLI's exit codes depend on them, so
// never renumber.
const (
	CodeInvalid         = 400 // malformed request or invalid argument
	CodeUnauthenticated = 401 // no or unknown token, no client certificate
	CodeNotAccepted     = 402 // client pending, rejected or revoked
	CodeForbidden       = 403 // denied by the ACL
	CodeNotFound        = 404 // no such object, or no such method
	CodeBlacklisted     = 405 // operation denied by the blacklist
	CodeConflict        = 409 // wrong state for the operation
	CodeTooLarge        = 413 // request body over the size limit
	CodeBusy            = 423 // a modifier holds the gate and the caller would not wait
	CodeInternal        = 500 // internal error; details are in the server log only
)

// Fault is an XML-RPC fault: what a handler returns to choose the code and
// text the caller sees, and what a client gets back. The tags let a Fault
// be encoded as a value too (it then reads as a fault struct).
type Fault struct {
	Code    int    `xmlrpc:"faultCode"`
	Message string `xmlrpc:"faultString"`
}

// Error is the one text form of a fault, in logs, the audit trail and the
// CLI alike: the message first, for people, then the code, for scripts
// and grep.
func (f *Fault) Error() string {
	return f.Message + " (fault " + strconv.Itoa(f.Code) + ")"
}

// Faultf builds a Fault with a formatted message.
func Faultf(code int, format string, args ...any) *Fault {
	return &Fault{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsFault finds a *Fault in err's chain, so that a fault may be wrapped
// with %w and still choose the code.
func AsFault(err error) (*Fault, bool) {
	var f *Fault
	if errors.As(err, &f) && f != nil {
		return f, true
	}
	return nil, false
}

// FaultCode returns the code of the fault err carries, or 0.
func FaultCode(err error) int {
	if f, ok := AsFault(err); ok {
		return f.Code
	}
	return 0
}

// RefusesExtraParam says whether err is a server's refusal of a call for
// its number of params: an older server's answer to an optional param it
// does not know yet (agent.getJobs' wait), after which the caller asks
// again without it.
func RefusesExtraParam(err error) bool {
	f, ok := AsFault(err)
	return ok && f.Code == CodeInvalid && strings.Contains(f.Message, "wrong number of params")
}
