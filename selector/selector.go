package selector

import (
	"fmt"
	"slices"
	"strings"
)

// factPrefix starts every key that names a fact.
const factPrefix = "fact."

// op is what a requirement asks of its key.
type op uint8

const (
	opExists    op = iota // KEY
	opNotExists           // !KEY
	opEquals              // KEY=VALUE and KEY==VALUE
	opNotEquals           // KEY!=VALUE
	opIn                  // KEY in (A,B)
	opNotIn               // KEY notin (A,B)
)

// requirement is one of a selector's comma-separated conditions.
type requirement struct {
	key    string   // without "fact."
	fact   bool     // the key names a fact, not a label
	op     op       // what is asked
	values []string // opEquals, opNotEquals: one value; opIn, opNotIn: one or more, no duplicates
	// set holds the values of a long list, where looking a value up beats
	// comparing it with each: a selector may list hundreds of hosts.
	set map[string]bool
}

// longList is the length from which a list is looked up in a set.
const longList = 8

// in reports whether v is one of the requirement's values.
func (r *requirement) in(v string) bool {
	if r.set != nil {
		return r.set[v]
	}
	return slices.Contains(r.values, v)
}

// matches applies the requirement to a machine. As in Kubernetes, a
// negative requirement holds when the key is absent.
func (r *requirement) matches(labels, facts map[string]string) bool {
	m := labels
	if r.fact {
		m = facts
	}
	v, ok := m[r.key]
	switch r.op {
	case opExists:
		return ok
	case opNotExists:
		return !ok
	case opEquals:
		return ok && v == r.values[0]
	case opNotEquals:
		return !ok || v != r.values[0]
	case opIn:
		return ok && r.in(v)
	case opNotIn:
		return !ok || !r.in(v)
	}
	return false
}

func (r *requirement) write(b *strings.Builder) {
	if r.op == opNotExists {
		b.WriteByte('!')
	}
	if r.fact {
		b.WriteString(factPrefix)
	}
	b.WriteString(r.key)
	switch r.op {
	case opEquals:
		b.WriteByte('=')
		b.WriteString(r.values[0])
	case opNotEquals:
		b.WriteString("!=")
		b.WriteString(r.values[0])
	case opIn, opNotIn:
		if r.op == opIn {
			b.WriteString(" in (")
		} else {
			b.WriteString(" notin (")
		}
		for i, v := range r.values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(v)
		}
		b.WriteByte(')')
	}
}

// Selector is a parsed selector: requirements that must all hold. It is
// immutable, so one can be shared among goroutines. The zero Selector has
// no requirement and matches every machine; Parse never returns it (see
// Empty).
type Selector struct {
	reqs []requirement
}

// Matches reports whether a machine with these labels and facts satisfies
// every requirement. A key is present when its map holds it, even with an
// empty value, so callers leave out facts a machine did not report rather
// than store them empty. Nil maps are empty.
func (s Selector) Matches(labels, facts map[string]string) bool {
	for i := range s.reqs {
		if !s.reqs[i].matches(labels, facts) {
			return false
		}
	}
	return true
}

// String is the selector in canonical form, which Parse reads back to an
// equal selector: the requirements in the order written, joined by ','
// without blanks, "==" written "=", blanks only around "in" and "notin",
// and a list's values in the order written without duplicates. Two
// selectors that differ only in spacing have the same String, which is
// what is worth storing and showing.
func (s Selector) String() string {
	var b strings.Builder
	for i := range s.reqs {
		if i > 0 {
			b.WriteByte(',')
		}
		s.reqs[i].write(&b)
	}
	return b.String()
}

// LabelsOnly reports whether no requirement names a fact: whether what
// the selector matches is decided by operators alone. Only such a
// selector may define a dynamic group that an ACL rule names, since a
// machine chooses its own facts and could otherwise grant itself work.
func (s Selector) LabelsOnly() bool {
	for i := range s.reqs {
		if s.reqs[i].fact {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirement, as only the zero
// Selector has: it matches every machine. Parse refuses the empty string
// rather than return it, so a command that means "every machine" without
// --selector says so by using the zero Selector, not by accident.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// Union is what a repeated --selector flag means: the machines that any of
// its selectors matches. The empty Union matches nothing; a command with
// no --selector chooses its machines otherwise.
type Union []Selector

// ParseUnion parses each of ss. An error names the selector it is about
// and wraps its *Error, for errors.As.
func ParseUnion(ss []string) (Union, error) {
	u := make(Union, 0, len(ss))
	for _, s := range ss {
		sel, err := Parse(s)
		if err != nil {
			return nil, fmt.Errorf("selector %q: %w", s, err)
		}
		u = append(u, sel)
	}
	return u, nil
}

// Matches reports whether any of the selectors matches the machine.
func (u Union) Matches(labels, facts map[string]string) bool {
	for _, s := range u {
		if s.Matches(labels, facts) {
			return true
		}
	}
	return false
}

// LabelsOnly reports whether no selector of the union names a fact.
func (u Union) LabelsOnly() bool {
	for _, s := range u {
		if !s.LabelsOnly() {
			return false
		}
	}
	return true
}

// CheckLabel checks a label as `client label` would set it: a key a
// selector can name as a label (so not beginning with "fact.", which
// names a fact) and a value a selector can compare. Labels that break the
// rules could be stored but never selected, so they are refused instead.
func CheckLabel(key, value string) error {
	if strings.HasPrefix(key, factPrefix) {
		return fmt.Errorf("label key %q: keys beginning with %q name facts, not labels", key, factPrefix)
	}
	if key == "" {
		return fmt.Errorf("label key is empty")
	}
	if e := checkKey(key, 1); e != nil {
		return fmt.Errorf("label key %q: %s", key, e.Msg)
	}
	if e := checkValue(value, 1, false); e != nil {
		return fmt.Errorf("label value %q: %s", value, e.Msg)
	}
	return nil
}

// CheckFact checks a fact as a machine reports it: a key a selector can
// name after "fact." and a value a selector can compare (a fact's value
// may also hold '+' and be up to 253 characters). The key is written
// without "fact.", which selectors add: a key beginning with it is
// refused, since "fact.fact.os" is far more often a mistake than a name.
func CheckFact(key, value string) error {
	if name, ok := strings.CutPrefix(key, factPrefix); ok && name != "" {
		return fmt.Errorf("fact key %q: write %q: selectors add %q themselves", key, name, factPrefix)
	}
	if key == "" {
		return fmt.Errorf("fact key is empty")
	}
	if e := checkKey(key, 1); e != nil {
		return fmt.Errorf("fact key %q: %s", key, e.Msg)
	}
	if e := checkValue(value, 1, true); e != nil {
		return fmt.Errorf("fact value %q: %s", value, e.Msg)
	}
	return nil
}
