package xmlrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	kolo "github.com/kolo/xmlrpc"
)

type testServer struct {
	*Server
	url string

	mu          sync.Mutex
	intercepted []string // methods Intercept saw, in order
	onError     []string // errors OnError saw
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{Server: NewServer()}
	ts.Register(Method{
		Name: "echo", Help: "echo(any...) → its params as an array.",
		Signature: []string{"array", "struct"},
		Handler:   func(_ context.Context, p Params) (any, error) { return []any(p), nil },
	})
	ts.Register(Method{
		Name: "math.add", Help: "math.add(int a, int b) → a+b",
		Signature: []string{"int", "int", "int"},
		Handler: func(_ context.Context, p Params) (any, error) {
			if err := p.Count(2, 2); err != nil {
				return nil, err
			}
			a, err := p.Int(0, "a")
			if err != nil {
				return nil, err
			}
			b, err := p.Int(1, "b")
			if err != nil {
				return nil, err
			}
			return a + b, nil
		},
	})
	ts.Register(Method{Name: "fail", Handler: func(context.Context, Params) (any, error) {
		return nil, Faultf(CodeConflict, "run 7 was not sent to you")
	}})
	ts.Register(Method{Name: "wrapped", Handler: func(context.Context, Params) (any, error) {
		return nil, fmt.Errorf("lookup: %w", Faultf(CodeNotFound, "no job 9"))
	}})
	ts.Register(Method{Name: "plain", Handler: func(context.Context, Params) (any, error) {
		return nil, errors.New("database is locked")
	}})
	ts.Register(Method{Name: "unencodable", Handler: func(context.Context, Params) (any, error) {
		return map[string]any{"c": make(chan int)}, nil
	}})
	ts.Register(Method{Name: "nothing", Handler: func(context.Context, Params) (any, error) { return nil, nil }})
	ts.Intercept = func(ctx context.Context, method string, p Params, next Handler) (any, error) {
		ts.mu.Lock()
		ts.intercepted = append(ts.intercepted, method)
		ts.mu.Unlock()
		if method == "fail" && len(p) == 1 && p[0] == "deny" {
			return nil, Faultf(CodeBlacklisted, "operation fail is blacklisted")
		}
		return next(ctx, p)
	}
	ts.OnError = func(ctx context.Context, method string, err error) *Fault {
		ts.mu.Lock()
		ts.onError = append(ts.onError, method+": "+err.Error())
		ts.mu.Unlock()
		return Faultf(CodeInternal, "internal error (request id 42)")
	}
	srv := httptest.NewServer(ts)
	t.Cleanup(srv.Close)
	ts.url = srv.URL + "/RPC2"
	return ts
}

func (ts *testServer) seen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.intercepted...)
}

// post sends body and returns the decoded response: a value or a fault.
func (ts *testServer) post(t *testing.T, body string) (any, *kolo.FaultError) {
	t.Helper()
	resp, err := http.Post(ts.url, "text/xml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 for every XML-RPC outcome: %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := kolo.Response(b).Err(); err != nil {
		fe, ok := err.(kolo.FaultError)
		if !ok {
			t.Fatalf("unreadable response %s: %v", b, err)
		}
		return nil, &fe
	}
	// Decode with our own decoder by dressing the response as a call: it
	// keeps types kolo would blur (an empty string, []byte).
	inner := string(b)
	inner = inner[strings.Index(inner, "<params>"):strings.LastIndex(inner, "</methodResponse>")]
	_, p, err := DecodeCall(strings.NewReader("<methodCall><methodName>r</methodName>"+inner+"</methodCall>"), Limits{})
	if err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	return p[0], nil
}

