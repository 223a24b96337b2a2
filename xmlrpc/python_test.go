package xmlrpc

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/scirectl/scirectl/internal/testtool"
)

// pythonClient drives the server with Python's xmlrpc.client, the client
// docs/protocol.md names; the asserts are in Python so that a failure shows what
// Python saw.
const pythonClient = `
import sys, datetime, xmlrpc.client as x

p = x.ServerProxy(sys.argv[1], use_builtin_types=True, allow_none=True)

def check(what, got, want):
    if got != want or type(got) is not type(want):
        raise AssertionError("%s: got %r (%s), want %r (%s)" % (what, got, type(got).__name__, want, type(want).__name__))

def fault(what, fn, code, text):
    try:
        r = fn()
    except x.Fault as f:
        check(what + " code", f.faultCode, code)
        if text not in f.faultString:
            raise AssertionError("%s: fault text %r lacks %r" % (what, f.faultString, text))
        return
    raise AssertionError("%s: no fault, got %r" % (what, r))

# introspection
methods = p.system.listMethods()
for m in ("echo", "types", "system.multicall", "system.methodHelp"):
    assert m in methods, (m, methods)
check("methods sorted", methods, sorted(methods))
check("methodHelp", p.system.methodHelp("echo"), "echo(v) -> v")
check("methodSignature", p.system.methodSignature("id"), [["string", "string"]])
check("methodSignature undef", p.system.methodSignature("fail"), "undef")

# values both ways
hostile = ["", "a]]>b", "<&>\"'", "tab\there", "日本語", "😀 family 👨‍👩‍👧", "שלום مرحبا", "x" * 1000000,
           "line\nline", "  spaced  "]
for s in hostile:
    check("echo %r" % s[:20], p.echo(s), s)
# Python writes \r raw, and XML turns a raw \r into \n on the way in:
check("raw CR from Python", p.echo("a\rb\r\nc"), "a\nb\nc")
# ...but the server escapes it, so it arrives intact here.
check("CR from the server", p.cr(), "a\rb\r\nc")
check("int", p.echo(2**31 - 1), 2**31 - 1)
check("negative int", p.echo(-2**31), -2**31)
check("i8 from the server", p.big(), 2**62 + 1)
check("int64 min from the server", p.small(), -2**63)
check("id as string", p.id("9223372036854775807"), "9223372036854775807")
check("id as int", p.id(12), "12")
fault("id zero", lambda: p.id("0"), 400, 'param 1 (job_id): expected an id > 0, got string "0"')
check("bool", p.echo(True), True)
check("double", p.echo(0.1), 0.1)
check("big double", p.echo(1e300), 1e300)
check("None", p.echo(None), None)
check("bytes", p.echo(bytes(range(256)) * 4), bytes(range(256)) * 4)
check("empty bytes", p.echo(b""), b"")
dt = datetime.datetime(2024, 2, 29, 13, 14, 15)
check("datetime", p.echo(dt), dt)
check("server time", p.when(), datetime.datetime(2038, 1, 19, 3, 14, 8))
nested = {"a": [1, "two", {"b": [], "c": {}}], "": "empty key", "<k&>": [[[]]]}
check("nested", p.echo(nested), nested)
check("types", p.types(1, "s", True, 1.5, dt, b"b", [], {}, None),
      ["int64", "string", "bool", "float64", "time.Time", "[]uint8", "[]interface {}", "map[string]interface {}", "<nil>"])

# faults
fault("fault", p.fail, 409, "run 7 was not sent to you")
fault("unknown method", p.no.such, 404, 'method not found: "no.such"')
fault("wrong type", lambda: p.id([]), 400, "param 1 (job_id): expected an id")
fault("control character", lambda: p.echo("a\x01b"), 400, "illegal character code U+0001")

# multicall
mc = x.MultiCall(p)
mc.echo(1)
mc.fail()
mc.id("5")
mc.system.listMethods()
r = mc()
check("multicall 1", r[0], 1)
fault("multicall 2", lambda: r[1], 409, "run 7 was not sent to you")
check("multicall 3", r[2], "5")
check("multicall 4", r[3], methods)
print("ok")
`

func TestPythonInterop(t *testing.T) {
	py := testtool.Require(t, "python3", "")
	s := NewServer()
	reg := func(name, help string, sig []string, h Handler) {
		s.Register(Method{Name: name, Help: help, Signature: sig, Handler: h})
	}
	reg("echo", "echo(v) -> v", nil, func(_ context.Context, p Params) (any, error) {
		if err := p.Count(1, 1); err != nil {
			return nil, err
		}
		return p[0], nil
	})
	reg("types", "", nil, func(_ context.Context, p Params) (any, error) {
		out := make([]string, len(p))
		for i, v := range p {
			out[i] = fmt.Sprintf("%T", v)
		}
		return out, nil
	})
	reg("cr", "", nil, func(context.Context, Params) (any, error) { return "a\rb\r\nc", nil })
	reg("big", "", nil, func(context.Context, Params) (any, error) { return int64(1<<62 + 1), nil })
	reg("small", "", nil, func(context.Context, Params) (any, error) { return int64(math.MinInt64), nil })
	reg("when", "", nil, func(context.Context, Params) (any, error) {
		return time.Date(2038, 1, 19, 4, 14, 8, 0, time.FixedZone("CET", 3600)), nil
	})
	reg("id", "", []string{"string", "string"}, func(_ context.Context, p Params) (any, error) {
		id, err := p.ID(0, "job_id")
		return strconv.FormatInt(id, 10), err
	})
	reg("fail", "", nil, func(context.Context, Params) (any, error) {
		return nil, Faultf(CodeConflict, "run 7 was not sent to you")
	})
	srv := httptest.NewServer(s)
	defer srv.Close()

	out, err := exec.Command(py, "-c", pythonClient, srv.URL+"/RPC2").CombinedOutput()
	if err != nil || string(out) != "ok\n" {
		t.Fatalf("python3 xmlrpc.client: %v\n%s", err, out)
	}
}
