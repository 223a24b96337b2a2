package xmlrpc

import (
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scirectl/scirectl/xmlscan"
)

// MaxResponseDepth bounds the nesting of values in a response that
// DecodeResponse reads, as Limits.MaxDepth does for calls.
const MaxResponseDepth = 64

// TypeMismatchError is a response value that does not fit the Go value it
// is decoded into. Its texts are kolo/xmlrpc's, whose decoder DecodeResponse
// replaced on the client side.
type TypeMismatchError string

func (e TypeMismatchError) Error() string { return string(e) }

// DecodeResponse parses a <methodResponse>. A fault is returned as a *Fault,
// and a fault that cannot be read as a *BadFaultError; *v is not touched
// then. Otherwise *v is set to its zero value and the one result is stored
// in it; v must be a pointer (or nil, to discard the result, which is still
// read).
//
// Values are converted as kolo/xmlrpc's Unmarshal converts them, so that a
// client sees the same Go values it always did:
//
//   - Go structs are filled by the field tag `xmlrpc:"name"` (",omitempty"
//     ignored, "-" skipped) or the field name, direct fields only; members
//     without a field are skipped. Maps need string keys and are made anew.
//   - Into an empty interface go int64, string, bool, float64, time.Time,
//     []any and map[string]any.
//   - <int>, <i4> and <i8> fill any Go int kind (refused beyond its size);
//     <string> and <base64> fill a string kind — base64 is not decoded;
//     <boolean> is read by strconv.ParseBool, <double> by ParseFloat;
//     dateTime.iso8601 in the forms 20060102T15:04:05 and
//     2006-01-02T15:04:05, with an optional zone, which is kept.
//   - An element without text (<string/>, <nil/>, an unknown type) leaves
//     the value as it is; a pointer on the way is allocated all the same.
//     An untyped <value> is a string, trimmed of spaces, and leaves the value
//     as it is when that leaves nothing.
//   - An array sets a slice (a typed empty one stays nil, as with kolo; an
//     empty interface gets []any{}), <array/> without <data> sets nothing.
//
// Unlike kolo's, the decoder reads the whole document, strictly: malformed
// XML, anything but whitespace, comments and processing instructions around
// the elements, a second value, or text split by comments or CDATA inside a
// scalar (which kolo cut at the first piece) are handled as DecodeCall
// handles them — refused with a message, or joined. Errors other than a
// *Fault are *TypeMismatchError, the strconv and time parsing errors kolo
// returned, or a message about the document.
func DecodeResponse(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if v != nil && rv.Kind() != reflect.Pointer {
		return errors.New("non-pointer value passed to unmarshal")
	}
	d := respDecoderPool.Get().(*callDecoder)
	d.s.Reset(data)
	d.lim, d.values = Limits{MaxDepth: MaxResponseDepth, MaxValues: math.MaxInt, MaxStringBytes: math.MaxInt}, 0
	defer func() {
		d.s.Reset(nil)
		if cap(d.text) > maxPooledBody {
			d.text = nil
		}
		respDecoderPool.Put(d)
	}()
	var target reflect.Value
	if v != nil && !rv.IsNil() {
		target = rv.Elem()
	}
	return d.response(func(p []byte) error {
		if target.IsValid() {
			target.SetZero()
		}
		return d.oneValue(p, target)
	})
}

// DecodeMulticallResponse parses the response of a system.multicall of
// len(replies) calls: an array holding, for each call in order, its result
// in a one-value array or its fault struct. The i-th result is stored in
// replies[i] as DecodeResponse stores its one result (a pointer, zeroed
// first; nil discards it), and the i-th fault is returned as errs[i], a
// *Fault (replies[i] is not touched then). A fault of the whole request, a
// malformed response or one whose number of entries is not len(replies)
// is err, and errs is nil: no call's outcome is known.
func DecodeMulticallResponse(data []byte, replies []any) (errs []error, err error) {
	targets := make([]reflect.Value, len(replies))
	for i, v := range replies {
		rv := reflect.ValueOf(v)
		if v != nil && rv.Kind() != reflect.Pointer {
			return nil, fmt.Errorf("reply %d: non-pointer value passed to unmarshal", i+1)
		}
		if v != nil && !rv.IsNil() {
			targets[i] = rv.Elem()
		}
	}
	d := respDecoderPool.Get().(*callDecoder)
	d.s.Reset(data)
	d.lim, d.values = Limits{MaxDepth: MaxResponseDepth, MaxValues: math.MaxInt, MaxStringBytes: math.MaxInt}, 0
	defer func() {
		d.s.Reset(nil)
		if cap(d.text) > maxPooledBody {
			d.text = nil
		}
		respDecoderPool.Put(d)
	}()
	errs = make([]error, len(replies))
	if err := d.response(func(p []byte) error { return d.multicallResults(p, targets, errs) }); err != nil {
		return nil, err
	}
	return errs, nil
}

