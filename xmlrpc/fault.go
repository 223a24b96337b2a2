package xmlrpc

import (
	"errors"
	"fmt"
	"strconv"
)

// Fault codes of SPEC §4. They are part of the product contract: scripts and
// the CLI's exit codes depend on them, so never renumber.
const (
	CodeInvalid         = 400 // malformed request or invalid argument
	CodeUnauthenticated = 401 // no or unknown token, no client certificate
	CodeNotAccepted     = 402 // client pending, rejected or revoked
	CodeForbidden       = 403 // denied by the ACL
	CodeNotFound        = 404 // no such object, or no such method
	CodeBlacklisted     = 405 // operation denied by the blacklist
	CodeConflict        = 409 // wrong state for the operation
	CodeTooLarge        = 413 // request body over Limits.MaxBodyBytes
	CodeBusy            = 423 // a modifier holds the gate and the caller would not wait
	CodeInternal        = 500 // internal error; details are in the server log only
)

// Fault is an XML-RPC fault. Handlers return one to choose the code and text
// the caller sees; any other error becomes a 500 through Server.OnError. The
// tags let a Fault be returned as a value too (it then reads as a fault struct).
type Fault struct {
	Code    int    `xmlrpc:"faultCode"`
	Message string `xmlrpc:"faultString"`
}

// Error makes a Fault usable as an error; the code leads because operators
// grep logs by it.
func (f *Fault) Error() string {
	return "fault " + strconv.Itoa(f.Code) + ": " + f.Message
}

// Faultf builds a Fault with a formatted message.
func Faultf(code int, format string, args ...any) *Fault {
	return &Fault{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsFault finds a *Fault in err's chain, so that handlers may wrap faults
// with %w and still choose the code.
func AsFault(err error) (*Fault, bool) {
	var f *Fault
	if errors.As(err, &f) && f != nil {
		return f, true
	}
	return nil, false
}
