package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// Daemon mode (docs/protocol.md, "Daemon mode": `client poll --daemon --listen ADDR`).
//
// The agent still polls on its interval, as a safety net, but it also
// listens: the server sends it the small RPC agent.pollNow the moment there
// is work for it (a job submitted to it, a run requeued, a not_before time
// arriving, a daemon starting with work queued), and the agent asks for
// work at once instead of waiting for its next poll.
//
// Security. The listener speaks TLS with the agent's enrolled certificate —
// the one whose fingerprint the operator accepted — and requires the caller
// to present a certificate that chains to the server CA the agent pinned
// (ClientAuth RequireAndVerifyClientCert, ClientCAs = the pinned CA). A
// daemon presents tls/push.crt, issued by its CA for this. Anyone else is
// refused during the TLS handshake and never reaches the XML-RPC layer. The
// server, for its part, checks that the certificate the agent presents has
// the fingerprint it enrolled (see package push), so neither side can be
// impersonated by a third machine on the callback address.
//
// agent.pollNow carries nothing and does nothing but wake the poll loop: a
// forged or repeated call can at most make the agent poll early. Calls
// collapse: while a wake-up is pending, more calls add nothing, so a burst
// of pushes costs one poll. The call returns true at once; the poll itself
// runs in the agent's loop, never in the request.

// PollNowMethod is the one method an agent serves in daemon mode.
const PollNowMethod = api.MethodPollNow

// Limits of the agent.pollNow listener: the calls are tiny, and nothing
// but a daemon with a CA certificate gets past the handshake.
const (
	pollNowMaxBody     = 64 << 10
	pollNowHeaderLimit = 16 << 10
	pollNowReadTimeout = 10 * time.Second
	pollNowIdle        = 2 * time.Minute
)

// PollNowConfig configures ListenPollNow.
type PollNowConfig struct {
	// Addr is the host:port to listen on; port 0 picks a free one.
	Addr string
	// Certificate is what the listener presents: the agent's enrolled
	// identity, whose fingerprint the server checks.
	Certificate tls.Certificate
	// ServerCA is the pinned server CA: a caller must present a client
	// certificate it signed, or the handshake fails.
	ServerCA *x509.CertPool
	// Wake is called for each accepted agent.pollNow. It must not block
	// (a non-blocking send on a channel of capacity one collapses calls).
	Wake func()
	// CallbackURL is the URL to advertise to the server; default
	// DefaultCallbackURL of the address actually bound.
	CallbackURL string
	Log         *slog.Logger // default slog.Default()
}

// PollNowServer is a running agent.pollNow listener.
type PollNowServer struct {
	ln    net.Listener
	hs    *http.Server
	url   string
	calls atomic.Int64
	done  chan struct{}
}

