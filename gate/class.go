package gate

import (
	"fmt"
	"strconv"
	"strings"
)

// Class says how an operation shares the gate.
type Class int

const (
	// NonModifier runs unless a modifier runs (reads, the agent protocol).
	NonModifier Class = iota
	// Modifier runs only when nothing else runs.
	Modifier
)

// String returns "non-modifier" or "modifier".
func (c Class) String() string {
	switch c {
	case NonModifier:
		return "non-modifier"
	case Modifier:
		return "modifier"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

func (c Class) valid() bool { return c == NonModifier || c == Modifier }

// ParseClass accepts "non-modifier" and "modifier" (case and surrounding
// blanks do not matter).
func ParseClass(s string) (Class, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "non-modifier":
		return NonModifier, nil
	case "modifier":
		return Modifier, nil
	}
	return 0, fmt.Errorf("gate: unknown class %q: want %q or %q", s, "modifier", "non-modifier")
}

// MarshalText encodes the class as its name, so that configuration files and
// JSON output carry "modifier" / "non-modifier".
func (c Class) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("gate: invalid class %d", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText is ParseClass.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
