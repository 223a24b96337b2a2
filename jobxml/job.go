package jobxml

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Version is the document version this package writes and the only one it
// reads. A change that an older reader could misunderstand gets a new
// number; see docs/job-xml.md for how version 2 would be rolled out.
const Version = 1

// DefaultPermission is the permission a job needs when its submitter named
// none; the encoder writes it for an empty Permission so the document never
// leaves the agent to guess.
const DefaultPermission = "run"

// maxTimeoutSeconds is the longest timeout a time.Duration can hold.
const maxTimeoutSeconds = math.MaxInt64 / int64(time.Second)

// Job is the job document: one run of a job, as the agent needs it to run
// the script and report on it.
type Job struct {
	ID, Run     int64 // job id and run id (> 0)
	Attempt     int   // which dispatch of the run this is (>= 1), so the agent can tell a retry
	Name        string
	Permission  string // empty means DefaultPermission
	Priority    int    // any int; higher runs first on the agent too
	SubmittedBy string
	Timeout     time.Duration // whole seconds; 0 means none and omits <timeout>
	Interpreter string        // the <script interpreter="..."> attribute; required
	Script      string
}

// EncodeJob writes j as a job document. It refuses a job that DecodeJob
// would refuse, so that the server finds a broken row when it dispatches,
// not the agent after it acknowledged the run.
func EncodeJob(j Job) ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("job document: "+format, args...)
	}
	switch {
	case j.ID <= 0:
		return bad("id: %d is not positive", j.ID)
	case j.Run <= 0:
		return bad("run: %d is not positive", j.Run)
	case j.Attempt < 1:
		return bad("attempt: %d is less than 1", j.Attempt)
	case j.Timeout < 0:
		return bad("timeout: %v is negative", j.Timeout)
	case j.Timeout%time.Second != 0:
		return bad("timeout: %v is not a whole number of seconds", j.Timeout)
	case j.Interpreter == "":
		return bad("interpreter: must not be empty")
	}
	perm := j.Permission
	if perm == "" {
		perm = DefaultPermission
	}
	for _, f := range [...]struct{ name, val string }{
		{"name", j.Name}, {"permission", perm}, {"submitted-by", j.SubmittedBy},
		{"interpreter", j.Interpreter}, {"script", j.Script},
	} {
		if err := ValidateText(f.name, f.val); err != nil {
			return nil, fmt.Errorf("job document: %w", err)
		}
	}

	var b bytes.Buffer
	b.Grow(250 + len(j.Name) + len(perm) + len(j.SubmittedBy) + len(j.Interpreter) + len(j.Script) + len(j.Script)/64)
	b.WriteString(`<job version="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), Version, 10))
	b.WriteString(`" id="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), j.ID, 10))
	b.WriteString(`" run="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), j.Run, 10))
	b.WriteString(`" attempt="`)
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(j.Attempt), 10))
	b.WriteString("\">\n  <name>")
	writeText(&b, j.Name)
	b.WriteString("</name>\n  <permission>")
	writeText(&b, perm)
	b.WriteString("</permission>\n  <priority>")
	b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(j.Priority), 10))
	b.WriteString("</priority>\n  <submitted-by>")
	writeText(&b, j.SubmittedBy)
	b.WriteString("</submitted-by>\n")
	if j.Timeout > 0 {
		b.WriteString("  <timeout>")
		b.Write(strconv.AppendInt(b.AvailableBuffer(), int64(j.Timeout/time.Second), 10))
		b.WriteString("</timeout>\n")
	}
	b.WriteString(`  <script interpreter="`)
	writeAttr(&b, j.Interpreter)
	b.WriteString(`">`)
	writeCDATA(&b, j.Script)
	b.WriteString("</script>\n</job>\n")
	return b.Bytes(), nil
}

// The children of <job>, as bits for the seen-set.
const (
	jName = 1 << iota
	jPermission
	jPriority
	jSubmittedBy
	jTimeout
	jScript
	jRequired = jName | jPermission | jPriority | jSubmittedBy | jScript
)

var jobChildren = [...]struct {
	name, tag string
	bit       int
}{
	{"name", "<name>", jName}, {"permission", "<permission>", jPermission}, {"priority", "<priority>", jPriority},
	{"submitted-by", "<submitted-by>", jSubmittedBy}, {"timeout", "<timeout>", jTimeout}, {"script", "<script>", jScript},
}

var jobLoc = loc{elem: "<job>"}

var (
	jobAttrs    = []string{"version", "id", "run", "attempt"}
	scriptAttrs = []string{"interpreter"}
)

// DecodeJob parses a job document. Every error is an *Error naming the
// element or attribute at fault; the agent reports it as the run's failure
// instead of running something it only half understood.
func DecodeJob(b []byte) (Job, error) {
	j, err := decodeJob(b)
	if err != nil {
		return Job{}, err
	}
	return j, nil
}

