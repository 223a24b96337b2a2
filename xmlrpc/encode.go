package xmlrpc

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// maxEncodeDepth stops runaway recursion on cyclic pointers; no real result
// nests anywhere near it, and decoders would refuse it anyway.
const maxEncodeDepth = 200

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// encoder writes XML-RPC values through a pooled bufio.Writer. Its scratch
// space makes numbers, times, base64 and sorted map keys allocation-free.
type encoder struct {
	w       *bufio.Writer
	scratch [64]byte
	b64     [1024]byte
	keys    []string // a stack: each map being written owns keys[start:]
	depth   int
}

var encoderPool = sync.Pool{New: func() any {
	return &encoder{w: bufio.NewWriterSize(nil, 8192)}
}}

func getEncoder(w io.Writer) *encoder {
	e := encoderPool.Get().(*encoder)
	e.w.Reset(w)
	e.depth = 0
	return e
}

func putEncoder(e *encoder) {
	e.w.Reset(nil)
	if cap(e.keys) > 1024 {
		e.keys = nil
	}
	clear(e.keys[:cap(e.keys)]) // drop references to the caller's strings
	e.keys = e.keys[:0]
	encoderPool.Put(e)
}

// EncodeResponse writes a <methodResponse> carrying v. On error, w may have
// received part of the document; encode into a buffer when that matters
// (ServeHTTP does, and answers with a fault instead).
func EncodeResponse(w io.Writer, v any) error {
	e := getEncoder(w)
	defer putEncoder(e)
	e.w.WriteString(xmlHeader + "<methodResponse><params><param>")
	if err := e.value(v); err != nil {
		return fmt.Errorf("xmlrpc: cannot encode result: %w", err)
	}
	e.w.WriteString("</param></params></methodResponse>\n")
	return e.w.Flush()
}

// EncodeFault writes a fault response. A nil f is written as an internal
// error, so that a bug upstream still yields a well-formed answer.
func EncodeFault(w io.Writer, f *Fault) error {
	if f == nil {
		f = &Fault{Code: CodeInternal, Message: "internal error"}
	}
	e := getEncoder(w)
	defer putEncoder(e)
	e.w.WriteString(xmlHeader + "<methodResponse><fault><value><struct><member><name>faultCode</name>")
	e.int(int64(f.Code))
	e.w.WriteString("</member><member><name>faultString</name>")
	e.string(f.Message)
	e.w.WriteString("</member></struct></value></fault></methodResponse>\n")
	return e.w.Flush()
}

// EncodeCall writes a <methodCall>. The server does not need it; it exists so
// that tests, and the agent's pollNow tests, can build calls with the same
// encoding rules as responses.
func EncodeCall(w io.Writer, method string, params ...any) error {
	e := getEncoder(w)
	defer putEncoder(e)
	e.w.WriteString(xmlHeader + "<methodCall><methodName>")
	e.text(method)
	e.w.WriteString("</methodName><params>")
	for i, p := range params {
		e.w.WriteString("<param>")
		if err := e.value(p); err != nil {
			return fmt.Errorf("xmlrpc: cannot encode param %d: %w", i+1, err)
		}
		e.w.WriteString("</param>")
	}
	e.w.WriteString("</params></methodCall>\n")
	return e.w.Flush()
}

// checkEncodable reports whether v can be encoded, by encoding it into
// nothing. system.multicall uses it so that one bad result becomes one fault
// entry instead of failing the whole response.
func checkEncodable(v any) error {
	e := getEncoder(io.Discard)
	defer putEncoder(e)
	return e.value(v)
}

// encodeErrorf and within build errors that carry the path to the value
// that could not be encoded, like the decoder's.
func encodeErrorf(format string, args ...any) error { return errorf(format, args...) }

func within(where string, err error) error { return at(where, err) }

// value writes <value>…</value>. The type switch serves the shapes handlers
// return most without reflection.
func (e *encoder) value(v any) error {
	switch x := v.(type) {
	case nil:
		e.w.WriteString("<value><nil/></value>")
	case string:
		e.string(x)
	case int64:
		e.int(x)
	case int:
		e.int(int64(x))
	case int32:
		e.int(int64(x))
	case bool:
		if x {
			e.w.WriteString("<value><boolean>1</boolean></value>")
		} else {
			e.w.WriteString("<value><boolean>0</boolean></value>")
		}
	case float64:
		return e.float(x, 64)
	case time.Time:
		return e.time(x)
	case []byte:
		e.base64(x)
	case map[string]any:
		return e.mapAny(x)
	case map[string]string:
		return e.mapString(x)
	case []any:
		return e.sliceAny(x)
	case Params:
		return e.sliceAny(x)
	case []string:
		e.w.WriteString("<value><array><data>")
		for _, s := range x {
			e.string(s)
		}
		e.w.WriteString("</data></array></value>")
	case []int64:
		e.w.WriteString("<value><array><data>")
		for _, n := range x {
			e.int(n)
		}
		e.w.WriteString("</data></array></value>")
	case []map[string]any:
		if err := e.enter(); err != nil {
			return err
		}
		e.w.WriteString("<value><array><data>")
		for i, m := range x {
			if err := e.mapAny(m); err != nil {
				return within("item "+strconv.Itoa(i+1), err)
			}
		}
		e.w.WriteString("</data></array></value>")
		e.depth--
	case Struct:
		return e.mapAny(x.m)
	case *Fault:
		if x == nil {
			e.w.WriteString("<value><nil/></value>")
			return nil
		}
		e.w.WriteString("<value><struct><member><name>faultCode</name>")
		e.int(int64(x.Code))
		e.w.WriteString("</member><member><name>faultString</name>")
		e.string(x.Message)
		e.w.WriteString("</member></struct></value>")
	default:
		return e.reflect(reflect.ValueOf(v))
	}
	return nil
}

