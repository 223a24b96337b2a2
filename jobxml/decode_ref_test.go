package jobxml

// The encoding/xml-based decoders as they were before package xmlscan took
// over, kept unchanged (but for names) as the reference that
// FuzzDecodeJobMatchesReference and FuzzDecodeStatusesMatchesReference
// compare DecodeJob and DecodeStatuses with: the same decision, the same
// values and the same messages for every input.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// refReader wraps encoding/xml's token stream with the rules both documents
// share: one root, no DTD, no processing instructions other than the XML
// declaration, no namespaces, no character references to characters XML
// forbids, nothing after the root.
type refReader struct {
	doc   string
	src   []byte // the input after any byte-order mark
	bom   int    // bytes of byte-order mark skipped, to report true columns
	d     *xml.Decoder
	start int64 // input offset where the last token began
	ntok  int
}

func refNewReader(doc string, b []byte) *refReader {
	r := &refReader{doc: doc, src: b}
	if bytes.HasPrefix(b, []byte(utf8BOM)) {
		r.src, r.bom = b[len(utf8BOM):], len(utf8BOM)
	}
	r.d = xml.NewDecoder(bytes.NewReader(r.src))
	r.d.Strict = true // also the default; the point is that it stays so
	r.d.Entity = nil  // only &lt; &gt; &amp; &apos; &quot;
	return r
}

// errAt makes an *Error at input offset off.
func (r *refReader) errAt(off int64, format string, args ...any) error {
	e := &Error{Doc: r.doc, Msg: fmt.Sprintf(format, args...)}
	if off >= 0 && off <= int64(len(r.src)) {
		before := r.src[:off]
		e.Line = 1 + bytes.Count(before, []byte{'\n'})
		e.Column = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
		if e.Line == 1 {
			e.Column += r.bom
		}
	}
	return e
}

// errf makes an *Error at the start of the last token read.
func (r *refReader) errf(format string, args ...any) error {
	return r.errAt(r.start, format, args...)
}

// next returns the next token once the rules shared by both documents hold
// for it. CharData is only valid until the following call, as with
// encoding/xml itself.
func (r *refReader) next() (xml.Token, error) {
	r.start = r.d.InputOffset()
	tok, err := r.d.Token()
	if err != nil {
		if err == io.EOF {
			return nil, err
		}
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{Doc: r.doc, Msg: "XML syntax error: " + se.Msg, Line: se.Line}
		}
		return nil, &Error{Doc: r.doc, Msg: strings.TrimPrefix(err.Error(), "xml: ")}
	}
	r.ntok++
	end := r.d.InputOffset()
	switch t := tok.(type) {
	case xml.Directive:
		return nil, r.errf("<!%s> is not allowed: documents have no DTD, entity or other declarations", abbrev(firstWord(string(t)), 20))
	case xml.ProcInst:
		if t.Target != "xml" {
			return nil, r.errf("processing instruction <?%s?> is not allowed", abbrev(t.Target, 20))
		}
		if r.ntok != 1 || r.start != 0 {
			return nil, r.errf("the XML declaration <?xml ...?> must come first in the document")
		}
		if err := checkDecl(string(t.Inst)); err != "" {
			return nil, r.errf("XML declaration: %s", err)
		}
	case xml.StartElement:
		if err := r.checkCharRefs(r.start, end); err != nil {
			return nil, err
		}
	case xml.CharData:
		if !bytes.HasPrefix(r.src[r.start:], []byte("<![CDATA[")) {
			if err := r.checkCharRefs(r.start, end); err != nil {
				return nil, err
			}
		}
	}
	return tok, nil
}

