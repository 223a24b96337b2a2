package xmlscan

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is the kind of a token.
type Kind uint8

// The kinds of token, as encoding/xml's token types.
const (
	EOF          Kind = iota // no token: the end of the input, or an error
	StartElement             // Name, Attrs; a self-closing element is followed by its EndElement
	EndElement               // Name
	CharData                 // Data: text or a CDATA section (CDATA set), unescaped
	Comment                  // Data: the text between <!-- and -->
	ProcInst                 // Name: the target; Data: the instruction
	Directive                // Data: what follows <! up to the matching >
)

// Attr is one attribute of a start tag: its name as written (with any
// prefix) and its value, unescaped.
type Attr struct {
	Name  []byte
	Value []byte
}

// SyntaxError is malformed XML. Msg and Line are what encoding/xml's
// SyntaxError holds for the same input; Column is what its
// Decoder.InputPos reports right after the error, and Offset what
// Decoder.InputOffset reports.
type SyntaxError struct {
	Msg    string
	Line   int
	Column int
	Offset int
}

func (e *SyntaxError) Error() string {
	return "XML syntax error on line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// DeclError is an XML declaration (<?xml ...?>) naming a version other than
// 1.0 or an encoding other than UTF-8. Exactly one field is set. Error gives
// encoding/xml's text for the same document when it has no CharsetReader.
type DeclError struct {
	Version  string
	Encoding string
}

func (e *DeclError) Error() string {
	if e.Version != "" {
		return fmt.Sprintf("xml: unsupported version %q; only version 1.0 is supported", e.Version)
	}
	return fmt.Sprintf("xml: encoding %q declared but Decoder.CharsetReader is nil", e.Encoding)
}

// Scanner reads the tokens of one document. The exported fields describe the
// token the last call of Next returned; the byte slices in them are valid
// until the next call (they point into the input or into the scanner's own
// buffer), with two guarantees more: names (Name, Attr.Name) always point
// into the input, and the bytes of Data stay unchanged until a call of Next
// returns a CharData, StartElement or Directive token — so the text of an
// element can be used after reading its end tag.
type Scanner struct {
	// Nesting makes Next check, as Decoder.Token does, that every end tag
	// closes the element open at that point and that the input does not end
	// inside an element. Without it Next behaves as Decoder.RawToken.
	Nesting bool

	Name  []byte // StartElement, EndElement: the element name as written; ProcInst: the target
	Attrs []Attr // StartElement
	Data  []byte // CharData, Comment, ProcInst, Directive
	CDATA bool   // CharData: it was a CDATA section
	// SelfClosing marks a StartElement written <a/>, and the EndElement that
	// the next call returns for it.
	SelfClosing bool
	// Start is the input offset where the token began: the end of the
	// previous one (Decoder.InputOffset before the token was read).
	Start int
	// SurrogateRef is the input offset of the first character reference in
	// the token (text or attribute values) to a UTF-16 surrogate, which
	// encoding/xml replaces by U+FFFD; -1 when there is none. Callers that
	// refuse such references use it.
	SurrogateRef int

	src       []byte
	pos       int
	nameOff   int // StartElement: offset of Name in src
	needClose bool
	err       error
	buf       []byte // unescaped text and attribute values of the current token
	attrs     []Attr
	stack     []int // Nesting: start and end offsets of the open elements' names
}

// New returns a scanner reading src.
func New(src []byte) *Scanner {
	s := &Scanner{}
	s.Reset(src)
	return s
}

// Reset makes s read src from the beginning, keeping its buffers (and its
// Nesting setting).
func (s *Scanner) Reset(src []byte) {
	s.src = src
	clear(s.attrs[:cap(s.attrs)]) // hold no references into the last input
	s.pos = 0
	s.needClose = false
	s.err = nil
	s.buf = s.buf[:0]
	s.stack = s.stack[:0]
	s.Name, s.Attrs, s.Data = nil, nil, nil
	s.CDATA, s.SelfClosing = false, false
	s.Start, s.SurrogateRef = 0, -1
}

// Offset is the input offset after the last token: Decoder.InputOffset.
func (s *Scanner) Offset() int { return s.pos }

// Pos is the line and 1-based byte column after the last token, as
// Decoder.InputPos reports them.
func (s *Scanner) Pos() (line, column int) { return position(s.src, s.pos, s.pos) }

// LineCol is the 1-based line and byte column of input offset off.
func (s *Scanner) LineCol(off int) (line, column int) { return position(s.src, off, off) }

// Depth is the number of elements open (with Nesting only).
func (s *Scanner) Depth() int { return len(s.stack) / 2 }

// position computes encoding/xml's line and column for an error or token
// end at off. hw is the furthest byte read (off+1 when one byte was read and
// put back): encoding/xml moves its line start when it reads a newline, and
// does not move it back when it puts the newline back.
func position(src []byte, off, hw int) (line, column int) {
	line = 1 + bytes.Count(src[:off], []byte{'\n'})
	lineStart := bytes.LastIndexByte(src[:hw], '\n') + 1
	return line, off - lineStart + 1
}

// fail makes the error encoding/xml reports at offset off; pending says
// whether it had read one byte more and put it back.
func (s *Scanner) fail(msg string, off int, pending bool) error {
	hw := off
	if pending && off < len(s.src) {
		hw++
	}
	line, col := position(s.src, off, hw)
	s.pos = off
	s.err = &SyntaxError{Msg: msg, Line: line, Column: col, Offset: off}
	return s.err
}

func (s *Scanner) unexpectedEOF() error {
	return s.fail("unexpected EOF", len(s.src), false)
}

// Next reads the next token and returns its kind. At the end of the input
// it returns EOF and io.EOF; on malformed input EOF and a *SyntaxError or a
// *DeclError, and the same error on every later call.
func (s *Scanner) Next() (Kind, error) {
	if s.err != nil {
		return EOF, s.err
	}
	k, err := s.next()
	if err != nil {
		if err == io.EOF && s.Nesting && len(s.stack) > 0 {
			return EOF, s.unexpectedEOF()
		}
		s.err = err
		return EOF, err
	}
	if s.Nesting {
		switch k {
		case StartElement:
			s.stack = append(s.stack, s.nameOff, s.nameOff+len(s.Name))
		case EndElement:
			if err := s.pop(); err != nil {
				return EOF, err
			}
		}
	}
	return k, nil
}

// pop checks an end tag against the open element, with Decoder.Token's
// messages.
func (s *Scanner) pop() error {
	n := len(s.stack)
	if n == 0 {
		return s.fail("unexpected end element </"+string(Local(s.Name))+">", s.pos, false)
	}
	open := s.src[s.stack[n-2]:s.stack[n-1]]
	s.stack = s.stack[:n-2]
	if bytes.Equal(open, s.Name) {
		return nil
	}
	ol, el := Local(open), Local(s.Name)
	if !bytes.Equal(ol, el) {
		return s.fail("element <"+string(ol)+"> closed by </"+string(el)+">", s.pos, false)
	}
	ns := string(Prefix(s.Name))
	if ns == "" {
		ns = `""`
	}
	return s.fail("element <"+string(ol)+"> in space "+string(Prefix(open))+" closed by </"+string(el)+"> in space "+ns, s.pos, false)
}

// Local is the local part of a name as encoding/xml splits it: what follows
// the colon when there is one with something on both sides, else the name.
func Local(name []byte) []byte {
	if i := bytes.IndexByte(name, ':'); i > 0 && i < len(name)-1 {
		return name[i+1:]
	}
	return name
}

// Prefix is the part of name before the colon that Local splits at, or nil.
func Prefix(name []byte) []byte {
	if i := bytes.IndexByte(name, ':'); i > 0 && i < len(name)-1 {
		return name[:i]
	}
	return nil
}

func (s *Scanner) next() (Kind, error) {
	s.Start = s.pos
	s.SurrogateRef = -1
	s.CDATA = false
	s.Data = nil
	if s.needClose {
		s.needClose = false
		return EndElement, nil // s.Name and SelfClosing are still those of the start tag
	}
	s.SelfClosing = false
	s.buf = s.buf[:0]
	src := s.src
	p := s.pos
	if p >= len(src) {
		return EOF, io.EOF
	}
	if src[p] != '<' {
		return s.text(p)
	}
	p++
	if p >= len(src) {
		return EOF, s.unexpectedEOF()
	}
	switch src[p] {
	case '/':
		return s.endTag(p + 1)
	case '?':
		return s.procInst(p + 1)
	case '!':
		p++
		if p >= len(src) {
			return EOF, s.unexpectedEOF()
		}
		switch src[p] {
		case '-':
			return s.comment(p + 1)
		case '[':
			for i := 0; i < len("CDATA["); i++ {
				p++
				if p >= len(src) {
					return EOF, s.unexpectedEOF()
				}
				if src[p] != "CDATA["[i] {
					return EOF, s.fail("invalid <![ sequence", p+1, false)
				}
			}
			return s.cdata(p + 1)
		}
		return s.directive(p)
	}
	return s.startTag(p)
}

// nameByte classifies the bytes encoding/xml reads as part of a name: 0 for
// none, nameASCII for ASCII name bytes (nameColon added for ':'), nameHigh for
// the bytes of multi-byte characters, which are all read and judged by isName.
var nameByte = func() (t [256]uint8) {
	for c := 0; c < utf8.RuneSelf; c++ {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-' {
			t[c] = nameASCII
		}
	}
	t[':'] |= nameColon
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = nameHigh
	}
	return t
}()

