package xmlrpc

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func call(params ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>m</methodName><params>`)
	for _, p := range params {
		b.WriteString("<param>" + p + "</param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

func nest(open, close string, n int, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

// badCalls are requests that must be refused with a 400 fault whose text
// contains want. They double as the fuzz seed corpus.
var badCalls = []struct {
	name, body, want string
}{
	{"empty body", "", "empty request"},
	{"only whitespace", " \n\t", "empty request"},
	{"not XML", "hello", `text "hello" before the root element`},
	{"wrong root", `<methodResponse><params/></methodResponse>`, "root element is <methodResponse>, want <methodCall>"},
	{"methodName missing", `<methodCall><params></params></methodCall>`, "must start with <methodName>, got <params>"},
	{"methodName missing entirely", `<methodCall></methodCall>`, "has no <methodName>"},
	{"methodName empty", `<methodCall><methodName> </methodName></methodCall>`, "<methodName> is empty"},
	{"methodName with space", `<methodCall><methodName>a b</methodName></methodCall>`, `contains ' '`},
	{"methodName with element", `<methodCall><methodName>a<b/></methodName></methodCall>`, "<b> inside <methodName>"},
	{"methodName too long", `<methodCall><methodName>` + strings.Repeat("a", 300) + `</methodName></methodCall>`, "longer than 256 bytes"},
	{"two methodNames", `<methodCall><methodName>a</methodName><methodName>b</methodName></methodCall>`, "unexpected <methodName> in <methodCall>, want <params>"},
	{"truncated", `<methodCall><methodName>a</methodName><params><param><value><int>1`, "the body is truncated"},
	{"truncated inside a tag", `<methodCall><methodName>a</methodName><params><param><val`, "unexpected EOF"},
	{"truncated at a tag boundary", `<methodCall><methodName>a</methodName><params>`, "truncated"},
	{"unclosed root", `<methodCall><methodName>a</methodName>`, "truncated"},
	{"mismatched end tag", call(`<value><int>1</i4></value>`), "</i4> closes <int>"},
	{"stray end tag", call(`<value><int>1</int></value></value>`), "</value> closes <param>"},
	{"two roots", `<methodCall><methodName>a</methodName></methodCall><methodCall/>`, "after </methodCall>"},
	{"text after root", `<methodCall><methodName>a</methodName></methodCall>junk`, `text "junk" after </methodCall>`},
	{"text in params", `<methodCall><methodName>a</methodName><params>junk</params></methodCall>`, `unexpected text "junk" inside <params>`},
	{"param without value", call(``), "param 1: <param> without <value>"},
	{"two values in a param", call(`<value>a</value><value>b</value>`), "unexpected <value> after </value> in <param>"},
	{"two types in a value", call(`<value><int>1</int><int>2</int></value>`), "unexpected <int> after </int> in <value>"},
	{"text beside a type", call(`<value>x<int>1</int></value>`), `text "x" next to <int>`},
	{"unknown type", call(`<value><long>1</long></value>`), "param 1: unknown value type <long>"},
	{"int not a number", call(`<value><i4>1</i4></value>`, `<value><int>x</int></value>`), `param 2: <int> value "x" is not an integer`},
	{"int empty", call(`<value><int></int></value>`), `<int> value "" is not an integer`},
	{"int with fraction", call(`<value><int>1.5</int></value>`), `<int> value "1.5" is not an integer`},
	{"int overflow", call(`<value><i8>9223372036854775808</i8></value>`), `<i8> value "9223372036854775808" does not fit in 64 bits`},
	{"int underflow", call(`<value><int>-9223372036854775809</int></value>`), "does not fit in 64 bits"},
	{"int with element", call(`<value><int><b/></int></value>`), "<b> inside <int>, which holds text only"},
	{"bad boolean", call(`<value><boolean>2</boolean></value>`), `<boolean> value "2" is not 0 or 1`},
	{"boolean yes", call(`<value><boolean>yes</boolean></value>`), `<boolean> value "yes" is not 0 or 1`},
	{"double not a number", call(`<value><double>1,5</double></value>`), `<double> value "1,5" is not a number`},
	{"double nan", call(`<value><double>nan</double></value>`), "is not a finite number"},
	{"double inf", call(`<value><double>-Inf</double></value>`), "is not a finite number"},
	{"double overflow", call(`<value><double>1e400</double></value>`), "is not a finite number"},
	{"bad date", call(`<value><dateTime.iso8601>yesterday</dateTime.iso8601></value>`), `<dateTime.iso8601> value "yesterday": not a dateTime`},
	{"bad month", call(`<value><dateTime.iso8601>20241301T00:00:00</dateTime.iso8601></value>`), "not a dateTime"},
	{"bad day", call(`<value><dateTime.iso8601>2023-02-29T00:00:00Z</dateTime.iso8601></value>`), "not a dateTime"},
	{"date only", call(`<value><dateTime.iso8601>20240101</dateTime.iso8601></value>`), "not a dateTime"},
	{"date beyond 9999 in UTC", call(`<value><dateTime.iso8601>9999-12-31T23:00:00-02:00</dateTime.iso8601></value>`), "year outside 0000..9999"},
	{"bad base64", call(`<value><base64>!!!!</base64></value>`), "<base64> value is not valid base64"},
	{"truncated base64", call(`<value><base64>QUJD=</base64></value>`), "not valid base64"},
	{"nil with content", call(`<value><nil>x</nil></value>`), "<nil/> must be empty"},
	{"array without data", call(`<value><array><value>1</value></array></value>`), "<value> in <array>, want <data>"},
	{"array item not a value", call(`<value><array><data><int>1</int></data></array></value>`), "param 1: item 1: <int> in <data>, want <value>"},
	{"bad item deep inside", call(`<value><struct><member><name>ids</name><value><array><data><value>1</value><value><int>z</int></value></data></array></value></member></struct></value>`),
		`param 1: member "ids": item 2: <int> value "z" is not an integer`},
	{"member without name", call(`<value><struct><member><value>1</value></member></struct></value>`), "<member> must start with <name>, got <value>"},
	{"member without value", call(`<value><struct><member><name>a</name></member></struct></value>`), `member "a": no <value>`},
	{"duplicate member", call(`<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>`), `member "a": appears twice`},
	{"text in struct", call(`<value><struct>x</struct></value>`), `unexpected text "x" inside <struct>`},
	{"doctype", `<?xml version="1.0"?><!DOCTYPE methodCall><methodCall><methodName>a</methodName></methodCall>`, "<!DOCTYPE> is not allowed"},
	{"billion laughs", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>` +
		`<methodCall><methodName>a</methodName><params><param><value>&lol2;</value></param></params></methodCall>`, "DTDs, DOCTYPE and entity declarations are refused"},
	{"external entity", `<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><methodCall><methodName>&xxe;</methodName></methodCall>`, "<!DOCTYPE> is not allowed"},
	{"undeclared entity", call(`<value>&xxe;</value>`), "invalid character entity &xxe;"},
	{"nbsp entity is HTML, not XML", call(`<value>&nbsp;</value>`), "invalid character entity &nbsp;"},
	{"doctype after root", `<methodCall><methodName>a</methodName></methodCall><!DOCTYPE x>`, "<!DOCTYPE> is not allowed"},
	{"invalid UTF-8", call("<value>\xff</value>"), "invalid UTF-8"},
	{"raw control character", call("<value>a\x01b</value>"), "illegal character code U+0001"},
	{"NUL character reference", call("<value>&#0;</value>"), "illegal character code U+0000"},
	{"foreign encoding", `<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>a</methodName></methodCall>`, `encoding "ISO-8859-1" is not supported: send UTF-8`},
	{"depth bomb", call(nest("<value><array><data>", "</data></array></value>", 40, "")), "values nested deeper than 32 levels"},
	{"struct depth bomb", call(nest("<value><struct><member><name>a</name>", "</member></struct></value>", 33, "<value/>")), "nested deeper than 32"},
	{"unclosed depth bomb", call(strings.Repeat("<value><array><data>", 100000)), "values nested deeper than 32 levels"},
	{"too many values", call("<value><array><data>" + strings.Repeat("<value><i4>1</i4></value>", 10001) + "</data></array></value>"), "more than 10000 values"},
	{"too many params", call(strings.Split(strings.Repeat("<value/>,", 10001), ",")...), "more than 10000 values"},
}

