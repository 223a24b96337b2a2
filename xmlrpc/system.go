package xmlrpc

import (
	"context"
	"fmt"
)

// The system.* methods of the XML-RPC introspection convention and of
// system.multicall. They are served by the Server itself, bypass Intercept
// (they reveal nothing a client could not read in the documentation), and
// cannot be registered over.
const (
	listMethods     = "system.listMethods"
	methodHelp      = "system.methodHelp"
	methodSignature = "system.methodSignature"
	multicall       = "system.multicall"
)

var systemNames = []string{listMethods, methodHelp, methodSignature, multicall}

func (s *Server) system(name string) (Method, bool) {
	switch name {
	case listMethods:
		return Method{
			Name:      name,
			Help:      "system.listMethods() → array of every method name, sorted.",
			Signature: []string{"array"},
			Handler: func(_ context.Context, p Params) (any, error) {
				if err := p.Count(0, 0); err != nil {
					return nil, err
				}
				return s.Methods(), nil
			},
		}, true
	case methodHelp:
		return Method{
			Name:      name,
			Help:      "system.methodHelp(string name) → the method's documentation.",
			Signature: []string{"string", "string"},
			Handler: func(_ context.Context, p Params) (any, error) {
				m, err := s.introspected(p)
				if err != nil {
					return nil, err
				}
				return m.Help, nil
			},
		}, true
	case methodSignature:
		return Method{
			Name: name,
			Help: "system.methodSignature(string name) → array of signatures, each an array of type names, " +
				"result type first; the string \"undef\" when the method has none on record.",
			Signature: []string{"array", "string"},
			Handler: func(_ context.Context, p Params) (any, error) {
				m, err := s.introspected(p)
				if err != nil {
					return nil, err
				}
				if m.Signature == nil {
					return "undef", nil
				}
				return []any{m.Signature}, nil
			},
		}, true
	case multicall:
		return Method{
			Name: name,
			Help: "system.multicall(array calls) → array of results. Each call is a struct {methodName, params}; " +
				"the calls run one after another, in order. Each result is a one-element array [result] on success " +
				"or a struct {faultCode, faultString} on failure; one failing call does not stop the others. " +
				"system.multicall cannot be nested.",
			Signature: []string{"array", "array"},
			Handler:   s.multicall,
		}, true
	}
	return Method{}, false
}

func (s *Server) introspected(p Params) (Method, error) {
	if err := p.Count(1, 1); err != nil {
		return Method{}, err
	}
	name, err := p.String(0, "method")
	if err != nil {
		return Method{}, err
	}
	m, ok := s.Lookup(name)
	if !ok {
		return Method{}, Faultf(CodeNotFound, "method not found: %q", name)
	}
	return m, nil
}

// multicall runs the calls in order: a batch is one client's ordered
// intent (ack then report, say), and Intercept sees each call on its own,
// so the gate and the audit trail treat it exactly like separate requests.
// The exception is a run of consecutive calls of a method with a Batch
// handler, which is served by one BatchHandler call (InterceptBatch
// around it), MaxBatch calls at a time.
func (s *Server) multicall(ctx context.Context, p Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	calls, err := p.Array(0, "calls")
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, inMulticallKey{}, true)
	entries := make([]multicallCall, len(calls))
	for i, c := range calls {
		entries[i] = parseMulticallEntry(i, c)
	}
	out := make([]any, len(calls))
	for i := 0; i < len(entries); {
		e := entries[i]
		if e.bad != nil {
			out[i] = e.bad
			i++
			continue
		}
		n := 1
		m, batched := s.batch(e.name)
		if batched {
			for i+n < len(entries) && n < MaxBatch && entries[i+n].bad == nil && entries[i+n].name == e.name {
				n++
			}
		}
		if n == 1 {
			res, err := s.Call(ctx, e.name, e.params)
			out[i] = s.multicallResult(ctx, e.name, res, err)
			i++
			continue
		}
		ps := make([]Params, n)
		for k := range n {
			ps[k] = entries[i+k].params
		}
		res, errs := s.callBatch(ctx, m, ps)
		for k := range n {
			out[i+k] = s.multicallResult(ctx, e.name, res[k], errs[k])
		}
		i += n
	}
	return out, nil
}

type inMulticallKey struct{}

// InMulticall says whether ctx is that of a call inside system.multicall:
// one whose reply is part of a larger one, so that its handler cannot
// answer it apart from the others (a long poll cannot hand its wait off).
func InMulticall(ctx context.Context) bool {
	in, _ := ctx.Value(inMulticallKey{}).(bool)
	return in
}

func faultEntry(f *Fault) map[string]any {
	return map[string]any{"faultCode": int64(f.Code), "faultString": f.Message}
}

// multicallCall is one entry of a system.multicall: a method and its
// parameters, or the fault entry of a malformed one.
type multicallCall struct {
	name   string
	params Params
	bad    map[string]any
}

func parseMulticallEntry(i int, c any) multicallCall {
	bad := func(format string, args ...any) multicallCall {
		return multicallCall{bad: faultEntry(Faultf(CodeInvalid, "system.multicall: call %d: %s", i+1, fmt.Sprintf(format, args...)))}
	}
	m, ok := c.(map[string]any)
	if !ok {
		return bad("expected struct {methodName, params}, got %s", describe(c))
	}
	name, ok := m["methodName"].(string)
	if !ok {
		return bad("methodName: expected string, got %s", describe(m["methodName"]))
	}
	if name == multicall {
		return bad("system.multicall cannot be nested")
	}
	var params Params
	switch x := m["params"].(type) {
	case []any:
		params = x
	case nil:
		params = Params{} // absent: a call without parameters
	default:
		return bad("params: expected array, got %s", describe(x))
	}
	return multicallCall{name: name, params: params}
}

// multicallResult is the entry of one call's outcome: [result] or a fault
// struct (a result that cannot be encoded is a fault too).
func (s *Server) multicallResult(ctx context.Context, name string, res any, err error) any {
	if err != nil {
		return faultEntry(s.fault(ctx, name, err))
	}
	if err := checkEncodable(res); err != nil {
		return faultEntry(s.fault(ctx, name, fmt.Errorf("%s: %w", name, err)))
	}
	return []any{res}
}