const (
	nameASCII = 1 << iota
	nameColon
	nameHigh
)

// nameFirst marks the ASCII bytes a name may start with.
var nameFirst = func() (t [utf8.RuneSelf]bool) {
	for c := 0; c < utf8.RuneSelf; c++ {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
	}
	return t
}()

// Result of readName.
const (
	nameOK = iota
	nameMissing
	nameEOF
)

// readName reads the bytes of a name from p as encoding/xml's readName does:
// up to the first ASCII byte that cannot be part of one. It returns the end
// of the name and the classes of its bytes, or'ed.
func (s *Scanner) readName(p int) (int, int, uint8) {
	src := s.src
	if p >= len(src) {
		return p, nameEOF, 0
	}
	class := nameByte[src[p]]
	if class == 0 {
		return p, nameMissing, 0
	}
	q := p + 1
	for q < len(src) {
		c := nameByte[src[q]]
		if c == 0 {
			break
		}
		class |= c
		q++
	}
	if q >= len(src) {
		return q, nameEOF, 0
	}
	return q, nameOK, class
}

// isName reports whether b, read by readName, is a name as encoding/xml's
// isName judges it; ascii says that b is all ASCII.
func isName(b []byte, ascii bool) bool {
	if len(b) == 0 {
		return false
	}
	if ascii {
		return nameFirst[b[0]]
	}
	c, n := utf8.DecodeRune(b)
	if c == utf8.RuneError && n == 1 || !unicode.Is(first, c) {
		return false
	}
	for n < len(b) {
		b = b[n:]
		c, n = utf8.DecodeRune(b)
		if c == utf8.RuneError && n == 1 || !unicode.Is(first, c) && !unicode.Is(second, c) {
			return false
		}
	}
	return true
}

