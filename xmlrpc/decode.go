package xmlrpc

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
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

// limitedReader fails, rather than ending quietly like io.LimitReader, so
// that an over-long body is told apart from a truncated one.
type limitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	err      error // a failure of r itself, told apart from malformed XML
}

var errBodyTooLarge = errors.New("request body too large")

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		l.exceeded = true
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > l.left {
		p = p[:l.left+1] // one byte more than allowed tells "too large" from "exactly full"
	}
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF {
		l.err = err
	}
	l.left -= int64(n)
	if l.left < 0 {
		l.exceeded = true
		return n, errBodyTooLarge
	}
	return n, err
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8192) }}

// DecodeCall parses a <methodCall> into its method name and parameters.
// Values come out as int64, bool, string, float64, time.Time (UTC), []byte,
// []any, map[string]any or nil; see the package comment for the leniencies.
// Every error is a *Fault: CodeTooLarge when the body exceeds
// lim.MaxBodyBytes, CodeInvalid otherwise, with a text saying what was wrong
// and where (for example `param 2: <int> value "x" is not an integer`).
func DecodeCall(r io.Reader, lim Limits) (method string, params Params, err error) {
	lim = lim.withDefaults()
	lr := &limitedReader{r: r, left: lim.MaxBodyBytes}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()
	d := &callDecoder{x: xml.NewDecoder(br), lim: lim}
	d.x.CharsetReader = d.refuseCharset
	method, params, err = d.call()
	if lr.exceeded {
		return "", nil, tooLarge(lim.MaxBodyBytes)
	}
	if lr.err != nil {
		return "", nil, Faultf(CodeInvalid, "reading request body: %v", lr.err)
	}
	if err != nil {
		if f, ok := err.(*Fault); ok {
			return "", nil, f
		}
		return "", nil, &Fault{Code: CodeInvalid, Message: err.Error()}
	}
	return method, params, nil
}

// refuseCharset answers a declared encoding other than UTF-8. Every XML-RPC
// client in use sends UTF-8; converting others is not worth the code.
func (d *callDecoder) refuseCharset(charset string, _ io.Reader) (io.Reader, error) {
	d.charset = charset
	return nil, errors.New("unsupported")
}

// callDecoder is a recursive-descent parser over encoding/xml's raw tokens.
// RawToken is used instead of Token because it neither translates namespaces
// nor keeps its own element stack; the grammar below checks every end tag
// against the start tag it expects, which is the nesting check Token would do.
type callDecoder struct {
	x       *xml.Decoder
	lim     Limits
	values  int
	text    []byte // scratch for character data; reused for every scalar
	charset string // a declared encoding that was refused
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

// structural reports a problem with the document's shape, with its position,
// because there is no value path to name yet or it would not help.
func (d *callDecoder) structural(format string, args ...any) error {
	line, col := d.x.InputPos()
	return errorf("%s (line %d, column %d)", fmt.Sprintf(format, args...), line, col)
}

var errEOF = errors.New("unexpected end of document: the body is truncated or </methodCall> is missing")

// token returns the next StartElement, EndElement or CharData. Comments and
// processing instructions are skipped. Directives are refused: a DOCTYPE is the
// door to entity expansion and external entities, and XML-RPC needs none.
func (d *callDecoder) token() (xml.Token, error) {
	for {
		t, err := d.x.RawToken()
		if err != nil {
			if err == io.EOF {
				return nil, errEOF
			}
			return nil, d.syntax(err)
		}
		switch t := t.(type) {
		case xml.StartElement, xml.EndElement, xml.CharData:
			return t, nil
		case xml.Directive:
			return nil, d.structural("<!%s> is not allowed: DTDs, DOCTYPE and entity declarations are refused", clip(string(firstWord(t)), 20))
		}
	}
}

func (d *callDecoder) syntax(err error) error {
	if errors.Is(err, errBodyTooLarge) {
		return err // DecodeCall turns it into fault 413
	}
	if d.charset != "" {
		return errorf("encoding %q is not supported: send UTF-8", d.charset)
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		_, col := d.x.InputPos()
		return errorf("malformed XML at line %d, column %d: %s", se.Line, col, se.Msg)
	}
	// encoding/xml reports some problems (a bad version or encoding in the
	// declaration) as plain errors; failures of the body reader itself are
	// caught by DecodeCall before this text is used.
	return errorf("malformed XML: %s", strings.TrimPrefix(err.Error(), "xml: "))
}

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

func elemName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// child returns the next element inside parent, or ok=false when parent's end
// tag comes. Whitespace between elements is allowed, other text is not.
func (d *callDecoder) child(parent xml.Name) (xml.StartElement, bool, error) {
	for {
		t, err := d.token()
		if err != nil {
			return xml.StartElement{}, false, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			return t, true, nil
		case xml.EndElement:
			if t.Name != parent {
				return xml.StartElement{}, false, d.structural("</%s> closes <%s>", elemName(t.Name), elemName(parent))
			}
			return xml.StartElement{}, false, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, false, d.structural("unexpected text %q inside <%s>", clip(string(t), 40), elemName(parent))
			}
		}
	}
}

