package jobxml

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

// Error is a document the decoder refused. It carries the position apart from
// the message so that a server can log it in fields while the agent's
// operator still gets one readable line from Error().
type Error struct {
	Doc    string // "job document" or "status document"
	Msg    string // what is wrong, starting with the element it concerns
	Line   int    // 1-based line of the construct at fault; 0 when unknown
	Column int    // 1-based byte column on that line; 0 when unknown
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s: %s (line %d, column %d)", e.Doc, e.Msg, e.Line, e.Column)
	case e.Line > 0:
		return fmt.Sprintf("%s: %s (line %d)", e.Doc, e.Msg, e.Line)
	}
	return e.Doc + ": " + e.Msg
}

// loc names the element an error is about. It is formatted only when an
// error is built, so that decoding a valid document spends nothing on it.
type loc struct {
	elem string // "<job>", "<timeout>", "<status>", ...
	idx  int    // 1-based position of a <status> inside <statuses>; 0 otherwise
	run  int64  // the run of a <status>, once read
	sub  string // the child of a <status> concerned, e.g. "<output>"
}

func (l loc) String() string {
	s := l.elem
	if l.idx > 0 {
		s += " #" + strconv.Itoa(l.idx)
	}
	if l.run > 0 {
		s += " (run " + strconv.FormatInt(l.run, 10) + ")"
	}
	if l.sub != "" {
		s += ": " + l.sub
	}
	return s
}

// reader wraps encoding/xml's token stream with the rules both documents
// share: one root, no DTD, no processing instructions other than the XML
// declaration, no namespaces, no character references to characters XML
// forbids, nothing after the root.
type reader struct {
	doc   string
	src   []byte // the input after any byte-order mark
	bom   int    // bytes of byte-order mark skipped, to report true columns
	d     *xml.Decoder
	start int64 // input offset where the last token began
	ntok  int
}

const utf8BOM = "\xEF\xBB\xBF"

func newReader(doc string, b []byte) *reader {
	r := &reader{doc: doc, src: b}
	if bytes.HasPrefix(b, []byte(utf8BOM)) {
		r.src, r.bom = b[len(utf8BOM):], len(utf8BOM)
	}
	r.d = xml.NewDecoder(bytes.NewReader(r.src))
	r.d.Strict = true // also the default; the point is that it stays so
	r.d.Entity = nil  // only &lt; &gt; &amp; &apos; &quot;
	return r
}

// errAt makes an *Error at input offset off.
func (r *reader) errAt(off int64, format string, args ...any) error {
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
func (r *reader) errf(format string, args ...any) error {
	return r.errAt(r.start, format, args...)
}

// next returns the next token once the rules shared by both documents hold
// for it. CharData is only valid until the following call, as with
// encoding/xml itself.
func (r *reader) next() (xml.Token, error) {
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
// &#1; and turns &#xD800; into U+FFFD; a strict reader must do neither.
func (r *reader) checkCharRefs(from, to int64) error {
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

// checkDecl accepts the pseudo-attributes of an XML declaration that mean
// what this package assumes: XML 1.0 in UTF-8.
func checkDecl(inst string) string {
	s := strings.TrimSpace(inst)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return fmt.Sprintf("cannot read %q", abbrev(s, 20))
		}
		name := strings.TrimSpace(s[:eq])
		rest := strings.TrimLeft(s[eq+1:], " \t\r\n")
		if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
			return fmt.Sprintf("value of %s is not quoted", name)
		}
		end := strings.IndexByte(rest[1:], rest[0])
		if end < 0 {
			return fmt.Sprintf("value of %s is not closed", name)
		}
		val := rest[1 : 1+end]
		s = strings.TrimLeft(rest[end+2:], " \t\r\n")
		switch name {
		case "version":
			if val != "1.0" {
				return fmt.Sprintf("XML version %q is not supported: documents are XML 1.0", val)
			}
		case "encoding":
			if !strings.EqualFold(val, "UTF-8") {
				return fmt.Sprintf("encoding %q is not supported: documents are UTF-8", val)
			}
		case "standalone":
			if val != "yes" && val != "no" {
				return fmt.Sprintf("standalone %q is neither yes nor no", val)
			}
		default:
			return fmt.Sprintf("unknown pseudo-attribute %q", name)
		}
	}
	return ""
}