// multicallResults reads the <value> that the <param> p holds, the array
// of a system.multicall's results, up to and including p's end tag.
func (d *callDecoder) multicallResults(p []byte, targets []reflect.Value, errs []error) error {
	v, err := d.valueIn(p)
	if err != nil {
		return err
	}
	arr, ok, err := d.child(v)
	if err == nil && (!ok || string(local(arr)) != "array") {
		err = errorf("system.multicall: the result is not an array")
	}
	if err != nil {
		return err
	}
	data, ok, err := d.child(arr)
	if err == nil && ok && string(local(data)) != "data" {
		err = d.structural("<%s> in <array>, want <data>", data)
	}
	if err != nil {
		return err
	}
	n := 0
	for ok {
		e, more, err := d.child(data)
		if err != nil {
			return at(fmt.Sprintf("item %d", n+1), err)
		}
		if !more {
			break
		}
		if string(local(e)) != "value" {
			return at(fmt.Sprintf("item %d", n+1), d.structural("<%s> in <data>, want <value>", e))
		}
		if n == len(targets) {
			return errorf("system.multicall: more results than the %d calls", len(targets))
		}
		if err := d.multicallEntry(e, targets[n], &errs[n]); err != nil {
			return at(fmt.Sprintf("item %d", n+1), err)
		}
		n++
	}
	if n != len(targets) {
		return errorf("system.multicall: %d results for %d calls", n, len(targets))
	}
	if ok {
		if err := d.end(arr, "</data>"); err != nil {
			return err
		}
	}
	if err := d.end(v, "</array>"); err != nil {
		return err
	}
	return d.end(p, "</value>")
}

// multicallEntry reads one entry of a system.multicall's results, after
// its <value> start tag e, up to and including its end tag: a one-value
// array, whose value goes into target, or a fault struct, stored in *ferr.
func (d *callDecoder) multicallEntry(e []byte, target reflect.Value, ferr *error) error {
	el, ok, err := d.child(e)
	if err != nil {
		return err
	}
	if !ok {
		return errorf("neither a one-value array nor a fault struct")
	}
	switch string(local(el)) {
	case "array":
		data, ok, err := d.child(el)
		if err == nil && (!ok || string(local(data)) != "data") {
			err = errorf("an empty array, want the call's one result")
		}
		if err != nil {
			return err
		}
		inner, ok, err := d.child(data)
		if err == nil && (!ok || string(local(inner)) != "value") {
			if ok {
				err = d.structural("<%s> in <data>, want <value>", inner)
			} else {
				err = errorf("an empty array, want the call's one result")
			}
		}
		if err != nil {
			return err
		}
		if target.IsValid() {
			target.SetZero()
		}
		if err := d.into(inner, target, 3); err != nil {
			return err
		}
		if err := d.end(data, "the result"); err != nil {
			return err
		}
		if err := d.end(el, "</data>"); err != nil {
			return err
		}
	case "struct":
		f := new(faultValue)
		if err := d.structInto(el, reflect.ValueOf(f).Elem(), 2); err != nil {
			return &BadFaultError{err}
		}
		*ferr = &Fault{Code: f.Code, Message: f.String}
	default:
		return d.structural("<%s>, want a one-value array or a fault struct", el)
	}
	return d.endAfter(e, el)
}

var respDecoderPool = sync.Pool{New: func() any { return &callDecoder{s: xmlscan.New(nil)} }}

// BadFaultError is a <fault> whose value is not a fault struct.
type BadFaultError struct{ Err error }

func (e *BadFaultError) Error() string { return "fault: " + e.Err.Error() }
func (e *BadFaultError) Unwrap() error { return e.Err }

// faultValue is what a <fault> carries, decoded as kolo decoded it.
type faultValue struct {
	Code   int    `xmlrpc:"faultCode"`
	String string `xmlrpc:"faultString"`
}