// name reads a name at p for an element or attribute (colons > 1 refused,
// as by encoding/xml's nsname). missing is the message for no name at all.
func (s *Scanner) name(p int, missing string, ns bool) (int, error) {
	q, st, class := s.readName(p)
	switch st {
	case nameEOF:
		return 0, s.unexpectedEOF()
	case nameMissing:
		return 0, s.fail(missing, p, true)
	}
	b := s.src[p:q]
	if !isName(b, class&nameHigh == 0) {
		return 0, s.fail("invalid XML name: "+string(b), q, true)
	}
	if ns && class&nameColon != 0 && bytes.Count(b, colon) > 1 {
		return 0, s.fail(missing, q, true)
	}
	return q, nil
}

var colon = []byte{':'}

func isSpace(c byte) bool { return c == ' ' || c == '\r' || c == '\n' || c == '\t' }

func (s *Scanner) skipSpace(p int) int {
	for p < len(s.src) && isSpace(s.src[p]) {
		p++
	}
	return p
}

func (s *Scanner) endTag(p int) (Kind, error) {
	q, err := s.name(p, "expected element name after </", true)
	if err != nil {
		return EOF, err
	}
	name := s.src[p:q]
	q = s.skipSpace(q)
	if q >= len(s.src) {
		return EOF, s.unexpectedEOF()
	}
	if s.src[q] != '>' {
		return EOF, s.fail("invalid characters between </"+string(Local(name))+" and >", q+1, false)
	}
	s.pos = q + 1
	s.Name = name
	return EndElement, nil
}

