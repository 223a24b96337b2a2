package xmlrpc

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// batchServer is a Server whose "sub" and "sub2" methods have both a
// Handler and a Batch, and record how they were called: "H n" for a
// Handler call with n, "B n,m,..." for a Batch call ("B2 ..." for sub2).
// "plain" has a Handler only. Each call takes one int n and returns n*10;
// a negative n is the call's fault 409, n == 10013 a plain (non-Fault) error,
// n == 10666 an unencodable result, and a batch holding 999 returns one
// result too few (broken), one holding 998 one error too few.
type batchServer struct {
	*testServer
	log     []string
	onError []string
}

func (bs *batchServer) record(s string) {
	bs.mu.Lock()
	bs.log = append(bs.log, s)
	bs.mu.Unlock()
}

func (bs *batchServer) calls() []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	out := append([]string(nil), bs.log...)
	bs.log = nil
	return out
}

func batchOne(p Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	n, err := p.Int(0, "n")
	if err != nil {
		return nil, err
	}
	switch {
	case n < 0:
		return nil, Faultf(CodeConflict, "negative %d", n)
	case n == 10013:
		return nil, errors.New("unlucky")
	case n == 10666:
		return map[string]any{"c": make(chan int)}, nil
	}
	return n * 10, nil
}

func newBatchServer(t *testing.T, configure func(*batchServer)) *batchServer {
	t.Helper()
	bs := &batchServer{testServer: &testServer{Server: NewServer()}}
	handler := func(_ context.Context, p Params) (any, error) {
		bs.record("H " + fmt.Sprint(p...))
		return batchOne(p)
	}
	batch := func(tag string) BatchHandler {
		return func(_ context.Context, ps []Params) ([]any, []error) {
			ns := make([]string, len(ps))
			for i, p := range ps {
				ns[i] = fmt.Sprint(p...)
			}
			bs.record(tag + " " + strings.Join(ns, ","))
			res, errs := make([]any, len(ps)), make([]error, len(ps))
			for i, p := range ps {
				res[i], errs[i] = batchOne(p)
			}
			for _, n := range ns {
				switch n {
				case "999":
					return res[:len(res)-1], errs
				case "998":
					return res, errs[:len(errs)-1]
				}
			}
			return res, errs
		}
	}
	bs.Register(Method{Name: "sub", Handler: handler, Batch: batch("B")})
	bs.Register(Method{Name: "sub2", Handler: handler, Batch: batch("B2")})
	bs.Register(Method{Name: "plain", Handler: func(_ context.Context, p Params) (any, error) {
		bs.record("plain " + fmt.Sprint(p...))
		return "p", nil
	}})
	bs.OnError = func(_ context.Context, method string, err error) *Fault {
		bs.mu.Lock()
		bs.onError = append(bs.onError, method+": "+err.Error())
		bs.mu.Unlock()
		return Faultf(CodeInternal, "internal error (logged)")
	}
	if configure != nil {
		configure(bs)
	}
	srv := httptest.NewServer(bs)
	t.Cleanup(srv.Close)
	bs.url = srv.URL + "/RPC2"
	return bs
}

// mc builds a multicall entry.
func mc(method string, params ...any) map[string]any {
	if params == nil {
		params = []any{}
	}
	return map[string]any{"methodName": method, "params": params}
}

// multicall sends calls in one system.multicall and returns the entries.
func (bs *batchServer) multicall(t *testing.T, calls ...any) []any {
	t.Helper()
	v, f := bs.call(t, "system.multicall", calls)
	if f != nil {
		t.Fatalf("system.multicall: fault %v", f)
	}
	got, ok := v.([]any)
	if !ok || len(got) != len(calls) {
		t.Fatalf("system.multicall: %d calls answered by %#v", len(calls), v)
	}
	return got
}

func ok(v any) any { return []any{v} }

func fault(code int64, msg string) any {
	return map[string]any{"faultCode": code, "faultString": msg}
}

func wantEntries(t *testing.T, got []any, want ...any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d: %#v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("entry %d = %#v, want %#v", i+1, got[i], want[i])
		}
	}
}

func wantCalls(t *testing.T, bs *batchServer, want ...string) {
	t.Helper()
	if got := bs.calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("the methods were called as\n%q\nwant\n%q", got, want)
	}
}

