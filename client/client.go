// Package client is scirectl's XML-RPC client: the operator CLI and the
// agent both call the server through it. It encodes calls with the
// project's own encoder (package xmlrpc, which the server's responses use
// too), keeps TLS connections alive (a handshake per call would cost 20x), pins
// the server CA, adds the bearer token, turns faults into *Fault, and fails
// over between several server URLs.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/scirectl/scirectl/api"
	rpc "github.com/scirectl/scirectl/xmlrpc"
)

// A call's fault is returned as an *api.Fault (api.FaultCode reads its
// code); every other error is the transport's or the decoder's.

// Options configure a Client. Servers is required.
type Options struct {
	Servers     []string         // XML-RPC endpoint URLs, in failover order
	RootCAs     *x509.CertPool   // pinned server CA; nil uses the system roots
	Certificate *tls.Certificate // the agent's identity; nil for operators
	Token       string           // operator bearer token
	NoWait      bool             // ask the server's gate to refuse instead of queueing
	Timeout     time.Duration    // per call; default 60s
	UserAgent   string
}

// Client calls one of several servers. It is safe for concurrent use.
type Client struct {
	opts Options
	http *http.Client

	mu  sync.Mutex
	cur int // index of the server in use
}

// New makes a client.
func New(o Options) (*Client, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("client: no server URL")
	}
	for _, s := range o.Servers {
		if !strings.HasPrefix(s, "https://") {
			return nil, fmt.Errorf("server URL %q: must start with https:// (the API is served over TLS only)", s)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "scirectl"
	}
	tlsConf := &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12}
	if o.Certificate != nil {
		tlsConf.Certificates = []tls.Certificate{*o.Certificate}
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsConf,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &Client{opts: o, http: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// Server returns the URL currently in use.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opts.Servers[c.cur]
}

// Close drops idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Call invokes method with args and decodes the result into reply (a
// pointer, or nil to discard it). A fault comes back as *Fault. When a
// server cannot be reached at all, the next one is tried at once; any other
// transport failure is returned and the next call starts at the next server.
func (c *Client) Call(ctx context.Context, method string, reply any, args ...any) error {
	body, err := encodeCall(method, args...)
	if err != nil {
		return fmt.Errorf("%s: encode call: %w", method, err)
	}
	resp, err := c.roundTrip(ctx, method, body)
	if err != nil {
		return err
	}
	return decode(method, resp, reply)
}

// encodeCall renders a <methodCall>. The project's encoder writes a
// chunk of streamed output (agent.output) at memory speed; kolo/xmlrpc's,
// used before, escaped it through encoding/xml at a CPU-second per 10 MB.
func encodeCall(method string, args ...any) ([]byte, error) {
	var buf bytes.Buffer
	if err := rpc.EncodeCall(&buf, method, args...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// A Call is one call of a Multicall.
type Call struct {
	Method string
	Args   []any
	Reply  any // a pointer the result is decoded into, or nil to discard it
	// Err is set by Multicall: the call's fault (*Fault) or a result that
	// does not decode into Reply; nil when it succeeded.
	Err error
}

// Multicall sends calls in one system.multicall request. The server runs
// them in order, each as if it came alone (authentication, the gate, its
// own fault), so a fault of one does not stop the next. The error returned
// is the request's: a transport failure (with failover as for Call), a
// fault of system.multicall itself or a response that cannot be read; no
// call's outcome is known then, and their Err fields are set to it.
// Otherwise each call's outcome is in its Err.
func (c *Client) Multicall(ctx context.Context, calls ...*Call) error {
	entries := make([]any, len(calls))
	replies := make([]any, len(calls))
	names := make([]string, len(calls))
	for i, cl := range calls {
		args := cl.Args
		if args == nil {
			args = []any{}
		}
		entries[i] = map[string]any{"methodName": cl.Method, "params": args}
		replies[i] = cl.Reply
		names[i] = cl.Method
	}
	label := "system.multicall(" + strings.Join(names, ", ") + ")"
	fail := func(err error) error {
		for _, cl := range calls {
			cl.Err = err
		}
		return err
	}
	body, err := encodeCall("system.multicall", entries)
	if err != nil {
		return fail(fmt.Errorf("%s: encode call: %w", label, err))
	}
	resp, err := c.roundTrip(ctx, label, body)
	if err != nil {
		return fail(err)
	}
	errs, err := rpc.DecodeMulticallResponse(resp, replies)
	if err != nil {
		return fail(decodeError(label, err))
	}
	for i, cl := range calls {
		cl.Err = nil
		if errs[i] != nil {
			cl.Err = decodeError(cl.Method, errs[i])
		}
	}
	return nil
}

// roundTrip posts body to the server in use, failing over to the next when
// one cannot be reached; method names the call in errors.
func (c *Client) roundTrip(ctx context.Context, method string, body []byte) ([]byte, error) {
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var lastErr error
	for i := 0; i < len(c.opts.Servers); i++ {
		idx := (start + i) % len(c.opts.Servers)
		resp, err := c.post(ctx, c.opts.Servers[idx], body)
		if err == nil {
			c.mu.Lock()
			c.cur = idx
			c.mu.Unlock()
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", method, ctx.Err())
		}
		if !unreachable(err) {
			c.mu.Lock()
			c.cur = (idx + 1) % len(c.opts.Servers)
			c.mu.Unlock()
			return nil, fmt.Errorf("%s: %w", method, err)
		}
	}
	c.mu.Lock()
	c.cur = (start + 1) % len(c.opts.Servers)
	c.mu.Unlock()
	return nil, fmt.Errorf("%s: %w", method, lastErr)
}

type timeoutKey struct{}

// WithTimeout returns ctx for a call that may take d, instead of the
// client's Options.Timeout, longer or shorter: a call known to take long,
// as agent.getJobs with a wait (a long poll), is not cut short by a
// timeout meant to notice a server that hangs.
func WithTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, timeoutKey{}, d)
}

// unreachable reports an error that happened before the request was sent,
// so trying another server cannot run the call twice.
func unreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (c *Client) post(ctx context.Context, url string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if c.opts.NoWait {
		req.Header.Set(api.NoWaitHeader, "true")
	}
	hc := c.http
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok && d > 0 {
		hc = &http.Client{Transport: c.http.Transport, Timeout: d} // the same connections
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read reply from %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		snippet := strings.TrimSpace(string(data))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return nil, fmt.Errorf("%s answered HTTP %s: %s", url, resp.Status, snippet)
	}
	return data, nil
}

// decode reads a response with xmlrpc.DecodeResponse, which converts
// values as kolo/xmlrpc's Unmarshal did (the client used it until issue 8)
// at a fraction of its cost. reply is zeroed first unless the response is a
// fault, as before.
func decode(method string, data []byte, reply any) error {
	return decodeError(method, rpc.DecodeResponse(data, reply))
}

// decodeError turns a decoder's error into the client's: a fault into a
// *Fault, anything else into an error naming method.
func decodeError(method string, err error) error {
	if err == nil {
		return nil
	}
	if f, ok := api.AsFault(err); ok {
		return f
	}
	var bf *rpc.BadFaultError
	if errors.As(err, &bf) {
		return fmt.Errorf("%s: decode fault: %w", method, bf.Err)
	}
	return fmt.Errorf("%s: decode reply: %w", method, err)
}
