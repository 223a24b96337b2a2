package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"
)

// hostileStrings are texts that break naive XML writers or readers. Each must
// survive every path unchanged, except where XML 1.0 itself cannot carry it
// (see sanitized).
var hostileStrings = []string{
	"",
	"plain",
	"a]]>b",
	"<![CDATA[x]]>",
	"<tag attr=\"v\">&amp;</tag>",
	"& &amp; &lt; &#65; &nbsp;",
	`"double" 'single'`,
	"line1\r\nline2",
	"lone\rcarriage",
	"\r",
	"\n\n",
	"tab\there",
	"  leading and trailing  ",
	"日本語のテキスト",
	"emoji 😀🎉 family 👨‍👩‍👧",
	"RTL: שלום עליכם مرحبا",
	"combining e\u0301 and zero\u200bwidth",
	"\u2028\u2029",
	"max BMP \ufffd and astral \U0010FFFD",
}

// unrepresentable strings are changed by the encoder: XML 1.0 cannot carry
// them, so they become U+FFFD.
var unrepresentable = map[string]string{
	"ctl\x00\x01\x1f\x7f":    "ctl\uFFFD\uFFFD\uFFFD\x7f",
	"bad utf8 \xff\xfe":      "bad utf8 \uFFFD\uFFFD",
	"noncharacter \uFFFE":    "noncharacter \uFFFD",
	"surrogate \xed\xa0\x80": "surrogate \uFFFD\uFFFD\uFFFD",
}

type tagged struct {
	ID       string            `xmlrpc:"id"`
	Count    int               `xmlrpc:"count"`
	Skip     string            `xmlrpc:"-"`
	Opt      string            `xmlrpc:"opt,omitempty"`
	When     time.Time         `xmlrpc:"when"`
	Tags     []string          `xmlrpc:"tags"`
	Env      map[string]string `xmlrpc:"env"`
	Untagged bool
	private  int
}

// kolo is what scirectl's agent and CLI use, so its calls must decode to the
// values it meant.
func TestDecodeKoloCalls(t *testing.T) {
	when := time.Date(2024, 2, 29, 23, 59, 58, 0, time.UTC)
	big := strings.Repeat("x", 1<<20)
	cases := []struct {
		name string
		args []any
		want Params
	}{
		{"no params", nil, Params{}},
		{"int", []any{42}, Params{int64(42)}},
		{"int64 max", []any{int64(math.MaxInt64)}, Params{int64(math.MaxInt64)}},
		{"int64 min", []any{int64(math.MinInt64)}, Params{int64(math.MinInt64)}},
		{"int32 edges", []any{int32(math.MaxInt32), int32(math.MinInt32)}, Params{int64(math.MaxInt32), int64(math.MinInt32)}},
		{"uint as i4", []any{uint8(255), uint64(1 << 40)}, Params{int64(255), int64(1 << 40)}},
		{"bool", []any{true, false}, Params{true, false}},
		{"double", []any{3.25, -0.5, 1e-7, 0.0, 1e300}, Params{3.25, -0.5, 1e-7, 0.0, 1e300}},
		{"float32", []any{float32(0.1)}, Params{0.1}},
		{"time", []any{when}, Params{when}},
		{"base64", []any{kolo.Base64(base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}))}, Params{[]byte{0, 1, 2, 255}}},
		{"empty base64", []any{kolo.Base64("")}, Params{[]byte{}}},
		{"nil pointer is an empty value", []any{(*int)(nil)}, Params{""}},
		{"strings", []any{"", "a", "ids travel as strings: 9223372036854775807"}, Params{"", "a", "ids travel as strings: 9223372036854775807"}},
		{"1 MB string", []any{big}, Params{big}},
		{"empty array", []any{[]any{}}, Params{[]any{}}},
		{"empty struct", []any{map[string]any{}}, Params{map[string]any{}}},
		{"array of ids", []any{[]string{"1", "2", "9223372036854775807"}}, Params{[]any{"1", "2", "9223372036854775807"}}},
		{"mixed array", []any{[]any{1, "two", true, 4.5, when}}, Params{[]any{int64(1), "two", true, 4.5, when}}},
		{"nested", []any{map[string]any{
			"list":   []any{[]any{1, []any{}}, map[string]any{"deep": map[string]any{"x": "y"}}},
			"empty":  map[string]any{},
			"number": -7,
		}}, Params{map[string]any{
			"list":   []any{[]any{int64(1), []any{}}, map[string]any{"deep": map[string]any{"x": "y"}}},
			"empty":  map[string]any{},
			"number": int64(-7),
		}}},
		{"tagged struct", []any{tagged{ID: "17", Count: 3, Skip: "no", When: when, Tags: []string{"a"}, Env: map[string]string{"K": "V"}, Untagged: true}},
			// kolo also writes unexported fields; harmless, but it is what arrives.
			Params{map[string]any{"id": "17", "count": int64(3), "when": when, "tags": []any{"a"}, "env": map[string]any{"K": "V"}, "Untagged": true, "private": int64(0)}}},
	}
	for _, s := range hostileStrings {
		cases = append(cases, struct {
			name string
			args []any
			want Params
		}{"string " + clip(s, 20), []any{s, []any{s}, map[string]any{"k": s}}, Params{s, []any{s}, map[string]any{"k": s}}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, err := kolo.EncodeMethodCall("test.method", c.args...)
			if err != nil {
				t.Fatal(err)
			}
			method, got, err := DecodeCall(bytes.NewReader(body), Limits{})
			if err != nil {
				t.Fatalf("DecodeCall: %v\nbody: %s", err, clip(string(body), 500))
			}
			if method != "test.method" {
				t.Errorf("method = %q", method)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("params:\n got %#v\nwant %#v", clip(fmtValue(got), 300), clip(fmtValue(c.want), 300))
			}
		})
	}
}

