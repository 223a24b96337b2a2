package xmlrpc

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Handler serves one method. Returning a *Fault (possibly wrapped) chooses the
// code and text the caller sees; any other error goes through Server.OnError.
type Handler func(ctx context.Context, p Params) (any, error)

// BatchHandler serves a run of consecutive calls of one method inside one
// system.multicall together, so that they can share what each would pay
// alone (a lock, a transaction, a commit). It returns one result and one
// error per call, in order; errs[i] non-nil is call i's fault, as a
// Handler's error would be.
type BatchHandler func(ctx context.Context, ps []Params) (res []any, errs []error)

// MaxBatch is the most calls a BatchHandler is given at once; a longer run
// is served in parts, so that one request does not hold for long what a
// batch holds.
const MaxBatch = 100

// Method is a registered method with what introspection serves about it.
type Method struct {
	Name string
	// Help is served by system.methodHelp: argument and result shapes.
	Help string
	// Signature is the return type followed by the parameter types, as
	// XML-RPC type names ("struct", "string", "int", "array", "boolean",
	// "dateTime.iso8601", "base64", "double"). system.methodSignature serves
	// it as [[...]]; nil is served as the string "undef", as the
	// introspection convention says for methods without a signature.
	Signature []string
	Handler   Handler
	// Batch, when set, serves consecutive calls of the method inside one
	// system.multicall (up to MaxBatch at once). Each call must get what
	// Handler would have given it had the calls run one after another, in
	// order. A call alone, or a method without Batch, goes to Handler.
	Batch BatchHandler
}

// Server dispatches XML-RPC calls over HTTP to registered methods and serves
// the system.* introspection and multicall methods itself. Register methods
// before serving; the fields must not change while serving.
type Server struct {
	// Limits bound request decoding; zero fields take the defaults.
	Limits Limits
	// Intercept, when set, wraps every call of a registered method,
	// including each call inside system.multicall, so that authentication,
	// the job-server gate and auditing sit around every method in one
	// place. It is not applied to the system.* methods themselves.
	Intercept func(ctx context.Context, method string, p Params, next Handler) (any, error)
	// InterceptBatch is Intercept for a method's Batch. When Intercept is
	// set and InterceptBatch is not, no call is batched: none may bypass
	// the interception.
	InterceptBatch func(ctx context.Context, method string, ps []Params, next BatchHandler) ([]any, []error)
	// OnError turns an error that is not a *Fault into one — typically
	// logging it under a request id and answering 500. Default: 500
	// "internal error". It also receives failures to encode a result.
	OnError func(ctx context.Context, method string, err error) *Fault

	mu      sync.RWMutex
	methods map[string]Method
}

// NewServer returns a Server with no methods but the system.* ones.
func NewServer() *Server {
	return &Server{}
}

