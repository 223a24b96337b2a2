package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/jobxml"
	"github.com/scirectl/scirectl/serverconfig"
	"github.com/scirectl/scirectl/xmlrpc"
)

// rawClient posts hand-made bodies: the hostile ones cannot be produced by
// a conforming encoder.
type rawClient struct {
	hc   *http.Client
	url  string // …/RPC2
	base string // https://host:port
	tok  string
}

func (h *harness) raw(t *testing.T) *rawClient {
	t.Helper()
	tok, err := readToken(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: h.pool(t)}
	t.Cleanup(tr.CloseIdleConnections)
	return &rawClient{hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, url: h.url, base: strings.TrimSuffix(h.url, "/RPC2"), tok: tok}
}

// post sends body with the given Content-Length (-1: chunked, length not
// declared) and returns the HTTP status and the reply body.
func (c *rawClient) post(t *testing.T, body io.Reader, size int64, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "text/xml")
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	return resp.StatusCode, string(b)
}

// healthy checks that the server still answers its probe and a normal call.
func (c *rawClient) healthy(t *testing.T, op *client.Client) {
	t.Helper()
	resp, err := c.hc.Get(c.base + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "ok" {
		t.Fatalf("healthz: HTTP %d %q", resp.StatusCode, b)
	}
	var jobs []any
	if err := op.Call(context.Background(), "job.list", &jobs); err != nil {
		t.Fatalf("a normal call after the hostile one: %v", err)
	}
}

var faultRE = regexp.MustCompile(`<name>faultCode</name><value><int>(-?\d+)</int></value></member><member><name>faultString</name><value><string>([^<]*)</string>`)

// faultIn finds the first fault struct in a reply: the fault of the call, or
// of a multicall entry.
func faultIn(reply string) (int, string, bool) {
	m := faultRE.FindStringSubmatch(reply)
	if m == nil {
		return 0, "", false
	}
	code, _ := strconv.Atoi(m[1])
	return code, html.UnescapeString(m[2]), true
}

func xcall(method string, params ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>` + method + `</methodName><params>`)
	for _, p := range params {
		b.WriteString("<param><value>" + p + "</value></param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

// patternReader yields head, then pattern repeated until n bytes in all have
// been produced, then tail: a body of any size without holding it in memory.
type patternReader struct {
	head, pattern, tail string
	n, off              int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	bodyEnd := r.n - int64(len(r.tail))
	n := 0
	for n < len(p) && r.off < r.n {
		var src string
		switch {
		case r.off < int64(len(r.head)):
			src = r.head[r.off:]
		case r.off < bodyEnd:
			src = r.pattern[(r.off-int64(len(r.head)))%int64(len(r.pattern)):]
			if rem := bodyEnd - r.off; int64(len(src)) > rem {
				src = src[:rem]
			}
		default:
			src = r.tail[r.off-bodyEnd:]
		}
		c := copy(p[n:], src)
		n += c
		r.off += int64(c)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// hugeBody is a well-formed call of n bytes padded with comments, so that
// only the body-size limit can refuse it.
func hugeBody(n int64) io.Reader {
	return &patternReader{
		head:    `<?xml version="1.0"?><methodCall><methodName>job.list</methodName><params>`,
		pattern: `<!-- padding padding padding -->`,
		tail:    `</params></methodCall>`,
		n:       n,
	}
}

func TestPatternReader(t *testing.T) {
	for _, n := range []int64{130, 131, 1000, 4099} {
		r := &patternReader{head: "<h>", pattern: "abcdefg", tail: "</h>", n: n}
		b, err := io.ReadAll(iotestHalf{r})
		if err != nil || int64(len(b)) != n || !strings.HasPrefix(string(b), "<h>abcdefgab") || !strings.HasSuffix(string(b), "</h>") {
			t.Fatalf("n=%d: %d bytes %q…, %v", n, len(b), b[:min(len(b), 20)], err)
		}
		if mid := string(b[3 : n-4]); strings.Trim(strings.ReplaceAll(mid, "abcdefg", ""), "abcdefg") != "" {
			t.Fatalf("n=%d: pattern broken: %q", n, mid)
		}
	}
}

// iotestHalf reads in odd small pieces to exercise the reader's seams.
type iotestHalf struct{ r io.Reader }

func (h iotestHalf) Read(p []byte) (int, error) { return h.r.Read(p[:min(len(p), 5)]) }

func billionLaughs() string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY lol0 "lol">`)
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, `<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	b.WriteString(`]>`)
	return b.String() + strings.TrimPrefix(xcall("job.get", `<string>&lol9;</string>`), `<?xml version="1.0"?>`)
}

// TestHostileRequests sends what an attacker or a broken client would, each
// over a raw HTTPS POST, and checks the documented answer: HTTP 200 with a
// fault, 413 for size and 400 for every other malformed or invalid input
// (docs/limits.md) — and that afterwards the server still answers its probe
// and a normal call, and that nothing was written.
func TestHostileRequests(t *testing.T) {
	h := newHarness(t)
	rc := h.raw(t)
	op := h.operator(t)
	const mb = 1 << 20
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "<int>1</int>" + strings.Repeat(close, n)
	}
	manyParams := make([]string, DefaultMaxValues+1)
	for i := range manyParams {
		manyParams[i] = "<i4>1</i4>"
	}
	cases := []struct {
		name   string
		body   func() (io.Reader, int64) // nil: use text
		text   string
		noAuth bool
		code   int
		want   string
		entry  bool // the fault is an entry of a system.multicall result
	}{
		{name: "billion laughs", text: billionLaughs(), code: 400, want: "<!DOCTYPE> is not allowed"},
		{name: "external entity", text: `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>` + xcall("job.get", "<string>&e;</string>")[21:], code: 400, want: "DOCTYPE"},
		{name: "undeclared entity", text: xcall("job.get", "<string>&e;</string>"), code: 400, want: "malformed XML"},
		{name: "100 MB body, length not declared", body: func() (io.Reader, int64) { return hugeBody(100 * mb), -1 }, code: 413, want: "larger than 16777216 bytes"},
		{name: "100 MB body, length declared", body: func() (io.Reader, int64) { return hugeBody(100 * mb), 100 * mb }, code: 413, want: "larger than 16777216 bytes"},
		{name: "100 MB body, unauthenticated", body: func() (io.Reader, int64) { return hugeBody(100 * mb), -1 }, noAuth: true, code: 413, want: "larger than"},
		{name: "10,000-deep arrays", text: xcall("job.list", deep("<array><data><value>", "</value></data></array>", 10000)), code: 400, want: "nested deeper than 32 levels"},
		{name: "10,000-deep structs", text: xcall("job.list", deep("<struct><member><name>a</name><value>", "</value></member></struct>", 10000)), code: 400, want: "nested deeper than 32 levels"},
		{name: "10,000 open elements", text: xcall("job.list") + strings.Repeat("<a>", 10000), code: 400, want: "after </methodCall>"},
		{name: "invalid UTF-8", text: xcall("job.get", "<string>\xff\xfe</string>"), code: 400, want: "invalid UTF-8"},
		{name: "invalid UTF-8 in a method name", text: xcall("job.\xc3"), code: 400, want: "invalid UTF-8"},
		{name: "NUL byte", text: xcall("job.get", "<string>1\x002</string>"), code: 400, want: "U+0000"},
		{name: "NUL character reference", text: xcall("job.submit", `<struct><member><name>script</name><value>a&#0;b</value></member><member><name>targets</name><value><array><data><value>x</value></data></array></value></member></struct>`), code: 400, want: "illegal character code U+0000"},
		{name: "UTF-16 declared", text: `<?xml version="1.0" encoding="UTF-16"?>` + xcall("job.list")[21:], code: 400, want: "UTF-16"},
		{name: "truncated", text: xcall("job.get", `<string>1</string>`)[:60], code: 400, want: "unexpected EOF"},
		{name: "truncated at a tag boundary", text: strings.TrimSuffix(xcall("job.get", `<string>1</string>`), "</methodCall>"), code: 400, want: "truncated"},
		{name: "string for a struct", text: xcall("job.list", "<string>all</string>"), code: 400, want: "param 1 (filter)"},
		{name: "struct for an id", text: xcall("job.get", "<struct></struct>"), code: 400, want: "param 1 (job_id)"},
		{name: "boolean for an id", text: xcall("job.get", "<boolean>1</boolean>"), code: 400, want: "param 1 (job_id)"},
		{name: "string for an int", text: xcall("job.submit", `<struct><member><name>script</name><value>true</value></member><member><name>targets</name><value><array><data><value>x</value></data></array></value></member><member><name>priority</name><value>high</value></member></struct>`), code: 400, want: "priority"},
		{name: "int that is not one", text: xcall("job.get", "<int>12abc</int>"), code: 400, want: `<int> value "12abc" is not an integer`},
		{name: "negative id string", text: xcall("job.get", "<string>-1</string>"), code: 400, want: "param 1 (job_id)"},
		{name: "negative id int", text: xcall("job.get", "<int>-1</int>"), code: 400, want: "id > 0"},
		{name: "zero id", text: xcall("job.get", "<string>0</string>"), code: 400, want: "id > 0"},
		{name: "huge id string", text: xcall("job.get", "<string>99999999999999999999</string>"), code: 400, want: "does not fit in 64 bits"},
		{name: "i8 overflow", text: xcall("job.get", "<i8>99999999999999999999</i8>"), code: 400, want: "does not fit in 64 bits"},
		{name: "largest id, absent", text: xcall("job.get", "<string>9223372036854775807</string>"), code: 404, want: "9223372036854775807"},
		{name: "too many params", text: xcall("job.list", manyParams...), code: 400, want: "more than 10000 values"},
		{name: "over-long string", text: xcall("job.submit", `<struct><member><name>script</name><value><string>`+strings.Repeat("x", DefaultMaxStringBytes+1)+`</string></value></member></struct>`), code: 400, want: "longer than 8388608 bytes"},
		{name: "over-long member name", text: xcall("job.list", `<struct><member><name>`+strings.Repeat("n", DefaultMaxStringBytes+1)+`</name><value>1</value></member></struct>`), code: 400, want: "longer than 8388608 bytes"},
		{name: "over-long method name", text: xcall(strings.Repeat("m", 1000)), code: 400, want: "longer than 256 bytes"},
		{name: "method name with markup", text: xcall("job.get&lt;script&gt;"), code: 400, want: "only letters, digits"},
		{name: "unknown method", text: xcall("job.explode"), code: 404, want: "job.explode"},
		{name: "multicall of multicalls", code: 400, want: "cannot be nested", entry: true,
			text: xcall("system.multicall", `<array><data><value><struct>`+
				`<member><name>methodName</name><value>system.multicall</value></member>`+
				`<member><name>params</name><value><array><data><value><array><data><value><struct>`+
				`<member><name>methodName</name><value>job.list</value></member>`+
				`</struct></value></data></array></value></data></array></value></member>`+
				`</struct></value></data></array>`)},
		{name: "hostile call inside a multicall", code: 400, want: "param 1 (job_id)", entry: true,
			text: xcall("system.multicall", `<array><data><value><struct>`+
				`<member><name>methodName</name><value>job.get</value></member>`+
				`<member><name>params</name><value><array><data><value>-1</value></data></array></value></member>`+
				`</struct></value></data></array>`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			size := int64(len(tc.text))
			if tc.body != nil {
				body, size = tc.body()
			} else {
				body = strings.NewReader(tc.text)
			}
			status, reply := rc.post(t, body, size, !tc.noAuth)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d %.300s; want 200 with a fault", status, reply)
			}
			if isFault := strings.Contains(reply, "<fault>"); isFault == tc.entry {
				t.Fatalf("reply %.500s: want the fault %s", reply, map[bool]string{true: "as a multicall entry", false: "as the reply"}[tc.entry])
			}
			code, msg, ok := faultIn(reply)
			if !ok || code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("reply %.500s\nwant fault %d mentioning %q", reply, tc.code, tc.want)
			}
			rc.healthy(t, op)
		})
	}
	jobs, err := h.srv.store.ListJobs(context.Background(), db.JobFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("hostile requests left %d jobs (%v)", len(jobs), err)
	}
}