// TestEncodeKoloResponses decodes our responses with kolo into a target of
// the type the test expects, since kolo cannot decode some things into an
// interface (an empty <string> comes back as nil there).
func TestEncodeKoloResponses(t *testing.T) {
	when := time.Date(2001, 9, 9, 1, 46, 40, 0, time.UTC)
	cest := time.FixedZone("CEST", 2*3600)
	type small struct {
		Name  string `xmlrpc:"name"`
		Count int64  `xmlrpc:"count"`
	}
	cases := []struct {
		name string
		in   any
		want any // decoded by kolo into a new value of want's type
	}{
		{"int", 42, int64(42)},
		{"int32 max stays <int>", math.MaxInt32, int64(math.MaxInt32)},
		{"beyond int32 is <i8>", int64(math.MaxInt32) + 1, int64(math.MaxInt32) + 1},
		{"int32 min", math.MinInt32, int64(math.MinInt32)},
		{"below int32", int64(math.MinInt32) - 1, int64(math.MinInt32) - 1},
		{"int64 max", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"int64 min", int64(math.MinInt64), int64(math.MinInt64)},
		{"uint64 at int64 max", uint64(math.MaxInt64), int64(math.MaxInt64)},
		{"int8", int8(-3), int64(-3)},
		{"duration is nanoseconds", 2 * time.Second, int64(2e9)},
		{"true", true, true},
		{"false", false, false},
		{"double", 3.5, 3.5},
		{"negative tiny double", -1e-9, -1e-9},
		{"float32 keeps its short form", float32(0.1), 0.1},
		{"huge double", 1e300, 1e300},
		{"empty string", "", ""},
		{"1 MB string", strings.Repeat("é<&", 1<<18), strings.Repeat("é<&", 1<<18)},
		{"time UTC", when, when},
		{"time elsewhere is sent in UTC", when.In(cest), when},
		{"pointer to time", &when, when},
		{"bytes", []byte{0, 1, 2, 250}, kolo.Base64("AAEC+g==")},
		{"empty bytes", []byte{}, kolo.Base64("")},
		{"nil", nil, any(nil)},
		{"nil pointer", (*small)(nil), any(nil)},
		{"empty array", []any{}, []any(nil)}, // kolo leaves an empty typed slice nil
		{"nil slice is an empty array", []string(nil), []string(nil)},
		{"nil slice is an empty array for Python", []string(nil), []any(nil)},
		{"empty struct", map[string]any{}, map[string]any{}},
		{"string slice", []string{"a", "", "c"}, []string{"a", "", "c"}},
		{"int64 slice", []int64{1, math.MaxInt64}, []int64{1, math.MaxInt64}},
		{"array", [2]int{1, 2}, []int64{1, 2}},
		{"map string→string", map[string]string{"b": "2", "a": "1"}, map[string]string{"a": "1", "b": "2"}},
		{"map of any", map[string]any{"n": int64(1), "s": "x", "l": []any{true}}, map[string]any{"n": int64(1), "s": "x", "l": []any{true}}},
		{"go struct", small{"job", 5}, small{"job", 5}},
		{"pointer to struct", &small{"p", 1}, small{"p", 1}},
		{"slice of structs", []small{{"a", 1}, {"b", 2}}, []small{{"a", 1}, {"b", 2}}},
		{"slice of maps", []map[string]any{{"a": "1"}}, []map[string]any{{"a": "1"}}},
		{"tagged struct", tagged{ID: "9", Count: 2, Skip: "gone", When: when, Tags: []string{}, Env: map[string]string{"X": "<y>"}, Untagged: true, private: 5},
			tagged{ID: "9", Count: 2, When: when, Tags: nil, Env: map[string]string{"X": "<y>"}, Untagged: true}},
		{"nested", map[string]any{"a": []any{map[string]any{"b": []any{[]any{int64(1)}}}}},
			map[string]any{"a": []any{map[string]any{"b": []any{[]any{int64(1)}}}}}},
		{"fault as a value", &Fault{Code: 409, Message: "busy"}, kolo.FaultError{Code: 409, String: "busy"}},
		{"Struct", NewStruct("x", map[string]any{"k": "v"}), map[string]any{"k": "v"}},
	}
	for _, s := range hostileStrings {
		cases = append(cases, struct {
			name string
			in   any
			want any
		}{"string " + clip(s, 20), []any{s, map[string]any{"k": s}}, []any{s, map[string]any{"k": s}}})
	}
	for in, want := range unrepresentable {
		cases = append(cases, struct {
			name string
			in   any
			want any
		}{"unrepresentable " + clip(want, 20), in, want})
	}
	// kolo cannot tell "" from absent inside an interface; the typed
	// string cases above prove "" itself.
	for i, c := range cases {
		if s, ok := c.want.([]any); ok && len(s) > 0 && s[0] == "" {
			cases[i].want = []any{nil, map[string]any{"k": nil}}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeResponse(&buf, c.in); err != nil {
				t.Fatal(err)
			}
			resp := kolo.Response(buf.Bytes())
			if err := resp.Err(); err != nil {
				t.Fatalf("kolo sees a fault: %v", err)
			}
			var got reflect.Value
			if c.want == nil {
				var v any
				if err := resp.Unmarshal(&v); err != nil {
					t.Fatal(err)
				}
				if v != nil {
					t.Fatalf("got %#v, want nil", v)
				}
				return
			}
			got = reflect.New(reflect.TypeOf(c.want))
			if err := resp.Unmarshal(got.Interface()); err != nil {
				t.Fatalf("kolo Unmarshal: %v\n%s", err, clip(buf.String(), 400))
			}
			if !reflect.DeepEqual(got.Elem().Interface(), c.want) {
				t.Errorf("kolo decoded\n %s\nwant\n %s\nfrom %s", clip(fmtValue(got.Elem().Interface()), 300), clip(fmtValue(c.want), 300), clip(buf.String(), 400))
			}
		})
	}
}

