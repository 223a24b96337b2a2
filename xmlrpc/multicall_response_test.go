package xmlrpc

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	kolo "github.com/kolo/xmlrpc"
)

// multicallBody posts a system.multicall of calls (method, params) to the
// test server and returns the raw response.
func multicallBody(t *testing.T, ts *testServer, calls ...[]any) []byte {
	t.Helper()
	var list []any
	for _, c := range calls {
		list = append(list, map[string]any{"methodName": c[0], "params": c[1:]})
	}
	body, err := kolo.EncodeMethodCall("system.multicall", list)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ts.url, "text/xml", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMulticallResponse(t *testing.T) {
	ts := newTestServer(t)
	data := multicallBody(t, ts,
		[]any{"math.add", 2, 3},
		[]any{"fail"},
		[]any{"echo", "a", "b"},
		[]any{"nothing"},
		[]any{"math.add", 1, 1})
	var sum int
	stale := 99 // a fault leaves its reply alone
	var echoed []string
	var discarded any
	errs, err := DecodeMulticallResponse(data, []any{&sum, &stale, &echoed, &discarded, nil})
	if err != nil {
		t.Fatalf("DecodeMulticallResponse: %v\n%s", err, data)
	}
	if sum != 5 || stale != 99 || strings.Join(echoed, ",") != "a,b" {
		t.Errorf("results: sum %d, fault's reply %d, echo %q", sum, stale, echoed)
	}
	var f *Fault
	if !errors.As(errs[1], &f) || f.Code != CodeConflict || f.Message != "run 7 was not sent to you" {
		t.Errorf("errs[1] = %v, want fault %d", errs[1], CodeConflict)
	}
	for _, i := range []int{0, 2, 3, 4} {
		if errs[i] != nil {
			t.Errorf("errs[%d] = %v", i, errs[i])
		}
	}

	// Results are decoded as DecodeResponse decodes a single one.
	var one, many struct {
		A []string `xmlrpc:"a"`
	}
	single, err := kolo.EncodeMethodCall("echo", map[string]any{"a": []string{"x", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(ts.url, "text/xml", strings.NewReader(string(single)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var wrapped []struct {
		A []string `xmlrpc:"a"`
	}
	if err := DecodeResponse(b, &wrapped); err != nil || len(wrapped) != 1 {
		t.Fatalf("DecodeResponse: %v, %v", wrapped, err)
	}
	one = wrapped[0]
	data = multicallBody(t, ts, []any{"echo", map[string]any{"a": []string{"x", "y"}}})
	var got []struct {
		A []string `xmlrpc:"a"`
	}
	errs, err = DecodeMulticallResponse(data, []any{&got})
	if err != nil || errs[0] != nil || len(got) != 1 {
		t.Fatalf("DecodeMulticallResponse: %v, %v, %v", got, errs, err)
	}
	many = got[0]
	if strings.Join(one.A, ",") != strings.Join(many.A, ",") || len(many.A) != 2 {
		t.Errorf("multicall decoded %v, single call %v", many, one)
	}
}

func TestDecodeMulticallResponseRefuses(t *testing.T) {
	ts := newTestServer(t)
	two := multicallBody(t, ts, []any{"math.add", 1, 2}, []any{"nothing"})
	var n int
	if _, err := DecodeMulticallResponse(two, []any{&n}); err == nil || !strings.Contains(err.Error(), "more results than the 1 calls") {
		t.Errorf("two results for one call: %v", err)
	}
	if _, err := DecodeMulticallResponse(two, []any{&n, nil, nil}); err == nil || !strings.Contains(err.Error(), "2 results for 3 calls") {
		t.Errorf("two results for three calls: %v", err)
	}
	// A fault of the request itself (here: nested multicall is refused per call,
	// but a non-array argument faults the whole request).
	body, _ := kolo.EncodeMethodCall("system.multicall", "not an array")
	resp, err := http.Post(ts.url, "text/xml", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var f *Fault
	if errs, err := DecodeMulticallResponse(b, []any{&n}); !errors.As(err, &f) || f.Code != CodeInvalid || errs != nil {
		t.Errorf("request fault: errs %v, err %v; want fault %d", errs, err, CodeInvalid)
	}
	for name, doc := range map[string]string{
		"not an array":    `<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>`,
		"empty entry":     `<methodResponse><params><param><value><array><data><value><array><data></data></array></value></data></array></value></param></params></methodResponse>`,
		"two values":      `<methodResponse><params><param><value><array><data><value><array><data><value>a</value><value>b</value></data></array></value></data></array></value></param></params></methodResponse>`,
		"scalar entry":    `<methodResponse><params><param><value><array><data><value><int>1</int></value></data></array></value></param></params></methodResponse>`,
		"unreadable":      `<methodResponse><params><param><value><array><data><value><array><data><value><int>x</int></value></data></array></value></data></array></value></param></params></methodResponse>`,
		"truncated":       `<methodResponse><params><param><value><array><data><value><array><data><value><int>1</int></value></data></array>`,
		"text after root": `<methodResponse><params><param><value><array><data><value><array><data><value><int>1</int></value></data></array></value></data></array></value></param></params></methodResponse>x`,
	} {
		if errs, err := DecodeMulticallResponse([]byte(doc), []any{&n}); err == nil || errs != nil {
			t.Errorf("%s: errs %v, err %v; want an error", name, errs, err)
		}
	}
	ok := `<methodResponse><params><param><value><array><data><value><array><data><value><int>7</int></value></data></array></value></data></array></value></param></params></methodResponse>`
	if errs, err := DecodeMulticallResponse([]byte(ok), []any{&n}); err != nil || errs[0] != nil || n != 7 {
		t.Errorf("well-formed: %d, %v, %v", n, errs, err)
	}
	if _, err := DecodeMulticallResponse([]byte(ok), []any{n}); err == nil {
		t.Error("a non-pointer reply is accepted")
	}
}
