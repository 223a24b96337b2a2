package jobxml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scirectl/scirectl/xmlscan"
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

// reader wraps xmlscan's token stream with the rules both documents share:
// one root, no DTD, no processing instructions other than the XML
// declaration, no namespaces, no character references to characters XML
// forbids, nothing after the root. The scanner reads as encoding/xml's
// Decoder.Token does (Nesting), and reader translates namespace prefixes as
// Token does, so that names in messages are what they always were.
type reader struct {
	doc   string
	src   []byte // the input after any byte-order mark
	bom   int    // bytes of byte-order mark skipped, to report true columns
	s     xmlscan.Scanner
	start int // input offset where the last token began
	ntok  int

	cur     startTag    // the last start tag read; valid until the next token
	scratch []byte      // attribute values being gathered
	ns      []nsBinding // namespace bindings of the open elements, innermost last
	marks   []int       // len(ns) when each open element started
}

// name is an element or attribute name after namespace translation, as
// encoding/xml's Token gives it: space is a URL (or an undeclared prefix).
type name struct {
	space string
	local []byte // points into the input
}

func (n name) String() string {
	if n.space != "" {
		return n.space + ":" + string(n.local)
	}
	return string(n.local)
}

type attr struct {
	name  name
	value []byte // valid until the next token
}

type startTag struct {
	name  name
	attrs []attr
}

type nsBinding struct{ prefix, url string }

const xmlURL = "http://www.w3.org/XML/1998/namespace"

const utf8BOM = "\xEF\xBB\xBF"

var readerPool = sync.Pool{New: func() any { return new(reader) }}

// newReader returns a reader of b from the pool; release puts it back.
func newReader(doc string, b []byte) *reader {
	r := readerPool.Get().(*reader)
	r.doc, r.src, r.bom = doc, b, 0
	if bytes.HasPrefix(b, []byte(utf8BOM)) {
		r.src, r.bom = b[len(utf8BOM):], len(utf8BOM)
	}
	r.s.Reset(r.src)
	r.s.Nesting = true
	r.start, r.ntok = 0, 0
	r.ns, r.marks = r.ns[:0], r.marks[:0]
	return r
}

// release returns r to the pool. Nothing a decoder returns points into r.
func (r *reader) release() {
	r.s.Reset(nil)
	r.src = nil
	clear(r.ns)
	clear(r.cur.attrs[:cap(r.cur.attrs)])
	if cap(r.scratch) > 64<<10 {
		r.scratch = nil
	}
	readerPool.Put(r)
}