func (e *encoder) enter() error {
	e.depth++
	if e.depth > maxEncodeDepth {
		return encodeErrorf("nested deeper than %d levels (a cyclic value?)", maxEncodeDepth)
	}
	return nil
}

func (e *encoder) int(n int64) {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		e.w.WriteString("<value><int>")
		e.w.Write(strconv.AppendInt(e.scratch[:0], n, 10))
		e.w.WriteString("</int></value>")
		return
	}
	e.w.WriteString("<value><i8>")
	e.w.Write(strconv.AppendInt(e.scratch[:0], n, 10))
	e.w.WriteString("</i8></value>")
}

func (e *encoder) float(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return encodeErrorf("double %v has no XML-RPC representation", f)
	}
	e.w.WriteString("<value><double>")
	// 'f' because the XML-RPC specification allows no exponent; -1 for the
	// shortest text that reads back as the same number.
	e.w.Write(strconv.AppendFloat(e.scratch[:0], f, 'f', -1, bits))
	e.w.WriteString("</double></value>")
	return nil
}

func (e *encoder) time(t time.Time) error {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return encodeErrorf("time %s: year outside 0000..9999 cannot be a dateTime.iso8601", t.Format(time.RFC3339))
	}
	e.w.WriteString("<value><dateTime.iso8601>")
	e.w.Write(t.AppendFormat(e.scratch[:0], wireTime))
	e.w.WriteString("</dateTime.iso8601></value>")
	return nil
}

func (e *encoder) base64(b []byte) {
	e.w.WriteString("<value><base64>")
	const chunk = len(encoder{}.b64) / 4 * 3
	for len(b) > 0 {
		n := min(len(b), chunk)
		base64.StdEncoding.Encode(e.b64[:], b[:n])
		e.w.Write(e.b64[:base64.StdEncoding.EncodedLen(n)])
		b = b[n:]
	}
	e.w.WriteString("</base64></value>")
}

func (e *encoder) string(s string) {
	e.w.WriteString("<value><string>")
	e.text(s)
	e.w.WriteString("</string></value>")
}

// textSafe marks the ASCII bytes that pass through unescaped.
var textSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	t['\t'], t['\n'] = true, true
	t['<'], t['>'], t['&'] = false, false, false
	return t
}()

// text writes s as XML character data. '>' is escaped too so that "]]>"
// never appears; '\r' as &#xD; so that XML line-end normalisation keeps it;
// what XML 1.0 cannot carry becomes U+FFFD (see the package comment).
func (e *encoder) text(s string) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if textSafe[c] {
				i++
				continue
			}
			var esc string
			switch c {
			case '<':
				esc = "&lt;"
			case '>':
				esc = "&gt;"
			case '&':
				esc = "&amp;"
			case '\r':
				esc = "&#xD;"
			default: // other C0 controls
				esc = "\uFFFD"
			}
			e.w.WriteString(s[last:i])
			e.w.WriteString(esc)
			i++
			last = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == 0xFFFE || r == 0xFFFF {
			e.w.WriteString(s[last:i])
			e.w.WriteString("\uFFFD")
			i += size
			last = i
			continue
		}
		i += size
	}
	e.w.WriteString(s[last:])
}

func (e *encoder) sliceAny(x []any) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.w.WriteString("<value><array><data>")
	for i, v := range x {
		if err := e.value(v); err != nil {
			return within("item "+strconv.Itoa(i+1), err)
		}
	}
	e.w.WriteString("</data></array></value>")
	e.depth--
	return nil
}

func (e *encoder) mapAny(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	e.w.WriteString("<value><struct>")
	for i := start; i < start+len(m); i++ {
		k := e.keys[i] // re-read: nested maps may have grown e.keys
		e.w.WriteString("<member><name>")
		e.text(k)
		e.w.WriteString("</name>")
		if err := e.value(m[k]); err != nil {
			e.keys = e.keys[:start]
			return within(fmt.Sprintf("member %q", clip(k, 60)), err)
		}
		e.w.WriteString("</member>")
	}
	e.w.WriteString("</struct></value>")
	e.keys = e.keys[:start]
	e.depth--
	return nil
}

