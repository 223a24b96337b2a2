package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/scirectl/scirectl/xmlscan"
)

// Default limits. They are generous for scirectl's traffic (the largest call
// is a status report carrying job output) yet keep a hostile body cheap.
const (
	DefaultMaxBodyBytes   = 16 << 20
	DefaultMaxDepth       = 32
	DefaultMaxValues      = 10000
	DefaultMaxStringBytes = 8 << 20
)

// maxMethodName bounds methodName; no real method name comes near it.
const maxMethodName = 256

// Limits bound what DecodeCall accepts, so that the cost of a request is
// bounded before any handler runs. A zero or negative field takes its default.
type Limits struct {
	MaxBodyBytes   int64 // whole body; beyond it the call is fault 413 (default 16 MiB)
	MaxDepth       int   // nesting of values: a scalar param is depth 1 (default 32)
	MaxValues      int   // values in the whole call, nested ones included (default 10000)
	MaxStringBytes int   // text of one string, base64 or member name (default 8 MiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultMaxValues
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = DefaultMaxStringBytes
	}
	return l
}

func tooLarge(max int64) *Fault {
	return Faultf(CodeTooLarge, "request body larger than %d bytes", max)
}

// pathError is a message plus where it happened, outermost first — e.g.
// [param 2, member "ids", item 3] — in a decoded call or in a value being
// encoded. The path is built while unwinding, so success costs nothing.
type pathError struct {
	path []string
	msg  string
}

// maxPathShown keeps the path of a deep value readable: the middle of a
// depth bomb's thirty "item 1" says nothing.
const maxPathShown = 8

func (e *pathError) Error() string {
	path := e.path
	if len(path) > maxPathShown {
		head, tail := path[:maxPathShown/2], path[len(path)-maxPathShown/2:]
		path = append(append(slices.Clip(head), fmt.Sprintf("… %d levels …", len(e.path)-maxPathShown)), tail...)
	}
	if len(path) == 0 {
		return e.msg
	}
	return strings.Join(path, ": ") + ": " + e.msg
}

func errorf(format string, args ...any) error {
	return &pathError{msg: fmt.Sprintf(format, args...)}
}

// at prefixes err with a location such as `param 2` or `member "ids"`.
// Sentinel errors (end of input, body too large) pass unchanged.
func at(where string, err error) error {
	if de, ok := err.(*pathError); ok {
		de.path = append(de.path, "")
		copy(de.path[1:], de.path)
		de.path[0] = where
		return de
	}
	return err
}

var errEOF = errors.New("unexpected end of document: the body is truncated or </methodCall> is missing")

func firstWord(b []byte) []byte {
	if i := bytes.IndexAny(b, " \t\r\n["); i >= 0 {
		return b[:i]
	}
	return b
}

func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 {
		c := b[len(b)-1]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}

// clip shortens s for a message; faults quote what came, not all of it.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// checkMethodName enforces the XML-RPC specification's alphabet (plus '-'),
// so that a name can be echoed in messages and logs without quoting worries.
func checkMethodName(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errorf("<methodName> is empty")
	}
	if len(b) > maxMethodName {
		return "", errorf("<methodName> longer than %d bytes", maxMethodName)
	}
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '.', c == ':', c == '/', c == '-':
		default:
			r, _ := utf8.DecodeRune(b[i:])
			return "", errorf("<methodName> %q contains %q: only letters, digits and _ . : / - are allowed", clip(string(b), 60), r)
		}
	}
	return string(b), nil
}

// decodeBase64 accepts what clients write: Python breaks lines every 76
// characters, some omit padding.
func decodeBase64(b []byte) ([]byte, error) {
	clean := b[:0:0]
	for i, c := range b {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			if clean == nil {
				clean = append(make([]byte, 0, len(b)), b[:i]...)
			}
			continue
		}
		if clean != nil {
			clean = append(clean, c)
		}
	}
	if clean == nil {
		clean = b
	}
	enc := base64.StdEncoding
	if len(clean)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(clean)))
	n, err := enc.Decode(out, clean)
	if err != nil {
		return nil, errorf("<base64> value is not valid base64: %v", err)
	}
	return out[:n], nil
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledBody is the largest body buffer kept for reuse: a rare huge
// request should not pin its memory.
const maxPooledBody = 1 << 20