func (s *Scanner) procInst(p int) (Kind, error) {
	q, st, class := s.readName(p)
	switch st {
	case nameEOF:
		return EOF, s.unexpectedEOF()
	case nameMissing:
		return EOF, s.fail("expected target name after <?", p, true)
	}
	target := s.src[p:q]
	if !isName(target, class&nameHigh == 0) {
		return EOF, s.fail("invalid XML name: "+string(target), q, true)
	}
	q = s.skipSpace(q)
	i := bytes.Index(s.src[q:], []byte("?>"))
	if i < 0 {
		return EOF, s.unexpectedEOF()
	}
	data := s.src[q : q+i]
	s.pos = q + i + 2
	if string(target) == "xml" {
		content := string(data)
		if ver := procInstParam("version", content); ver != "" && ver != "1.0" {
			s.err = &DeclError{Version: ver}
			return EOF, s.err
		}
		if enc := procInstParam("encoding", content); enc != "" && !strings.EqualFold(enc, "utf-8") {
			s.err = &DeclError{Encoding: enc}
			return EOF, s.err
		}
	}
	s.Name, s.Data = target, data
	return ProcInst, nil
}

// procInstParam is encoding/xml's procInst: the value of param="..." or
// param='...' in s, found the way encoding/xml finds it, or "".
func procInstParam(param, s string) string {
	param = param + "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}

// comment reads a comment whose "<!-" was read; p is at the second '-'.
func (s *Scanner) comment(p int) (Kind, error) {
	src := s.src
	if p >= len(src) {
		return EOF, s.unexpectedEOF()
	}
	if src[p] != '-' {
		return EOF, s.fail("invalid sequence <!- not part of <!--", p+1, false)
	}
	p++
	i := bytes.Index(src[p:], []byte("--"))
	if i < 0 || p+i+2 >= len(src) {
		return EOF, s.unexpectedEOF()
	}
	if src[p+i+2] != '>' {
		return EOF, s.fail(`invalid sequence "--" not allowed in comments`, p+i+3, false)
	}
	s.Data = src[p : p+i]
	s.pos = p + i + 3
	return Comment, nil
}

// directive reads a directive as encoding/xml does, byte by byte: quotes
// hide '>', nested <...> count, comments inside become a space. p is at the
// byte after "<!". Every caller refuses directives, so this need not be
// fast.
func (s *Scanner) directive(p int) (Kind, error) {
	src := s.src
	buf := append(s.buf[:0], src[p])
	p++
	var inquote byte
	depth := 0
	for {
		if p >= len(src) {
			return EOF, s.unexpectedEOF()
		}
		b := src[p]
		p++
		if inquote == 0 && b == '>' && depth == 0 {
			break
		}
	handle:
		buf = append(buf, b)
		switch {
		case b == inquote:
			inquote = 0
		case inquote != 0:
		case b == '\'' || b == '"':
			inquote = b
		case b == '>':
			depth--
		case b == '<':
			const open = "!--"
			for i := 0; i < len(open); i++ {
				if p >= len(src) {
					return EOF, s.unexpectedEOF()
				}
				b = src[p]
				p++
				if b != open[i] {
					buf = append(buf, open[:i]...)
					depth++
					goto handle
				}
			}
			buf = buf[:len(buf)-1] // the '<'
			var b0, b1 byte
			for {
				if p >= len(src) {
					return EOF, s.unexpectedEOF()
				}
				b = src[p]
				p++
				if b0 == '-' && b1 == '-' && b == '>' {
					break
				}
				b0, b1 = b1, b
			}
			buf = append(buf, ' ')
		}
	}
	s.buf = buf
	s.Data = buf
	s.pos = p
	return Directive, nil
}

func (s *Scanner) startTag(p int) (Kind, error) {
	src := s.src
	q, err := s.name(p, "expected element name after <", true)
	if err != nil {
		return EOF, err
	}
	s.Name, s.nameOff = src[p:q], p
	attrs := s.attrs[:0]
	for {
		q = s.skipSpace(q)
		if q >= len(src) {
			return EOF, s.unexpectedEOF()
		}
		b := src[q]
		if b == '/' {
			q++
			if q >= len(src) {
				return EOF, s.unexpectedEOF()
			}
			if src[q] != '>' {
				return EOF, s.fail("expected /> in element", q+1, false)
			}
			s.needClose, s.SelfClosing = true, true
			q++
			break
		}
		if b == '>' {
			q++
			break
		}
		r, err := s.name(q, "expected attribute name in element", true)
		if err != nil {
			return EOF, err
		}
		name := src[q:r]
		r = s.skipSpace(r)
		if r >= len(src) {
			return EOF, s.unexpectedEOF()
		}
		if src[r] != '=' {
			return EOF, s.fail("attribute name without = in element", r+1, false)
		}
		r = s.skipSpace(r + 1)
		if r >= len(src) {
			return EOF, s.unexpectedEOF()
		}
		quote := src[r]
		if quote != '"' && quote != '\'' {
			return EOF, s.fail("unquoted or missing attribute value in element", r+1, false)
		}
		val, end, err := s.attrValue(r+1, quote)
		if err != nil {
			return EOF, err
		}
		attrs = append(attrs, Attr{Name: name, Value: val})
		q = end
	}
	s.attrs = attrs
	s.Attrs = attrs
	s.pos = q
	return StartElement, nil
}

// Byte classes for the fast loops: bytes that stand for themselves.
var (
	textPlain [256]bool // in text: everything ASCII but < & ] CR and controls
	attrPlain [256]bool // in attribute values: everything ASCII but < & CR, the quotes and controls
)

func init() {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		textPlain[c], attrPlain[c] = true, true
	}
	textPlain['\t'], textPlain['\n'] = true, true
	attrPlain['\t'], attrPlain['\n'] = true, true
	for _, c := range "<&]" {
		textPlain[c] = false
	}
	for _, c := range "<&\"'" {
		attrPlain[c] = false
	}
}