// checkCharRefs refuses character references to characters XML forbids in
// the raw bytes of a start tag or of escaped text. encoding/xml accepts
// &#1; and turns &#xD800; into U+FFFD; a strict refReader must do neither.
func (r *refReader) checkCharRefs(from, to int64) error {
	raw := r.src[from:to]
	for {
		i := bytes.Index(raw, []byte("&#"))
		if i < 0 {
			return nil
		}
		j := bytes.IndexByte(raw[i:], ';')
		if j < 0 {
			return nil // the decoder would have refused it already
		}
		ref := string(raw[i+2 : i+j])
		var n uint64
		var err error
		if strings.HasPrefix(ref, "x") {
			n, err = strconv.ParseUint(ref[1:], 16, 32)
		} else {
			n, err = strconv.ParseUint(ref, 10, 32)
		}
		if err != nil || n > 0x10FFFF || !isXMLChar(rune(n)) {
			return r.errAt(from+int64(len(r.src[from:to])-len(raw)+i), "character reference &#%s; is not allowed in XML", abbrev(ref, 12))
		}
		raw = raw[i+j:]
	}
}

// root reads up to the root element's start tag.
func (r *refReader) root() (xml.StartElement, error) {
	// encoding/xml refuses other encodings and XML versions itself, but with
	// messages about its own API; check the declaration first to say it
	// in the document's terms.
	if len(r.src) > 5 && bytes.HasPrefix(r.src, []byte("<?xml")) && isSpace(r.src[5:6]) {
		if end := bytes.Index(r.src, []byte("?>")); end > 0 {
			if msg := checkDecl(string(r.src[5:end])); msg != "" {
				return xml.StartElement{}, r.errAt(0, "XML declaration: %s", msg)
			}
		}
	}
	for {
		tok, err := r.next()
		if err == io.EOF {
			return xml.StartElement{}, r.errAt(-1, "the document is empty: no root element")
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != "" {
				return t, r.errf("root element <%s>: namespaces are not used in these documents", refQname(t.Name))
			}
			return t, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, r.errf("text %q before the root element", abbrev(trimSpace(string(t)), 20))
			}
		case xml.EndElement: // cannot happen: the decoder refuses it
			return xml.StartElement{}, r.errf("unexpected </%s>", refQname(t.Name))
		}
	}
}

// end checks that nothing but whitespace and comments follows the root.
func (r *refReader) end(root string) error {
	for {
		tok, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return r.errf("element <%s> after the root element </%s>: a document has one root", refQname(t.Name), root)
		case xml.CharData:
			if !isSpace(t) {
				return r.errf("text %q after the root element </%s>", abbrev(trimSpace(string(t)), 20), root)
			}
		case xml.ProcInst:
			return r.errf("processing instruction after the root element </%s>", root)
		}
	}
}

// child is one event inside a container element: a child's start tag, or
// the container's end (ok false).
func (r *refReader) child(where loc) (xml.StartElement, bool, error) {
	for {
		tok, err := r.next()
		if err != nil {
			if err == io.EOF {
				return xml.StartElement{}, false, r.errAt(-1, "%s: unexpected end of document", where)
			}
			return xml.StartElement{}, false, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != "" {
				return t, false, r.errf("%s: element <%s>: namespaces are not used in these documents", where, refQname(t.Name))
			}
			return t, true, nil
		case xml.EndElement:
			return xml.StartElement{}, false, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, false, r.errf("%s: unexpected text %q", where, abbrev(trimSpace(string(t)), 20))
			}
		}
	}
}

// text reads the character data of an element whose start tag was just
// read, up to its end tag. Comments are skipped (they are not content);
// elements are refused.
func (r *refReader) text(where loc) (string, error) {
	var s string
	var buf []byte // only when the text comes in several pieces
	n := 0
	for {
		tok, err := r.next()
		if err != nil {
			if err == io.EOF {
				return "", r.errAt(-1, "%s: unexpected end of document", where)
			}
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			switch n {
			case 0:
				s = string(t)
			case 1:
				buf = append(append(make([]byte, 0, len(s)+len(t)+64), s...), t...)
			default:
				buf = append(buf, t...)
			}
			n++
		case xml.StartElement:
			return "", r.errf("%s: unexpected element <%s>: this element holds only text", where, refQname(t.Name))
		case xml.EndElement:
			if n > 1 {
				s = string(buf)
			}
			return s, nil
		}
	}
}