// DecodeCall parses a <methodCall> into its method name and parameters.
// Values come out as int64, bool, string, float64, time.Time (UTC), []byte,
// []any, map[string]any or nil; see the package comment for the leniencies.
// Every error is a *Fault: CodeTooLarge when the body exceeds
// lim.MaxBodyBytes, CodeInvalid otherwise, with a text saying what was wrong
// and where (for example `param 2: <int> value "x" is not an integer`).
//
// The body is read whole (up to the limit) and then parsed by package
// xmlscan, which accepts, refuses and reports exactly what encoding/xml
// would; no value returned shares memory with the body.
func DecodeCall(r io.Reader, lim Limits) (method string, params Params, err error) {
	lim = lim.withDefaults()
	bp := bodyPool.Get().(*[]byte)
	body, fault := readBody(r, lim.MaxBodyBytes, (*bp)[:0])
	defer func() {
		if cap(body) <= maxPooledBody {
			*bp = body[:0]
			bodyPool.Put(bp)
		}
	}()
	if fault != nil {
		return "", nil, fault
	}
	return decodeCall(body, lim)
}

// readBody appends r's bytes to buf, failing once there are more than max:
// an over-long body is told apart from a truncated one, and its excess is
// never read.
func readBody(r io.Reader, max int64, buf []byte) ([]byte, *Fault) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if left := max + 1 - int64(len(buf)); int64(len(room)) > left {
			room = room[:left] // one byte more than allowed tells "too large" from "exactly full"
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return buf, tooLarge(max)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, Faultf(CodeInvalid, "reading request body: %v", err)
		}
	}
}

func decodeCall(body []byte, lim Limits) (string, Params, error) {
	d := callDecoderPool.Get().(*callDecoder)
	d.s.Reset(body)
	d.lim, d.values = lim, 0
	defer func() {
		d.s.Reset(nil)
		if cap(d.text) > maxPooledBody {
			d.text = nil
		}
		callDecoderPool.Put(d)
	}()
	method, params, err := d.call()
	if err != nil {
		if f, ok := err.(*Fault); ok {
			return "", nil, f
		}
		return "", nil, &Fault{Code: CodeInvalid, Message: err.Error()}
	}
	return method, params, nil
}

var callDecoderPool = sync.Pool{New: func() any { return &callDecoder{s: xmlscan.New(nil)} }}

// callDecoder is a recursive-descent parser over xmlscan's tokens, which are
// encoding/xml's raw tokens (Decoder.RawToken): names as written, no element
// stack of its own. The grammar below checks every end tag against the
// start tag it expects, which is the nesting check Token would do.
//
// Element names (s.Name) are sub-slices of the body, so they stay valid
// after later tokens; text (s.Data) does not and is copied into d.text.
type callDecoder struct {
	s      *xmlscan.Scanner
	lim    Limits
	values int
	text   []byte // scratch for character data; reused for every scalar
}

// structural reports a problem with the document's shape, with its position,
// because there is no value path to name yet or it would not help.
func (d *callDecoder) structural(format string, args ...any) error {
	line, col := d.s.Pos()
	return errorf("%s (line %d, column %d)", fmt.Sprintf(format, args...), line, col)
}

// token returns the next StartElement, EndElement or CharData. Comments and
// processing instructions are skipped. Directives are refused: a DOCTYPE is the
// door to entity expansion and external entities, and XML-RPC needs none.
func (d *callDecoder) token() (xmlscan.Kind, error) {
	for {
		k, err := d.s.Next()
		if err != nil {
			if err == io.EOF {
				return k, errEOF
			}
			return k, d.syntax(err)
		}
		switch k {
		case xmlscan.StartElement, xmlscan.EndElement, xmlscan.CharData:
			return k, nil
		case xmlscan.Directive:
			return k, d.structural("<!%s> is not allowed: DTDs, DOCTYPE and entity declarations are refused", clip(string(firstWord(d.s.Data)), 20))
		}
	}
}