// errAt makes an *Error at input offset off.
func (r *reader) errAt(off int, format string, args ...any) error {
	e := &Error{Doc: r.doc, Msg: fmt.Sprintf(format, args...)}
	if off >= 0 && off <= len(r.src) {
		before := r.src[:off]
		e.Line = 1 + bytes.Count(before, []byte{'\n'})
		e.Column = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
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

// next returns the kind of the next token once the rules shared by both
// documents hold for it. Its data (r.s.Data, r.cur) is only valid until the
// following call, as with encoding/xml itself.
func (r *reader) next() (xmlscan.Kind, error) {
	r.start = r.s.Offset()
	k, err := r.s.Next()
	if err != nil {
		if err == io.EOF {
			return k, err
		}
		if se, ok := err.(*xmlscan.SyntaxError); ok {
			return k, &Error{Doc: r.doc, Msg: "XML syntax error: " + se.Msg, Line: se.Line}
		}
		return k, &Error{Doc: r.doc, Msg: strings.TrimPrefix(err.Error(), "xml: ")}
	}
	r.ntok++
	switch k {
	case xmlscan.Directive:
		return k, r.errf("<!%s> is not allowed: documents have no DTD, entity or other declarations", abbrev(firstWord(string(r.s.Data)), 20))
	case xmlscan.ProcInst:
		if string(r.s.Name) != "xml" {
			return k, r.errf("processing instruction <?%s?> is not allowed", abbrev(string(r.s.Name), 20))
		}
		if r.ntok != 1 || r.start != 0 {
			return k, r.errf("the XML declaration <?xml ...?> must come first in the document")
		}
		if err := checkDecl(string(r.s.Data)); err != "" {
			return k, r.errf("XML declaration: %s", err)
		}
	case xmlscan.StartElement:
		r.startElement()
		if r.s.SurrogateRef >= 0 {
			return k, r.badRef()
		}
	case xmlscan.EndElement:
		n := len(r.marks) - 1
		r.ns = r.ns[:r.marks[n]]
		r.marks = r.marks[:n]
	case xmlscan.CharData:
		if !r.s.CDATA && r.s.SurrogateRef >= 0 {
			return k, r.badRef()
		}
	}
	return k, nil
}

// badRef refuses a character reference to a surrogate, which encoding/xml
// turns into U+FFFD and a strict reader must refuse. (References to the
// other characters XML forbids, such as &#1;, the scanner refuses itself.)
func (r *reader) badRef() error {
	off := r.s.SurrogateRef
	ref := r.src[off+2:]
	if i := bytes.IndexByte(ref, ';'); i >= 0 {
		ref = ref[:i]
	}
	return r.errAt(off, "character reference &#%s; is not allowed in XML", abbrev(string(ref), 12))
}

// startElement records the namespace declarations of the start tag just
// read and translates its names, as Decoder.Token does.
func (r *reader) startElement() {
	r.marks = append(r.marks, len(r.ns))
	plain := !hasColon(r.s.Name) // no prefixes and no xmlns anywhere: nothing to translate
	for _, a := range r.s.Attrs {
		if hasColon(a.Name) {
			plain = false
			if p := xmlscan.Prefix(a.Name); string(p) == "xmlns" {
				r.ns = append(r.ns, nsBinding{string(xmlscan.Local(a.Name)), string(a.Value)})
			}
		} else if string(a.Name) == "xmlns" {
			plain = false
			r.ns = append(r.ns, nsBinding{"", string(a.Value)})
		}
	}
	r.cur.attrs = r.cur.attrs[:0]
	if plain && len(r.ns) == 0 {
		r.cur.name = name{local: r.s.Name}
		for _, a := range r.s.Attrs {
			r.cur.attrs = append(r.cur.attrs, attr{name{local: a.Name}, a.Value})
		}
		return
	}
	r.cur.name = r.translate(r.s.Name, true)
	for _, a := range r.s.Attrs {
		r.cur.attrs = append(r.cur.attrs, attr{r.translate(a.Name, false), a.Value})
	}
}

func hasColon(b []byte) bool {
	for _, c := range b {
		if c == ':' {
			return true
		}
	}
	return false
}

// translate is encoding/xml's namespace translation of a name as written.
func (r *reader) translate(raw []byte, element bool) name {
	prefix, local := xmlscan.Prefix(raw), xmlscan.Local(raw)
	if prefix == nil && (!element || string(local) == "xmlns") {
		return name{local: local}
	}
	key := string(prefix) // no allocation for nil
	switch key {
	case "xmlns":
		return name{space: "xmlns", local: local}
	case "xml":
		key = xmlURL
	}
	for i := len(r.ns) - 1; i >= 0; i-- {
		if r.ns[i].prefix == key {
			return name{space: r.ns[i].url, local: local}
		}
	}
	return name{space: key, local: local}
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
func (r *reader) root() (*startTag, error) {
	// Check the declaration first, to refuse another encoding or XML
	// version in the document's terms rather than in encoding/xml's.
	if len(r.src) > 5 && bytes.HasPrefix(r.src, []byte("<?xml")) && isSpace(r.src[5:6]) {
		if end := bytes.Index(r.src, []byte("?>")); end > 0 {
			if msg := checkDecl(string(r.src[5:end])); msg != "" {
				return nil, r.errAt(0, "XML declaration: %s", msg)
			}
		}
	}
	for {
		k, err := r.next()
		if err == io.EOF {
			return nil, r.errAt(-1, "the document is empty: no root element")
		}
		if err != nil {
			return nil, err
		}
		switch k {
		case xmlscan.StartElement:
			if r.cur.name.space != "" {
				return nil, r.errf("root element <%s>: namespaces are not used in these documents", r.cur.name)
			}
			return &r.cur, nil
		case xmlscan.CharData:
			if !isSpace(r.s.Data) {
				return nil, r.errf("text %q before the root element", abbrev(trimSpace(string(r.s.Data)), 20))
			}
		case xmlscan.EndElement: // cannot happen: the scanner refuses it
			return nil, r.errf("unexpected </%s>", r.s.Name)
		}
	}
}

// end checks that nothing but whitespace and comments follows the root.
func (r *reader) end(root string) error {
	for {
		k, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch k {
		case xmlscan.StartElement:
			return r.errf("element <%s> after the root element </%s>: a document has one root", r.cur.name, root)
		case xmlscan.CharData:
			if !isSpace(r.s.Data) {
				return r.errf("text %q after the root element </%s>", abbrev(trimSpace(string(r.s.Data)), 20), root)
			}
		case xmlscan.ProcInst:
			return r.errf("processing instruction after the root element </%s>", root)
		}
	}
}

// child is one event inside a container element: a child's start tag, or
// the container's end (ok false).
func (r *reader) child(where loc) (*startTag, bool, error) {
	for {
		k, err := r.next()
		if err != nil {
			if err == io.EOF {
				return nil, false, r.errAt(-1, "%s: unexpected end of document", where)
			}
			return nil, false, err
		}
		switch k {
		case xmlscan.StartElement:
			if r.cur.name.space != "" {
				return nil, false, r.errf("%s: element <%s>: namespaces are not used in these documents", where, r.cur.name)
			}
			return &r.cur, true, nil
		case xmlscan.EndElement:
			return nil, false, nil
		case xmlscan.CharData:
			if !isSpace(r.s.Data) {
				return nil, false, r.errf("%s: unexpected text %q", where, abbrev(trimSpace(string(r.s.Data)), 20))
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
		k, err := r.next()
		if err != nil {
			if err == io.EOF {
				return "", r.errAt(-1, "%s: unexpected end of document", where)
			}
			return "", err
		}
		switch k {
		case xmlscan.CharData:
			t := r.s.Data
			switch n {
			case 0:
				s = string(t)
			case 1:
				buf = append(append(make([]byte, 0, len(s)+len(t)+64), s...), t...)
			default:
				buf = append(buf, t...)
			}
			n++
		case xmlscan.StartElement:
			return "", r.errf("%s: unexpected element <%s>: this element holds only text", where, r.cur.name)
		case xmlscan.EndElement:
			if n > 1 {
				s = string(buf)
			}
			return s, nil
		}
	}
}

// attrs checks se's attributes against names (no others, none twice) and
// stores their values in vals, in the order of names. The returned mask has
// bit i set when names[i] was present. The values share one string, so that
// a tag costs one allocation however many attributes it has.
func (r *reader) attrs(where loc, se *startTag, names []string, vals []string) (uint32, error) {
	var seen uint32
	var spans [8]struct{ i, from, to int }
	n := 0
	r.scratch = r.scratch[:0]
	for _, a := range se.attrs {
		i := -1
		if a.name.space == "" {
			for k, n := range names {
				if n == string(a.name.local) {
					i = k
					break
				}
			}
		}
		if i < 0 {
			if a.name.space == "xmlns" || a.name.space == "" && string(a.name.local) == "xmlns" {
				return 0, r.errf("%s: namespace declaration %s: namespaces are not used in these documents", where, a.name)
			}
			return 0, r.errf("%s: unknown attribute %q", where, a.name)
		}
		if seen&(1<<i) != 0 {
			return 0, r.errf("%s: attribute %q appears twice", where, names[i])
		}
		seen |= 1 << i
		spans[n].i, spans[n].from = i, len(r.scratch)
		r.scratch = append(r.scratch, a.value...)
		spans[n].to = len(r.scratch)
		n++ // at most len(names) ≤ 8: each name once
	}
	all := string(r.scratch)
	for _, sp := range spans[:n] {
		vals[sp.i] = all[sp.from:sp.to]
	}
	return seen, nil
}

// version checks the version attribute before any other, so that a document
// from a newer protocol is refused for what it is rather than for the first
// attribute this decoder does not know.
func (r *reader) version(where loc, se *startTag, required bool) error {
	for _, a := range se.attrs {
		if a.name.space != "" || string(a.name.local) != "version" {
			continue
		}
		v := trimSpace(string(a.value))
		if !isDigits(v) {
			return r.errf("%s: attribute \"version\": %q is not a version number", where, abbrev(string(a.value), 20))
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
	i, j := 0, len(s)
	for i < j && isSpaceByte(s[i]) {
		i++
	}
	for j > i && isSpaceByte(s[j-1]) {
		j--
	}
	return s[i:j]
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

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
