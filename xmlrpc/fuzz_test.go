package xmlrpc

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"
)

// FuzzDecodeCall checks that DecodeCall never panics, fails only with a 400
// or 413 fault, and that whatever it accepts survives encode→decode
// unchanged — so the server can never answer with a value it cannot read.
func FuzzDecodeCall(f *testing.F) {
	for _, c := range badCalls {
		// Big seeds (the bombs) make the fuzzer spend its time minimising
		// them; the limits they probe are covered by TestDecodeRejects.
		if len(c.body) <= 4096 {
			f.Add([]byte(c.body))
		}
	}
	for _, c := range lenientValues {
		if len(c.value) <= 4096 {
			f.Add([]byte(call(c.value)))
		}
	}
	seeds := [][]any{
		{},
		{int64(math.MaxInt64), int64(math.MinInt64), 0, true, false, 1.5, -1e-300},
		{time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC), kolo.Base64("AAEC"), []string{"1", "2"}},
		{map[string]any{"a": []any{map[string]any{"b": []any{}}}, "c": map[string]any{}}},
		{strings.Join(hostileStrings, "|")},
	}
	for _, s := range seeds {
		b, err := kolo.EncodeMethodCall("agent.ackJobs", s...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(call(`<value>  untyped </value>`, `<value><ex:nil/></value>`, `<value><dateTime.iso8601>2024-01-01T00:00:00.5+05:30</dateTime.iso8601></value>`,
		`<value><base64>YW Jj
ZA</base64></value>`, `<value><string><![CDATA[x]]>&#xD;</string></value>`)))

	f.Fuzz(func(t *testing.T, body []byte) {
		method, params, err := DecodeCall(bytes.NewReader(body), Limits{})
		if err != nil {
			fault, ok := err.(*Fault)
			if !ok || (fault.Code != CodeInvalid && fault.Code != CodeTooLarge) || fault.Message == "" {
				t.Fatalf("error %#v, want a 400 or 413 fault with a text", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := EncodeCall(&buf, method, params...); err != nil {
			t.Fatalf("decoded params %#v do not encode: %v", params, err)
		}
		method2, params2, err := DecodeCall(bytes.NewReader(buf.Bytes()), Limits{})
		if err != nil {
			t.Fatalf("re-encoded call does not decode: %v\n%s", err, buf.Bytes())
		}
		if method2 != method || !reflect.DeepEqual(params2, params) {
			t.Fatalf("round trip changed the call:\n %q %#v\n %q %#v", method, params, method2, params2)
		}
		// And the response path must take any decoded value too.
		buf.Reset()
		if err := EncodeResponse(&buf, []any(params)); err != nil {
			t.Fatalf("EncodeResponse: %v", err)
		}
	})
}
