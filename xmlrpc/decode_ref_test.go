package xmlrpc

// The encoding/xml-based DecodeCall as it was before package xmlscan took
// over, kept unchanged (but for names) as the reference that
// FuzzDecodeCallMatchesReference compares DecodeCall with: the same
// accept/reject decision, the same values and the same messages for every
// input.

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// refLimitedReader fails, rather than ending quietly like io.LimitReader, so
// that an over-long body is told apart from a truncated one.
type refLimitedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
	err      error // a failure of r itself, told apart from malformed XML
}

var refErrBodyTooLarge = errors.New("request body too large")

func (l *refLimitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		l.exceeded = true
		return 0, refErrBodyTooLarge
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
		return n, refErrBodyTooLarge
	}
	return n, err
}

var refReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 8192) }}

// refDecodeCall parses a <methodCall> into its method name and parameters.
// Values come out as int64, bool, string, float64, time.Time (UTC), []byte,
// []any, map[string]any or nil; see the package comment for the leniencies.
// Every error is a *Fault: CodeTooLarge when the body exceeds
// lim.MaxBodyBytes, CodeInvalid otherwise, with a text saying what was wrong
// and where (for example `param 2: <int> value "x" is not an integer`).
func refDecodeCall(r io.Reader, lim Limits) (method string, params Params, err error) {
	lim = lim.withDefaults()
	lr := &refLimitedReader{r: r, left: lim.MaxBodyBytes}
	br := refReaderPool.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		br.Reset(nil)
		refReaderPool.Put(br)
	}()
	d := &refCallDecoder{x: xml.NewDecoder(br), lim: lim}
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
func (d *refCallDecoder) refuseCharset(charset string, _ io.Reader) (io.Reader, error) {
	d.charset = charset
	return nil, errors.New("unsupported")
}

// refCallDecoder is a recursive-descent parser over encoding/xml's raw tokens.
// RawToken is used instead of Token because it neither translates namespaces
// nor keeps its own element stack; the grammar below checks every end tag
// against the start tag it expects, which is the nesting check Token would do.
type refCallDecoder struct {
	x       *xml.Decoder
	lim     Limits
	values  int
	text    []byte // scratch for character data; reused for every scalar
	charset string // a declared encoding that was refused
}

// structural reports a problem with the document's shape, with its position,
// because there is no value path to name yet or it would not help.
func (d *refCallDecoder) structural(format string, args ...any) error {
	line, col := d.x.InputPos()
	return errorf("%s (line %d, column %d)", fmt.Sprintf(format, args...), line, col)
}

// token returns the next StartElement, EndElement or CharData. Comments and
// processing instructions are skipped. Directives are refused: a DOCTYPE is the
// door to entity expansion and external entities, and XML-RPC needs none.
func (d *refCallDecoder) token() (xml.Token, error) {
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

func (d *refCallDecoder) syntax(err error) error {
	if errors.Is(err, refErrBodyTooLarge) {
		return err // refDecodeCall turns it into fault 413
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
	// caught by refDecodeCall before this text is used.
	return errorf("malformed XML: %s", strings.TrimPrefix(err.Error(), "xml: "))
}

func refElemName(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// child returns the next element inside parent, or ok=false when parent's end
// tag comes. Whitespace between elements is allowed, other text is not.
func (d *refCallDecoder) child(parent xml.Name) (xml.StartElement, bool, error) {
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
				return xml.StartElement{}, false, d.structural("</%s> closes <%s>", refElemName(t.Name), refElemName(parent))
			}
			return xml.StartElement{}, false, nil
		case xml.CharData:
			if !isSpace(t) {
				return xml.StartElement{}, false, d.structural("unexpected text %q inside <%s>", clip(string(t), 40), refElemName(parent))
			}
		}
	}
}

// end expects nothing but whitespace up to parent's end tag.
func (d *refCallDecoder) end(parent xml.Name, after string) error {
	el, ok, err := d.child(parent)
	if err != nil {
		return err
	}
	if ok {
		return d.structural("unexpected <%s> after %s in <%s>", refElemName(el.Name), after, refElemName(parent))
	}
	return nil
}

