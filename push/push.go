// Package push sends agent.pollNow to daemon-mode agents: daemon-mode push
// (docs/architecture.md; the original Scire design's "daemon mode"). A
// client registered with mode=daemon and a callback_url runs an agent that
// also listens (client/agent/daemon.go); when there is work for it, the
// daemon sends it agent.pollNow and the agent asks for work at once
// instead of on its next poll. A push is only a hint: it carries no
// job, and an agent that is not reached still gets its work on its next
// poll. So every rule below prefers dropping a push to slowing anything.
//
// When. A daemon pushes:
//   - after job.submit committed, to each daemon-mode target (unless the
//     job waits for a not_before time);
//   - when a run goes back to pending (lease expired, dead daemon taken
//     over): the rescuer's OnChange hook (server/rescue.go);
//   - when a not_before time arrives (the notBeforeWatcher,
//     server/notbefore.go);
//   - at start, once the listener is open, to every active daemon-mode
//     client (the startupPush, server/startuppush.go): startup recovery
//     (docs/architecture.md) may have requeued work, and work may have
//     waited while no daemon ran. Collapsing makes that cheap.
//
// Once, with several daemons. Each push is sent by the daemon whose
// operation created the work, and by no other: job.submit runs on one
// daemon; the rescuer's changes are conditional UPDATEs, so a requeued run
// is reported (db.Change) only to the one daemon whose sweep changed it;
// startup pushes come from the daemon that starts. The not_before times
// belong to no operation, so only one daemon watches them: the live daemon
// with the lowest id in the servers registry (pushLeader, server/push.go).
// Two daemons may briefly both think they lead while a heartbeat goes
// stale; the agent takes the second pollNow as one more early poll,
// nothing worse.
//
// How. Push(clientID) only records the wish and returns: it never blocks
// the operation that caused it (job.submit holds the gate as a modifier).
// A pool of Workers goroutines sends the pushes: the Pusher is a
// lifecycle.Service whose Start runs them and whose Stop ends them, waiting
// for the pushes in flight (each cancelled), and closes the connections. Per client at most
// one push is queued or in flight: a Push for a client already queued or
// backing off adds nothing, and one for a client whose push is in flight
// marks it to be pushed once more afterwards (the work it announces may
// have been created after the agent's poll). Each attempt (client lookup,
// connection, TLS handshake, call) has Timeout; a failed one is retried
// after FirstBackoff, then twice that, … Retries times, then given
// up: the client's own polling covers it. Back-off waits hold no worker.
//
// Refused handshakes. A failure that retrying cannot mend is not retried:
// a callback URL the rules refuse, an address outside push_networks, and
// above all a TLS handshake that fails — the peer does not speak TLS,
// presents another certificate than the enrolled one, or refuses ours (an
// agent that pinned another CA). Whatever answers there will answer the
// same way in a second, so such a client is also held back: for
// HandshakeBackoff no push is sent to it (no connection is even
// dialled) while its callback URL and fingerprint stay those that failed.
// The failure is logged once, as a warning naming the client; the pushes
// held back are not logged, and last_push keeps showing the failure. The
// client still gets its work by polling; re-registering with another
// callback URL (or being enrolled with another certificate) lifts the hold
// at once.
//
// Allowed networks. With push_networks in server.yaml (Options.Networks)
// a push only ever connects to an address inside them. A callback host that
// is an IP address outside them is refused at agent.register; a host name
// is resolved at each new connection, and every address it resolves to
// must be inside them (or the push fails, permanently for that round); the
// connection then goes to an address that was checked, never to a second
// resolution, so a name cannot be re-pointed between check and dial.
//
// Connections. Pushes to one client reuse one kept-alive TLS connection:
// a handshake costs far more than the call (at 500 pushes/s a handshake per
// push made the daemon fall behind). Each client has its own transport
// (pushConns), built for its callback URL and fingerprint, so a connection
// is only ever reused for the client it was verified for; when either
// changes, the old transport is dropped and its connections closed. The
// transports live in an LRU of MaxConns clients, each keeping at most
// one idle connection for IdleTimeout: with thousands of daemon-mode
// clients the least recently pushed lose their connection (the next push
// to them handshakes again), never the daemon its memory. Stopping the
// pusher closes them all.
//
// Identity, both ways. The daemon presents tls/push.crt, a client
// certificate issued by its CA (EnsureTLS): the agent accepts agent.pollNow
// only from a certificate chaining to the CA it pinned. The agent presents
// its enrolled certificate, which is self-signed, so there is no chain to
// verify and its names are whatever the agent chose; its identity is the
// SHA-256 fingerprint the operator accepted. The push therefore skips chain
// verification (InsecureSkipVerify) and instead checks, in
// VerifyConnection, during the handshake and before any byte of the request
// is sent, that the peer's certificate has exactly the client's stored
// fingerprint. That is a stronger check than a chain would be: only the
// holder of that one key passes. A callback_url pointing at anything else
// (another service, another machine) fails the handshake.
//
// Last result. Each daemon keeps the outcome of its last push per client
// in memory and shows it in client.list and client.get (last_push); it is
// not stored, so it is absent after a restart, and with several daemons
// each shows its own pushes (server_id says whose). Storing it would mean
// a write per push and a schema change for every driver.
package push