// response reads a <methodResponse>; param reads the result, after the
// <param> start tag p, up to and including its end tag.
func (d *callDecoder) response(param func(p []byte) error) error {
	var root []byte
	for {
		k, err := d.token()
		if err == errEOF {
			return errorf("empty response: no <methodResponse> element")
		}
		if err != nil {
			return err
		}
		if k == xmlscan.StartElement {
			root = d.s.Name
			break
		}
		if k == xmlscan.CharData && !isSpace(trimBOM(d.s.Data)) {
			return d.structural("text %q before the root element", clip(string(d.s.Data), 40))
		}
	}
	if string(local(root)) != "methodResponse" {
		return d.structural("root element is <%s>, want <methodResponse>", root)
	}
	el, ok, err := d.child(root)
	if err != nil {
		return err
	}
	if !ok {
		return errorf("<methodResponse> has neither <params> nor <fault>")
	}
	var fault *faultValue
	switch string(local(el)) {
	case "params":
		p, ok, err := d.child(el)
		if err == nil && (!ok || string(local(p)) != "param") {
			if ok {
				err = d.structural("unexpected <%s> in <params>, want <param>", p)
			} else {
				err = errorf("<params> without <param>: a response carries one value")
			}
		}
		if err != nil {
			return err
		}
		if err := param(p); err != nil {
			return at("param 1", err)
		}
		if err := d.end(el, "</param>"); err != nil {
			return err
		}
	case "fault":
		fault = new(faultValue)
		if err := d.oneValue(el, reflect.ValueOf(fault).Elem()); err != nil {
			return &BadFaultError{err}
		}
	default:
		return d.structural("unexpected <%s> in <methodResponse>, want <params> or <fault>", el)
	}
	if err := d.end(root, "</"+string(el)+">"); err != nil {
		return err
	}
	for {
		k, err := d.s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.syntax(err)
		}
		switch k {
		case xmlscan.StartElement:
			return d.structural("<%s> after </methodResponse>: one root element only", d.s.Name)
		case xmlscan.EndElement:
			return d.structural("stray </%s> after </methodResponse>", d.s.Name)
		case xmlscan.CharData:
			if !isSpace(d.s.Data) {
				return d.structural("text %q after </methodResponse>", clip(string(d.s.Data), 40))
			}
		case xmlscan.Directive:
			return d.structural("<!%s> is not allowed", clip(string(firstWord(d.s.Data)), 20))
		}
	}
	if fault != nil {
		return &Fault{Code: fault.Code, Message: fault.String}
	}
	return nil
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && string(b[:3]) == "\uFEFF" {
		return b[3:]
	}
	return b
}

// valueIn reads the start of the <value> that parent must hold.
func (d *callDecoder) valueIn(parent []byte) ([]byte, error) {
	v, ok, err := d.child(parent)
	if err == nil && (!ok || string(local(v)) != "value") {
		if ok {
			err = d.structural("<%s> in <%s>, want <value>", v, parent)
		} else {
			err = errorf("<%s> without <value>", parent)
		}
	}
	return v, err
}

// oneValue reads the <value> that parent (<param> or <fault>) holds, up to
// and including parent's end tag.
func (d *callDecoder) oneValue(parent []byte, target reflect.Value) error {
	v, err := d.valueIn(parent)
	if err != nil {
		return err
	}
	if err := d.into(v, target, 1); err != nil {
		return err
	}
	return d.end(parent, "</value>")
}

// into reads what follows a <value> start tag, up to and including its end
// tag, into val; an invalid val discards the value.
func (d *callDecoder) into(start []byte, val reflect.Value, depth int) error {
	if depth > d.lim.MaxDepth {
		return errorf("values nested deeper than %d levels", d.lim.MaxDepth)
	}
	for val.IsValid() && val.Kind() == reflect.Pointer {
		if val.IsNil() {
			val.Set(reflect.New(val.Type().Elem()))
		}
		val = val.Elem()
	}
	d.text = d.text[:0]
	for {
		k, err := d.token()
		if err != nil {
			return err
		}
		switch k {
		case xmlscan.CharData:
			d.text = append(d.text, d.s.Data...)
		case xmlscan.EndElement:
			if string(d.s.Name) != string(start) {
				return d.structural("</%s> closes <%s>", d.s.Name, start)
			}
			// No type element: a string, trimmed (kolo's rule).
			if s := strings.TrimSpace(string(d.text)); s != "" && val.IsValid() {
				if err := checkKind(val, reflect.String); err != nil {
					return err
				}
				val.SetString(s)
			}
			return nil
		case xmlscan.StartElement:
			if !isSpace(d.text) {
				return d.structural("text %q next to <%s> in <value>", clip(string(d.text), 40), d.s.Name)
			}
			t := d.s.Name
			if err := d.typedInto(t, val, depth); err != nil {
				return err
			}
			return d.endAfter(start, t)
		}
	}
}