// end expects nothing but whitespace up to parent's end tag.
func (d *callDecoder) end(parent xml.Name, after string) error {
	el, ok, err := d.child(parent)
	if err != nil {
		return err
	}
	if ok {
		return d.structural("unexpected <%s> after %s in <%s>", elemName(el.Name), after, elemName(parent))
	}
	return nil
}

// readText collects the character data of start up to its end tag into
// d.text, refusing child elements. CDATA sections and entity references are
// already resolved by encoding/xml.
func (d *callDecoder) readText(start xml.Name) ([]byte, error) {
	d.text = d.text[:0]
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(d.text)+len(t) > d.lim.MaxStringBytes {
				return nil, errorf("<%s> text longer than %d bytes", elemName(start), d.lim.MaxStringBytes)
			}
			d.text = append(d.text, t...)
		case xml.EndElement:
			if t.Name != start {
				return nil, d.structural("</%s> closes <%s>", elemName(t.Name), elemName(start))
			}
			return d.text, nil
		case xml.StartElement:
			return nil, d.structural("<%s> inside <%s>, which holds text only", elemName(t.Name), elemName(start))
		}
	}
}

func (d *callDecoder) call() (string, Params, error) {
	// Prolog: the XML declaration, comments and whitespace (and a BOM) only.
	var root xml.StartElement
	for {
		t, err := d.token()
		if err == errEOF {
			return "", nil, errorf("empty request: no <methodCall> element")
		}
		if err != nil {
			return "", nil, err
		}
		if se, ok := t.(xml.StartElement); ok {
			root = se
			break
		}
		if cd, ok := t.(xml.CharData); ok && !isSpace(bytes.TrimPrefix(cd, []byte("\uFEFF"))) {
			return "", nil, d.structural("text %q before the root element", clip(string(cd), 40))
		}
	}
	if root.Name.Local != "methodCall" {
		return "", nil, d.structural("root element is <%s>, want <methodCall>", elemName(root.Name))
	}

	el, ok, err := d.child(root.Name)
	if err != nil {
		return "", nil, err
	}
	if !ok || el.Name.Local != "methodName" {
		if ok {
			return "", nil, d.structural("<methodCall> must start with <methodName>, got <%s>", elemName(el.Name))
		}
		return "", nil, errorf("<methodCall> has no <methodName>")
	}
	raw, err := d.readText(el.Name)
	if err != nil {
		return "", nil, err
	}
	method, err := checkMethodName(trimSpace(raw))
	if err != nil {
		return "", nil, err
	}

	params := Params{}
	el, ok, err = d.child(root.Name)
	if err != nil {
		return "", nil, err
	}
	if ok {
		if el.Name.Local != "params" {
			return "", nil, d.structural("unexpected <%s> in <methodCall>, want <params>", elemName(el.Name))
		}
		if params, err = d.params(el.Name); err != nil {
			return "", nil, err
		}
		if err := d.end(root.Name, "</params>"); err != nil {
			return "", nil, err
		}
	}

	// Epilog: only comments, processing instructions and whitespace may follow.
	for {
		t, err := d.x.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, d.syntax(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			return "", nil, d.structural("<%s> after </methodCall>: one root element only", elemName(t.Name))
		case xml.EndElement:
			return "", nil, d.structural("stray </%s> after </methodCall>", elemName(t.Name))
		case xml.CharData:
			if !isSpace(t) {
				return "", nil, d.structural("text %q after </methodCall>", clip(string(t), 40))
			}
		case xml.Directive:
			return "", nil, d.structural("<!%s> is not allowed", clip(string(firstWord(t)), 20))
		}
	}
	return method, params, nil
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

func (d *callDecoder) params(parent xml.Name) (Params, error) {
	params := Params{}
	for n := 1; ; n++ {
		el, ok, err := d.child(parent)
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		if !ok {
			return params, nil
		}
		if el.Name.Local != "param" {
			return nil, d.structural("unexpected <%s> in <params>, want <param>", elemName(el.Name))
		}
		v, ok, err := d.child(el.Name)
		if err == nil && (!ok || v.Name.Local != "value") {
			if ok {
				err = d.structural("<%s> in <param>, want <value>", elemName(v.Name))
			} else {
				err = errorf("<param> without <value>")
			}
		}
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		x, err := d.value(v.Name, 1)
		if err == nil {
			err = d.end(el.Name, "</value>")
		}
		if err != nil {
			return nil, at(fmt.Sprintf("param %d", n), err)
		}
		params = append(params, x)
	}
}

// value reads what follows a <value> start tag, up to and including its end tag.
func (d *callDecoder) value(start xml.Name, depth int) (any, error) {
	d.values++
	if d.values > d.lim.MaxValues {
		return nil, errorf("more than %d values in the call", d.lim.MaxValues)
	}
	if depth > d.lim.MaxDepth {
		return nil, errorf("values nested deeper than %d levels", d.lim.MaxDepth)
	}
	d.text = d.text[:0]
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(d.text)+len(t) > d.lim.MaxStringBytes {
				return nil, errorf("untyped <value> text longer than %d bytes", d.lim.MaxStringBytes)
			}
			d.text = append(d.text, t...)
		case xml.EndElement:
			if t.Name != start {
				return nil, d.structural("</%s> closes <%s>", elemName(t.Name), elemName(start))
			}
			return string(d.text), nil // no type element: a string, whitespace kept
		case xml.StartElement:
			if !isSpace(d.text) {
				return nil, d.structural("text %q next to <%s> in <value>", clip(string(d.text), 40), elemName(t.Name))
			}
			x, err := d.typed(t.Name, depth)
			if err != nil {
				return nil, err
			}
			if err := d.end(start, "</"+elemName(t.Name)+">"); err != nil {
				return nil, err
			}
			return x, nil
		}
	}
}