const lo8, hi8 = 0x0101010101010101, 0x8080808080808080

// printable8 reports whether the 8 bytes in v are all printable ASCII
// (0x20 to 0x7F): no high bit, and no byte below 0x20 (the "has a byte less
// than n" test, exact when no byte has its high bit set).
func printable8(v uint64) bool {
	return v&hi8 == 0 && (v-0x20*lo8)&^v&hi8 == 0
}

// hasByte reports whether one of the 8 bytes in v is c, for v without high
// bits and c ASCII.
func hasByte(v uint64, c byte) bool {
	x := v ^ lo8*uint64(c)
	return (x-lo8)&^x&hi8 != 0
}

// inCharRange is encoding/xml's isInCharacterRange: the XML Char production.
func inCharRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// charCheck notes the first character encoding/xml would refuse in a piece of
// text. encoding/xml checks the characters of a text only once it has read
// all of it, so a refused character is reported at the end of the text, and
// only if nothing else went wrong before that end.
type charCheck struct {
	msg string
}

func (c *charCheck) control(b byte) {
	if c.msg == "" {
		c.msg = fmt.Sprintf("illegal character code %U", rune(b))
	}
}

// multi checks the non-ASCII character at src[p:] and returns its size.
func (c *charCheck) multi(src []byte) int {
	r, size := utf8.DecodeRune(src)
	if c.msg == "" {
		if r == utf8.RuneError && size == 1 {
			c.msg = "invalid UTF-8"
		} else if !inCharRange(r) {
			c.msg = fmt.Sprintf("illegal character code %U", r)
		}
	}
	return size
}

