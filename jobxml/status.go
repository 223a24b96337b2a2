package jobxml

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// State is what an agent reports about a run. The agent reports only what it
// knows first hand; sent, received, cancelled and the rest are the server's.
type State string

const (
	StateRunning   State = "running"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// MaxStatuses bounds one status document, so that a decoder never builds an
// unbounded slice from one request; an agent with more to report sends
// several documents.
const MaxStatuses = 10000

// Status is one report on one run.
type Status struct {
	Run   int64
	State State
	// Exit is the process's exit code: required (and 0) for succeeded,
	// optional for failed, where it is absent when the process never exited
	// on its own (killed on timeout, never started), and absent for running.
	Exit     *int
	Started  time.Time // zero means absent
	Finished time.Time // required for succeeded and failed, absent for running
	// Reason is a short machine word saying why a run failed when the exit
	// code cannot: "timeout", "interrupted", "killed", "start-failed",
	// "lost", ... Only failed statuses carry one.
	Reason    string
	Output    string // stdout and stderr as one text; empty and not Truncated omits <output>
	Truncated bool   // the agent kept only part of the output
}

// checkStatus returns, in the document's own terms, why st is not a status
// the server could act on, or "". Encoder and decoder share it so that they
// cannot drift apart.
func checkStatus(st *Status) string {
	if st.Run <= 0 {
		return fmt.Sprintf("run %d is not a positive whole number", st.Run)
	}
	if msg := checkReason(st.Reason); msg != "" {
		return msg
	}
	for _, t := range [...]struct {
		name string
		t    time.Time
	}{{"started", st.Started}, {"finished", st.Finished}} {
		if !t.t.IsZero() {
			if msg := checkTime(t.t); msg != "" {
				return fmt.Sprintf("%s %s", t.name, msg)
			}
		}
	}
	switch st.State {
	case StateRunning:
		switch {
		case st.Exit != nil:
			return `exit is not allowed with state="running": the process has not exited`
		case !st.Finished.IsZero():
			return `finished is not allowed with state="running"`
		case st.Reason != "":
			return `reason is only allowed with state="failed"`
		}
	case StateSucceeded:
		switch {
		case st.Exit == nil:
			return `state="succeeded" requires exit="0"`
		case *st.Exit != 0:
			return fmt.Sprintf(`state="succeeded" contradicts exit="%d": a non-zero exit is a failure`, *st.Exit)
		case st.Reason != "":
			return `reason is only allowed with state="failed"`
		}
	case StateFailed:
		if st.Exit != nil && *st.Exit == 0 {
			return `state="failed" contradicts exit="0": exit 0 is a success; a run stopped from outside has no exit, only a reason`
		}
	case "":
		return "state is missing"
	default:
		return fmt.Sprintf("state %q is not one of running, succeeded, failed", abbrev(string(st.State), 24))
	}
	if st.State != StateRunning && st.Finished.IsZero() {
		return fmt.Sprintf(`state="%s" requires finished`, st.State)
	}
	if !st.Started.IsZero() && !st.Finished.IsZero() && st.Finished.Before(st.Started) {
		return fmt.Sprintf("finished %s is before started %s", st.Finished.UTC().Format(time.RFC3339Nano), st.Started.UTC().Format(time.RFC3339Nano))
	}
	return ""
}

// checkReason enforces [a-z][a-z0-9-]{0,31}: reasons are matched by
// programs and shown in tables, so they are words, not sentences.
func checkReason(s string) string {
	if s == "" {
		return ""
	}
	ok := len(s) <= 32 && s[0] >= 'a' && s[0] <= 'z'
	for i := 1; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Sprintf("reason %q is not a word of the form [a-z][a-z0-9-]{0,31}", abbrev(s, 40))
	}
	return ""
}