// emptyInterface reports a nil interface{} (or any) that a decoded value may
// be stored in, as kolo's checkType(val, Interface) == nil && val.IsNil().
func emptyInterface(v reflect.Value) bool {
	return v.Kind() == reflect.Interface && v.IsNil() && v.NumMethod() == 0
}

// checkKind is kolo's checkType: the message names the first kind wanted.
func checkKind(v reflect.Value, kinds ...reflect.Kind) error {
	k := v.Kind()
	for _, want := range kinds {
		if k == want {
			return nil
		}
	}
	return TypeMismatchError(fmt.Sprintf("error: type mismatch - can't unmarshal %v to %v", k, kinds[0]))
}

var intKinds = []reflect.Kind{reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64}

var koloTimeLayouts = []string{"20060102T15:04:05", "20060102T15:04:05Z07:00", "2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00"}

func (d *callDecoder) typedInto(start []byte, val reflect.Value, depth int) error {
	typ := local(start)
	switch string(typ) {
	case "struct":
		return d.structInto(start, val, depth)
	case "array":
		return d.arrayInto(start, val, depth)
	}
	b, n, err := d.readTextN(start)
	if err != nil || n == 0 || !val.IsValid() {
		return err // an element without text leaves the value alone
	}
	switch string(typ) {
	case "int", "i4", "i8":
		if emptyInterface(val) {
			i, err := strconv.ParseInt(string(b), 10, 64)
			if err != nil {
				return err
			}
			val.Set(reflect.ValueOf(i))
			return nil
		}
		if err := checkKind(val, intKinds...); err != nil {
			return err
		}
		if i, ok := parseSmallInt(b); ok && len(b) <= 9 && !val.OverflowInt(i) {
			val.SetInt(i)
			return nil
		}
		i, err := strconv.ParseInt(string(b), 10, val.Type().Bits())
		if err != nil {
			return err
		}
		val.SetInt(i)
	case "string", "base64":
		if emptyInterface(val) {
			val.Set(reflect.ValueOf(string(b)))
			return nil
		}
		if err := checkKind(val, reflect.String); err != nil {
			return err
		}
		val.SetString(string(b))
	case "dateTime.iso8601":
		var t time.Time
		var err error
		for _, layout := range koloTimeLayouts {
			if t, err = time.Parse(layout, string(b)); err == nil {
				break
			}
		}
		if err != nil {
			return err
		}
		switch {
		case emptyInterface(val):
			val.Set(reflect.ValueOf(t))
		case val.Type() == timeType:
			val.Set(reflect.ValueOf(t))
		default:
			return TypeMismatchError(fmt.Sprintf("error: type mismatch error - can't decode %v to time", val.Kind()))
		}
	case "boolean":
		x, err := strconv.ParseBool(string(b))
		if err != nil {
			return err
		}
		if emptyInterface(val) {
			val.Set(reflect.ValueOf(x))
			return nil
		}
		if err := checkKind(val, reflect.Bool); err != nil {
			return err
		}
		val.SetBool(x)
	case "double":
		if emptyInterface(val) {
			f, err := strconv.ParseFloat(string(b), 64)
			if err != nil {
				return err
			}
			val.Set(reflect.ValueOf(f))
			return nil
		}
		if err := checkKind(val, reflect.Float32, reflect.Float64); err != nil {
			return err
		}
		f, err := strconv.ParseFloat(string(b), val.Type().Bits())
		if err != nil {
			return err
		}
		val.SetFloat(f)
	default:
		return errors.New("unsupported type")
	}
	return nil
}

// decodeFields maps member names to the fields kolo would fill: direct
// exported fields, by tag or name, a later field winning a name.
var decodeFieldCache sync.Map // reflect.Type → map[string]int

func decodeFields(t reflect.Type) map[string]int {
	if m, ok := decodeFieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.TrimSuffix(f.Tag.Get("xmlrpc"), ",omitempty")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	got, _ := decodeFieldCache.LoadOrStore(t, m)
	return got.(map[string]int)
}

var stringMapType = reflect.TypeFor[map[string]any]()