func (d *callDecoder) syntax(err error) error {
	switch e := err.(type) {
	case *xmlscan.SyntaxError:
		return errorf("malformed XML at line %d, column %d: %s", e.Line, e.Column, e.Msg)
	case *xmlscan.DeclError:
		// Every XML-RPC client in use sends UTF-8; converting others is
		// not worth the code.
		if e.Encoding != "" {
			return errorf("encoding %q is not supported: send UTF-8", e.Encoding)
		}
	}
	return errorf("malformed XML: %s", strings.TrimPrefix(err.Error(), "xml: "))
}

func local(name []byte) []byte { return xmlscan.Local(name) }

// child returns the next element inside parent, or ok=false when parent's end
// tag comes. Whitespace between elements is allowed, other text is not.
func (d *callDecoder) child(parent []byte) ([]byte, bool, error) {
	for {
		k, err := d.token()
		if err != nil {
			return nil, false, err
		}
		switch k {
		case xmlscan.StartElement:
			return d.s.Name, true, nil
		case xmlscan.EndElement:
			if !bytes.Equal(d.s.Name, parent) {
				return nil, false, d.structural("</%s> closes <%s>", d.s.Name, parent)
			}
			return nil, false, nil
		case xmlscan.CharData:
			if !isSpace(d.s.Data) {
				return nil, false, d.structural("unexpected text %q inside <%s>", clip(string(d.s.Data), 40), parent)
			}
		}
	}
}

// end expects nothing but whitespace up to parent's end tag.
func (d *callDecoder) end(parent []byte, after string) error {
	el, ok, err := d.child(parent)
	if err != nil {
		return err
	}
	if ok {
		return d.structural("unexpected <%s> after %s in <%s>", el, after, parent)
	}
	return nil
}

// endAfter is end after the element t, whose name is only formatted for an
// error.
func (d *callDecoder) endAfter(parent, t []byte) error {
	el, ok, err := d.child(parent)
	if err != nil {
		return err
	}
	if ok {
		return d.structural("unexpected <%s> after </%s> in <%s>", el, t, parent)
	}
	return nil
}

// readText collects the character data of start up to its end tag,
// refusing child elements. CDATA sections and entity references are
// already resolved by the scanner. The result is valid until the next token.
func (d *callDecoder) readText(start []byte) ([]byte, error) {
	b, _, err := d.readTextN(start)
	return b, err
}

// readTextN is readText, also saying how many pieces of character data
// there were (comments and CDATA sections split text into pieces; an empty
// element has none). Text in one piece is not copied: the scanner keeps it
// intact through the end tag.
func (d *callDecoder) readTextN(start []byte) ([]byte, int, error) {
	d.text = d.text[:0]
	var first []byte
	n, total := 0, 0
	for {
		k, err := d.token()
		if err != nil {
			return nil, n, err
		}
		switch k {
		case xmlscan.CharData:
			total += len(d.s.Data)
			if total > d.lim.MaxStringBytes {
				return nil, n, errorf("<%s> text longer than %d bytes", start, d.lim.MaxStringBytes)
			}
			switch n {
			case 0:
				first = d.s.Data
			case 1:
				d.text = append(append(d.text, first...), d.s.Data...)
			default:
				d.text = append(d.text, d.s.Data...)
			}
			n++
		case xmlscan.EndElement:
			if !bytes.Equal(d.s.Name, start) {
				return nil, n, d.structural("</%s> closes <%s>", d.s.Name, start)
			}
			if n == 1 {
				return first, n, nil
			}
			return d.text, n, nil
		case xmlscan.StartElement:
			return nil, n, d.structural("<%s> inside <%s>, which holds text only", d.s.Name, start)
		}
	}
}

