package xmlrpc

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Params are the decoded parameters of a call. The typed accessors exist so
// that every handler reports a wrong argument the same way: fault 400 naming
// the parameter by position and name, what was expected and what came —
// for example `param 1 (max): expected int, got string "ten"`.
//
// Indexes are 0-based as in Go; messages count from 1 as users do.
type Params []any

func paramLabel(i int, name string) string {
	if name == "" {
		return "param " + strconv.Itoa(i+1)
	}
	return "param " + strconv.Itoa(i+1) + " (" + name + ")"
}

func invalid(label, msg string) *Fault {
	return &Fault{Code: CodeInvalid, Message: label + ": " + msg}
}

// Count checks the number of parameters; max < 0 means no upper bound.
func (p Params) Count(min, max int) error {
	n := len(p)
	if n >= min && (max < 0 || n <= max) {
		return nil
	}
	var want string
	switch {
	case max < 0:
		want = "at least " + strconv.Itoa(min)
	case min == max:
		want = strconv.Itoa(min)
	default:
		want = strconv.Itoa(min) + ".." + strconv.Itoa(max)
	}
	return Faultf(CodeInvalid, "wrong number of params: got %d, want %s", n, want)
}

// Has reports whether parameter i was sent and is not nil, which is how an
// optional trailing parameter is left out (Python sends None as <nil/>).
func (p Params) Has(i int) bool {
	return i >= 0 && i < len(p) && p[i] != nil
}

func param[T any](p Params, i int, name, want string, conv func(any) (T, string)) (T, error) {
	var zero T
	if i < 0 || i >= len(p) {
		return zero, invalid(paramLabel(i, name), "missing; expected "+want)
	}
	v, msg := conv(p[i])
	if msg != "" {
		return zero, invalid(paramLabel(i, name), msg)
	}
	return v, nil
}

// String returns parameter i, which must be a string.
func (p Params) String(i int, name string) (string, error) {
	return param(p, i, name, "string", asString)
}

// Int returns parameter i, which must be an integer.
func (p Params) Int(i int, name string) (int64, error) {
	return param(p, i, name, "int", asInt)
}

// Bool returns parameter i, which must be a boolean.
func (p Params) Bool(i int, name string) (bool, error) {
	return param(p, i, name, "boolean", asBool)
}

// Float returns parameter i, a double or an integer (Python sends 1, not 1.0).
func (p Params) Float(i int, name string) (float64, error) {
	return param(p, i, name, "double", asFloat)
}

// Time returns parameter i, a dateTime.iso8601 or an RFC 3339 string, in UTC.
func (p Params) Time(i int, name string) (time.Time, error) {
	return param(p, i, name, "dateTime.iso8601", asTime)
}

// ID returns parameter i as an identifier: a string of decimal digits (how
// the protocol sends ids, 64-bit safe: docs/protocol.md) or any integer
// type, greater than 0.
func (p Params) ID(i int, name string) (int64, error) {
	return param(p, i, name, "id", asID)
}

// IDs returns parameter i, an array of identifiers as ID accepts them.
func (p Params) IDs(i int, name string) ([]int64, error) {
	return param(p, i, name, "array of ids", asIDs)
}

// StringSlice returns parameter i, an array of strings.
func (p Params) StringSlice(i int, name string) ([]string, error) {
	return param(p, i, name, "array of strings", asStrings)
}

// Array returns parameter i, which must be an array.
func (p Params) Array(i int, name string) ([]any, error) {
	return param(p, i, name, "array", asArray)
}

// Struct returns parameter i, which must be a struct. The result remembers
// the parameter's position and name for the messages of its own accessors.
func (p Params) Struct(i int, name string) (Struct, error) {
	m, err := param(p, i, name, "struct", asMap)
	if err != nil {
		return Struct{}, err
	}
	return Struct{label: paramLabel(i, name), m: m}, nil
}

func asString(v any) (string, string) {
	if s, ok := v.(string); ok {
		return s, ""
	}
	return "", "expected string, got " + describe(v)
}

func asInt(v any) (int64, string) {
	if n, ok := v.(int64); ok {
		return n, ""
	}
	return 0, "expected int, got " + describe(v)
}

func asBool(v any) (bool, string) {
	if b, ok := v.(bool); ok {
		return b, ""
	}
	return false, "expected boolean, got " + describe(v)
}

func asFloat(v any) (float64, string) {
	switch x := v.(type) {
	case float64:
		return x, ""
	case int64:
		return float64(x), ""
	}
	return 0, "expected double, got " + describe(v)
}

func asTime(v any) (time.Time, string) {
	switch x := v.(type) {
	case time.Time:
		return x.UTC(), ""
	case string:
		if t, err := parseDateTime(x); err == nil {
			return t, ""
		} else if errors.Is(err, errTimeRange) {
			return time.Time{}, fmt.Sprintf("time %q: %v", clip(x, 40), err)
		}
	}
	return time.Time{}, "expected dateTime.iso8601 or RFC 3339 string, got " + describe(v)
}

func asID(v any) (int64, string) {
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			return 0, "expected an id > 0, got int " + strconv.FormatInt(x, 10)
		}
		return x, ""
	case string:
		if x == "" {
			return 0, "expected an id (decimal digits), got an empty string"
		}
		for i := 0; i < len(x); i++ {
			if x[i] < '0' || x[i] > '9' {
				return 0, "expected an id (decimal digits), got " + describe(v)
			}
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Sprintf("id %q does not fit in 64 bits", clip(x, 40))
		}
		if n == 0 {
			return 0, "expected an id > 0, got " + describe(v)
		}
		return n, ""
	}
	return 0, "expected an id (decimal-digit string or int), got " + describe(v)
}

func asIDs(v any) ([]int64, string) {
	a, ok := v.([]any)
	if !ok {
		return nil, "expected array of ids, got " + describe(v)
	}
	out := make([]int64, len(a))
	for i, x := range a {
		n, msg := asID(x)
		if msg != "" {
			return nil, "item " + strconv.Itoa(i+1) + ": " + msg
		}
		out[i] = n
	}
	return out, ""
}

func asStrings(v any) ([]string, string) {
	a, ok := v.([]any)
	if !ok {
		return nil, "expected array of strings, got " + describe(v)
	}
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, "item " + strconv.Itoa(i+1) + ": expected string, got " + describe(x)
		}
		out[i] = s
	}
	return out, ""
}

func asArray(v any) ([]any, string) {
	if a, ok := v.([]any); ok {
		return a, ""
	}
	return nil, "expected array, got " + describe(v)
}

func asMap(v any) (map[string]any, string) {
	switch x := v.(type) {
	case map[string]any:
		return x, ""
	case Struct:
		return x.m, ""
	}
	return nil, "expected struct, got " + describe(v)
}

// describe names a value's XML-RPC type and shows enough of it to recognise,
// never all of it: faults are read by people and logged.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		if x == "" {
			return "an empty string"
		}
		return "string " + strconv.Quote(clip(x, 40))
	case int64:
		return "int " + strconv.FormatInt(x, 10)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case float64:
		return "double " + strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return "dateTime.iso8601 " + x.UTC().Format(wireTime)
	case []byte:
		return fmt.Sprintf("base64 (%d bytes)", len(x))
	case []any:
		return fmt.Sprintf("array of %d", len(x))
	case map[string]any:
		return fmt.Sprintf("struct with %d members", len(x))
	case Struct:
		return fmt.Sprintf("struct with %d members", len(x.m))
	}
	return fmt.Sprintf("%T", v)
}