func (c *charCheck) rune(r rune) {
	if c.msg == "" && !inCharRange(r) {
		c.msg = fmt.Sprintf("illegal character code %U", r)
	}
}

// text reads character data from p up to the next '<' or the end.
func (s *Scanner) text(p int) (Kind, error) {
	src := s.src
	start, seg := p, p
	var out []byte
	unescaped := false
	var cc charCheck
	for p < len(src) {
		if p+8 <= len(src) {
			if v := binary.LittleEndian.Uint64(src[p:]); printable8(v) && !hasByte(v, '<') && !hasByte(v, '&') && !hasByte(v, ']') {
				p += 8
				continue
			}
		}
		c := src[p]
		if textPlain[c] {
			p++
			continue
		}
		switch {
		case c == '<':
			goto done
		case c == ']':
			if p+2 < len(src) && src[p+1] == ']' && src[p+2] == '>' {
				return EOF, s.fail("unescaped ]]> not in CDATA section", p+3, false)
			}
			p++
		case c == '&':
			if !unescaped {
				out, unescaped = s.buf[:0], true
			}
			out = append(out, src[seg:p]...)
			r, end, err := s.entity(p)
			if err != nil {
				return EOF, err
			}
			cc.rune(r)
			out = utf8.AppendRune(out, r)
			p, seg = end, end
		case c == '\r':
			if !unescaped {
				out, unescaped = s.buf[:0], true
			}
			out = append(append(out, src[seg:p]...), '\n')
			p++
			if p < len(src) && src[p] == '\n' {
				p++
			}
			seg = p
		case c < utf8.RuneSelf:
			cc.control(c)
			p++
		default:
			p += cc.multi(src[p:])
		}
	}
done:
	if cc.msg != "" {
		return EOF, s.fail(cc.msg, p, p < len(src))
	}
	if unescaped {
		out = append(out, src[seg:p]...)
		s.buf = out
		s.Data = out
	} else {
		s.Data = src[start:p]
	}
	s.pos = p
	return CharData, nil
}

// cdata reads a CDATA section's text from p, after "<![CDATA[".
func (s *Scanner) cdata(p int) (Kind, error) {
	src := s.src
	i := bytes.Index(src[p:], []byte("]]>"))
	if i < 0 {
		return EOF, s.fail("unexpected EOF in CDATA section", len(src), false)
	}
	body := src[p : p+i]
	end := p + i + 3
	var cc charCheck
	cr := false
	for k := 0; k < len(body); {
		if k+8 <= len(body) && printable8(binary.LittleEndian.Uint64(body[k:])) {
			k += 8
			continue
		}
		c := body[k]
		if c >= 0x20 && c < utf8.RuneSelf || c == '\n' || c == '\t' {
			k++
			continue
		}
		switch {
		case c == '\r':
			cr = true
			k++
		case c < utf8.RuneSelf:
			cc.control(c)
			k++
		default:
			k += cc.multi(body[k:])
		}
	}
	if cc.msg != "" {
		return EOF, s.fail(cc.msg, end, false)
	}
	if cr {
		out := s.buf[:0]
		seg := 0
		for k := 0; k < len(body); k++ {
			if body[k] != '\r' {
				continue
			}
			out = append(append(out, body[seg:k]...), '\n')
			if k+1 < len(body) && body[k+1] == '\n' {
				k++
			}
			seg = k + 1
		}
		out = append(out, body[seg:]...)
		s.buf = out
		body = out
	}
	s.Data = body
	s.CDATA = true
	s.pos = end
	return CharData, nil
}