import (
	"bytes"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	kolo "github.com/kolo/xmlrpc"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/service"
)

// The defaults of Options.
const (
	Workers      = 16
	Timeout      = 2 * time.Second
	Retries      = 3
	FirstBackoff = time.Second
	// IdleTimeout closes a push connection unused this long (the
	// agent's own listener closes idle ones after 2 minutes).
	IdleTimeout = 90 * time.Second
	// MaxConns bounds the clients with a kept-alive push connection.
	// Each holds one TLS connection, its buffers and two goroutines: 80 KiB
	// measured for both ends together, so at most ~13 MiB for the daemon's.
	MaxConns = 256
	// HandshakeBackoff is how long a client whose TLS handshake failed
	// is not pushed to (see "Refused handshakes" above).
	HandshakeBackoff = time.Minute
)

// Push outcomes, as api.PushResult.Result. OK and Failed (given
// up), with Skipped (not an active daemon-mode client), are also the
// outcomes counted by scire_push_total (Observe).
const (
	OK       = "ok"
	Retrying = "retrying"
	Failed   = "failed"
	Skipped  = "skipped"
	// Woken: the client was waiting in agent.getJobs on this daemon
	// (Options.Waiting) and was woken there; nothing was sent.
	Woken = "woken"
)

// Options tune a pusher; zero fields take the defaults above.
type Options struct {
	Workers     int
	Timeout     time.Duration
	Retries     int
	Backoff     time.Duration
	IdleTimeout time.Duration
	MaxConns    int
	// HandshakeBackoff: no push to a client for this long after its TLS
	// handshake failed; default HandshakeBackoff.
	HandshakeBackoff time.Duration
	// Networks, when not empty, are the only networks a push connects to
	// (server.yaml push_networks).
	Networks []netip.Prefix
	// Waiting, when set, holds the clients waiting in agent.getJobs on
	// this daemon (package wakeup): Push wakes such a client where it
	// waits instead of connecting to it.
	Waiting interface{ Wake(clientID int64) bool }
}

// Pusher sends agent.pollNow to daemon-mode clients. It is a
// lifecycle.Service: Start runs the workers, Stop ends them; RunOnce sends
// what is queued on the caller's goroutine.
type Pusher struct {
	lifecycle.Base

	opts     Options
	log      *slog.Logger
	cert     tls.Certificate
	client   func(ctx context.Context, id int64) (db.Client, error)
	serverID func() int64

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []int64
	pending map[int64]*pushState // queued, in flight or backing off
	last    map[int64]api.PushResult
	hold    map[int64]pushHold // clients not pushed to after a failed handshake
	closed  bool               // stopped: pushes are dropped
	busy    int                // pushes in flight

	conns *pushConns // a kept-alive transport per recently pushed client

	nbWake  chan struct{}        // NotBeforeChanged → NotBeforeWake: a job with a future not_before arrived
	observe func(outcome string) // counts each push's final outcome (metrics); may be nil
}

