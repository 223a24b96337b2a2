package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/negroni/v3"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/datadir"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/xmlrpc"
)

// request is what the middleware learns about one HTTP request; the
// interceptor fills in the XML-RPC side, the logger prints it.
type request struct {
	ID          string
	User        *db.User // set when a valid bearer token came
	AuthErr     error    // set when a token came but was not valid
	Fingerprint string   // of the TLS client certificate, if any
	NoWait      bool
	Method      string // XML-RPC method (the last one, for a multicall)
	Caller      string // user name or client:<id>, for the log
	Fault       int    // fault code of the outcome, 0 when none
}

type requestKey struct{}

func requestFrom(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	if r == nil {
		return &request{}
	}
	return r
}

// Handler is the HTTP side: negroni with the request log outside panic
// recovery (so a panic is logged), then authentication, then the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/RPC2", s.rpc)
	mux.Handle("/metrics", s.metricsHandler()) // no token: counts only, no names or secrets (metrics.go)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready: starting or shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := s.store.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	n := negroni.New()
	n.UseFunc(s.logRequests)
	n.UseFunc(s.recoverPanics)
	n.UseFunc(s.authenticate)
	n.UseHandler(mux)
	return n
}

func newRequestID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) logRequests(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	start := time.Now()
	req := &request{ID: newRequestID()}
	w.Header().Set("X-Request-Id", req.ID)
	next(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, req)))
	if r.URL.Path != "/RPC2" {
		return // health probes are not worth a line each
	}
	status := 0
	if rw, ok := w.(negroni.ResponseWriter); ok {
		status = rw.Status()
	}
	// Routine agent traffic (every poll, ack and report of a fleet) is
	// logged at debug level; operator calls, and every fault or HTTP error
	// whoever made it, at info.
	level := slog.LevelInfo
	if req.Fault == 0 && status < 300 && strings.HasPrefix(req.Caller, "client:") {
		level = slog.LevelDebug
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	s.log.Log(r.Context(), level, "request", "request_id", req.ID, "method", req.Method, "caller", req.Caller,
		"remote", r.RemoteAddr, "status", status, "fault", req.Fault, "duration", time.Since(start).Round(time.Microsecond))
}

// recoverPanics turns a panic into XML-RPC fault 500 whose text repeats the
// request id, and logs the stack under that id; the caller sees no stack.
func (s *Server) recoverPanics(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			req := requestFrom(r.Context())
			req.Fault = xmlrpc.CodeInternal
			s.log.Error("panic", "request_id", req.ID, "method", req.Method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			var buf bytes.Buffer
			xmlrpc.EncodeFault(&buf, &xmlrpc.Fault{Code: xmlrpc.CodeInternal, Message: "internal error (request id " + req.ID + ")"})
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			w.Write(buf.Bytes())
		}
	}()
	next(w, r)
}

// authenticate identifies the caller; whether the identity suffices is the
// interceptor's business, per method.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	req := requestFrom(r.Context())
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		req.Fingerprint = pki.Fingerprint(r.TLS.PeerCertificates[0].Raw)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			req.AuthErr = datadir.ErrBadToken
		} else if u, err := datadir.VerifyToken(r.Context(), s.store, tok); err != nil {
			req.AuthErr = err
		} else {
			req.User = &u
		}
	}
	switch strings.ToLower(r.Header.Get(api.NoWaitHeader)) {
	case "1", "true", "yes":
		req.NoWait = true
	}
	next(w, r)
}