// TestLimitsAreConfigurable: the decoder's limits and the header limit of
// Config reach the server, and each gives its documented answer.
func TestLimitsAreConfigurable(t *testing.T) {
	h := newHarnessConfig(t, func(c *Config) {
		c.MaxBodyBytes = 4096
		c.MaxDepth = 3
		c.MaxValues = 20
		c.MaxStringBytes = 64
		c.MaxHeaderBytes = 1024
	})
	rc := h.raw(t)
	op := h.operator(t)
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"body declared", xcall("job.list", "<string>"+strings.Repeat("x", 5000)+"</string>"), 413, "larger than 4096 bytes"},
		{"body", xcall("job.list", strings.Repeat("<!-- padding -->", 300)), 413, "larger than 4096 bytes"},
		{"depth", xcall("job.list", "<array><data><value><array><data><value><array><data><value>1</value></data></array></value></data></array></value></data></array>"), 400, "nested deeper than 3 levels"},
		{"values", xcall("job.list", strings.Split(strings.Repeat("1,", 21), ",")[:21]...), 400, "more than 20 values"},
		{"string", xcall("job.get", "<string>"+strings.Repeat("1", 65)+"</string>"), 400, "longer than 64 bytes"},
	} {
		size := int64(len(tc.body))
		if tc.name == "body" {
			size = -1 // not declared: the decoder's count must catch it
		}
		status, reply := rc.post(t, strings.NewReader(tc.body), size, true)
		code, msg, _ := faultIn(reply)
		if status != http.StatusOK || code != tc.code || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: HTTP %d %.300s; want fault %d mentioning %q", tc.name, status, reply, tc.code, tc.want)
		}
	}
	rc.healthy(t, op)

	// Headers beyond MaxHeaderBytes: HTTP 431. net/http allows 4 KiB of
	// slack, and on a kept-alive connection up to 4 KiB more that it buffered
	// while waiting for the request: 16 KiB is beyond 1 KiB in every case.
	req, _ := http.NewRequest(http.MethodPost, rc.url, strings.NewReader(xcall("job.list")))
	req.Header.Set("X-Padding", strings.Repeat("p", 16<<10))
	resp, err := rc.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: HTTP %d %s, want 431", resp.StatusCode, hb)
	}
	rc.healthy(t, op)
}