// pushHold holds back pushes to a client whose handshake failed, while its
// callback URL and fingerprint are those that failed.
type pushHold struct {
	until                 time.Time
	callback, fingerprint string
}

type pushState struct {
	running  bool // an attempt is in flight
	again    bool // pushed meanwhile: push once more after it
	attempts int  // failed attempts so far in this round
}

// New makes a Pusher presenting cert. client looks a client up (its mode,
// status, callback URL and fingerprint as they are now; db.ErrNotFound
// when it is gone), serverID names this daemon in the last-push records;
// zero fields of o take the defaults.
func New(log *slog.Logger, cert tls.Certificate, client func(context.Context, int64) (db.Client, error),
	serverID func() int64, o Options) *Pusher {
	if o.Workers <= 0 {
		o.Workers = Workers
	}
	if o.Timeout <= 0 {
		o.Timeout = Timeout
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = Retries
	}
	if o.Backoff <= 0 {
		o.Backoff = FirstBackoff
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = IdleTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = MaxConns
	}
	if o.HandshakeBackoff <= 0 {
		o.HandshakeBackoff = HandshakeBackoff
	}
	p := &Pusher{opts: o, log: log, cert: cert, client: client, serverID: serverID,
		pending: map[int64]*pushState{}, last: map[int64]api.PushResult{}, hold: map[int64]pushHold{},
		nbWake: make(chan struct{}, 1)}
	p.conns = &pushConns{max: o.MaxConns, byID: map[int64]*list.Element{}, lru: list.New(), newTransport: p.transport}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Start runs the workers until Stop (or until ctx is done). Pushes asked
// for before Start wait in the queue.
func (p *Pusher) Start(ctx context.Context) error {
	p.StartLoop(ctx, p.run)
	return nil
}

// run is the pusher's loop: the workers, until ctx ends; then the pushes
// in flight end (their context is ctx), later ones are dropped, and the
// kept-alive connections are closed. Stop returns after all that.
func (p *Pusher) run(ctx context.Context) {
	p.mu.Lock()
	p.closed = false
	p.mu.Unlock()
	p.conns.open()
	var wg sync.WaitGroup
	for range p.opts.Workers {
		wg.Go(func() { p.work(ctx) })
	}
	<-ctx.Done()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	wg.Wait()
	p.conns.close()
}

// Push asks for agent.pollNow to be sent to a client, and returns at once.
// Clients that are not active daemon-mode clients when the push is sent
// are skipped. A client waiting in agent.getJobs on this daemon
// (Options.Waiting) is woken there instead: no connection, no handshake.
func (p *Pusher) Push(clientID int64) {
	if p == nil || clientID <= 0 {
		return
	}
	woken := p.opts.Waiting != nil && p.opts.Waiting.Wake(clientID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if woken {
		p.count(Woken)
		p.record(clientID, Woken, "", 0)
		return
	}
	if st := p.pending[clientID]; st != nil {
		if st.running {
			st.again = true
		}
		return
	}
	p.pending[clientID] = &pushState{}
	p.enqueue(clientID)
}

// enqueue appends to the queue; p.mu is held.
func (p *Pusher) enqueue(id int64) {
	p.queue = append(p.queue, id)
	p.cond.Signal()
}

// work is one worker: it sends queued pushes until the pusher stops.
func (p *Pusher) work(ctx context.Context) {
	for {
		p.mu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.cond.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		id := p.pop()
		p.mu.Unlock()
		p.send(ctx, id)
	}
}

// RunOnce sends, on the caller's goroutine, the pushes queued when it is
// called, one attempt each (a failed one is queued again after its
// back-off, as by a worker), and returns how many it sent.
func (p *Pusher) RunOnce(ctx context.Context) int {
	p.mu.Lock()
	n := len(p.queue)
	p.mu.Unlock()
	sent := 0
	for ; sent < n; sent++ {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.mu.Unlock()
			break
		}
		id := p.pop()
		p.mu.Unlock()
		p.send(ctx, id)
	}
	return sent
}

// pop takes the first queued client; p.mu is held and the queue not empty.
func (p *Pusher) pop() int64 {
	id := p.queue[0]
	p.queue[0] = 0
	p.queue = p.queue[1:]
	return id
}

// send makes one attempt of the push to id, taken from the queue, and
// acts on its outcome: done, pushed once more, retried after a back-off,
// or given up.
func (p *Pusher) send(ctx context.Context, id int64) {
	p.mu.Lock()
	st := p.pending[id]
	st.running = true
	p.busy++
	p.mu.Unlock()

	err := p.pushOnce(ctx, id)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.busy--
	st.running = false
	again := st.again
	st.again = false
	var hs *handshakeError
	switch {
	case errors.Is(err, errNoPush):
		delete(p.pending, id)
		p.count(Skipped)
	case errors.Is(err, errHeldBack):
		delete(p.pending, id)
	case err == nil:
		p.count(OK)
		p.record(id, OK, "", st.attempts+1)
		if again && !p.closed {
			st.attempts = 0
			p.enqueue(id)
		} else {
			delete(p.pending, id)
		}
	case ctx.Err() != nil:
		delete(p.pending, id)
	case st.attempts < p.opts.Retries && !permanent(err):
		st.attempts++
		p.record(id, Retrying, err.Error(), st.attempts)
		delay := p.opts.Backoff << (st.attempts - 1)
		time.AfterFunc(delay, func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.closed {
				return
			}
			p.enqueue(id)
		})
	case errors.As(err, &hs):
		p.record(id, Failed, err.Error(), st.attempts+1)
		delete(p.pending, id)
		p.count(Failed)
		p.log.Warn("push to daemon-mode client failed: TLS handshake refused; not pushed again until the hold ends, "+
			"it gets its work on its next poll", "client_id", id, "hold", p.opts.HandshakeBackoff, "err", err)
	default:
		p.record(id, Failed, err.Error(), st.attempts+1)
		delete(p.pending, id)
		p.count(Failed)
		lvl := slog.LevelInfo
		if permanent(err) {
			lvl = slog.LevelWarn
		}
		p.log.Log(ctx, lvl, "push to daemon-mode client failed; it gets its work on its next poll",
			"client_id", id, "attempts", st.attempts+1, "err", err)
	}
}