func TestDecodeRejects(t *testing.T) {
	for _, c := range badCalls {
		t.Run(c.name, func(t *testing.T) {
			m, p, err := DecodeCall(strings.NewReader(c.body), Limits{})
			f, ok := err.(*Fault)
			if !ok {
				t.Fatalf("got method %q params %s err %v, want a *Fault", m, clip(fmtValue(p), 100), err)
			}
			if f.Code != CodeInvalid || !strings.Contains(f.Message, c.want) {
				t.Fatalf("fault %d %q, want 400 containing %q", f.Code, f.Message, c.want)
			}
			if m != "" || p != nil {
				t.Errorf("a failed decode returned method %q params %v", m, p)
			}
		})
	}
}

func TestDecodeLimits(t *testing.T) {
	body := call(`<value><string>` + strings.Repeat("a", 2000) + `</string></value>`)
	_, _, err := DecodeCall(strings.NewReader(body), Limits{MaxBodyBytes: 1000})
	if f, ok := err.(*Fault); !ok || f.Code != CodeTooLarge || f.Message != "request body larger than 1000 bytes" {
		t.Fatalf("over MaxBodyBytes: %v, want fault 413", err)
	}
	// Exactly at the limit is fine.
	if _, _, err := DecodeCall(strings.NewReader(body), Limits{MaxBodyBytes: int64(len(body))}); err != nil {
		t.Fatalf("body of exactly MaxBodyBytes: %v", err)
	}
	// Malformed and too large: the size wins, it is what the client must fix first.
	_, _, err = DecodeCall(io.MultiReader(strings.NewReader(body), strings.NewReader("<<<<")), Limits{MaxBodyBytes: int64(len(body)) + 1})
	if f, ok := err.(*Fault); !ok || f.Code != CodeTooLarge {
		t.Fatalf("trailing junk past the limit: %v, want fault 413", err)
	}

	_, _, err = DecodeCall(strings.NewReader(body), Limits{MaxStringBytes: 1999})
	if f, ok := err.(*Fault); !ok || f.Code != CodeInvalid || !strings.Contains(f.Message, "param 1: <string> text longer than 1999 bytes") {
		t.Fatalf("over MaxStringBytes: %v", err)
	}
	untyped := call(`<value>` + strings.Repeat("a", 2000) + `</value>`)
	_, _, err = DecodeCall(strings.NewReader(untyped), Limits{MaxStringBytes: 1999})
	if f, ok := err.(*Fault); !ok || !strings.Contains(f.Message, "untyped <value> text longer than 1999 bytes") {
		t.Fatalf("untyped over MaxStringBytes: %v", err)
	}
	if _, _, err := DecodeCall(strings.NewReader(body), Limits{MaxStringBytes: 2000}); err != nil {
		t.Fatalf("string of exactly MaxStringBytes: %v", err)
	}

	deep := call(nest("<value><array><data>", "</data></array></value>", 4, "<value>x</value>"))
	if _, _, err := DecodeCall(strings.NewReader(deep), Limits{MaxDepth: 5}); err != nil {
		t.Fatalf("depth 5 with MaxDepth 5: %v", err)
	}
	if _, _, err := DecodeCall(strings.NewReader(deep), Limits{MaxDepth: 4}); err == nil {
		t.Fatal("depth 5 with MaxDepth 4 accepted")
	}
	five := call("<value>1</value>", "<value><array><data><value/><value/></data></array></value>", "<value/>", "<value/>")
	if _, _, err := DecodeCall(strings.NewReader(five), Limits{MaxValues: 6}); err != nil {
		t.Fatalf("6 values with MaxValues 6: %v", err)
	}
	if _, _, err := DecodeCall(strings.NewReader(five), Limits{MaxValues: 5}); err == nil {
		t.Fatal("6 values with MaxValues 5 accepted")
	}
}

