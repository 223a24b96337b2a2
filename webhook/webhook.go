// Package webhook is what delivering an event to a webhook needs that has
// nothing to do with the database (docs/events.md, "Webhooks"): the rules
// a webhook's URL follows, the signature of a body, the POST itself (a
// timeout, no redirects followed, a bounded read of the answer, errors
// that never quote the URL) and the delays between attempts. The
// delivery service of the daemon (server/webhooks.go) keeps the queue.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The headers of a delivery (SPEC §14).
const (
	// HeaderEvent is the event's type ("run.failed"; "webhook.test").
	HeaderEvent = "X-Scire-Event"
	// HeaderDelivery is the event's id: the same for every attempt at
	// one event, so a receiver drops a repeat by it.
	HeaderDelivery = "X-Scire-Delivery"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// with the webhook's secret; absent when the webhook has none.
	HeaderSignature = "X-Scire-Signature"
)

// Limits of a webhook and of its deliveries.
const (
	// DefaultTimeout bounds one POST: connecting, TLS, sending and reading
	// the answer.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBody is the most of an answer read; the rest is not.
	MaxResponseBody = 64 << 10
	// MaxURLLength bounds a webhook's URL.
	MaxURLLength = 2048
	// MaxSecretLength bounds a webhook's secret.
	MaxSecretLength = 1024
	// GiveUpAfter is how long an event is retried after its first failed
	// attempt; the attempt that fails past it is the last.
	GiveUpAfter = 24 * time.Hour
)

// TestEvent is the type of the event webhook.test sends.
const TestEvent = "webhook.test"

// CheckURL checks a webhook's URL and returns it parsed: an absolute
// https:// URL, or http:// to a loopback address (127.0.0.0/8, ::1,
// localhost) unless allowHTTP; no user name or password in it (a secret
// belongs in the secret, which signs, or in the path), no fragment, at
// most MaxURLLength bytes, no blank or control character. The error
// names what is wrong and never repeats the URL.
func CheckURL(raw string, allowHTTP bool) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty")
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("%d bytes, at most %d", len(raw), MaxURLLength)
	}
	for _, r := range raw {
		if r <= ' ' || r == 0x7f {
			return nil, errors.New("blank or control character in it")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("not a URL: %v", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, errors.New("want an https:// URL (http:// for a loopback address)")
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("no host: want %s://HOST/PATH", u.Scheme)
	case u.User != nil:
		return nil, errors.New("a user name or password in the URL is refused: give a secret (it signs each body), or put a token in the path")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return nil, errors.New("a #fragment is never sent: drop it")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q: want 1 to 65535", p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("empty port")
	}
	if u.Hostname() == "" {
		return nil, errors.New("empty host")
	}
	if u.Scheme == "http" && !allowHTTP && !Loopback(u.Hostname()) {
		return nil, errors.New("http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost): use https://, " +
			"or allow http in the server's configuration (webhooks: {allow_http: true} in server.yaml)")
	}
	return u, nil
}

// Loopback reports whether host (a URL's host name, without a port) is a
// loopback address: localhost, 127.0.0.0/8 or ::1.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// Redact is a URL as logs and the audit trail show it: its scheme, host
// and port, then "/…" when it has more. Webhook URLs often carry a token
// in their path or query (a capability URL); the full URL is shown to
// those who may change webhooks, in webhook.list, and nowhere else.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(a URL)"
	}
	out := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		out += "/…"
	}
	return out
}

// Sign is the X-Scire-Signature of body with secret: "sha256=" and the hex
// HMAC-SHA256.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature (an X-Scire-Signature) is body's with
// secret, in constant time: what a receiver does.
func Verify(secret, body []byte, signature string) bool {
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Backoff is the delay before each new attempt at an event: Base, then
// twice as long each time, at most Max, with jitter.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff waits 1s, 2s, 4s … at most an hour: an event that keeps
// failing is tried about 35 times in its 24 hours.
var DefaultBackoff = Backoff{Base: time.Second, Max: time.Hour}

// Delay is the wait after the failed attempt number attempt (from 1):
// Base·2^(attempt-1), at most Max, of which a random part is taken off:
// jitter is in [0, 1), and the delay falls in (d/2, d]. Jitter spreads the
// retries of many webhooks that failed together (a receiver that was down
// and comes back) instead of having them all knock at once.
func (b Backoff) Delay(attempt int, jitter float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Max
	if attempt <= 62 {
		if f := float64(b.Base) * math.Pow(2, float64(attempt-1)); f < float64(b.Max) {
			d = time.Duration(f)
		}
	}
	jitter = min(max(jitter, 0), 1)
	return d - time.Duration(float64(d/2)*jitter)
}