// record keeps the outcome of a push; p.mu is held.
func (p *Pusher) record(id int64, result, errText string, attempts int) {
	var sid int64
	if p.serverID != nil {
		sid = p.serverID()
	}
	p.last[id] = api.PushResult{At: time.Now().UTC(), Result: result, Error: errText, Attempts: attempts,
		ServerID: strconv.FormatInt(sid, 10)}
}

func (p *Pusher) count(outcome string) {
	if p.observe != nil {
		p.observe(outcome)
	}
}

// Observe sets f to be called with each push's final outcome (OK, Failed,
// Skipped): the metrics' hook. Set it before Start.
func (p *Pusher) Observe(f func(outcome string)) { p.observe = f }

// LastPush returns the outcome of this daemon's last push to a client.
func (p *Pusher) LastPush(id int64) (api.PushResult, bool) {
	if p == nil {
		return api.PushResult{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.last[id]
	return r, ok
}

// InFlight counts pushes being sent now.
func (p *Pusher) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy
}

// Queued returns the clients waiting in the queue, in order.
func (p *Pusher) Queued() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.queue)
}

// NotBeforeChanged tells the not_before watcher (NotBeforeWake) to read
// the schedule again: a job with a future not_before arrived.
func (p *Pusher) NotBeforeChanged() {
	if p == nil {
		return
	}
	select {
	case p.nbWake <- struct{}{}:
	default:
	}
}