// attrValue reads a quoted attribute value from p, after the opening quote.
// It returns the value and the offset after the closing quote.
func (s *Scanner) attrValue(p int, quote byte) ([]byte, int, error) {
	src := s.src
	start, seg := p, p
	base := len(s.buf) // the values of one tag share s.buf
	var out []byte
	unescaped := false
	var cc charCheck
	for p < len(src) {
		c := src[p]
		if attrPlain[c] {
			p++
			continue
		}
		switch {
		case c == quote:
			p++
			if cc.msg != "" {
				return nil, 0, s.fail(cc.msg, p, false)
			}
			if !unescaped {
				return src[start : p-1], p, nil
			}
			out = append(out, src[seg:p-1]...)
			s.buf = out
			return out[base:], p, nil
		case c == '"' || c == '\'':
			p++
		case c == '<':
			return nil, 0, s.fail("unescaped < inside quoted string", p+1, false)
		case c == '&':
			if !unescaped {
				out, unescaped = s.buf, true
			}
			out = append(out, src[seg:p]...)
			r, end, err := s.entity(p)
			if err != nil {
				return nil, 0, err
			}
			cc.rune(r)
			out = utf8.AppendRune(out, r)
			p, seg = end, end
		case c == '\r':
			if !unescaped {
				out, unescaped = s.buf, true
			}
			out = append(append(out, src[seg:p]...), '\n')
			p++
			if p < len(src) && src[p] == '\n' {
				p++
			}
			seg = p
		case c < utf8.RuneSelf:
			cc.control(c)
			p++
		default:
			p += cc.multi(src[p:])
		}
	}
	// encoding/xml ends the value at the end of the input, checks its
	// characters, and then finds no '>'.
	if cc.msg != "" {
		return nil, 0, s.fail(cc.msg, p, false)
	}
	return nil, 0, s.unexpectedEOF()
}

// entity reads the reference at p ('&') and returns the character it stands
// for and the offset after it, or encoding/xml's error for it.
func (s *Scanner) entity(p int) (rune, int, error) {
	src := s.src
	q := p + 1
	if q >= len(src) {
		return 0, 0, s.unexpectedEOF()
	}
	if src[q] == '#' {
		q++
		if q >= len(src) {
			return 0, 0, s.unexpectedEOF()
		}
		hex := src[q] == 'x'
		if hex {
			q++
			if q >= len(src) {
				return 0, 0, s.unexpectedEOF()
			}
		}
		ds := q
		var n uint32
		big := false
		for ; q < len(src); q++ {
			c := src[q]
			var d byte
			switch {
			case '0' <= c && c <= '9':
				d = c - '0'
			case hex && 'a' <= c && c <= 'f':
				d = c - 'a' + 10
			case hex && 'A' <= c && c <= 'F':
				d = c - 'A' + 10
			default:
				goto digitsDone
			}
			if hex {
				n = n<<4 | uint32(d)
			} else {
				n = n*10 + uint32(d)
			}
			if n > unicode.MaxRune {
				big, n = true, unicode.MaxRune+1
			}
		}
	digitsDone:
		if q >= len(src) {
			return 0, 0, s.unexpectedEOF()
		}
		if src[q] != ';' {
			return 0, 0, s.fail("invalid character entity "+string(src[p:q])+" (no semicolon)", q, true)
		}
		if q == ds || big {
			return 0, 0, s.fail("invalid character entity "+string(src[p:q+1]), q+1, false)
		}
		r := rune(n)
		if 0xD800 <= r && r <= 0xDFFF {
			if s.SurrogateRef < 0 {
				s.SurrogateRef = p
			}
			r = utf8.RuneError // what string(rune(n)) makes of it
		}
		return r, q + 1, nil
	}
	e, st, _ := s.readName(q)
	if st == nameEOF {
		return 0, 0, s.unexpectedEOF()
	}
	if src[e] != ';' {
		return 0, 0, s.fail("invalid character entity "+string(src[p:e])+" (no semicolon)", e, true)
	}
	var r rune
	switch string(src[q:e]) {
	case "lt":
		r = '<'
	case "gt":
		r = '>'
	case "amp":
		r = '&'
	case "apos":
		r = '\''
	case "quot":
		r = '"'
	default:
		return 0, 0, s.fail("invalid character entity "+string(src[p:e+1]), e+1, false)
	}
	return r, e + 1, nil
}
