package xmlrpc

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Struct is a decoded XML-RPC struct together with a label saying where it
// came from (`param 1 (job)`, `param 1 (job): member "env"`), so that its
// accessors can produce faults a user can act on without the handler
// repeating the context. The zero Struct is empty.
//
// A member that is absent or nil is reported as ok=false with no error:
// clients such as Python with allow_none send None for "not given".
type Struct struct {
	label string
	m     map[string]any
}

// NewStruct wraps m; label prefixes the messages of the accessors' faults.
func NewStruct(label string, m map[string]any) Struct {
	return Struct{label: label, m: m}
}

// Label is the prefix of this struct's fault messages.
func (s Struct) Label() string { return s.label }

// Map is the underlying map; it is not a copy.
func (s Struct) Map() map[string]any { return s.m }

// Len is the number of members.
func (s Struct) Len() int { return len(s.m) }

// Has reports whether key is present and not nil.
func (s Struct) Has(key string) bool { return s.m[key] != nil }

// Get returns the raw member value.
func (s Struct) Get(key string) (any, bool) {
	v, ok := s.m[key]
	return v, ok
}

func (s Struct) memberLabel(key string) string {
	l := "member " + strconv.Quote(clip(key, 60))
	if s.label == "" {
		return l
	}
	return s.label + ": " + l
}

func member[T any](s Struct, key string, conv func(any) (T, string)) (T, bool, error) {
	var zero T
	v := s.m[key]
	if v == nil {
		return zero, false, nil
	}
	x, msg := conv(v)
	if msg != "" {
		return zero, true, invalid(s.memberLabel(key), msg)
	}
	return x, true, nil
}

// String returns member key, which must be a string.
func (s Struct) String(key string) (string, bool, error) { return member(s, key, asString) }

// Int returns member key, which must be an integer.
func (s Struct) Int(key string) (int64, bool, error) { return member(s, key, asInt) }

// Bool returns member key, which must be a boolean.
func (s Struct) Bool(key string) (bool, bool, error) { return member(s, key, asBool) }

// Float returns member key, a double or an integer.
func (s Struct) Float(key string) (float64, bool, error) { return member(s, key, asFloat) }

// Time returns member key, a dateTime.iso8601 or an RFC 3339 string, in UTC.
func (s Struct) Time(key string) (time.Time, bool, error) { return member(s, key, asTime) }

// ID returns member key as an identifier (see Params.ID).
func (s Struct) ID(key string) (int64, bool, error) { return member(s, key, asID) }

// IDs returns member key, an array of identifiers.
func (s Struct) IDs(key string) ([]int64, bool, error) { return member(s, key, asIDs) }

// StringSlice returns member key, an array of strings.
func (s Struct) StringSlice(key string) ([]string, bool, error) {
	return member(s, key, asStrings)
}

// Array returns member key, which must be an array.
func (s Struct) Array(key string) ([]any, bool, error) { return member(s, key, asArray) }

// Struct returns member key, a struct labelled with its path for its own
// accessors' messages.
func (s Struct) Struct(key string) (Struct, bool, error) {
	m, ok, err := member(s, key, asMap)
	if !ok || err != nil {
		return Struct{}, ok, err
	}
	return Struct{label: s.memberLabel(key), m: m}, true, nil
}

// StringMap returns member key, a struct whose members are all strings
// (facts, labels), as a map; a member that is not a string is refused,
// the first in sorted order named.
func (s Struct) StringMap(key string) (map[string]string, bool, error) {
	m, ok, err := s.Struct(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	keys := make([]string, 0, m.Len())
	for k := range m.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		v, _, err := m.String(k)
		if err != nil {
			return nil, true, err
		}
		out[k] = v
	}
	return out, true, nil
}

// Unknown refuses members outside allowed, naming the first in sorted order,
// so that a misspelt option is an error instead of being quietly ignored.
func (s Struct) Unknown(allowed ...string) error {
	var bad []string
	for k := range s.m {
		if !slices.Contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	known := slices.Clone(allowed)
	slices.Sort(known)
	msg := "unknown member " + strconv.Quote(clip(bad[0], 60))
	if len(known) == 0 {
		msg += " (this struct takes no members)"
	} else {
		msg += " (allowed: " + strings.Join(known, ", ") + ")"
	}
	if s.label == "" {
		return invalid("struct", msg)
	}
	return invalid(s.label, msg)
}