// Every strict prefix of a valid call is a 400, never a success or a panic.
func TestDecodeEveryTruncation(t *testing.T) {
	var buf bytes.Buffer
	err := EncodeCall(&buf, "job.submit", map[string]any{"a": []any{int64(1), "x&y", 2.5, true, nil, []byte("z"), time.Unix(0, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	full := bytes.TrimSpace(buf.Bytes())
	for i := range full {
		_, _, err := DecodeCall(bytes.NewReader(full[:i]), Limits{})
		if f, ok := err.(*Fault); !ok || f.Code != CodeInvalid {
			t.Fatalf("prefix %q: %v, want fault 400", full[:i], err)
		}
	}
	if _, _, err := DecodeCall(bytes.NewReader(full), Limits{}); err != nil {
		t.Fatal(err)
	}
}

var lenientWhen = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// lenientValues are what other clients write; each must decode to want.
// They double as fuzz seeds.
var lenientValues = []struct {
	name, value string
	want        any
}{
	{"untyped keeps whitespace", "<value>  a b \n</value>", "  a b \n"},
	{"untyped empty", "<value></value>", ""},
	{"self-closing value", "<value/>", ""},
	{"self-closing string", "<value><string/></value>", ""},
	{"formatted", "<value>\n  <int> 5 </int>\n</value>", int64(5)},
	{"i1 and i2", "<value><i2>-300</i2></value>", int64(-300)},
	{"plus sign", "<value><int>+7</int></value>", int64(7)},
	{"int beyond 32 bits, as kolo sends", "<value><int>5000000000</int></value>", int64(5000000000)},
	{"boolean true", "<value><boolean>true</boolean></value>", true},
	{"double exponent, as Python sends", "<value><double>1e+300</double></value>", 1e300},
	{"compact date", "<value><dateTime.iso8601>20240506T07:08:09</dateTime.iso8601></value>", lenientWhen},
	{"compact date Z", "<value><dateTime.iso8601>20240506T07:08:09Z</dateTime.iso8601></value>", lenientWhen},
	{"compact date offset", "<value><dateTime.iso8601>20240506T09:08:09+02:00</dateTime.iso8601></value>", lenientWhen},
	{"compact date offset without colon", "<value><dateTime.iso8601>20240506T02:08:09-0500</dateTime.iso8601></value>", lenientWhen},
	{"dashed date", "<value><dateTime.iso8601>2024-05-06T07:08:09</dateTime.iso8601></value>", lenientWhen},
	{"dashed date Z with fraction dropped", "<value><dateTime.iso8601>2024-05-06T07:08:09.999Z</dateTime.iso8601></value>", lenientWhen},
	{"dashed date offset", "<value><dateTime.iso8601>2024-05-06T08:08:09+01:00</dateTime.iso8601></value>", lenientWhen},
	{"base64 with Python's line breaks", "<value><base64>YWJj\nZGVm\n</base64></value>", []byte("abcdef")},
	{"base64 unpadded", "<value><base64>YQ</base64></value>", []byte("a")},
	{"CDATA", "<value><string><![CDATA[<a>&b]]></string></value>", "<a>&b"},
	{"CDATA beside text", "<value><string>x<![CDATA[]]]]><![CDATA[>]]>y</string></value>", "x]]>y"},
	{"entities and character references", "<value>&lt;&amp;&gt;&quot;&apos;&#65;&#x1F600;&#xD;</value>", "<&>\"'A😀\r"},
	{"literal CR LF normalised by XML", "<value>a\r\nb\rc</value>", "a\nb\nc"},
	{"comment inside", "<value><string>a<!-- hidden -->b</string></value>", "ab"},
	{"namespaced nil (Apache)", `<value><ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"/></value>`, nil},
	{"namespaced i8 (Apache)", `<value><ex:i8>9</ex:i8></value>`, int64(9)},
	{"empty array shorthand", "<value><array/></value>", []any{}},
	{"empty struct", "<value><struct></struct></value>", map[string]any{}},
	{"empty member name", "<value><struct><member><name/><value>v</value></member></struct></value>", map[string]any{"": "v"}},
	{"member name kept verbatim", "<value><struct><member><name> a&amp;b </name><value>v</value></member></struct></value>", map[string]any{" a&b ": "v"}},
	{"1 MB string", "<value><string>" + strings.Repeat("é", 1<<19) + "</string></value>", strings.Repeat("é", 1<<19)},
}

// What other clients write must be understood.
func TestDecodeLeniency(t *testing.T) {
	for _, c := range lenientValues {
		t.Run(c.name, func(t *testing.T) {
			m, p, err := DecodeCall(strings.NewReader(call(c.value)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if m != "m" || len(p) != 1 || !reflect.DeepEqual(p[0], c.want) {
				t.Fatalf("got %q %s, want %s", m, clip(fmtValue(p), 200), clip(fmtValue(c.want), 200))
			}
		})
	}

	// A prolog with BOM, declaration, comments and processing instructions,
	// and whitespace everywhere, as pretty-printing clients send.
	pretty := "\uFEFF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- hi -->\n<?pi x?>\n<methodCall>\n  <methodName> system.listMethods </methodName>\n  <params>\n  </params>\n</methodCall>\n<!-- bye -->\n"
	m, p, err := DecodeCall(strings.NewReader(pretty), Limits{})
	if err != nil || m != "system.listMethods" || len(p) != 0 {
		t.Fatalf("pretty: %q %v %v", m, p, err)
	}
	// No <params> at all.
	m, p, err = DecodeCall(strings.NewReader("<methodCall><methodName>a.b</methodName></methodCall>"), Limits{})
	if err != nil || m != "a.b" || p == nil || len(p) != 0 {
		t.Fatalf("no params: %q %#v %v", m, p, err)
	}
}

type failingReader struct{ data io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, errors.New("connection reset by peer")
	}
	return n, err
}

func TestDecodeReadError(t *testing.T) {
	_, _, err := DecodeCall(&failingReader{strings.NewReader("<methodCall><methodName>a")}, Limits{})
	wantFault(t, err, "reading request body: connection reset by peer")
	_, _, err = DecodeCall(strings.NewReader(`<?xml version="1.1"?><methodCall/>`), Limits{})
	wantFault(t, err, `malformed XML: unsupported version "1.1"; only version 1.0 is supported`)
}