func TestEncodeIntWidths(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{math.MaxInt32, "<int>2147483647</int>"},
		{math.MinInt32, "<int>-2147483648</int>"},
		{int64(math.MaxInt32) + 1, "<i8>2147483648</i8>"},
		{int64(math.MinInt32) - 1, "<i8>-2147483649</i8>"},
		{uint32(math.MaxUint32), "<i8>4294967295</i8>"},
		{time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("x", -3600)), "<dateTime.iso8601>20240102T04:04:05</dateTime.iso8601>"},
		{"a\r\nb<>&'\"", "<string>a&#xD;\nb&lt;&gt;&amp;'\"</string>"},
		{[]string(nil), "<array><data></data></array>"},
		{map[string]any(nil), "<struct></struct>"},
		{(*int)(nil), "<nil/>"},
		{[]byte("hi"), "<base64>aGk=</base64>"},
		{-0.0, "<double>0</double>"},
		{1e21, "<double>1000000000000000000000</double>"},
		{float32(1.1), "<double>1.1</double>"},
		{struct {
			A string    `xmlrpc:"a,omitempty"`
			B []int     `xmlrpc:"b,omitempty"`
			T time.Time `xmlrpc:"t,omitempty"`
			C int       `xmlrpc:"c"`
		}{}, "<struct><member><name>c</name><value><int>0</int></value></member></struct>"},
		{map[string]int{"b": 2, "a": 1, "<": 0}, "<struct><member><name>&lt;</name><value><int>0</int></value></member><member><name>a</name><value><int>1</int></value></member><member><name>b</name><value><int>2</int></value></member></struct>"},
	} {
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, c.in); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "<param><value>"+c.want+"</value></param>") {
			t.Errorf("%#v encoded as %s, want %s", c.in, buf.String(), c.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	type loop struct {
		Next *loop `xmlrpc:"next"`
	}
	l := &loop{}
	l.Next = l
	type conflict struct {
		A string `xmlrpc:"x"`
		B string `xmlrpc:"x"`
	}
	for _, c := range []struct {
		name string
		in   any
		want string
	}{
		{"uint64 beyond int64", uint64(math.MaxInt64) + 1, "exceeds the int64 range"},
		{"NaN", math.NaN(), "no XML-RPC representation"},
		{"Inf in a struct", map[string]any{"x": []any{1, math.Inf(1)}}, `member "x": item 2: double +Inf`},
		{"channel", make(chan int), "cannot encode chan int"},
		{"func in struct field", struct{ F func() }{}, `member "F": cannot encode func()`},
		{"int keys", map[int]string{1: "a"}, "member names must be strings"},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "year outside 0000..9999"},
		{"cycle", l, "cyclic"},
		{"name conflict", conflict{}, `2 fields at the same depth encode as member "x"`},
		{"complex", complex(1, 2), "cannot encode complex128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := EncodeResponse(&bytes.Buffer{}, c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestEmbeddedStructs(t *testing.T) {
	type Base struct {
		ID   string `xmlrpc:"id"`
		Name string `xmlrpc:"name"`
	}
	type Extra struct{ Note string }
	type job struct {
		Base
		*Extra
		Name string `xmlrpc:"name"` // hides Base.Name
	}
	got := roundTrip(t, job{Base: Base{ID: "1", Name: "hidden"}, Name: "shown"})
	want := map[string]any{"id": "1", "name": "shown"} // nil *Extra contributes nothing
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	got = roundTrip(t, job{Extra: &Extra{Note: "n"}})
	want = map[string]any{"id": "", "name": "", "Note": "n"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestFaultWire(t *testing.T) {
	for _, f := range []*Fault{
		{Code: CodeInvalid, Message: "param 2: <int> value \"x\" is not an integer"},
		{Code: CodeBusy, Message: "gate held by job.cancel\r\n & more ]]>"},
		{Code: CodeInternal, Message: ""},
	} {
		var buf bytes.Buffer
		if err := EncodeFault(&buf, f); err != nil {
			t.Fatal(err)
		}
		err := kolo.Response(buf.Bytes()).Err()
		fe, ok := err.(kolo.FaultError)
		if !ok {
			t.Fatalf("kolo did not see a fault in %s: %v", buf.String(), err)
		}
		if fe.Code != f.Code || fe.String != f.Message {
			t.Errorf("kolo read fault %d %q, want %d %q", fe.Code, fe.String, f.Code, f.Message)
		}
	}
	var buf bytes.Buffer
	EncodeFault(&buf, nil)
	if fe, ok := kolo.Response(buf.Bytes()).Err().(kolo.FaultError); !ok || fe.Code != 500 {
		t.Errorf("nil fault encoded as %s", buf.String())
	}
	if got := Faultf(404, "no job %d", 7).Error(); got != "no job 7 (fault 404)" {
		t.Errorf("Error() = %q", got)
	}
}

// roundTrip encodes v as a call parameter with our encoder and decodes it
// with our decoder.
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "rt", v); err != nil {
		t.Fatal(err)
	}
	_, p, err := DecodeCall(&buf, Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	return p[0]
}

func TestOwnRoundTrip(t *testing.T) {
	for _, s := range hostileStrings {
		if got := roundTrip(t, s); got != s {
			t.Errorf("%q came back as %q", s, got)
		}
	}
	for in, want := range unrepresentable {
		if got := roundTrip(t, in); got != want {
			t.Errorf("%q came back as %q, want %q", in, got, want)
		}
	}
	v := map[string]any{"weird <name> & \"q\"\r": []any{int64(math.MinInt64), 1.5, []byte("\x00\xff"), nil, true, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if got := roundTrip(t, v); !reflect.DeepEqual(got, v) {
		t.Errorf("got %#v, want %#v", got, v)
	}
}

type inner struct {
	When  time.Time         `xmlrpc:"when"`
	Env   map[string]string `xmlrpc:"env"`
	Any   any               `xmlrpc:"any"`
	Facts map[string]any    `xmlrpc:"facts"`
}

// Fields reached through an unexported embedded struct are read through
// reflection with read-only flags; the fast paths must not trip on them.
func TestUnexportedEmbedded(t *testing.T) {
	when := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	v := struct {
		inner
		N int `xmlrpc:"n"`
	}{inner{when, map[string]string{"a": "b"}, 5, map[string]any{"x": []any{"y"}}}, 1}
	got := roundTrip(t, v)
	want := map[string]any{"when": when, "env": map[string]any{"a": "b"}, "any": int64(5), "facts": map[string]any{"x": []any{"y"}}, "n": int64(1)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	if got := roundTrip(t, &v); !reflect.DeepEqual(got, want) {
		t.Errorf("through a pointer: got %#v", got)
	}
}

// A type's encoding error is cached; reporting it twice must not pile the
// first report's path onto the second.
func TestCachedStructErrorIsFresh(t *testing.T) {
	type conflict struct {
		A string `xmlrpc:"x"`
		B string `xmlrpc:"x"`
	}
	var first string
	for i := range 3 {
		err := EncodeResponse(io.Discard, map[string]any{"m": []any{conflict{}}})
		if err == nil {
			t.Fatal("no error")
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("error changed from %q to %q", first, err)
		}
	}
	if !strings.Contains(first, `member "m": item 1: cannot encode`) {
		t.Errorf("error %q lacks the path", first)
	}
}

func fmtValue(v any) string { return fmt.Sprintf("%#v", v) }