// NotBeforeWake receives after NotBeforeChanged (several calls may make
// one receive).
func (p *Pusher) NotBeforeWake() <-chan struct{} { return p.nbWake }

// errNoPush: the client is gone, not active, or not in daemon mode.
var errNoPush = errors.New("client is not an active daemon-mode client")

// errHeldBack: the client's last handshake failed a short while ago
// (pushHold); no push is sent.
var errHeldBack = errors.New("held back after a failed TLS handshake")

// permanentError is a failure that retrying cannot mend: a callback URL
// the rules refuse, an address outside push_networks.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// handshakeError is a TLS handshake that failed: the peer does not speak
// TLS, presents another certificate than the enrolled one, or refused the
// daemon's. It is not retried, and holds the client back (pushHold).
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// permanent reports whether err is not worth retrying.
func permanent(err error) bool {
	var perm *permanentError
	var hs *handshakeError
	return errors.As(err, &perm) || errors.As(err, &hs)
}

// handshakeFailure classifies an error of the TLS handshake: a timeout,
// or the peer closing or resetting the connection (an agent restarting),
// stays an ordinary, retried failure; anything else — an alert from the
// peer, a record that is not TLS, the fingerprint check — is a
// handshakeError.
func handshakeFailure(err error, host string) error {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.As(err, &ne) && ne.Timeout(),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return err
	}
	if hs, ok := asHandshakeError(err, host); ok {
		return hs
	}
	return &handshakeError{fmt.Errorf("TLS handshake with the agent at %s failed: %w", host, err)}
}

// asHandshakeError recognises a failed TLS handshake in what the HTTP
// client returned, and says so with the agent's address.
func asHandshakeError(err error, host string) (*handshakeError, bool) {
	var hs *handshakeError
	if errors.As(err, &hs) {
		return hs, true
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return &handshakeError{fmt.Errorf("TLS handshake with the agent at %s: the peer does not speak TLS", host)}, true
	}
	var (
		alert tls.AlertError
		cv    *tls.CertificateVerificationError
		op    *net.OpError
	)
	if errors.As(err, &alert) || errors.As(err, &cv) ||
		(errors.As(err, &op) && (op.Op == "remote error" || op.Op == "local error")) {
		// "remote error": the peer sent a TLS alert, typically because
		// it refused the daemon's push certificate (an agent that pinned
		// another CA, or something else than an agent).
		return &handshakeError{fmt.Errorf("TLS handshake with the agent at %s failed: %w", host, err)}, true
	}
	return nil, false
}

// pollNowCall is agent.pollNow's request body: it takes no params.
var pollNowCall = []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
	`<methodCall><methodName>agent.pollNow</methodName><params></params></methodCall>`)

// maxPushReply bounds what is read of an agent's answer.
const maxPushReply = 64 << 10

// pushOnce makes one attempt: look the client up (its mode, URL and
// fingerprint as they are now) and call agent.pollNow, all within Timeout.
func (p *Pusher) pushOnce(ctx context.Context, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	c, err := p.client(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		p.conns.forget(id)
		return errNoPush
	} else if err != nil {
		return fmt.Errorf("look up client: %w", err)
	}
	if c.Status != db.ClientActive || c.Mode != db.ModeDaemon || c.CallbackURL == "" {
		p.conns.forget(id)
		p.mu.Lock()
		delete(p.hold, id)
		p.mu.Unlock()
		return errNoPush
	}
	p.mu.Lock()
	h, held := p.hold[id]
	if held && (time.Now().After(h.until) || h.callback != c.CallbackURL || h.fingerprint != c.Fingerprint) {
		delete(p.hold, id)
		held = false
	}
	p.mu.Unlock()
	if held {
		return errHeldBack
	}
	err = p.pollNow(ctx, c.ID, c.CallbackURL, c.Fingerprint)
	var hs *handshakeError
	if errors.As(err, &hs) {
		p.mu.Lock()
		p.hold[id] = pushHold{until: time.Now().Add(p.opts.HandshakeBackoff), callback: c.CallbackURL, fingerprint: c.Fingerprint}
		p.mu.Unlock()
	}
	return err
}