func decodeJob(b []byte) (Job, error) {
	var j Job
	r := newReader("job document", b)
	defer r.release()
	se, err := r.root()
	if err != nil {
		return j, err
	}
	if string(se.name.local) != "job" {
		return j, r.errf("the root element is <%s>, want <job>", se.name)
	}
	if err := r.version(jobLoc, se, true); err != nil {
		return j, err
	}
	var av [4]string
	seen, err := r.attrs(jobLoc, se, jobAttrs, av[:])
	if err != nil {
		return j, err
	}
	for i, name := range jobAttrs[1:] {
		if seen&(1<<(i+1)) == 0 {
			return j, r.errf("<job>: missing attribute %q", name)
		}
	}
	var msg string
	if j.ID, msg = parsePositive(trimSpace(av[1]), 64); msg != "" {
		return j, r.errf("<job>: attribute \"id\": %s", msg)
	}
	if j.Run, msg = parsePositive(trimSpace(av[2]), 64); msg != "" {
		return j, r.errf("<job>: attribute \"run\": %s", msg)
	}
	attempt, msg := parsePositive(trimSpace(av[3]), strconv.IntSize)
	if msg != "" {
		return j, r.errf("<job>: attribute \"attempt\": %s", msg)
	}
	j.Attempt = int(attempt)
	rootStart := r.start

	have := 0
	for {
		ce, ok, err := r.child(jobLoc)
		if err != nil {
			return j, err
		}
		if !ok {
			break
		}
		name := ce.name.local
		bit, where := 0, loc{}
		for _, c := range jobChildren {
			if c.name == string(name) {
				bit, where = c.bit, loc{elem: c.tag}
			}
		}
		if bit == 0 {
			return j, r.errf("<job>: unknown element <%s>", name)
		}
		if have&bit != 0 {
			return j, r.errf("<job>: element %s appears twice", where)
		}
		have |= bit
		var val [1]string
		var vseen uint32
		if bit == jScript {
			vseen, err = r.attrs(where, ce, scriptAttrs, val[:])
		} else {
			_, err = r.attrs(where, ce, nil, nil)
		}
		if err != nil {
			return j, err
		}
		elemStart := r.start
		text, err := r.text(where)
		if err != nil {
			return j, err
		}
		bad := func(format string, args ...any) (Job, error) {
			return j, r.errAt(elemStart, "%s: "+format, append([]any{where}, args...)...)
		}
		switch bit {
		case jName:
			j.Name = text
		case jPermission:
			if text == "" {
				return bad("must not be empty (the default is %q)", DefaultPermission)
			}
			j.Permission = text
		case jSubmittedBy:
			j.SubmittedBy = text
		case jPriority:
			n, err := parseInt(trimSpace(text), strconv.IntSize)
			if err == errRange {
				return bad("%s is out of range", abbrev(trimSpace(text), 24))
			} else if err != nil {
				return bad("%q is not a whole number", abbrev(text, 24))
			}
			j.Priority = int(n)
		case jTimeout:
			t := trimSpace(text)
			n, err := parseInt(t, 64)
			switch {
			case err == nil && n < 0:
				return bad("%s is negative: a timeout is 0 or more seconds", t)
			case err == errRange || err == nil && n > maxTimeoutSeconds:
				return bad("%s is out of range (at most %d seconds)", abbrev(t, 24), maxTimeoutSeconds)
			case err != nil:
				return bad("%q is not a whole number of seconds", abbrev(text, 24))
			}
			j.Timeout = time.Duration(n) * time.Second
		case jScript:
			if vseen == 0 {
				return bad("missing attribute \"interpreter\"")
			}
			if val[0] == "" {
				return bad("attribute \"interpreter\" must not be empty")
			}
			j.Interpreter, j.Script = val[0], text
		}
	}
	for _, c := range jobChildren {
		if jRequired&c.bit != 0 && have&c.bit == 0 {
			return j, r.errAt(rootStart, "<job>: missing element <%s>", c.name)
		}
	}
	// The scanner already refused forbidden characters and references; this
	// is the guarantee, kept next to the code that relies on it, that a
	// decoded job always encodes again.
	for _, f := range [...]struct{ name, val string }{
		{"<name>", j.Name}, {"<permission>", j.Permission}, {"<submitted-by>", j.SubmittedBy},
		{"<script> attribute \"interpreter\"", j.Interpreter}, {"<script>", j.Script},
	} {
		if err := ValidateText(f.name, f.val); err != nil {
			return j, &Error{Doc: r.doc, Msg: err.Error()}
		}
	}
	return j, r.end("job")
}