// TestTimeoutsAreConfigurable: the header, read, idle and write timeouts of
// Config reach the HTTP server: a slow or silent client is cut off and the
// server stays healthy.
func TestTimeoutsAreConfigurable(t *testing.T) {
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	h := newHarnessConfig(t, func(c *Config) {
		c.ReadHeaderTimeout = 200 * time.Millisecond
		c.ReadTimeout = 400 * time.Millisecond
		c.WriteTimeout = time.Second
		c.IdleTimeout = 300 * time.Millisecond
	}, Operation{Name: "test.slow", Class: gate.NonModifier, caller: byOperator, Help: "test", Signature: []string{"string"},
		handler: func(ctx context.Context, _ xmlrpc.Params) (any, error) {
			select { // well past the write timeout
			case <-slow:
			case <-time.After(2500 * time.Millisecond):
			}
			return "late", nil
		}})
	rc := h.raw(t)
	// Short idle timeouts race with connection reuse: every call here
	// opens its own connection.
	rc.hc.Transport.(*http.Transport).DisableKeepAlives = true
	addr := strings.TrimPrefix(rc.base, "https://")
	dial := func() (*tls.Conn, *bufio.Reader) {
		c, err := tls.Dial("tcp", addr, h.pool(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(30 * time.Second)) // a stuck test fails, never hangs
		return c, bufio.NewReader(c)
	}
	closed := func(what string, br *bufio.Reader) {
		t.Helper()
		if b, err := br.ReadByte(); err == nil {
			t.Errorf("%s: the server sent %q instead of closing the connection", what, b)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: the connection is still open after 30s", what)
		}
	}

	// Slowloris: headers never finished; closed after ReadHeaderTimeout.
	c, br := dial()
	fmt.Fprintf(c, "POST /RPC2 HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\n", addr)
	closed("unfinished headers", br)

	// A body that stops coming: ReadTimeout ends it with fault 400.
	c, br = dial()
	fmt.Fprintf(c, "POST /RPC2 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\n<?xml version=\"1.0\"?><methodCall>", addr, rc.tok)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if code, msg, _ := faultIn(string(b)); code != 400 || !strings.Contains(msg, "reading request body") {
		t.Errorf("stalled body: %s; want fault 400 about reading the body", b)
	}

	// An idle keep-alive connection is closed after IdleTimeout.
	c, br = dial()
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	if resp, err = http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz on a raw connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	closed("idle keep-alive connection", br)

	// A reply not ready within WriteTimeout is not written at all.
	var late string
	if err := h.operator(t).Call(context.Background(), "test.slow", &late); err == nil {
		t.Errorf("a reply past the write timeout arrived: %q", late)
	}
	rc.healthy(t, h.operator(t))
}

// TestMaxOutputKeptPerRun: output beyond Config.MaxOutput keeps its first
// and last halves with a marker line and is marked truncated, the report
// is still accepted.
func TestMaxOutputKeptPerRun(t *testing.T) {
	ctx := context.Background()
	h := newHarnessConfig(t, func(c *Config) { c.MaxOutput = 10 })
	op := h.operator(t)
	ag, fp := h.agentClient(t)
	register(t, ag, "web1")
	if err := op.Call(ctx, "client.accept", nil, []string{fp}); err != nil {
		t.Fatal(err)
	}
	var sub struct {
		ID string `xmlrpc:"id"`
	}
	if err := op.Call(ctx, "job.submit", &sub, map[string]any{"script": "yes | head", "targets": []string{"web1"}}); err != nil {
		t.Fatal(err)
	}
	var docs []string
	if err := ag.Call(ctx, "agent.getJobs", &docs, 1); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs: %d docs, %v", len(docs), err)
	}
	j, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.Call(ctx, "agent.ackJobs", nil, []string{itoa(j.Run)}); err != nil {
		t.Fatal(err)
	}
	zero := 0
	doc, err := jobxml.EncodeStatuses([]jobxml.Status{{Run: j.Run, State: jobxml.StateSucceeded, Exit: &zero,
		Started: time.Now().UTC(), Finished: time.Now().UTC(), Output: strings.Repeat("y\n", 50)}})
	if err != nil {
		t.Fatal(err)
	}
	var rep []struct {
		Accepted bool `xmlrpc:"accepted"`
	}
	if err := ag.Call(ctx, "agent.reportStatus", &rep, string(doc)); err != nil || len(rep) != 1 || !rep[0].Accepted {
		t.Fatalf("report: %+v, %v", rep, err)
	}
	var out []api.Output
	if err := op.Call(ctx, "job.output", &out, sub.ID); err != nil {
		t.Fatal(err)
	}
	want := "y\ny\ny" + "\n[... 90 bytes omitted ...]\n" + "\ny\ny\n"
	if len(out) != 1 || out[0].Output != want || !out[0].Truncated || out[0].OmittedBytes != 90 || out[0].Size != 100 {
		t.Fatalf("job.output = %+v; want the first and last 5 bytes with the marker, truncated", out)
	}
}