// pollNow calls agent.pollNow at callback, accepting only a peer whose
// certificate has the given fingerprint (see the comment at the top), on
// the client's kept-alive connection when it has one.
func (p *Pusher) pollNow(ctx context.Context, id int64, callback, fingerprint string) error {
	// Registration checks the URL (agent.register); a row stored before
	// those rules is checked here.
	if err := api.CheckCallbackURL(callback); err != nil {
		return &permanentError{fmt.Errorf("callback_url %q: %v", callback, err)}
	}
	u, err := url.Parse(callback)
	if err != nil {
		return &permanentError{fmt.Errorf("callback_url %q: %v", callback, err)}
	}
	c, err := p.conns.get(id, callback, fingerprint)
	if err != nil {
		return err
	}
	err = p.call(ctx, c.hc, u)
	p.conns.done(c, err != nil) // after a failure, the next attempt starts afresh
	return err
}

// call sends agent.pollNow with hc to u and checks the reply.
func (p *Pusher) call(ctx context.Context, hc *http.Client, u *url.URL) error {
	callback := u.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, bytes.NewReader(pollNowCall))
	if err != nil {
		return &permanentError{err}
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "scirectl-server")
	// agent.pollNow may be repeated harmlessly: this lets the transport
	// send it again on a fresh connection when a kept one turns out to be
	// closed by the agent (no header is sent).
	req.Header["Idempotency-Key"] = nil
	resp, err := hc.Do(req)
	if err != nil {
		var perm *permanentError
		if hs, ok := asHandshakeError(err, u.Host); ok {
			return hs
		}
		switch {
		case errors.As(err, &perm):
			return perm
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("agent.pollNow at %s: no answer within %v", u.Host, p.opts.Timeout)
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPushReply))
	if err != nil {
		return fmt.Errorf("read agent.pollNow reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent.pollNow: HTTP %s", resp.Status)
	}
	if err := kolo.Response(data).Err(); err != nil {
		return fmt.Errorf("agent.pollNow: %w", err)
	}
	return nil
}

// transport is the HTTP transport of one client's pushes: its TLS
// configuration accepts only a peer whose certificate has that client's
// fingerprint, so every connection it keeps was verified for that client.
func (p *Pusher) transport(callback, fingerprint string) *http.Transport {
	host := callback
	if u, err := url.Parse(callback); err == nil {
		host = u.Host
	}
	conf := &tls.Config{
		Certificates: []tls.Certificate{p.cert},
		// No chain: the agent's certificate is self-signed. The identity
		// check is the fingerprint pin in VerifyConnection.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &handshakeError{fmt.Errorf("the agent at %s presented no certificate", host)}
			}
			if got := pki.Fingerprint(cs.PeerCertificates[0].Raw); got != fingerprint {
				return &handshakeError{fmt.Errorf("the agent at %s presented certificate %s…, not the enrolled %s…",
					host, got[:16], fingerprint[:min(16, len(fingerprint))])}
			}
			return nil
		},
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
	}
	dialer := &net.Dialer{Timeout: p.opts.Timeout, KeepAlive: 30 * time.Second}
	dial := dialer.DialContext
	if len(p.opts.Networks) > 0 {
		dial = allowedDialer(dialer, p.opts.Networks)
	}
	return &http.Transport{
		// The handshake is done here rather than by the transport, so
		// that its failures keep their kind (the transport turns some
		// into plain strings) and are told from timeouts.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c := conf
			if h, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(h) == nil {
				c = conf.Clone()
				c.ServerName = h
			}
			tc := tls.Client(raw, c)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, handshakeFailure(err, host)
			}
			return tc, nil
		},
		ResponseHeaderTimeout:  p.opts.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		// One client, one connection: at most one push to it is in flight.
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     p.opts.IdleTimeout,
		DisableCompression:  true,
	}
}