func (ts *testServer) call(t *testing.T, method string, args ...any) (any, *kolo.FaultError) {
	t.Helper()
	body, err := kolo.EncodeMethodCall(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return ts.post(t, string(body))
}

func wantWireFault(t *testing.T, f *kolo.FaultError, code int, msg string) {
	t.Helper()
	if f == nil {
		t.Fatalf("no fault, want %d %q", code, msg)
	}
	if f.Code != code || !strings.Contains(f.String, msg) {
		t.Fatalf("fault %d %q, want %d containing %q", f.Code, f.String, code, msg)
	}
}

func TestServerCalls(t *testing.T) {
	ts := newTestServer(t)
	v, f := ts.call(t, "math.add", 2, 40)
	if f != nil || v != int64(42) {
		t.Fatalf("math.add = %v, %v", v, f)
	}
	v, f = ts.call(t, "echo", "", kolo.Base64("Yg=="), map[string]any{"k": []any{}})
	if want := []any{"", []byte("b"), map[string]any{"k": []any{}}}; f != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("echo = %#v, %v", v, f)
	}
	v, f = ts.call(t, "nothing")
	if f != nil || v != nil {
		t.Fatalf("nothing = %#v, %v", v, f)
	}

	_, f = ts.call(t, "math.add", 2, "x")
	wantWireFault(t, f, 400, `param 2 (b): expected int, got string "x"`)
	_, f = ts.call(t, "math.add", 2)
	wantWireFault(t, f, 400, "wrong number of params: got 1, want 2")
	_, f = ts.call(t, "fail")
	wantWireFault(t, f, 409, "run 7 was not sent to you")
	_, f = ts.call(t, "fail", "deny")
	wantWireFault(t, f, 405, "operation fail is blacklisted")
	_, f = ts.call(t, "wrapped")
	wantWireFault(t, f, 404, "no job 9")
	_, f = ts.call(t, "no.such.method")
	wantWireFault(t, f, 404, `method not found: "no.such.method"`)
	_, f = ts.call(t, "plain")
	wantWireFault(t, f, 500, "internal error (request id 42)")
	_, f = ts.call(t, "unencodable")
	wantWireFault(t, f, 500, "internal error (request id 42)")
	ts.mu.Lock()
	gotErrors := ts.onError
	ts.mu.Unlock()
	if len(gotErrors) != 2 || gotErrors[0] != "plain: database is locked" ||
		!strings.Contains(gotErrors[1], `unencodable: xmlrpc: cannot encode result: member "c": cannot encode chan int`) {
		t.Errorf("OnError saw %q", gotErrors)
	}

	_, f = ts.post(t, "<methodCall><methodName>echo</methodName><params><param><value><int>x")
	wantWireFault(t, f, 400, "the body is truncated")
	_, f = ts.post(t, "<methodCall><methodName>echo</methodName><params><param><value><int>1</value>")
	wantWireFault(t, f, 400, "</value> closes <int>")
	_, f = ts.post(t, "")
	wantWireFault(t, f, 400, "empty request")

	// Intercept saw the registered methods only, not unknown ones.
	want := []string{"math.add", "echo", "nothing", "math.add", "math.add", "fail", "fail", "wrapped", "plain", "unencodable"}
	if got := ts.seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("Intercept saw %q,\nwant %q", got, want)
	}
}

func TestServerDefaultOnError(t *testing.T) {
	s := NewServer()
	s.Register(Method{Name: "plain", Handler: func(context.Context, Params) (any, error) { return nil, errors.New("secret detail") }})
	_, err := s.Call(context.Background(), "plain", nil)
	if f, ok := err.(*Fault); !ok || f.Code != 500 || f.Message != "internal error" {
		t.Fatalf("err = %#v, want fault 500 \"internal error\" without the detail", err)
	}
	s.OnError = func(context.Context, string, error) *Fault { return nil }
	if _, err := s.Call(context.Background(), "plain", nil); err.(*Fault).Code != 500 {
		t.Fatal("an OnError returning nil must still give 500")
	}
}