// TestMaxThreadsCapsConcurrency: no more than MaxThreads requests are served
// at once; the others wait for a slot, or get fault 423 when they asked not
// to wait or waited MaxThreadsWait; the probes are never held up.
func TestMaxThreadsCapsConcurrency(t *testing.T) {
	var cur, peak, entered atomic.Int32
	in := make(chan struct{}, 16)
	release := make(chan struct{})
	hold := Operation{Name: "test.hold", Class: gate.NonModifier, caller: byOperator, Help: "test", Signature: []string{"string"},
		handler: func(context.Context, xmlrpc.Params) (any, error) {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			entered.Add(1)
			in <- struct{}{}
			<-release
			cur.Add(-1)
			return "ok", nil
		}}
	h := newHarnessConfig(t, func(c *Config) { c.MaxThreads = 2; c.MaxThreadsWait = time.Minute }, hold)
	op := h.operator(t)
	rc := h.raw(t)
	ctx := context.Background()

	const calls = 5
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s string
			errs <- op.Call(ctx, "test.hold", &s)
		}()
	}
	<-in
	<-in // both slots are taken, three calls wait

	// While full: the probe answers, a no-wait call is refused at once.
	resp, err := rc.hc.Get(rc.base + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with every slot taken: %v", err)
	}
	resp.Body.Close()
	resp, err = rc.hc.Get(rc.base + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz with every slot taken: %v", err)
	}
	resp.Body.Close()
	tok, _ := readToken(h.paths)
	noWait, err := client.New(client.Options{Servers: []string{h.url}, RootCAs: h.pool(t).RootCAs, Token: tok, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	err = noWait.Call(ctx, "job.list", nil)
	var f *api.Fault
	if !errors.As(err, &f) || f.Code != 423 || !strings.Contains(f.Message, "max_threads") {
		t.Fatalf("no-wait call with every slot taken: %v; want fault 423 naming max_threads", err)
	}
	if n := entered.Load(); n != 2 {
		t.Fatalf("%d calls entered with 2 slots", n)
	}

	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a call that waited for its slot: %v", err)
		}
	}
	if p := peak.Load(); p > 2 || entered.Load() != calls {
		t.Fatalf("peak %d calls at once with max_threads 2, %d of %d entered", p, entered.Load(), calls)
	}
	rc.healthy(t, op)
	if !strings.Contains(h.log.String(), "every request slot is in use") {
		t.Errorf("the refusal was not logged:\n%s", h.log.String())
	}
}