// attrs checks se's attributes against names (no others, none twice) and
// stores their values in vals, in the order of names. The returned mask has
// bit i set when names[i] was present.
func (r *refReader) attrs(where loc, se xml.StartElement, names []string, vals []string) (uint32, error) {
	var seen uint32
	for _, a := range se.Attr {
		i := -1
		if a.Name.Space == "" {
			for k, n := range names {
				if n == a.Name.Local {
					i = k
					break
				}
			}
		}
		if i < 0 {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				return 0, r.errf("%s: namespace declaration %s: namespaces are not used in these documents", where, refQname(a.Name))
			}
			return 0, r.errf("%s: unknown attribute %q", where, refQname(a.Name))
		}
		if seen&(1<<i) != 0 {
			return 0, r.errf("%s: attribute %q appears twice", where, names[i])
		}
		seen |= 1 << i
		vals[i] = a.Value
	}
	return seen, nil
}

// version checks the version attribute before any other, so that a document
// from a newer protocol is refused for what it is rather than for the first
// attribute this decoder does not know.
func (r *refReader) version(where loc, se xml.StartElement, required bool) error {
	for _, a := range se.Attr {
		if a.Name.Space != "" || a.Name.Local != "version" {
			continue
		}
		v := trimSpace(a.Value)
		if !isDigits(v) {
			return r.errf("%s: attribute \"version\": %q is not a version number", where, abbrev(a.Value, 20))
		}
		if n, err := strconv.Atoi(v); err != nil || n != Version {
			return r.errf("%s: version %s is not supported: this decoder knows version %d only", where, abbrev(v, 20), Version)
		}
		return nil
	}
	if required {
		return r.errf("%s: missing attribute \"version\"", where)
	}
	return nil
}

func refQname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// refDecodeStatuses parses a status document with either root. Every error is
// an *Error naming the status (by position, and by run once its run
// attribute was read), the element or attribute, and why.
func refDecodeStatuses(b []byte) ([]Status, error) {
	r := refNewReader("status document", b)
	se, err := r.root()
	if err != nil {
		return nil, err
	}
	switch se.Name.Local {
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
		return nil, r.errf("the root element is <%s>, want <status> or <statuses>", refQname(se.Name))
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
		if ce.Name.Local != "status" {
			return nil, r.errf("<statuses>: unknown element <%s>: only <status> may appear here", ce.Name.Local)
		}
		if len(out) == MaxStatuses {
			return nil, r.errf("<statuses>: more than %d <status> elements: send the rest in another document", MaxStatuses)
		}
		if out == nil {
			out = make([]Status, 0, 16)
		}
		where := loc{elem: "<status>", idx: len(out) + 1}
		for _, a := range ce.Attr {
			if a.Name.Space == "" && a.Name.Local == "version" {
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
func (r *refReader) status(where loc, se xml.StartElement, names []string) (Status, error) {
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
		if ce.Name.Local != "output" {
			return Status{}, r.errf("%s: unknown element <%s>", where, ce.Name.Local)
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

// refDecodeJob parses a job document. Every error is an *Error naming the
// element or attribute at fault; the agent reports it as the run's failure
// instead of running something it only half understood.
func refDecodeJob(b []byte) (Job, error) {
	j, err := refDecodeJobDoc(b)
	if err != nil {
		return Job{}, err
	}
	return j, nil
}

func refDecodeJobDoc(b []byte) (Job, error) {
	var j Job
	r := refNewReader("job document", b)
	se, err := r.root()
	if err != nil {
		return j, err
	}
	if se.Name.Local != "job" {
		return j, r.errf("the root element is <%s>, want <job>", refQname(se.Name))
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
		name := ce.Name.Local
		bit, where := 0, loc{}
		for _, c := range jobChildren {
			if c.name == name {
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
	// encoding/xml already refused forbidden characters and references; this
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