func (d *callDecoder) call() (string, Params, error) {
	// Prolog: the XML declaration, comments and whitespace (and a BOM) only.
	var root []byte
	for {
		k, err := d.token()
		if err == errEOF {
			return "", nil, errorf("empty request: no <methodCall> element")
		}
		if err != nil {
			return "", nil, err
		}
		if k == xmlscan.StartElement {
			root = d.s.Name
			break
		}
		if k == xmlscan.CharData && !isSpace(bytes.TrimPrefix(d.s.Data, []byte("\uFEFF"))) {
			return "", nil, d.structural("text %q before the root element", clip(string(d.s.Data), 40))
		}
	}
	if string(local(root)) != "methodCall" {
		return "", nil, d.structural("root element is <%s>, want <methodCall>", root)
	}

	el, ok, err := d.child(root)
	if err != nil {
		return "", nil, err
	}
	if !ok || string(local(el)) != "methodName" {
		if ok {
			return "", nil, d.structural("<methodCall> must start with <methodName>, got <%s>", el)
		}
		return "", nil, errorf("<methodCall> has no <methodName>")
	}
	raw, err := d.readText(el)
	if err != nil {
		return "", nil, err
	}
	method, err := checkMethodName(trimSpace(raw))
	if err != nil {
		return "", nil, err
	}

	params := Params{}
	el, ok, err = d.child(root)
	if err != nil {
		return "", nil, err
	}
	if ok {
		if string(local(el)) != "params" {
			return "", nil, d.structural("unexpected <%s> in <methodCall>, want <params>", el)
		}
		if params, err = d.params(el); err != nil {
			return "", nil, err
		}
		if err := d.end(root, "</params>"); err != nil {
			return "", nil, err
		}
	}

	// Epilog: only comments, processing instructions and whitespace may follow.
	for {
		k, err := d.s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, d.syntax(err)
		}
		switch k {
		case xmlscan.StartElement:
			return "", nil, d.structural("<%s> after </methodCall>: one root element only", d.s.Name)
		case xmlscan.EndElement:
			return "", nil, d.structural("stray </%s> after </methodCall>", d.s.Name)
		case xmlscan.CharData:
			if !isSpace(d.s.Data) {
				return "", nil, d.structural("text %q after </methodCall>", clip(string(d.s.Data), 40))
			}
		case xmlscan.Directive:
			return "", nil, d.structural("<!%s> is not allowed", clip(string(firstWord(d.s.Data)), 20))
		}
	}
	return method, params, nil
}

func (d *callDecoder) params(parent []byte) (Params, error) {
	params := Params{}
	for n := 1; ; n++ {
		el, ok, err := d.child(parent)
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		if !ok {
			return params, nil
		}
		if string(local(el)) != "param" {
			return nil, d.structural("unexpected <%s> in <params>, want <param>", el)
		}
		v, ok, err := d.child(el)
		if err == nil && (!ok || string(local(v)) != "value") {
			if ok {
				err = d.structural("<%s> in <param>, want <value>", v)
			} else {
				err = errorf("<param> without <value>")
			}
		}
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		x, err := d.value(v, 1)
		if err == nil {
			err = d.end(el, "</value>")
		}
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		params = append(params, x)
	}
}

// value reads what follows a <value> start tag, up to and including its end tag.
func (d *callDecoder) value(start []byte, depth int) (any, error) {
	d.values++
	if d.values > d.lim.MaxValues {
		return nil, errorf("more than %d values in the call", d.lim.MaxValues)
	}
	if depth > d.lim.MaxDepth {
		return nil, errorf("values nested deeper than %d levels", d.lim.MaxDepth)
	}
	d.text = d.text[:0]
	for {
		k, err := d.token()
		if err != nil {
			return nil, err
		}
		switch k {
		case xmlscan.CharData:
			if len(d.text)+len(d.s.Data) > d.lim.MaxStringBytes {
				return nil, errorf("untyped <value> text longer than %d bytes", d.lim.MaxStringBytes)
			}
			d.text = append(d.text, d.s.Data...)
		case xmlscan.EndElement:
			if !bytes.Equal(d.s.Name, start) {
				return nil, d.structural("</%s> closes <%s>", d.s.Name, start)
			}
			return string(d.text), nil // no type element: a string, whitespace kept
		case xmlscan.StartElement:
			if !isSpace(d.text) {
				return nil, d.structural("text %q next to <%s> in <value>", clip(string(d.text), 40), d.s.Name)
			}
			t := d.s.Name
			x, err := d.typed(t, depth)
			if err != nil {
				return nil, err
			}
			if err := d.endAfter(start, t); err != nil {
				return nil, err
			}
			return x, nil
		}
	}
}

