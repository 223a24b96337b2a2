package xmlrpc

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// sameDecode checks that DecodeCall and the encoding/xml reference decide
// alike on body: both accept with the same method and params, or both
// refuse with the same fault code and text.
func sameDecode(t *testing.T, body []byte, lim Limits) {
	t.Helper()
	m1, p1, err1 := DecodeCall(bytes.NewReader(body), lim)
	m2, p2, err2 := refDecodeCall(bytes.NewReader(body), lim)
	switch {
	case (err1 == nil) != (err2 == nil):
		t.Fatalf("body %q:\n     DecodeCall: %q %s, %v\nencoding/xml's: %q %s, %v", body, m1, clip(fmtValue(p1), 200), err1, m2, clip(fmtValue(p2), 200), err2)
	case err1 != nil:
		f1, f2 := err1.(*Fault), err2.(*Fault)
		if f1.Code != f2.Code || f1.Message != f2.Message {
			t.Fatalf("body %q:\n     DecodeCall: fault %d %q\nencoding/xml's: fault %d %q", body, f1.Code, f1.Message, f2.Code, f2.Message)
		}
	case m1 != m2 || !reflect.DeepEqual(p1, p2):
		t.Fatalf("body %q:\n     DecodeCall: %q %#v\nencoding/xml's: %q %#v", body, m1, p1, m2, p2)
	}
}

// diffSeeds reach the corners where a scanner could part from encoding/xml.
var diffSeeds = []string{
	`<methodCall><methodName>a</methodName><params><param><value><string>x&#xD800;y</string></value></param></params></methodCall>`,
	`<x:methodCall><x:methodName>a</x:methodName><x:params><x:param><x:value><x:int>1</x:int></x:value></x:param></x:params></x:methodCall>`,
	`<methodCall><methodName>a</methodName></methodCall><?xml version="1.1"?>`,
	`<methodCall><?xml version="1.0" encoding="latin1"?><methodName>a</methodName></methodCall>`,
	`<methodCall a="1" a="2"><methodName b='&lt;'>a</methodName></methodCall>`,
	"<methodCall>\r\n<methodName>a</methodName><params><param><value>a\r\nb\rc&#xD;\n</value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><string>a<!--x-->b<![CDATA[<c>]]>d</string></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value>&amp\n</value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><int>\n007\n</int></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><int>+</int></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><i4>-0</i4></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><i8>123456789012345678</i8></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><i8>1234567890123456789</i8></value></param></params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param><value><i8>-9223372036854775808</i8></value></param></params></methodCall>",
	"\uFEFF<!-- a -->\uFEFF <methodCall><methodName>a</methodName></methodCall>",
	"<methodCall><methodName>a</methodName></methodCall><!DOCTYPE x [<!-- > -->]>",
	"<methodCall><methodName>a</methodName><params></params></methodCall></methodCall>",
	"<methodCall><methodName>a</methodName><params/></methodCall>",
}

func TestDecodeCallMatchesReference(t *testing.T) {
	for _, c := range badCalls {
		sameDecode(t, []byte(c.body), Limits{})
	}
	for _, c := range lenientValues {
		sameDecode(t, []byte(call(c.value)), Limits{})
	}
	for _, s := range diffSeeds {
		sameDecode(t, []byte(s), Limits{})
	}
	body := []byte(call(`<value><string>` + strings.Repeat("a", 2000) + `</string></value>`))
	for _, lim := range []Limits{{MaxBodyBytes: 1000}, {MaxBodyBytes: int64(len(body))}, {MaxStringBytes: 1999}, {MaxDepth: 1}, {MaxValues: 1}} {
		sameDecode(t, body, lim)
	}
}

// FuzzDecodeCallMatchesReference: for every body, DecodeCall (xmlscan)
// and the encoding/xml decoder it replaced accept and refuse alike, with
// the same values and the same fault texts, positions included.
func FuzzDecodeCallMatchesReference(f *testing.F) {
	for _, c := range badCalls {
		if len(c.body) <= 4096 {
			f.Add([]byte(c.body))
		}
	}
	for _, c := range lenientValues {
		if len(c.value) <= 4096 {
			f.Add([]byte(call(c.value)))
		}
	}
	for _, s := range diffSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecode(t, body, Limits{})
		sameDecode(t, body, Limits{MaxDepth: 3, MaxValues: 20, MaxStringBytes: 16, MaxBodyBytes: 512})
	})
}
