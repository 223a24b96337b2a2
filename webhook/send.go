package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Sender POSTs deliveries. Its zero value is ready: DefaultTimeout,
// MaxResponseBody, and the checks of CheckURL with http:// to loopback
// only. It is safe for concurrent use, and keeps connections alive
// between deliveries to the same receiver.
type Sender struct {
	// Timeout bounds one POST, from dialling to the end of the answer.
	Timeout time.Duration
	// MaxBody is the most of an answer read (the rest is dropped with
	// the connection).
	MaxBody int64
	// AllowHTTP lets http:// URLs to other than loopback addresses
	// through (server.yaml webhooks: {allow_http: true}).
	AllowHTTP bool
	// UserAgent is sent as the User-Agent header.
	UserAgent string
	// Transport, when set, replaces the sender's own (tests).
	Transport http.RoundTripper

	once   sync.Once
	client *http.Client
}

// Delivery is one POST: the event's type and id (the headers), its JSON
// body, and the webhook's URL and secret (nil: no signature).
type Delivery struct {
	URL    string
	Event  string
	ID     string
	Body   []byte
	Secret []byte
}

// Result is what came of a POST: the answer's status code (0 when there
// was none), how long it took, and why it failed (nil on a 2xx).
type Result struct {
	Status   int
	Duration time.Duration
	Err      error
}

// OK reports a delivery the receiver took: a 2xx answer.
func (r Result) OK() bool { return r.Err == nil && r.Status >= 200 && r.Status < 300 }

func (s *Sender) init() {
	s.once.Do(func() {
		rt := s.Transport
		if rt == nil {
			rt = &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: s.timeout(), KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   s.timeout(),
				ResponseHeaderTimeout: s.timeout(),
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          64,
				MaxIdleConnsPerHost:   2,
				IdleConnTimeout:       90 * time.Second,
			}
		}
		s.client = &http.Client{
			Transport: rt,
			// A redirect is not followed: the answer is the 3xx, a
			// failure. A webhook's URL is what was configured, not
			// where a receiver would send the body next.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
}

func (s *Sender) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Sender) maxBody() int64 {
	if s.MaxBody > 0 {
		return s.MaxBody
	}
	return MaxResponseBody
}

// Send POSTs d's body to its URL with the delivery headers, and says how
// it went. The URL is checked again (the configuration may have changed
// since the webhook was added). Errors never hold the URL, which may
// carry a token: they say what failed ("dial tcp 127.0.0.1:9: connect:
// connection refused", "HTTP 500 Internal Server Error: …", "timed out
// after 10s").
func (s *Sender) Send(ctx context.Context, d Delivery) Result {
	s.init()
	begin := time.Now()
	res := s.send(ctx, d)
	res.Duration = time.Since(begin)
	return res
}

func (s *Sender) send(ctx context.Context, d Delivery) Result {
	u, err := CheckURL(d.URL, s.AllowHTTP)
	if err != nil {
		return Result{Err: fmt.Errorf("url: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(d.Body))
	if err != nil {
		return Result{Err: errors.New("cannot make the request")}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, d.ID)
	if d.Secret != nil {
		req.Header.Set(HeaderSignature, Sign(d.Secret, d.Body))
	}
	ua := s.UserAgent
	if ua == "" {
		ua = "scirectl-webhook"
	}
	req.Header.Set("User-Agent", ua)
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: s.cause(ctx, err)}
	}
	defer resp.Body.Close()
	// The answer is read, up to the limit, so that the connection can
	// serve the next delivery; a longer one is dropped with it.
	head := make([]byte, 200)
	n, _ := io.ReadFull(resp.Body, head)
	head = head[:n]
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.maxBody()-int64(n)))
	res := Result{Status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		// The receiver has the event, whatever became of the rest of its
		// answer.
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		msg := fmt.Sprintf("HTTP %s: redirects are not followed", resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			msg += " (to " + Redact(loc) + "): give the webhook its final URL"
		}
		res.Err = errors.New(msg)
	default:
		msg := "HTTP " + resp.Status
		if text := printable(head); text != "" {
			msg += ": " + text
		}
		res.Err = errors.New(msg)
	}
	return res
}

// cause is a POST's error without the URL (*url.Error quotes it).
func (s *Sender) cause(ctx context.Context, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %v", s.timeout())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err
}

// printable is the start of an answer's body for an error message: one
// line of printable text, at most 200 bytes.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case r == unicode.ReplacementChar || !unicode.IsPrint(r):
			return -1
		}
		return r
	}, string(b))
	return strings.Join(strings.Fields(s), " ")
}
