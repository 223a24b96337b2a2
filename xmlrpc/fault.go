package xmlrpc

import "github.com/scirectl/scirectl/api"

// The fault codes and the Fault type are the product contract's (package
// api); they are named here too so that the codec and its handlers read
// xmlrpc.CodeInvalid and xmlrpc.Faultf.
const (
	CodeInvalid         = api.CodeInvalid
	CodeUnauthenticated = api.CodeUnauthenticated
	CodeNotAccepted     = api.CodeNotAccepted
	CodeForbidden       = api.CodeForbidden
	CodeNotFound        = api.CodeNotFound
	CodeBlacklisted     = api.CodeBlacklisted
	CodeConflict        = api.CodeConflict
	CodeTooLarge        = api.CodeTooLarge
	CodeBusy            = api.CodeBusy
	CodeInternal        = api.CodeInternal
)

// Fault is api.Fault: handlers return one to choose the code and text the
// caller sees; any other error becomes a 500 through Server.OnError.
type Fault = api.Fault

// Faultf builds a Fault with a formatted message.
func Faultf(code int, format string, args ...any) *Fault { return api.Faultf(code, format, args...) }

// AsFault finds a *Fault in err's chain (api.AsFault).
func AsFault(err error) (*Fault, bool) { return api.AsFault(err) }