// Register adds m. It panics on an empty or duplicate name, a name in the
// reserved system. namespace, or a nil handler: these are programming
// errors found at start-up, not conditions to handle.
func (s *Server) Register(m Method) {
	switch {
	case m.Name == "":
		panic("xmlrpc: Register: empty method name")
	case strings.HasPrefix(m.Name, "system."):
		panic("xmlrpc: Register: " + m.Name + ": the system. namespace is reserved")
	case m.Handler == nil:
		panic("xmlrpc: Register: " + m.Name + ": nil handler")
	}
	if _, err := checkMethodName([]byte(m.Name)); err != nil {
		panic("xmlrpc: Register: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[m.Name]; dup {
		panic("xmlrpc: Register: " + m.Name + " registered twice")
	}
	if s.methods == nil {
		s.methods = map[string]Method{}
	}
	s.methods[m.Name] = m
}

// Lookup returns the method registered under name, system.* ones included.
func (s *Server) Lookup(name string) (Method, bool) {
	if m, ok := s.system(name); ok {
		return m, true
	}
	s.mu.RLock()
	m, ok := s.methods[name]
	s.mu.RUnlock()
	return m, ok
}

// Methods lists every method name, system.* included, sorted.
func (s *Server) Methods() []string {
	s.mu.RLock()
	names := make([]string, 0, len(s.methods)+len(systemNames))
	for n := range s.methods {
		names = append(names, n)
	}
	s.mu.RUnlock()
	names = append(names, systemNames...)
	slices.Sort(names)
	return names
}

// Call runs method with p as ServeHTTP would, Intercept included. Every error
// it returns is a *Fault; an unknown method is fault 404.
func (s *Server) Call(ctx context.Context, method string, p Params) (any, error) {
	m, ok := s.Lookup(method)
	if !ok {
		return nil, Faultf(CodeNotFound, "method not found: %q", method)
	}
	var res any
	var err error
	if s.Intercept == nil || strings.HasPrefix(method, "system.") {
		res, err = m.Handler(ctx, p)
	} else {
		res, err = s.Intercept(ctx, method, p, m.Handler)
	}
	if err != nil {
		return nil, s.fault(ctx, method, err)
	}
	return res, nil
}

// batch returns the method's Batch when multicall may use it.
func (s *Server) batch(method string) (Method, bool) {
	if strings.HasPrefix(method, "system.") {
		return Method{}, false
	}
	m, ok := s.Lookup(method)
	if !ok || m.Batch == nil || (s.Intercept != nil && s.InterceptBatch == nil) {
		return Method{}, false
	}
	return m, true
}

// callBatch runs m's Batch for ps, InterceptBatch included; every error it
// returns is a *Fault.
func (s *Server) callBatch(ctx context.Context, m Method, ps []Params) ([]any, []error) {
	var res []any
	var errs []error
	if s.InterceptBatch != nil {
		res, errs = s.InterceptBatch(ctx, m.Name, ps, m.Batch)
	} else {
		res, errs = m.Batch(ctx, ps)
	}
	if len(res) != len(ps) || len(errs) != len(ps) {
		err := s.fault(ctx, m.Name, fmt.Errorf("%s: batch of %d calls returned %d results and %d errors", m.Name, len(ps), len(res), len(errs)))
		res, errs = make([]any, len(ps)), make([]error, len(ps))
		for i := range errs {
			errs[i] = err
		}
		return res, errs
	}
	for i, err := range errs {
		if err != nil {
			errs[i] = s.fault(ctx, m.Name, err)
		}
	}
	return res, errs
}

func (s *Server) fault(ctx context.Context, method string, err error) *Fault {
	if f, ok := AsFault(err); ok {
		return f
	}
	if s.OnError != nil {
		if f := s.OnError(ctx, method, err); f != nil {
			return f
		}
	}
	return &Fault{Code: CodeInternal, Message: "internal error"}
}

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// ServeHTTP answers POST requests carrying a <methodCall>. Every XML-RPC-level
// failure is HTTP 200 with a fault (see the package comment); only a wrong
// HTTP method is an HTTP error. The response is encoded into a buffer first so
// that a result that cannot be encoded becomes a fault, not half a document.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC requests must use POST", http.StatusMethodNotAllowed)
		return
	}
	ctx := r.Context()
	lim := s.Limits.withDefaults()
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 { // do not pin the memory of one huge response
			bufferPool.Put(buf)
		}
	}()

	var fault *Fault
	if r.ContentLength > lim.MaxBodyBytes {
		fault = tooLarge(lim.MaxBodyBytes)
	} else if method, params, err := DecodeCall(r.Body, lim); err != nil {
		fault = s.fault(ctx, "", err)
	} else {
		res, err := s.Call(ctx, method, params)
		s.respond(ctx, w, buf, method, res, err)
		return
	}
	if fault.Code == CodeTooLarge {
		// The rest of the body stays unread; say so rather than let
		// the client write into a connection that will be dropped.
		w.Header().Set("Connection", "close")
	}
	EncodeFault(buf, fault)
	writeBuffer(w, buf)
}

// Respond writes the reply of a call of method that Call returned res and
// err for, as ServeHTTP would have: for a caller that answers a call later
// than its handler returned (a long poll whose wait was handed off).
func (s *Server) Respond(ctx context.Context, w http.ResponseWriter, method string, res any, err error) {
	buf := bufferPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bufferPool.Put(buf)
		}
	}()
	s.respond(ctx, w, buf, method, res, err)
}

func (s *Server) respond(ctx context.Context, w http.ResponseWriter, buf *bytes.Buffer, method string, res any, err error) {
	if err != nil {
		EncodeFault(buf, s.fault(ctx, method, err))
	} else if err := EncodeResponse(buf, res); err != nil {
		buf.Reset()
		EncodeFault(buf, s.fault(ctx, method, fmt.Errorf("%s: %w", method, err)))
	}
	writeBuffer(w, buf)
}

func writeBuffer(w http.ResponseWriter, buf *bytes.Buffer) {
	h := w.Header()
	h.Set("Content-Type", "text/xml; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
