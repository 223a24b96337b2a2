package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The signature against a known HMAC-SHA256 vector, and Verify's answers.
func TestSign(t *testing.T) {
	body := []byte("The quick brown fox jumps over the lazy dog")
	const want = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
	if got := Sign([]byte("key"), body); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !Verify([]byte("key"), body, want) {
		t.Fatal("Verify refused the right signature")
	}
	for _, bad := range []string{"", want[7:], "sha1=" + want[7:], "sha256=zz", want[:len(want)-1] + "9"} {
		if Verify([]byte("key"), body, bad) {
			t.Errorf("Verify accepted %q", bad)
		}
	}
	if Verify([]byte("other"), body, want) || Verify([]byte("key"), append(body, '.'), want) {
		t.Fatal("Verify accepted another key or another body")
	}
}

func TestCheckURL(t *testing.T) {
	for _, ok := range []string{
		"https://hooks.example.com/scire", "https://example.com", "https://example.com:8443/a?b=c",
		"http://127.0.0.1:8080/hook", "http://127.9.9.9/x", "http://[::1]:9000/", "http://localhost/x", "http://LOCALHOST:1/",
		"HTTPS://Example.com/Path", "http://[::ffff:127.0.0.1]/",
	} {
		if _, err := CheckURL(ok, false); err != nil {
			t.Errorf("CheckURL(%q): %v", ok, err)
		}
	}
	for raw, why := range map[string]string{
		"":                                  "empty",
		"hooks.example.com/x":               "want an https:// URL",
		"ftp://example.com/":                "want an https:// URL",
		"https:///path":                     "no host",
		"https:example.com":                 "no host",
		"http://example.com/hook":           "only to a loopback address",
		"http://10.0.0.1/hook":              "only to a loopback address",
		"http://127.0.0.1.example.com/x":    "only to a loopback address",
		"http://localhost.example.com/":     "only to a loopback address",
		"https://user:pw@example.com/":      "user name or password",
		"https://token@example.com/":        "user name or password",
		"https://example.com/#frag":         "fragment",
		"https://example.com/x#":            "fragment",
		"https://example.com:0/":            "port",
		"https://example.com:99999/":        "port",
		"https://example.com:/":             "empty port",
		"https://exa mple.com/":             "blank or control",
		"https://example.com/\x00":          "blank or control",
		"https://example.com/" + long(3000): "at most 2048",
	} {
		_, err := CheckURL(raw, false)
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("CheckURL(%q) = %v, want an error with %q", raw, err, why)
		} else if len(raw) > 12 && strings.Contains(err.Error(), raw) {
			t.Errorf("CheckURL(%q): the error quotes the URL: %v", raw, err)
		}
	}
	if _, err := CheckURL("http://example.com/hook", true); err != nil {
		t.Fatalf("with allow_http: %v", err)
	}
	if _, err := CheckURL("https://u:p@example.com/", true); err == nil {
		t.Fatal("allow_http let credentials through")
	}
}

func long(n int) string { return strings.Repeat("a", n) }

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/services/T0/B0/XXXX": "https://hooks.example.com/…",
		"https://example.com:8443":                      "https://example.com:8443",
		"https://example.com/":                          "https://example.com",
		"http://127.0.0.1:9/?token=abc":                 "http://127.0.0.1:9/…",
		"::not a url":                                   "(a URL)",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Hour}
	for attempt, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		12: 2048 * time.Second, 13: time.Hour, 60: time.Hour, 1000: time.Hour} {
		if got := b.Delay(attempt, 0); got != want {
			t.Errorf("Delay(%d, 0) = %v, want %v", attempt, got, want)
		}
		// Full jitter takes at most half off.
		if got := b.Delay(attempt, 0.999999); got <= want/2 || got > want {
			t.Errorf("Delay(%d, ~1) = %v, want in (%v, %v]", attempt, got, want/2, want)
		}
	}
	if got := b.Delay(3, 0.5); got != 3*time.Second {
		t.Errorf("Delay(3, 0.5) = %v, want 3s", got)
	}
	if got := b.Delay(3, 7); got != 2*time.Second {
		t.Errorf("a jitter past 1 is 1: %v", got)
	}
	// About 35 attempts fit in a day.
	var total time.Duration
	n := 0
	for n = 1; total < GiveUpAfter; n++ {
		total += DefaultBackoff.Delay(n, 0)
	}
	if n < 30 || n > 40 {
		t.Errorf("%d attempts in 24 hours", n)
	}
}