// allowedDialer dials only addresses inside networks: it resolves the
// host (an IP address resolves to itself), refuses it unless every address
// is inside networks, and connects to the checked addresses in turn.
func allowedDialer(d *net.Dialer, networks []netip.Prefix) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return nil, &permanentError{fmt.Errorf("callback port %q: %v", portStr, err)}
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			if !service.InNetworks(ip, networks) {
				return nil, &permanentError{fmt.Errorf("callback host %s: address %s is outside push_networks", host, ip)}
			}
		}
		var first error
		for _, ip := range ips {
			c, err := d.DialContext(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
		}
		if first == nil {
			first = fmt.Errorf("callback host %s: no address", host)
		}
		return nil, first
	}
}

// pushConns keeps a transport per client, for its callback URL and
// fingerprint as last looked up, in an LRU bounded to max clients. At most
// one push per client is in flight (see work), so a transport has at most
// one user.
type pushConns struct {
	max          int
	newTransport func(callback, fingerprint string) *http.Transport

	mu     sync.Mutex
	byID   map[int64]*list.Element // of *pushConn
	lru    *list.List              // most recently used first
	closed bool
}

type pushConn struct {
	id                    int64
	callback, fingerprint string
	hc                    *http.Client
	tr                    *http.Transport
	dropped               bool // out of the LRU; pushConns.mu
}

var errPusherStopped = errors.New("pusher stopped")

// get returns the transport for pushes to client id at callback,
// verifying fingerprint; done gives it back. A transport made for another
// callback or fingerprint is dropped, never reused; the one pushed to
// least recently is dropped when there are more than max. Dropping closes
// the idle connection at once, and one in use as soon as its push is done.
func (pc *pushConns) get(id int64, callback, fingerprint string) (*pushConn, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return nil, errPusherStopped
	}
	if e := pc.byID[id]; e != nil {
		c := e.Value.(*pushConn)
		if c.callback == callback && c.fingerprint == fingerprint {
			pc.lru.MoveToFront(e)
			return c, nil
		}
		pc.drop(e)
	}
	for pc.lru.Len() >= pc.max {
		pc.drop(pc.lru.Back())
	}
	tr := pc.newTransport(callback, fingerprint)
	c := &pushConn{id: id, callback: callback, fingerprint: fingerprint, tr: tr,
		hc: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	pc.byID[id] = pc.lru.PushFront(c)
	return c, nil
}

// done gives back a transport from get. After a failed push its
// connections are closed (the next attempt dials afresh), as are those of
// a transport dropped while in use.
func (pc *pushConns) done(c *pushConn, failed bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if failed && !c.dropped {
		if e := pc.byID[c.id]; e != nil && e.Value == c {
			pc.drop(e)
		}
	}
	if c.dropped {
		c.tr.CloseIdleConnections()
	}
}

// forget drops client id's transport.
func (pc *pushConns) forget(id int64) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if e := pc.byID[id]; e != nil {
		pc.drop(e)
	}
}

// drop removes an entry and closes its idle connection; pc.mu is held. A
// connection in use is closed by done.
func (pc *pushConns) drop(e *list.Element) {
	c := pc.lru.Remove(e).(*pushConn)
	delete(pc.byID, c.id)
	c.dropped = true
	c.tr.CloseIdleConnections()
}

// open lets gets make transports again after a close (a pusher started
// again).
func (pc *pushConns) open() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.closed = false
}

// close drops every transport; later gets fail.
func (pc *pushConns) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.closed = true
	for pc.lru.Len() > 0 {
		pc.drop(pc.lru.Front())
	}
}

// len counts the clients with a transport (tests).
func (pc *pushConns) len() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.lru.Len()
}