// TestMaxThreadsWaitEnds: a request that cannot get a slot within
// MaxThreadsWait gets fault 423 rather than waiting forever.
func TestMaxThreadsWaitEnds(t *testing.T) {
	release := make(chan struct{})
	in := make(chan struct{}, 1)
	h := newHarnessConfig(t, func(c *Config) { c.MaxThreads = 1; c.MaxThreadsWait = 100 * time.Millisecond },
		Operation{Name: "test.hold", Class: gate.NonModifier, caller: byOperator, Help: "test", Signature: []string{"string"},
			handler: func(context.Context, xmlrpc.Params) (any, error) {
				in <- struct{}{}
				<-release
				return "ok", nil
			}})
	op := h.operator(t)
	done := make(chan error, 1)
	go func() { done <- op.Call(context.Background(), "test.hold", nil) }()
	<-in
	wantFault(t, op.Call(context.Background(), "job.list", nil), 423)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := op.Call(context.Background(), "job.list", nil); err != nil {
		t.Fatalf("after the slot came free: %v", err)
	}
}

func TestConfigFileLimits(t *testing.T) {
	dir := t.TempDir()
	write := func(text string) string {
		p := dir + "/server.yaml"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fc, err := serverconfig.LoadConfigFile(write("limits:\n  max_threads: 7\n  max_body: 1MiB\n  max_depth: 5\n  max_values: 50\n  max_string: 2KiB\n" +
		"  max_output: 4KiB\n  max_header: 8KiB\n  max_threads_wait: 3s\n  read_header_timeout: 1s\n  read_timeout: 2s\n" +
		"  write_timeout: 40s\n  idle_timeout: 5s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	c.MaxThreads = 99 // a value already set is overridden only by a key that is present
	ApplyFileLimits(fc.Limits, &c)
	c.DataDir = dir
	c.defaults()
	want := Config{MaxThreads: 7, MaxBodyBytes: 1 << 20, MaxDepth: 5, MaxValues: 50, MaxStringBytes: 2 << 10, MaxOutput: 4 << 10,
		MaxHeaderBytes: 8 << 10, MaxThreadsWait: 3 * time.Second, ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 40 * time.Second, IdleTimeout: 5 * time.Second}
	got := Config{MaxThreads: c.MaxThreads, MaxBodyBytes: c.MaxBodyBytes, MaxDepth: c.MaxDepth, MaxValues: c.MaxValues,
		MaxStringBytes: c.MaxStringBytes, MaxOutput: c.MaxOutput, MaxHeaderBytes: c.MaxHeaderBytes, MaxThreadsWait: c.MaxThreadsWait,
		ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("limits from the file:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"limits:\n  max_threads: -1\n", "limits:\n  max_body: lots\n", "limits:\n  max_bodies: 1M\n", "limits:\n  read_timeout: 5\n"} {
		if _, err := serverconfig.LoadConfigFile(write(bad)); err == nil || !strings.Contains(err.Error(), "server.yaml:") {
			t.Errorf("%q: err = %v; want an error naming the file and line", bad, err)
		}
	}
	// And no limit set: the documented defaults.
	var d Config
	d.DataDir = dir
	d.defaults()
	if d.MaxThreads != 32 || d.MaxBodyBytes != 16<<20 || d.MaxDepth != 32 || d.MaxValues != 10000 || d.MaxStringBytes != 8<<20 ||
		d.MaxOutput != 1<<20 || d.MaxHeaderBytes != 64<<10 || d.MaxThreadsWait != 10*time.Second || d.ReadHeaderTimeout != 10*time.Second ||
		d.ReadTimeout != time.Minute || d.WriteTimeout != time.Minute || d.IdleTimeout != 2*time.Minute {
		t.Fatalf("defaults changed: %+v; update docs/limits.md with them", d)
	}
}