func TestMulticallBatchesConsecutiveCalls(t *testing.T) {
	bs := newBatchServer(t, nil)
	got := bs.multicall(t,
		mc("sub", 1), mc("sub", 2), mc("sub", 3), // one batch, in order
		mc("plain", 4),             // another method ends the run
		mc("sub", 5), mc("sub", 6), // a batch of two
		map[string]any{"methodName": 5}, // a malformed entry ends the run
		mc("sub", 7), mc("sub", 8),
		mc("sub2", 9), mc("sub2", 10), // another batched method: its own batch
		mc("sub", 11), // alone: Handler
		mc("no.such"), // unknown: ends the run, not batched
		mc("sub", 12),
		mc("system.listMethods"), // a system method ends the run too
		mc("sub", 14), mc("sub", 15),
	)
	wantEntries(t, got[:13],
		ok(int64(10)), ok(int64(20)), ok(int64(30)), ok("p"), ok(int64(50)), ok(int64(60)),
		fault(400, "system.multicall: call 7: methodName: expected string, got int 5"),
		ok(int64(70)), ok(int64(80)), ok(int64(90)), ok(int64(100)), ok(int64(110)),
		fault(404, `method not found: "no.such"`))
	wantEntries(t, got[13:14], ok(int64(120)))
	wantEntries(t, got[15:], ok(int64(140)), ok(int64(150)))
	wantCalls(t, bs, "B 1,2,3", "plain 4", "B 5,6", "B 7,8", "B2 9,10", "H 11", "H 12", "B 14,15")

	// A call outside a multicall, and a multicall of one, go to Handler.
	if v, f := bs.call(t, "sub", 21); f != nil || v != int64(210) {
		t.Fatalf("sub(21) = %v, %v", v, f)
	}
	wantEntries(t, bs.multicall(t, mc("sub", 22)), ok(int64(220)))
	wantEntries(t, bs.multicall(t, mc("sub", 23), mc("sub2", 24), mc("sub", 25)), ok(int64(230)), ok(int64(240)), ok(int64(250)))
	wantCalls(t, bs, "H 21", "H 22", "H 23", "H 24", "H 25")
}

func TestMulticallBatchesAtMostMaxBatch(t *testing.T) {
	bs := newBatchServer(t, nil)
	for _, tc := range []struct {
		n     int
		parts []int // the calls of each Batch call; 1: Handler
	}{
		{MaxBatch, []int{MaxBatch}},
		{MaxBatch + 1, []int{MaxBatch, 1}},
		{MaxBatch + 2, []int{MaxBatch, 2}},
		{2*MaxBatch + 3, []int{MaxBatch, MaxBatch, 3}},
	} {
		calls := make([]any, tc.n)
		want := make([]any, tc.n)
		for i := range calls {
			calls[i] = mc("sub", i+1)
			want[i] = ok(int64(10 * (i + 1)))
		}
		wantEntries(t, bs.multicall(t, calls...), want...)
		var wantLog []string
		next := 1
		for _, k := range tc.parts {
			ns := make([]string, k)
			for j := range ns {
				ns[j] = fmt.Sprint(next)
				next++
			}
			if k == 1 {
				wantLog = append(wantLog, "H "+ns[0])
			} else {
				wantLog = append(wantLog, "B "+strings.Join(ns, ","))
			}
		}
		wantCalls(t, bs, wantLog...)
	}
}

func TestMulticallBatchPerCallFaults(t *testing.T) {
	bs := newBatchServer(t, nil)
	got := bs.multicall(t, mc("sub", 1), mc("sub", -2), mc("sub", 3), mc("sub", 10013), mc("sub", 10666), mc("sub", 4),
		mc("sub", "x"), mc("sub"), mc("sub", 5))
	wantEntries(t, got,
		ok(int64(10)),
		fault(409, "negative -2"),
		ok(int64(30)),
		fault(500, "internal error (logged)"), // a plain error goes through OnError
		fault(500, "internal error (logged)"), // so does a result that cannot be encoded
		ok(int64(40)),
		fault(400, `param 1 (n): expected int, got string "x"`),
		fault(400, "wrong number of params: got 0, want 1"),
		ok(int64(50)))
	wantCalls(t, bs, "B 1,-2,3,10013,10666,4,x,,5")
	bs.mu.Lock()
	onError := bs.onError
	bs.mu.Unlock()
	if len(onError) != 2 || onError[0] != "sub: unlucky" || !strings.Contains(onError[1], `sub: member "c": cannot encode chan int`) {
		t.Errorf("OnError saw %q", onError)
	}
}

func TestMulticallBrokenBatchFaultsEveryCall(t *testing.T) {
	for _, broken := range []int{999, 998} {
		t.Run(fmt.Sprint(broken), func(t *testing.T) {
			bs := newBatchServer(t, nil)
			got := bs.multicall(t, mc("sub", 1), mc("sub", broken), mc("sub", 3), mc("plain"), mc("sub", 4), mc("sub", 5))
			f := fault(500, "internal error (logged)")
			// Every call of the broken run faults, even those the batch
			// answered; the next run is not affected.
			wantEntries(t, got, f, f, f, ok("p"), ok(int64(40)), ok(int64(50)))
			wantCalls(t, bs, fmt.Sprintf("B 1,%d,3", broken), "plain ", "B 4,5")
			bs.mu.Lock()
			onError := bs.onError
			bs.mu.Unlock()
			res, errs := 3, 3
			if broken == 999 {
				res = 2
			} else {
				errs = 2
			}
			want := fmt.Sprintf("sub: batch of 3 calls returned %d results and %d errors", res, errs)
			if len(onError) != 1 || !strings.Contains(onError[0], want) {
				t.Errorf("OnError saw %q, want one error containing %q", onError, want)
			}
		})
	}
}