// EncodeStatuses writes one status as a <status> root and several as
// <status> children of a <statuses version="1"> root. It refuses a status
// the decoder would refuse, so that the agent learns of its own bug before
// it queues a report the server will never accept.
func EncodeStatuses(ss []Status) ([]byte, error) {
	switch {
	case len(ss) == 0:
		return nil, fmt.Errorf("status document: no status to encode")
	case len(ss) > MaxStatuses:
		return nil, fmt.Errorf("status document: %d statuses, at most %d in one document", len(ss), MaxStatuses)
	}
	size := 64
	for i := range ss {
		st := &ss[i]
		if msg := checkStatus(st); msg != "" {
			return nil, fmt.Errorf("status document: %s: %s", statusLabel(ss, i), msg)
		}
		if err := ValidateText("output", st.Output); err != nil {
			return nil, fmt.Errorf("status document: %s: %w", statusLabel(ss, i), err)
		}
		size += 200 + len(st.Output) + len(st.Output)/64
	}
	var b bytes.Buffer
	b.Grow(size)
	if len(ss) == 1 {
		writeStatus(&b, &ss[0], "")
		return b.Bytes(), nil
	}
	b.WriteString(`<statuses version="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), Version, 10))
	b.WriteString("\">\n")
	for i := range ss {
		writeStatus(&b, &ss[i], "  ")
	}
	b.WriteString("</statuses>\n")
	return b.Bytes(), nil
}

func statusLabel(ss []Status, i int) string {
	if len(ss) == 1 {
		return fmt.Sprintf("run %d", ss[0].Run)
	}
	return fmt.Sprintf("status #%d (run %d)", i+1, ss[i].Run)
}

func writeStatus(b *bytes.Buffer, st *Status, indent string) {
	b.WriteString(indent)
	b.WriteString(`<status run="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), st.Run, 10))
	b.WriteString(`" state="`)
	b.WriteString(string(st.State)) // checked: one of three words
	if st.Exit != nil {
		b.WriteString(`" exit="`)
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(*st.Exit), 10))
	}
	if !st.Started.IsZero() {
		b.WriteString(`" started="`)
		b.Write(st.Started.UTC().AppendFormat(b.AvailableBuffer(), time.RFC3339Nano))
	}
	if !st.Finished.IsZero() {
		b.WriteString(`" finished="`)
		b.Write(st.Finished.UTC().AppendFormat(b.AvailableBuffer(), time.RFC3339Nano))
	}
	if st.Reason != "" {
		b.WriteString(`" reason="`)
		b.WriteString(st.Reason) // checked: [a-z0-9-] only
	}
	if st.Output == "" && !st.Truncated {
		b.WriteString("\"/>\n")
		return
	}
	b.WriteString("\">\n")
	b.WriteString(indent)
	b.WriteString(`  <output truncated="`)
	b.WriteString(strconv.FormatBool(st.Truncated))
	b.WriteString(`">`)
	writeCDATA(b, st.Output)
	b.WriteString("</output>\n")
	b.WriteString(indent)
	b.WriteString("</status>\n")
}

var (
	statusAttrs     = []string{"run", "state", "exit", "started", "finished", "reason", "version"}
	statusesAttrs   = []string{"version"}
	outputAttrs     = []string{"truncated"}
	statusAttrsNoV  = statusAttrs[:6]
	statusesWhere   = loc{elem: "<statuses>"}
	statusRootWhere = loc{elem: "<status>"}
)

// DecodeStatuses parses a status document with either root. Every error is
// an *Error naming the status (by position, and by run once its run
// attribute was read), the element or attribute, and why.
func DecodeStatuses(b []byte) ([]Status, error) {
	r := newReader("status document", b)
	defer r.release()
	se, err := r.root()
	if err != nil {
		return nil, err
	}
	switch string(se.name.local) {
	case "status":
		if err := r.version(statusRootWhere, se, false); err != nil {
			return nil, err
		}
		st, err := r.status(statusRootWhere, se, statusAttrs)
		if err != nil {
			return nil, err
		}
		if err := r.end("status"); err != nil {
			return nil, err
		}
		return []Status{st}, nil
	case "statuses":
	default:
		return nil, r.errf("the root element is <%s>, want <status> or <statuses>", se.name)
	}
	if err := r.version(statusesWhere, se, true); err != nil {
		return nil, err
	}
	if _, err := r.attrs(statusesWhere, se, statusesAttrs, make([]string, 1)); err != nil {
		return nil, err
	}
	rootStart := r.start
	var out []Status
	for {
		ce, ok, err := r.child(statusesWhere)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if string(ce.name.local) != "status" {
			return nil, r.errf("<statuses>: unknown element <%s>: only <status> may appear here", ce.name.local)
		}
		if len(out) == MaxStatuses {
			return nil, r.errf("<statuses>: more than %d <status> elements: send the rest in another document", MaxStatuses)
		}
		if out == nil {
			out = make([]Status, 0, 16)
		}
		where := loc{elem: "<status>", idx: len(out) + 1}
		for _, a := range ce.attrs {
			if a.name.space == "" && string(a.name.local) == "version" {
				return nil, r.errf("%s: attribute \"version\" belongs on <statuses>, not on the <status> elements inside it", where)
			}
		}
		st, err := r.status(where, ce, statusAttrsNoV)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, r.errAt(rootStart, "<statuses>: no <status> element: a document reports at least one run")
	}
	if err := r.end("statuses"); err != nil {
		return nil, err
	}
	return out, nil
}