func (d *callDecoder) typed(start []byte, depth int) (any, error) {
	typ := local(start)
	switch string(typ) {
	case "string":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case "int", "i4", "i8", "i2", "i1":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		b = trimSpace(b)
		if n, ok := parseSmallInt(b); ok {
			return n, nil
		}
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, errorf("<%s> value %q does not fit in 64 bits", typ, clip(string(b), 40))
			}
			return nil, errorf("<%s> value %q is not an integer", typ, clip(string(b), 40))
		}
		return n, nil
	case "boolean":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		switch string(trimSpace(b)) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return nil, errorf("<boolean> value %q is not 0 or 1", clip(string(b), 40))
	case "double":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		b = trimSpace(b)
		f, err := strconv.ParseFloat(string(b), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, errorf("<double> value %q is not a number", clip(string(b), 40))
		}
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, errorf("<double> value %q is not a finite number", clip(string(b), 40))
		}
		return f, nil
	case "dateTime.iso8601":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		t, err := parseDateTime(string(b))
		if err != nil {
			return nil, errorf("<dateTime.iso8601> value %q: %v", clip(string(b), 40), err)
		}
		return t, nil
	case "base64":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		return decodeBase64(b)
	case "nil":
		b, err := d.readText(start)
		if err != nil {
			return nil, err
		}
		if !isSpace(b) {
			return nil, errorf("<nil/> must be empty, has %q", clip(string(b), 40))
		}
		return nil, nil
	case "array":
		return d.array(start, depth)
	case "struct":
		return d.structure(start, depth)
	}
	return nil, errorf("unknown value type <%s>", start)
}

// parseSmallInt parses what strconv.ParseInt(b, 10, 64) accepts when it has
// at most 18 digits, without allocating; anything else is left to strconv.
func parseSmallInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func (d *callDecoder) array(start []byte, depth int) (any, error) {
	out := []any{}
	el, ok, err := d.child(start)
	if err != nil || !ok {
		return out, err // <array/> is taken as empty
	}
	if string(local(el)) != "data" {
		return nil, d.structural("<%s> in <array>, want <data>", el)
	}
	for n := 1; ; n++ {
		v, ok, err := d.child(el)
		if err != nil {
			return nil, at(fmt.Sprintf("item %d", n), err)
		}
		if !ok {
			break
		}
		if string(local(v)) != "value" {
			return nil, at(fmt.Sprintf("item %d", n), d.structural("<%s> in <data>, want <value>", v))
		}
		x, err := d.value(v, depth+1)
		if err != nil {
			return nil, at(fmt.Sprintf("item %d", n), err)
		}
		out = append(out, x)
	}
	return out, d.end(start, "</data>")
}

func (d *callDecoder) structure(start []byte, depth int) (any, error) {
	out := map[string]any{}
	for n := 1; ; n++ {
		mem, ok, err := d.child(start)
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		if !ok {
			return out, nil
		}
		if string(local(mem)) != "member" {
			return nil, d.structural("<%s> in <struct>, want <member>", mem)
		}
		el, ok, err := d.child(mem)
		if err == nil && (!ok || string(local(el)) != "name") {
			if ok {
				err = d.structural("<member> must start with <name>, got <%s>", el)
			} else {
				err = errorf("<member> without <name>")
			}
		}
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		raw, err := d.readText(el)
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		name := string(raw)
		where := func() string { return fmt.Sprintf("member %q", clip(name, 60)) }
		if _, dup := out[name]; dup {
			return nil, errorf("%s: appears twice in one struct", where())
		}
		el, ok, err = d.child(mem)
		if err == nil && (!ok || string(local(el)) != "value") {
			if ok {
				err = d.structural("<%s> after <name>, want <value>", el)
			} else {
				err = errorf("no <value>")
			}
		}
		if err != nil {
			return nil, at(where(), err)
		}
		x, err := d.value(el, depth+1)
		if err == nil {
			err = d.end(mem, "</value>")
		}
		if err != nil {
			return nil, at(where(), err)
		}
		out[name] = x
	}
}