func (d *callDecoder) structInto(start []byte, val reflect.Value, depth int) error {
	var fields map[string]int
	var m reflect.Value     // the map being filled, when not a struct
	var iface reflect.Value // the interface holding m, if any
	switch {
	case !val.IsValid():
	case val.Kind() == reflect.Struct:
		fields = decodeFields(val.Type())
	case val.Kind() == reflect.Map:
		if val.Type().Key().Kind() != reflect.String {
			return errors.New("only maps with string key type can be unmarshalled")
		}
		m = reflect.MakeMap(val.Type())
		val.Set(m)
	case emptyInterface(val):
		// kolo stores a nil map in the interface, and the map once a member
		// is in it: an empty struct is a nil map[string]any.
		iface = val
		val.Set(reflect.Zero(stringMapType))
		m = reflect.MakeMap(stringMapType)
	default:
		return checkKind(val, reflect.Struct)
	}
	for n := 1; ; n++ {
		mem, ok, err := d.child(start)
		if err != nil {
			return at(fmt.Sprintf("member %d", n), err)
		}
		if !ok {
			return nil
		}
		if string(local(mem)) != "member" {
			return d.structural("<%s> in <struct>, want <member>", mem)
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
			return at(fmt.Sprintf("member %d", n), err)
		}
		raw, pieces, err := d.readTextN(el)
		if err == nil && pieces == 0 {
			err = errorf("<name> is empty") // kolo refuses it too ("invalid xml")
		}
		if err != nil {
			return at(fmt.Sprintf("member %d", n), err)
		}
		// The name is kept for messages (raw is the scanner's, valid until the
		// next token) in a buffer that stays on the stack.
		var nameBuf [64]byte
		name := append(nameBuf[:0], raw[:min(len(raw), 61)]...)
		var fv reflect.Value // invalid: skip the member's value
		var key string
		switch {
		case fields != nil:
			if i, ok := fields[string(raw)]; ok {
				fv = val.Field(i)
			}
		case m.IsValid():
			key = string(raw)
			fv = reflect.New(m.Type().Elem()).Elem()
		}
		el, ok, err = d.child(mem)
		if err == nil && (!ok || string(local(el)) != "value") {
			if ok {
				err = d.structural("<%s> after <name>, want <value>", el)
			} else {
				err = errorf("no <value>")
			}
		}
		if err == nil {
			err = d.into(el, fv, depth+1)
		}
		if err == nil {
			err = d.end(mem, "</value>")
		}
		if err != nil {
			return at("member "+strconv.Quote(clip(string(name), 60)), err)
		}
		if m.IsValid() {
			m.SetMapIndex(reflect.ValueOf(key), fv)
			if iface.IsValid() && n == 1 {
				iface.Set(m)
			}
		}
	}
}

var anySliceType = reflect.TypeFor[[]any]()

func (d *callDecoder) arrayInto(start []byte, val reflect.Value, depth int) error {
	var st reflect.Type // the slice type to build, nil to discard
	iface := false
	switch {
	case !val.IsValid():
	case emptyInterface(val):
		st, iface = anySliceType, true
	case val.Kind() == reflect.Slice:
		st = val.Type()
	default:
		return checkKind(val, reflect.Slice)
	}
	el, ok, err := d.child(start)
	if err != nil || !ok {
		return err // <array/>: nothing is set
	}
	if string(local(el)) != "data" {
		return d.structural("<%s> in <array>, want <data>", el)
	}
	var s reflect.Value
	if st != nil {
		s = reflect.MakeSlice(st, 0, 0)
	}
	n := 0
	for {
		v, ok, err := d.child(el)
		if err != nil {
			return at(fmt.Sprintf("item %d", n+1), err)
		}
		if !ok {
			break
		}
		if string(local(v)) != "value" {
			return at(fmt.Sprintf("item %d", n+1), d.structural("<%s> in <data>, want <value>", v))
		}
		var item reflect.Value
		if st != nil {
			if n == s.Len() { // s is always full length; n items are used
				grown := reflect.MakeSlice(st, max(4, 2*n), max(4, 2*n))
				if n > 0 {
					reflect.Copy(grown, s)
				}
				s = grown
			}
			item = s.Index(n)
		}
		if err := d.into(v, item, depth+1); err != nil {
			return at(fmt.Sprintf("item %d", n+1), err)
		}
		n++
	}
	if err := d.end(start, "</data>"); err != nil {
		return err
	}
	switch {
	case st == nil:
	case n > 0:
		val.Set(s.Slice(0, n))
	case iface:
		val.Set(reflect.ValueOf([]any{})) // kolo: an empty interface gets []any{}, a typed slice stays nil
	}
	return nil
}