// root reads up to the root element's start tag.
func (r *reader) root() (xml.StartElement, error) {
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
				return t, r.errf("root element <%s>: namespaces are not used in these documents", qname(t.Name))
			}
			return t, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, r.errf("text %q before the root element", abbrev(trimSpace(string(t)), 20))
			}
		case xml.EndElement: // cannot happen: the decoder refuses it
			return xml.StartElement{}, r.errf("unexpected </%s>", qname(t.Name))
		}
	}
}

// end checks that nothing but whitespace and comments follows the root.
func (r *reader) end(root string) error {
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
			return r.errf("element <%s> after the root element </%s>: a document has one root", qname(t.Name), root)
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
func (r *reader) child(where loc) (xml.StartElement, bool, error) {
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
				return t, false, r.errf("%s: element <%s>: namespaces are not used in these documents", where, qname(t.Name))
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
func (r *reader) text(where loc) (string, error) {
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
			return "", r.errf("%s: unexpected element <%s>: this element holds only text", where, qname(t.Name))
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
func (r *reader) attrs(where loc, se xml.StartElement, names []string, vals []string) (uint32, error) {
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
				return 0, r.errf("%s: namespace declaration %s: namespaces are not used in these documents", where, qname(a.Name))
			}
			return 0, r.errf("%s: unknown attribute %q", where, qname(a.Name))
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
func (r *reader) version(where loc, se xml.StartElement, required bool) error {
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

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

// trimSpace removes XML whitespace around a value of a non-string type,
// as XML Schema's whitespace collapsing does for numbers, dates and booleans.
func trimSpace(s string) string {
	return strings.Trim(s, " \t\r\n")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// abbrev shortens s for an error message, so that a hostile megabyte of
// text does not end up in a log line.
func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	k := n
	for k > 0 && s[k]&0xC0 == 0x80 {
		k--
	}
	return s[:k] + "…"
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// parseInt parses a canonical decimal integer: optional '-', no '+', no
// leading zeros. One spelling per value keeps the schema's pattern and this
// parser in agreement.
func parseInt(s string, bits int) (int64, error) {
	t := s
	if strings.HasPrefix(t, "-") {
		t = t[1:]
	}
	if !isDigits(t) || len(t) > 1 && t[0] == '0' || s == "-0" {
		return 0, errSyntax
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, errRange
	}
	return n, nil
}

var (
	errSyntax = errors.New("syntax")
	errRange  = errors.New("range")
)

// parsePositive parses an id or attempt number: 1 or more, canonical.
func parsePositive(s string, bits int) (int64, string) {
	n, err := parseInt(s, bits)
	switch {
	case err == errRange:
		return 0, fmt.Sprintf("%s is out of range", abbrev(s, 24))
	case err != nil || n <= 0:
		return 0, fmt.Sprintf("%q is not a positive whole number", abbrev(s, 24))
	}
	return n, ""
}

// parseTime parses an RFC 3339 timestamp and returns it in UTC. The syntax is
// checked before time.Parse because Go also accepts forms RFC 3339 does not
// (a comma before the fraction, more than nine fraction digits).
func parseTime(s string) (time.Time, string) {
	if !isRFC3339(s) {
		return time.Time{}, fmt.Sprintf("%q is not an RFC 3339 timestamp such as 2026-11-22T10:00:00Z", abbrev(s, 40))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Sprintf("%q is not a valid time: %s", s, strings.TrimPrefix(err.Error(), "parsing time "))
	}
	t = t.UTC()
	if msg := checkTime(t); msg != "" {
		return time.Time{}, fmt.Sprintf("%q %s", s, msg)
	}
	return t, ""
}

// checkTime limits timestamps to what RFC 3339 can write: years 1 to 9999
// in UTC. Year 1, January 1st, midnight is the zero time and means "absent"
// in the Go API, so it is not a timestamp either.
func checkTime(t time.Time) string {
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return "is outside the years 0001 to 9999 (UTC)"
	}
	if t.IsZero() {
		return "is the zero time, which stands for no time"
	}
	return ""
}

// isRFC3339 checks YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|±HH:MM).
func isRFC3339(s string) bool {
	const head = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(head)+1 {
		return false
	}
	for i := 0; i < len(head); i++ {
		if head[i] == 'd' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != head[i] {
			return false
		}
	}
	s = s[len(head):]
	if s[0] == '.' {
		k := 1
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == 1 || k > 10 {
			return false
		}
		s = s[k:]
	}
	if s == "Z" {
		return true
	}
	return len(s) == 6 && (s[0] == '+' || s[0] == '-') &&
		isDigits(s[1:3]) && s[3] == ':' && isDigits(s[4:6])
}