func (d *callDecoder) typed(start xml.Name, depth int) (any, error) {
	switch start.Local {
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
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, errorf("<%s> value %q does not fit in 64 bits", start.Local, clip(string(b), 40))
			}
			return nil, errorf("<%s> value %q is not an integer", start.Local, clip(string(b), 40))
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
	return nil, errorf("unknown value type <%s>", elemName(start))
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

func (d *callDecoder) array(start xml.Name, depth int) (any, error) {
	out := []any{}
	el, ok, err := d.child(start)
	if err != nil || !ok {
		return out, err // <array/> is taken as empty
	}
	if el.Name.Local != "data" {
		return nil, d.structural("<%s> in <array>, want <data>", elemName(el.Name))
	}
	for n := 1; ; n++ {
		v, ok, err := d.child(el.Name)
		if err != nil {
			return nil, at(fmt.Sprintf("item %d", n), err)
		}
		if !ok {
			break
		}
		if v.Name.Local != "value" {
			return nil, at(fmt.Sprintf("item %d", n), d.structural("<%s> in <data>, want <value>", elemName(v.Name)))
		}
		x, err := d.value(v.Name, depth+1)
		if err != nil {
			return nil, at(fmt.Sprintf("item %d", n), err)
		}
		out = append(out, x)
	}
	return out, d.end(start, "</data>")
}

func (d *callDecoder) structure(start xml.Name, depth int) (any, error) {
	out := map[string]any{}
	for n := 1; ; n++ {
		mem, ok, err := d.child(start)
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		if !ok {
			return out, nil
		}
		if mem.Name.Local != "member" {
			return nil, d.structural("<%s> in <struct>, want <member>", elemName(mem.Name))
		}
		el, ok, err := d.child(mem.Name)
		if err == nil && (!ok || el.Name.Local != "name") {
			if ok {
				err = d.structural("<member> must start with <name>, got <%s>", elemName(el.Name))
			} else {
				err = errorf("<member> without <name>")
			}
		}
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		raw, err := d.readText(el.Name)
		if err != nil {
			return nil, at(fmt.Sprintf("member %d", n), err)
		}
		name := string(raw)
		where := func() string { return fmt.Sprintf("member %q", clip(name, 60)) }
		if _, dup := out[name]; dup {
			return nil, errorf("%s: appears twice in one struct", where())
		}
		el, ok, err = d.child(mem.Name)
		if err == nil && (!ok || el.Name.Local != "value") {
			if ok {
				err = d.structural("<%s> after <name>, want <value>", elemName(el.Name))
			} else {
				err = errorf("no <value>")
			}
		}
		if err != nil {
			return nil, at(where(), err)
		}
		x, err := d.value(el.Name, depth+1)
		if err == nil {
			err = d.end(mem.Name, "</value>")
		}
		if err != nil {
			return nil, at(where(), err)
		}
		out[name] = x
	}
}