func TestServerHTTP(t *testing.T) {
	ts := newTestServer(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodHead} {
		req, _ := http.NewRequest(m, ts.url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: HTTP %d Allow %q, want 405 Allow POST", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}

	ts.Limits.MaxBodyBytes = 1 << 10
	big, _ := kolo.EncodeMethodCall("echo", strings.Repeat("x", 4<<10))
	_, f := ts.post(t, string(big)) // with Content-Length
	wantWireFault(t, f, 413, "request body larger than 1024 bytes")
	// Chunked, so the size is only found while reading.
	resp, err := http.Post(ts.url, "text/xml", io.MultiReader(bytes.NewReader(big[:100]), bytes.NewReader(big[100:])))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if fe, ok := kolo.Response(b).Err().(kolo.FaultError); resp.StatusCode != 200 || !ok || fe.Code != 413 {
		t.Fatalf("chunked oversized body: HTTP %d %s", resp.StatusCode, b)
	}
	if resp.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(b))
	}

	// Through kolo's client, as the agent and CLI use it.
	c, err := kolo.NewClient(ts.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sum int64
	if err := c.Call("math.add", []any{20, 22}, &sum); err != nil || sum != 42 {
		t.Fatalf("kolo client: %d, %v", sum, err)
	}
	err = c.Call("fail", nil, &sum)
	if err == nil || err.Error() != "Fault(409): run 7 was not sent to you" {
		t.Fatalf("kolo client fault: %v", err)
	}
	err = c.Call("no.such", nil, &sum)
	if err == nil || !strings.HasPrefix(err.Error(), "Fault(404): ") {
		t.Fatalf("kolo client unknown method: %v (must be a fault, not a transport error)", err)
	}
}

func TestIntrospection(t *testing.T) {
	ts := newTestServer(t)
	v, f := ts.call(t, "system.listMethods")
	want := []any{"echo", "fail", "math.add", "nothing", "plain", "system.listMethods", "system.methodHelp",
		"system.methodSignature", "system.multicall", "unencodable", "wrapped"}
	if f != nil || !reflect.DeepEqual(v, want) {
		t.Fatalf("listMethods = %v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodHelp", "math.add")
	if f != nil || v != "math.add(int a, int b) → a+b" {
		t.Fatalf("methodHelp = %v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodHelp", "fail")
	if f != nil || v != "" {
		t.Fatalf("methodHelp without help = %#v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodSignature", "math.add")
	if f != nil || !reflect.DeepEqual(v, []any{[]any{"int", "int", "int"}}) {
		t.Fatalf("methodSignature = %v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodSignature", "fail")
	if f != nil || v != "undef" {
		t.Fatalf("methodSignature without one = %v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodSignature", "system.multicall")
	if f != nil || !reflect.DeepEqual(v, []any{[]any{"array", "array"}}) {
		t.Fatalf("methodSignature of multicall = %v, %v", v, f)
	}
	v, f = ts.call(t, "system.methodHelp", "system.multicall")
	if f != nil || !strings.Contains(v.(string), "cannot be nested") {
		t.Fatalf("methodHelp of multicall = %v, %v", v, f)
	}
	_, f = ts.call(t, "system.methodHelp", "nope")
	wantWireFault(t, f, 404, `method not found: "nope"`)
	_, f = ts.call(t, "system.methodHelp")
	wantWireFault(t, f, 400, "wrong number of params: got 0, want 1")
	_, f = ts.call(t, "system.methodSignature", 5)
	wantWireFault(t, f, 400, "param 1 (method): expected string, got int 5")
	_, f = ts.call(t, "system.listMethods", "x")
	wantWireFault(t, f, 400, "wrong number of params")
	if got := ts.seen(); len(got) != 0 {
		t.Errorf("Intercept saw system methods: %q", got)
	}
	if m, ok := ts.Lookup("system.listMethods"); !ok || m.Handler == nil {
		t.Error("Lookup does not find system.listMethods")
	}
	if _, ok := ts.Lookup("nope"); ok {
		t.Error("Lookup finds an unknown method")
	}
}

func TestMulticall(t *testing.T) {
	ts := newTestServer(t)
	calls := []any{
		map[string]any{"methodName": "math.add", "params": []any{1, 2}},
		map[string]any{"methodName": "fail", "params": []any{}},
		map[string]any{"methodName": "echo", "params": []any{"x"}},
		map[string]any{"methodName": "system.multicall", "params": []any{[]any{}}},
		map[string]any{"methodName": "no.such", "params": []any{}},
		"not a struct",
		map[string]any{"methodName": 5},
		map[string]any{"methodName": "echo", "params": "not an array"},
		map[string]any{"methodName": "echo"},
		map[string]any{"methodName": "plain", "params": []any{}},
		map[string]any{"methodName": "unencodable", "params": []any{}},
		map[string]any{"methodName": "system.listMethods", "params": []any{}},
		map[string]any{"methodName": "fail", "params": []any{"deny"}},
		map[string]any{"methodName": "math.add", "params": []any{3, 4}},
	}
	v, f := ts.call(t, "system.multicall", calls)
	if f != nil {
		t.Fatalf("multicall fault %v", f)
	}
	got := v.([]any)
	fe := func(code int64, msg string) map[string]any {
		return map[string]any{"faultCode": code, "faultString": msg}
	}
	want := []any{
		[]any{int64(3)},
		fe(409, "run 7 was not sent to you"),
		[]any{[]any{"x"}},
		fe(400, "system.multicall: call 4: system.multicall cannot be nested"),
		fe(404, `method not found: "no.such"`),
		fe(400, `system.multicall: call 6: expected struct {methodName, params}, got string "not a struct"`),
		fe(400, "system.multicall: call 7: methodName: expected string, got int 5"),
		fe(400, `system.multicall: call 8: params: expected array, got string "not an array"`),
		[]any{[]any{}},
		fe(500, "internal error (request id 42)"),
		fe(500, "internal error (request id 42)"),
		[]any{any(nil)}, // replaced below: the method list
		fe(405, "operation fail is blacklisted"),
		[]any{int64(7)},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d: %#v", len(got), len(want), got)
	}
	want[11] = got[11]
	if l, ok := got[11].([]any); !ok || len(l) != 1 || len(l[0].([]any)) != 11 {
		t.Errorf("listMethods inside multicall = %#v", got[11])
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("result %d = %#v,\n           want %#v", i+1, got[i], want[i])
		}
	}
	// Every registered-method subcall went through Intercept, in order; the
	// multicall itself and system.listMethods did not.
	wantSeen := []string{"math.add", "fail", "echo", "echo", "plain", "unencodable", "fail", "math.add"}
	if s := ts.seen(); !reflect.DeepEqual(s, wantSeen) {
		t.Errorf("Intercept saw %q,\nwant %q", s, wantSeen)
	}

	_, f = ts.call(t, "system.multicall", "x")
	wantWireFault(t, f, 400, `param 1 (calls): expected array, got string "x"`)
	_, f = ts.call(t, "system.multicall")
	wantWireFault(t, f, 400, "wrong number of params: got 0, want 1")
	v, f = ts.call(t, "system.multicall", []any{})
	if f != nil || !reflect.DeepEqual(v, []any{}) {
		t.Errorf("empty multicall = %#v %v", v, f)
	}
}

func TestRegisterPanics(t *testing.T) {
	h := func(context.Context, Params) (any, error) { return nil, nil }
	s := NewServer()
	s.Register(Method{Name: "a.b", Handler: h})
	for _, m := range []Method{
		{Name: "", Handler: h},
		{Name: "a.b", Handler: h},
		{Name: "system.foo", Handler: h},
		{Name: "x", Handler: nil},
		{Name: "has space", Handler: h},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%q) did not panic", m.Name)
				}
			}()
			s.Register(m)
		}()
	}
	var zero Server // usable without NewServer
	zero.Register(Method{Name: "z", Handler: h})
	if got := zero.Methods(); len(got) != 5 || got[4] != "z" {
		t.Errorf("zero Server methods %q", got)
	}
}

func TestConcurrentCalls(t *testing.T) {
	ts := newTestServer(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := kolo.NewClient(ts.url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for j := range 20 {
				var sum int64
				if err := c.Call("math.add", []any{i, j}, &sum); err != nil || sum != int64(i+j) {
					t.Errorf("math.add(%d,%d) = %v %v", i, j, sum, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