// receiver records what it was sent and answers with status.
type receiver struct {
	mu     sync.Mutex
	got    []*http.Request
	bodies []string
	status int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, r)
	rc.bodies = append(rc.bodies, string(b))
	status := rc.status
	rc.mu.Unlock()
	w.WriteHeader(status)
	fmt.Fprint(w, "thanks\n\x01<b>")
}

func TestSendHeadersAndSignature(t *testing.T) {
	rc := &receiver{status: 204}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := &Sender{UserAgent: "scirectl-server/test"}
	body := []byte(`{"id":"7","type":"run.failed"}`)
	res := s.Send(context.Background(), Delivery{URL: srv.URL + "/hook?x=1", Event: "run.failed", ID: "7", Body: body, Secret: []byte("s3cret")})
	if !res.OK() || res.Status != 204 || res.Duration <= 0 {
		t.Fatalf("result %+v", res)
	}
	r := rc.got[0]
	if r.Method != "POST" || r.URL.Path != "/hook" || r.URL.RawQuery != "x=1" || rc.bodies[0] != string(body) {
		t.Fatalf("request %s %s body %q", r.Method, r.URL, rc.bodies[0])
	}
	for h, want := range map[string]string{"Content-Type": "application/json", HeaderEvent: "run.failed", HeaderDelivery: "7",
		"User-Agent": "scirectl-server/test"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if !Verify([]byte("s3cret"), []byte(rc.bodies[0]), r.Header.Get(HeaderSignature)) {
		t.Fatalf("the receiver cannot verify %q", r.Header.Get(HeaderSignature))
	}
	// No secret, no signature.
	s.Send(context.Background(), Delivery{URL: srv.URL, Event: "job.finished", ID: "8", Body: body})
	if _, ok := rc.got[1].Header[HeaderSignature]; ok {
		t.Fatal("a signature without a secret")
	}
}

func TestSendFailures(t *testing.T) {
	rc := &receiver{status: 500}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := &Sender{}
	res := s.Send(context.Background(), Delivery{URL: srv.URL + "/secret-path-token", Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || res.Status != 500 || res.Err == nil || res.Err.Error() != "HTTP 500 Internal Server Error: thanks <b>" {
		t.Fatalf("500: %+v", res)
	}
	// Nothing listens: the error names the dial, not the URL.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String() + "/secret-path-token"
	l.Close()
	res = s.Send(context.Background(), Delivery{URL: dead, Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || res.Status != 0 || res.Err == nil || strings.Contains(res.Err.Error(), "secret-path-token") ||
		!strings.Contains(res.Err.Error(), "connect") {
		t.Fatalf("refused connection: %+v", res)
	}
	// A URL the rules refuse is not sent to.
	res = (&Sender{}).Send(context.Background(), Delivery{URL: "http://example.com/x", Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || !strings.Contains(res.Err.Error(), "url: http:// is allowed only") {
		t.Fatalf("http to another host: %+v", res)
	}
}

// A redirect is a failure, and is not followed.
func TestSendNoRedirect(t *testing.T) {
	var mu sync.Mutex
	hits := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/old", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/new?token=abc", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/new", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	res := (&Sender{}).Send(context.Background(), Delivery{URL: srv.URL + "/old", Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || res.Status != 307 || !strings.Contains(res.Err.Error(), "redirects are not followed") ||
		strings.Contains(res.Err.Error(), "token=abc") {
		t.Fatalf("redirect: %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Fatal("the redirect was followed")
	}
}

// A receiver that does not answer in time is a failure after Timeout.
func TestSendTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	begin := time.Now()
	res := (&Sender{Timeout: 300 * time.Millisecond}).Send(context.Background(), Delivery{URL: srv.URL, Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || res.Err == nil || res.Err.Error() != "timed out after 300ms" {
		t.Fatalf("slow receiver: %+v", res)
	}
	if d := time.Since(begin); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("the timeout of 300ms took %v", d)
	}
}

// An endless answer is read up to the limit, not to its end: the
// delivery is the status's, and returns at once.
func TestSendBodyLimit(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		chunk := []byte(strings.Repeat("x", 4096))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	defer close(stop)
	begin := time.Now()
	res := (&Sender{Timeout: 5 * time.Second, MaxBody: 8 << 10}).Send(context.Background(), Delivery{URL: srv.URL, Event: "x", ID: "1", Body: []byte("{}")})
	if !res.OK() {
		t.Fatalf("endless 200: %+v", res)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("an endless answer kept the sender %v", d)
	}
}

// A cancelled context ends the POST.
func TestSendCancelled(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res := (&Sender{}).Send(ctx, Delivery{URL: srv.URL, Event: "x", ID: "1", Body: []byte("{}")})
	if res.OK() || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("cancelled: %+v", res)
	}
}