// ListenPollNow opens the daemon-mode listener and serves agent.pollNow in
// the background until Close. It is what `client poll --daemon` runs, and
// what a simulated agent (scirectl bench --push) can run to be pushed to:
// give it a certificate registered with mode=daemon and callback_url =
// URL(), the server's CA, and a Wake that triggers its agent.getJobs.
func ListenPollNow(cfg PollNowConfig) (*PollNowServer, error) {
	if cfg.Wake == nil {
		return nil, errors.New("agent.pollNow listener: no Wake function")
	}
	if cfg.ServerCA == nil {
		return nil, errors.New("agent.pollNow listener: no server CA to verify callers with")
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, errors.New("agent.pollNow listener: no certificate")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("daemon mode: listen on %s: %w", cfg.Addr, err)
	}
	u := cfg.CallbackURL
	if u == "" {
		if u, err = DefaultCallbackURL(ln.Addr().String()); err != nil {
			ln.Close()
			return nil, err
		}
	}
	s := &PollNowServer{ln: ln, url: u, done: make(chan struct{})}
	rpc := xmlrpc.NewServer()
	rpc.Limits = xmlrpc.Limits{MaxBodyBytes: pollNowMaxBody, MaxDepth: 8, MaxValues: 64, MaxStringBytes: 4 << 10}
	rpc.Register(xmlrpc.Method{
		Name:      PollNowMethod,
		Signature: []string{"boolean"},
		Help:      "Ask the agent to poll the server for work now. Takes no params (extra ones are ignored). Returns true at once; the poll follows.",
		Handler: func(context.Context, xmlrpc.Params) (any, error) {
			s.calls.Add(1)
			cfg.Wake()
			return true, nil
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/RPC2", rpc)
	s.hs = &http.Server{
		Handler:           mux,
		TLSConfig:         PollNowTLSConfig(cfg.Certificate, cfg.ServerCA),
		ReadHeaderTimeout: pollNowReadTimeout,
		ReadTimeout:       pollNowReadTimeout,
		WriteTimeout:      pollNowReadTimeout,
		IdleTimeout:       pollNowIdle,
		MaxHeaderBytes:    pollNowHeaderLimit,
		// Refused handshakes (no or foreign certificate) land here.
		ErrorLog: slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(tls.NewListener(ln, s.hs.TLSConfig)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("agent.pollNow listener stopped", "err", err)
		}
	}()
	return s, nil
}

// PollNowTLSConfig is the listener's TLS configuration: it presents cert
// and accepts only callers whose certificate chains to serverCA.
func PollNowTLSConfig(cert tls.Certificate, serverCA *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    serverCA,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	}
}

// Addr is the address the listener is bound to.
func (s *PollNowServer) Addr() net.Addr { return s.ln.Addr() }

// URL is the callback URL to register (agent.register's callback_url).
func (s *PollNowServer) URL() string { return s.url }

// Calls counts the agent.pollNow calls accepted so far.
func (s *PollNowServer) Calls() int64 { return s.calls.Load() }

// Close stops the listener and waits (briefly) for calls in progress.
func (s *PollNowServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.hs.Shutdown(ctx)
	<-s.done
	return err
}

// DefaultCallbackURL is the URL advertised for a listener bound to addr:
// https://HOST:PORT/RPC2, with the machine's host name for HOST when addr
// is a wildcard (0.0.0.0, ::, or no host), since the server cannot call a
// wildcard.
func DefaultCallbackURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("daemon mode: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host, err = os.Hostname(); err != nil || host == "" {
			return "", fmt.Errorf("daemon mode: listening on all addresses, and no host name to advertise (use an explicit callback URL): %v", err)
		}
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("daemon mode: listen address %q: port %q is not a number", addr, port)
	}
	return (&url.URL{Scheme: "https", Host: net.JoinHostPort(host, port), Path: "/RPC2"}).String(), nil
}

// wakeUp asks the loop to talk to the server now. The channel holds one
// pending wake-up; more collapse into it.
func (a *agent) wakeUp() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// drainWake forgets a pending wake-up: the talk about to start serves it.
// A push that arrives during the talk stays pending and makes another one.
func (a *agent) drainWake() {
	select {
	case <-a.wake:
	default:
	}
}

// sleepOrWake waits until d passed, ctx is done (its error is returned),
// or a push arrived (then the next contact is due at once).
func (a *agent) sleepOrWake(ctx context.Context, d time.Duration) error {
	if a.wake == nil {
		return sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	case <-a.wake:
		a.nextContact = time.Time{}
		a.log.Debug("pushed by the server: polling now")
	}
	return nil
}

// startDaemon opens the agent.pollNow listener of daemon mode.
func (a *agent) startDaemon() (*PollNowServer, error) {
	a.wake = make(chan struct{}, 1)
	srv, err := ListenPollNow(PollNowConfig{Addr: a.cfg.Listen, Certificate: a.id.cert, ServerCA: a.id.roots,
		Wake: a.wakeUp, CallbackURL: a.cfg.CallbackURL, Log: a.log})
	if err != nil {
		return nil, err
	}
	a.callbackURL = srv.URL()
	a.log.Info("daemon mode: listening for agent.pollNow", "address", srv.Addr().String(), "callback_url", a.callbackURL)
	return srv, nil
}
