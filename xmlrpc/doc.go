// Package xmlrpc is the server side of XML-RPC for scirectl: it turns an HTTP
// POST carrying a <methodCall> into a call of a registered Go handler and
// writes the result back as a <methodResponse>. It exists because no
// usable server-side XML-RPC package can be had (clients use
// github.com/kolo/xmlrpc); it is deliberately small and knows nothing about
// jobs, clients or authentication — the caller wraps those around every call
// with Server.Intercept.
//
// # Wire behaviour
//
// Everything that goes wrong at the XML-RPC level — malformed XML, an unknown
// method, wrong parameter types, a handler's fault, a body over the size
// limit — is answered with HTTP 200 and a <fault>, never with an HTTP error
// status: Python's xmlrpc.client and kolo report HTTP errors as transport
// failures and would hide the reason. Only a non-POST request gets HTTP 405.
// Fault codes are those of docs/protocol.md; an unknown method is fault 404 (the protocol
// has no code of its own for it and 404 reads right to an operator).
//
// Messages in faults count positions from 1 ("param 2", "item 3"), as a user
// reading them would; the Params accessors nevertheless take 0-based indexes,
// as Go code indexes slices.
//
// # Decoding
//
// DecodeCall is strict about structure and lenient about the types different
// clients write. <int>, <i4>, <i8>, <i1> and <i2> are all read as int64 and only
// refused beyond 64 bits, because kolo writes every Go int as <int> whatever
// its size. Booleans accept 0/1/true/false. A <value> without a type element is
// a string and keeps its whitespace, as the XML-RPC specification and Python
// say. Namespace prefixes on element names are ignored, so Apache's
// <ex:nil/> and <ex:i8> work. Times are returned in UTC with whole seconds —
// dateTime.iso8601 has no finer resolution — so a fraction is dropped.
// Non-finite doubles (nan, inf) are refused: they cannot be written back.
// Duplicate struct members are refused rather than letting one silently win.
// DTDs and entity declarations are refused outright; only the five predefined
// entities and character references are understood. Limits bounds body size,
// nesting, value count and string length so that a hostile body costs little.
//
// # Encoding
//
// EncodeResponse maps Go values onto XML-RPC types: integers become <int> when
// they fit 32 bits and <i8> otherwise (kolo and Python both read <i8>); uint64
// above the int64 range is an error. time.Time is written in UTC as
// 20060102T15:04:05 with no zone suffix, because Python's builtin-types parser
// refuses one. time.Duration has no XML-RPC type and is written as its int64
// nanosecond count: convert to seconds before returning one. Nil slices and
// nil maps are written as empty arrays and structs (a list that happens to be
// empty is not "none"); nil pointers and nil interfaces as <nil/>. Map keys are
// sorted so output is deterministic. Go structs use the field tag
// `xmlrpc:"name"`, `xmlrpc:"name,omitempty"` or `xmlrpc:"-"`; untagged exported
// fields use their Go name and embedded structs are flattened as encoding/json
// does, except that two fields at the same depth claiming one name are an
// encoding error instead of both vanishing. omitempty drops zero values,
// including a zero time.Time and empty slices and maps. []byte is base64;
// a byte array ([N]byte) is an array of ints like any other array.
//
// XML 1.0 cannot carry every string: characters it forbids (control
// characters other than tab, newline and carriage return; U+FFFE; U+FFFF) and
// bytes that are not valid UTF-8 are written as U+FFFD. A carriage return is
// written as &#xD; so that it survives XML line-end normalisation.
package xmlrpc