// status reads one <status> element whose start tag se was just read.
func (r *reader) status(where loc, se *startTag, names []string) (Status, error) {
	var st Status
	var av [7]string
	seen, err := r.attrs(where, se, names, av[:len(names)])
	if err != nil {
		return st, err
	}
	start := r.start
	bad := func(format string, args ...any) (Status, error) {
		return Status{}, r.errAt(start, "%s: "+format, append([]any{where}, args...)...)
	}
	if seen&1 == 0 {
		return bad("missing attribute \"run\"")
	}
	var msg string
	if st.Run, msg = parsePositive(trimSpace(av[0]), 64); msg != "" {
		return bad("attribute \"run\": %s", msg)
	}
	where.run = st.Run
	if seen&2 == 0 {
		return bad("missing attribute \"state\"")
	}
	switch s := State(trimSpace(av[1])); s {
	case StateRunning, StateSucceeded, StateFailed:
		st.State = s
	default:
		return bad("attribute \"state\": %q is not one of running, succeeded, failed", abbrev(av[1], 24))
	}
	if seen&4 != 0 {
		n, err := parseInt(trimSpace(av[2]), strconv.IntSize)
		if err == errRange {
			return bad("attribute \"exit\": %s is out of range", abbrev(trimSpace(av[2]), 24))
		} else if err != nil {
			return bad("attribute \"exit\": %q is not a whole number", abbrev(av[2], 24))
		}
		code := int(n)
		st.Exit = &code
	}
	for k, dst := range [...]*time.Time{&st.Started, &st.Finished} {
		if seen&(8<<k) == 0 {
			continue
		}
		t, msg := parseTime(trimSpace(av[3+k]))
		if msg != "" {
			return bad("attribute %q: %s", names[3+k], msg)
		}
		*dst = t
	}
	if seen&32 != 0 {
		st.Reason = av[5]
		if st.Reason == "" {
			return bad("attribute \"reason\" is empty: leave it out instead")
		}
	}
	if msg := checkStatus(&st); msg != "" {
		return bad("%s", msg)
	}

	haveOutput := false
	for {
		ce, ok, err := r.child(where)
		if err != nil {
			return Status{}, err
		}
		if !ok {
			break
		}
		if string(ce.name.local) != "output" {
			return Status{}, r.errf("%s: unknown element <%s>", where, ce.name.local)
		}
		ow := where
		ow.sub = "<output>"
		if haveOutput {
			return Status{}, r.errf("%s: element <output> appears twice", where)
		}
		haveOutput = true
		var tv [1]string
		tseen, err := r.attrs(ow, ce, outputAttrs, tv[:])
		if err != nil {
			return Status{}, err
		}
		if tseen != 0 {
			switch trimSpace(tv[0]) {
			case "true":
				st.Truncated = true
			case "false":
			default:
				return Status{}, r.errf("%s: attribute \"truncated\": %q is neither true nor false", ow, abbrev(tv[0], 24))
			}
		}
		if st.Output, err = r.text(ow); err != nil {
			return Status{}, err
		}
		if err := ValidateText("", st.Output); err != nil {
			err.(*TextError).Field = ow.String()
			return Status{}, &Error{Doc: r.doc, Msg: err.Error()}
		}
	}
	return st, nil
}