func TestMulticallInterceptWithoutInterceptBatchDoesNotBatch(t *testing.T) {
	var seen []string
	bs := newBatchServer(t, func(bs *batchServer) {
		bs.Intercept = func(ctx context.Context, method string, p Params, next Handler) (any, error) {
			bs.mu.Lock()
			seen = append(seen, method+" "+fmt.Sprint(p...))
			bs.mu.Unlock()
			return next(ctx, p)
		}
	})
	got := bs.multicall(t, mc("sub", 1), mc("sub", 2), mc("sub", -3), mc("sub2", 4), mc("sub2", 5))
	wantEntries(t, got, ok(int64(10)), ok(int64(20)), fault(409, "negative -3"), ok(int64(40)), ok(int64(50)))
	// Nothing may bypass Intercept: every call went through it, and to
	// Handler, none to Batch.
	wantCalls(t, bs, "H 1", "H 2", "H -3", "H 4", "H 5")
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if want := []string{"sub 1", "sub 2", "sub -3", "sub2 4", "sub2 5"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Intercept saw %q, want %q", seen, want)
	}
}

func TestMulticallInterceptBatch(t *testing.T) {
	bs := newBatchServer(t, func(bs *batchServer) {
		bs.Intercept = func(ctx context.Context, method string, p Params, next Handler) (any, error) {
			bs.record("I " + method)
			if n, _ := p.Int(0, "n"); n == 404 {
				return nil, Faultf(CodeForbidden, "intercept refuses %s", method)
			}
			return next(ctx, p)
		}
		bs.InterceptBatch = func(ctx context.Context, method string, ps []Params, next BatchHandler) ([]any, []error) {
			bs.record(fmt.Sprintf("IB %s %d", method, len(ps)))
			for _, p := range ps {
				if n, _ := p.Int(0, "n"); n == 404 {
					// Refuse the whole run, as an authentication failure would.
					errs := make([]error, len(ps))
					for i := range errs {
						errs[i] = Faultf(CodeForbidden, "intercept refuses %d calls", len(ps))
					}
					return make([]any, len(ps)), errs
				}
			}
			res, errs := next(ctx, ps)
			bs.record("IB done")
			if len(res) == len(ps) && len(ps) > 0 {
				// The interceptor sees and may change the results.
				if n, _ := res[0].(int64); n == 70 {
					res[0] = "seventy"
				}
			}
			return res, errs
		}
	})
	got := bs.multicall(t, mc("sub", 1), mc("sub", 2), mc("plain", 3), mc("sub", 4), mc("sub", 404), mc("plain", 5),
		mc("sub", 7), mc("sub", -8), mc("sub", 9), mc("plain", 10), mc("sub", 404), mc("plain", 11), mc("sub", 12))
	wantEntries(t, got,
		ok(int64(10)), ok(int64(20)), ok("p"),
		fault(403, "intercept refuses 2 calls"), fault(403, "intercept refuses 2 calls"), ok("p"),
		ok("seventy"), fault(409, "negative -8"), ok(int64(90)), ok("p"),
		fault(403, "intercept refuses sub"), ok("p"), ok(int64(120)))
	// InterceptBatch wraps each batch (and nothing else); a call alone goes
	// through Intercept to Handler.
	wantCalls(t, bs, "IB sub 2", "B 1,2", "IB done", "I plain", "plain 3", "IB sub 2", "I plain", "plain 5",
		"IB sub 3", "B 7,-8,9", "IB done", "I plain", "plain 10", "I sub", "I plain", "plain 11", "I sub", "H 12")
}

func TestMulticallInterceptBatchWithoutIntercept(t *testing.T) {
	bs := newBatchServer(t, func(bs *batchServer) {
		bs.InterceptBatch = func(ctx context.Context, method string, ps []Params, next BatchHandler) ([]any, []error) {
			bs.record(fmt.Sprintf("IB %s %d", method, len(ps)))
			return next(ctx, ps)
		}
	})
	wantEntries(t, bs.multicall(t, mc("sub", 1), mc("sub", 2), mc("sub2", 3), mc("plain", 4), mc("sub", 5)),
		ok(int64(10)), ok(int64(20)), ok(int64(30)), ok("p"), ok(int64(50)))
	wantCalls(t, bs, "IB sub 2", "B 1,2", "H 3", "plain 4", "H 5")
}