func (e *encoder) mapString(m map[string]string) error {
	start := len(e.keys)
	for k := range m {
		e.keys = append(e.keys, k)
	}
	slices.Sort(e.keys[start:])
	e.w.WriteString("<value><struct>")
	for _, k := range e.keys[start:] {
		e.w.WriteString("<member><name>")
		e.text(k)
		e.w.WriteString("</name>")
		e.string(m[k])
		e.w.WriteString("</member>")
	}
	e.w.WriteString("</struct></value>")
	e.keys = e.keys[:start]
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

func (e *encoder) reflect(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Invalid:
		e.w.WriteString("<value><nil/></value>")
	case reflect.Interface:
		if v.IsNil() {
			e.w.WriteString("<value><nil/></value>")
			return nil
		}
		if !v.CanInterface() {
			return e.reflect(v.Elem())
		}
		return e.value(v.Elem().Interface())
	case reflect.Pointer:
		if v.IsNil() {
			e.w.WriteString("<value><nil/></value>")
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		err := e.reflect(v.Elem())
		e.depth--
		return err
	case reflect.String:
		e.string(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return encodeErrorf("%s %d exceeds the int64 range XML-RPC integers have", v.Type(), u)
		}
		e.int(int64(u))
	case reflect.Float32:
		return e.float(v.Float(), 32)
	case reflect.Float64:
		return e.float(v.Float(), 64)
	case reflect.Bool:
		if v.Bool() {
			e.w.WriteString("<value><boolean>1</boolean></value>")
		} else {
			e.w.WriteString("<value><boolean>0</boolean></value>")
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.base64(v.Bytes())
			return nil
		}
		return e.reflectArray(v)
	case reflect.Array:
		return e.reflectArray(v)
	case reflect.Map:
		return e.reflectMap(v)
	case reflect.Struct:
		if v.Type() == timeType {
			if !v.CanInterface() {
				return encodeErrorf("cannot encode an unexported time.Time")
			}
			return e.time(v.Interface().(time.Time))
		}
		return e.reflectStruct(v)
	default:
		return encodeErrorf("cannot encode %s: XML-RPC has no such type", v.Type())
	}
	return nil
}

func (e *encoder) reflectArray(v reflect.Value) error {
	if err := e.enter(); err != nil {
		return err
	}
	e.w.WriteString("<value><array><data>")
	for i, n := 0, v.Len(); i < n; i++ {
		if err := e.reflect(v.Index(i)); err != nil {
			return within("item "+strconv.Itoa(i+1), err)
		}
	}
	e.w.WriteString("</data></array></value>")
	e.depth--
	return nil
}

func (e *encoder) reflectMap(v reflect.Value) error {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		return encodeErrorf("cannot encode %s: struct member names must be strings", t)
	}
	// The common map types, reached through struct fields, skip the
	// per-entry copies MapRange makes; Interface on a map does not allocate.
	if v.CanInterface() {
		switch m := v.Interface().(type) {
		case map[string]any:
			return e.mapAny(m)
		case map[string]string:
			return e.mapString(m)
		}
	}
	if err := e.enter(); err != nil {
		return err
	}
	type entry struct {
		k string
		v reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		entries = append(entries, entry{it.Key().String(), it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	e.w.WriteString("<value><struct>")
	for _, en := range entries {
		e.w.WriteString("<member><name>")
		e.text(en.k)
		e.w.WriteString("</name>")
		if err := e.reflect(en.v); err != nil {
			return within(fmt.Sprintf("member %q", clip(en.k, 60)), err)
		}
		e.w.WriteString("</member>")
	}
	e.w.WriteString("</struct></value>")
	e.depth--
	return nil
}

func (e *encoder) reflectStruct(v reflect.Value) error {
	info := cachedFields(v.Type())
	if info.err != "" {
		return encodeErrorf("%s", info.err) // a fresh error: callers prepend their path to it
	}
	if err := e.enter(); err != nil {
		return err
	}
	e.w.WriteString("<value><struct>")
	for i := range info.fields {
		f := &info.fields[i]
		fv, ok := fieldByIndex(v, f.index)
		if !ok {
			continue // inside a nil embedded pointer
		}
		if f.omitEmpty && isEmpty(fv) {
			continue
		}
		e.w.WriteString(f.open)
		if err := e.reflect(fv); err != nil {
			return within(fmt.Sprintf("member %q", f.name), err)
		}
		e.w.WriteString("</member>")
	}
	e.w.WriteString("</struct></value>")
	e.depth--
	return nil
}

func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	}
	return v.IsZero()
}