// readText collects the character data of start up to its end tag into
// d.text, refusing child elements. CDATA sections and entity references are
// already resolved by encoding/xml.
func (d *refCallDecoder) readText(start xml.Name) ([]byte, error) {
	d.text = d.text[:0]
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(d.text)+len(t) > d.lim.MaxStringBytes {
				return nil, errorf("<%s> text longer than %d bytes", refElemName(start), d.lim.MaxStringBytes)
			}
			d.text = append(d.text, t...)
		case xml.EndElement:
			if t.Name != start {
				return nil, d.structural("</%s> closes <%s>", refElemName(t.Name), refElemName(start))
			}
			return d.text, nil
		case xml.StartElement:
			return nil, d.structural("<%s> inside <%s>, which holds text only", refElemName(t.Name), refElemName(start))
		}
	}
}

func (d *refCallDecoder) call() (string, Params, error) {
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
		return "", nil, d.structural("root element is <%s>, want <methodCall>", refElemName(root.Name))
	}

	el, ok, err := d.child(root.Name)
	if err != nil {
		return "", nil, err
	}
	if !ok || el.Name.Local != "methodName" {
		if ok {
			return "", nil, d.structural("<methodCall> must start with <methodName>, got <%s>", refElemName(el.Name))
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
			return "", nil, d.structural("unexpected <%s> in <methodCall>, want <params>", refElemName(el.Name))
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
			return "", nil, d.structural("<%s> after </methodCall>: one root element only", refElemName(t.Name))
		case xml.EndElement:
			return "", nil, d.structural("stray </%s> after </methodCall>", refElemName(t.Name))
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

func (d *refCallDecoder) params(parent xml.Name) (Params, error) {
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
			return nil, d.structural("unexpected <%s> in <params>, want <param>", refElemName(el.Name))
		}
		v, ok, err := d.child(el.Name)
		if err == nil && (!ok || v.Name.Local != "value") {
			if ok {
				err = d.structural("<%s> in <param>, want <value>", refElemName(v.Name))
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
func (d *refCallDecoder) value(start xml.Name, depth int) (any, error) {
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
				return nil, d.structural("</%s> closes <%s>", refElemName(t.Name), refElemName(start))
			}
			return string(d.text), nil // no type element: a string, whitespace kept
		case xml.StartElement:
			if !isSpace(d.text) {
				return nil, d.structural("text %q next to <%s> in <value>", clip(string(d.text), 40), refElemName(t.Name))
			}
			x, err := d.typed(t.Name, depth)
			if err != nil {
				return nil, err
			}
			if err := d.end(start, "</"+refElemName(t.Name)+">"); err != nil {
				return nil, err
			}
			return x, nil
		}
	}
}

func (d *refCallDecoder) typed(start xml.Name, depth int) (any, error) {
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
	return nil, errorf("unknown value type <%s>", refElemName(start))
}

func (d *refCallDecoder) array(start xml.Name, depth int) (any, error) {
	out := []any{}
	el, ok, err := d.child(start)
	if err != nil || !ok {
		return out, err // <array/> is taken as empty
	}
	if el.Name.Local != "data" {
		return nil, d.structural("<%s> in <array>, want <data>", refElemName(el.Name))
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
			return nil, at(fmt.Sprintf("item %d", n), d.structural("<%s> in <data>, want <value>", refElemName(v.Name)))
		}
		x, err := d.value(v.Name, depth+1)
		if err != nil {
			return nil, at(fmt.Sprintf("item %d", n), err)
		}
		out = append(out, x)
	}
	return out, d.end(start, "</data>")
}

func (d *refCallDecoder) structure(start xml.Name, depth int) (any, error) {
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
			return nil, d.structural("<%s> in <struct>, want <member>", refElemName(mem.Name))
		}
		el, ok, err := d.child(mem.Name)
		if err == nil && (!ok || el.Name.Local != "name") {
			if ok {
				err = d.structural("<member> must start with <name>, got <%s>", refElemName(el.Name))
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
				err = d.structural("<%s> after <name>, want <value>", refElemName(el.Name))
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
