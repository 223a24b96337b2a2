package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/webhook"
)

// hookCall is one POST a hookReceiver took.
type hookCall struct {
	Path     string
	Event    string // X-Scire-Event
	Delivery string // X-Scire-Delivery
	Signed   bool   // a signature was sent
	Verified bool   // and it is the body's with the receiver's secret
	Body     api.Event
	Raw      string
}

// hookReceiver is a webhook receiver on 127.0.0.1: it records each POST,
// verifies its signature with secret, and answers with status(call),
// default 204. While hold is set, each POST waits for it to close.
type hookReceiver struct {
	*httptest.Server
	secret []byte

	mu      sync.Mutex
	calls   []hookCall
	status  func(c hookCall, seen int) int // seen: POSTs of this delivery so far, this one included
	hold    chan struct{}
	entered chan string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{secret: []byte(secret), entered: make(chan string, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	c := hookCall{Path: r.URL.Path, Event: r.Header.Get(webhook.HeaderEvent), Delivery: r.Header.Get(webhook.HeaderDelivery), Raw: string(raw)}
	sig := r.Header.Get(webhook.HeaderSignature)
	c.Signed = sig != ""
	c.Verified = c.Signed && webhook.Verify(rc.secret, raw, sig)
	_ = json.Unmarshal(raw, &c.Body)
	rc.mu.Lock()
	rc.calls = append(rc.calls, c)
	seen := 0
	for _, o := range rc.calls {
		if o.Delivery == c.Delivery && o.Path == c.Path {
			seen++
		}
	}
	status, hold := rc.status, rc.hold
	rc.mu.Unlock()
	rc.entered <- c.Delivery
	if hold != nil {
		<-hold
	}
	code := 204
	if status != nil {
		code = status(c, seen)
	}
	w.WriteHeader(code)
}

// got lists the POSTs to path, in the order they came.
func (rc *hookReceiver) got(path string) []hookCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hookCall
	for _, c := range rc.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// deliveries is the X-Scire-Delivery of each POST to path, in order.
func (rc *hookReceiver) deliveries(path string) []string {
	var out []string
	for _, c := range rc.got(path) {
		out = append(out, c.Delivery)
	}
	return out
}

// fakeClock is a deliverer's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var hookT0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// hookStore is a new SQLite store with n active clients: 2n events.
func hookStore(t *testing.T, n int) db.Store {
	t.Helper()
	ctx := context.Background()
	st, err := db.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "scire.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	addClients(t, st, 0, n)
	return st
}

// addClients registers and accepts clients from..to-1 (two events each).
func addClients(t *testing.T, st db.Store, from, to int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		c, err := st.RegisterClient(ctx, db.ClientRegistration{Fingerprint: fmt.Sprint("fp", i), Name: fmt.Sprint("host", i), At: hookT0})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetClientStatus(ctx, c.ID, db.ClientActive); err != nil {
			t.Fatal(err)
		}
	}
}

// testDeliverer is a deliverer over st on clock, with no jitter, retries
// after 1s, 2s, 4s, 4s …, given up 10s after the first failure.
func testDeliverer(st db.Store, clock *fakeClock) *webhookDeliverer {
	d := newDeliverer(st, &webhook.Sender{Timeout: 5 * time.Second, UserAgent: "scirectl-server/test"}, discardLog())
	d.now = clock.now
	d.jitter = func() float64 { return 0 }
	d.backoff = webhook.Backoff{Base: time.Second, Max: 4 * time.Second}
	d.giveUp = 10 * time.Second
	d.serverID = func() int64 { return 7 }
	return d
}

func eventIDs(t *testing.T, st db.Store, types ...string) []string {
	t.Helper()
	evs, err := st.Events(context.Background(), db.EventFilter{Types: types, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, strconv.FormatInt(e.ID, 10))
	}
	return out
}

func mustHook(t *testing.T, st db.Store, url, secret string, globs ...string) db.Webhook {
	t.Helper()
	nw := db.NewWebhook{URL: url, Events: globs, CreatedBy: "admin", CreatedAt: hookT0}
	if secret != "" {
		nw.Secret = []byte(secret)
	}
	w, err := st.CreateWebhook(context.Background(), nw)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func runOnce(t *testing.T, d *webhookDeliverer) int {
	t.Helper()
	n, err := d.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Each webhook gets the events its globs match, in event order, each
// with its type, its id and, with a secret, a signature the receiver
// verifies; the body is the event's JSON as events.list shows it. Two
// webhooks are delivered side by side; their cursors end at the newest
// event and their leases are given back.
func TestWebhookDeliveryOrderAndSignature(t *testing.T) {
	ctx := context.Background()
	st := hookStore(t, 5)
	rc := newHookReceiver(t, "top secret")
	all := mustHook(t, st, rc.URL+"/all?token=x", "top secret")
	accepted := mustHook(t, st, rc.URL+"/accepted", "", "client.acc*")
	clock := &fakeClock{t: hookT0}
	d := testDeliverer(st, clock)
	d.batch = 3 // pages of 3 events

	if n := runOnce(t, d); n != 15 {
		t.Fatalf("%d POSTs, want 10 + 5", n)
	}
	if got, want := rc.deliveries("/all"), eventIDs(t, st); !slices.Equal(got, want) {
		t.Fatalf("/all got %v, want every event in order %v", got, want)
	}
	if got, want := rc.deliveries("/accepted"), eventIDs(t, st, "client.accepted"); !slices.Equal(got, want) {
		t.Fatalf("/accepted got %v, want %v", got, want)
	}
	evs, _ := st.Events(ctx, db.EventFilter{Limit: 1000})
	for i, c := range rc.got("/all") {
		want, _ := json.Marshal(service.EventObject(evs[i]))
		if !c.Verified || c.Event != evs[i].Type || c.Raw != string(want) || c.Body.Client == "" {
			t.Fatalf("POST %d: %+v; want signed, type %s, body %s", i, c, evs[i].Type, want)
		}
	}
	for _, c := range rc.got("/accepted") {
		if c.Signed || c.Event != "client.accepted" {
			t.Fatalf("unsigned webhook's POST %+v", c)
		}
	}
	last := evs[len(evs)-1].ID
	for _, w := range []db.Webhook{all, accepted} {
		g, _ := st.Webhook(ctx, w.ID)
		if g.Cursor != last || g.LeaseOwner != "" || g.Attempts != 0 || g.Last == nil || g.Last.Outcome != db.DeliveryDelivered ||
			g.Last.Status != 204 || g.Last.ServerID != 7 {
			t.Fatalf("webhook %d after delivery %+v (last %+v)", w.ID, g, g.Last)
		}
	}
	if n := runOnce(t, d); n != 0 {
		t.Fatalf("a second pass made %d POSTs", n)
	}
	// New events: only those.
	addClients(t, st, 5, 6)
	if n := runOnce(t, d); n != 3 {
		t.Fatalf("%d POSTs of the new events, want 2 + 1", n)
	}
}

// A failed delivery waits, longer each time, and holds back the events
// after it; once the receiver takes it, the rest follow in order. An
// event that fails past the limit after its first failure is recorded as
// failed and passed over, and the next events go on.
func TestWebhookRetryAndGiveUp(t *testing.T) {
	ctx := context.Background()
	st := hookStore(t, 3) // events e1..e6
	ids := eventIDs(t, st)
	rc := newHookReceiver(t, "")
	rc.status = func(c hookCall, seen int) int {
		switch {
		case c.Delivery == ids[1] && seen < 3:
			return 500 // e2: twice
		case c.Delivery == ids[3]:
			return 503 // e4: always
		}
		return 200
	}
	w := mustHook(t, st, rc.URL+"/h", "")
	clock := &fakeClock{t: hookT0}
	d := testDeliverer(st, clock)
	at := func(s float64) {
		t.Helper()
		clock.set(hookT0.Add(time.Duration(s * float64(time.Second))))
		runOnce(t, d)
	}
	hook := func() db.Webhook {
		g, err := st.Webhook(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	at(0) // e1 delivered, e2 fails: retry at 1s
	if got := rc.deliveries("/h"); !slices.Equal(got, ids[:2]) {
		t.Fatalf("first pass: %v", got)
	}
	if g := hook(); g.Attempts != 1 || !g.FirstFailure.Equal(hookT0) || !g.NextAttempt.Equal(hookT0.Add(time.Second)) || g.LeaseOwner != "" {
		t.Fatalf("after a 500: %+v", g)
	}
	at(0.5) // not due
	if n := len(rc.got("/h")); n != 2 {
		t.Fatalf("a retry before its time: %d POSTs", n)
	}
	at(1) // e2 fails again: retry at 1+2
	if g := hook(); g.Attempts != 2 || !g.NextAttempt.Equal(hookT0.Add(3*time.Second)) {
		t.Fatalf("after a second 500: %+v", g)
	}
	at(3) // e2 delivered, e3 delivered, e4 fails (first failure at 3s): retry at 4s
	want := []string{ids[0], ids[1], ids[1], ids[1], ids[2], ids[3]}
	if got := rc.deliveries("/h"); !slices.Equal(got, want) {
		t.Fatalf("after the retries: %v, want %v", got, want)
	}
	at(4)  // e4 fails: retry at 4+2 = 6
	at(6)  // e4 fails: retry at 6+4 = 10
	at(10) // e4 fails: 10+4 = 14 is past 3+10 = 13: the last try at 13
	if g := hook(); g.Attempts != 4 || !g.FirstFailure.Equal(hookT0.Add(3*time.Second)) || !g.NextAttempt.Equal(hookT0.Add(13*time.Second)) {
		t.Fatalf("before the last try: %+v", g)
	}
	at(13) // e4 fails for good, given up; e5 and e6 delivered
	want = append(want, ids[3], ids[3], ids[3], ids[3], ids[4], ids[5])
	if got := rc.deliveries("/h"); !slices.Equal(got, want) {
		t.Fatalf("after giving up: %v, want %v", got, want)
	}
	g := hook()
	if g.Cursor != st2int(ids[5]) || g.Attempts != 0 || !g.FirstFailure.IsZero() || g.LeaseOwner != "" {
		t.Fatalf("at the end: %+v", g)
	}
	hist, err := st.WebhookDeliveries(ctx, w.ID, db.DeliveryFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		lines = append(lines, fmt.Sprintf("%d:%d:%s:%d", h.EventID, h.Attempt, h.Outcome, h.Status))
	}
	e := func(i int) int64 { return st2int(ids[i]) }
	wantHist := []string{
		fmt.Sprintf("%d:1:delivered:200", e(0)),
		fmt.Sprintf("%d:1:retrying:500", e(1)), fmt.Sprintf("%d:2:retrying:500", e(1)), fmt.Sprintf("%d:3:delivered:200", e(1)),
		fmt.Sprintf("%d:1:delivered:200", e(2)),
		fmt.Sprintf("%d:1:retrying:503", e(3)), fmt.Sprintf("%d:2:retrying:503", e(3)), fmt.Sprintf("%d:3:retrying:503", e(3)),
		fmt.Sprintf("%d:4:retrying:503", e(3)), fmt.Sprintf("%d:5:failed:503", e(3)),
		fmt.Sprintf("%d:1:delivered:200", e(4)), fmt.Sprintf("%d:1:delivered:200", e(5)),
	}
	if !slices.Equal(lines, wantHist) {
		t.Fatalf("history\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantHist, "\n"))
	}
	if f := hist[2]; f.Error != "HTTP 503 Service Unavailable" || f.Duration <= 0 {
		t.Fatalf("the failed attempt %+v", f)
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *stubStore) ListWebhooks(context.Context) ([]db.Webhook, error) {
	s.call("ListWebhooks")
	return nil, nil
}

func st2int(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// One delivery at a time per webhook: while one deliverer waits for the
// receiver, another (another daemon) takes nothing of that webhook; a
// holder that died is taken over once its lease runs out, from the
// webhook's cursor.
func TestWebhookOneInFlightAndTakeover(t *testing.T) {
	ctx := context.Background()
	st := hookStore(t, 2)
	ids := eventIDs(t, st)
	rc := newHookReceiver(t, "")
	rc.hold = make(chan struct{})
	w := mustHook(t, st, rc.URL+"/h", "")
	clock := &fakeClock{t: hookT0}
	a, b := testDeliverer(st, clock), testDeliverer(st, clock)
	done := make(chan int)
	go func() { done <- runOnce(t, a) }()
	if got := <-rc.entered; got != ids[0] {
		t.Fatalf("first POST of %s", got)
	}
	if n := runOnce(t, b); n != 0 {
		t.Fatalf("a second deliverer made %d POSTs while the first held the webhook", n)
	}
	rc.mu.Lock()
	close(rc.hold)
	rc.hold = nil
	rc.mu.Unlock()
	if n := <-done; n != 4 {
		t.Fatalf("the holder made %d POSTs, want 4", n)
	}
	if got := rc.deliveries("/h"); !slices.Equal(got, ids) {
		t.Fatalf("got %v, want %v", got, ids)
	}

	// A holder that dies: its lease stays until it runs out.
	addClients(t, st, 2, 3)
	last, _ := st.LastEventID(ctx)
	if ws, err := st.ClaimWebhooks(ctx, db.WebhookClaim{Owner: "dead", At: hookT0, Lease: 30 * time.Second, Max: 1, Below: last}); err != nil || len(ws) != 1 {
		t.Fatalf("the dead holder's claim: %v, %v", ws, err)
	}
	clock.set(hookT0.Add(29 * time.Second))
	if n := runOnce(t, b); n != 0 {
		t.Fatalf("%d POSTs under the dead holder's lease", n)
	}
	clock.set(hookT0.Add(31 * time.Second))
	if n := runOnce(t, b); n != 2 {
		t.Fatalf("the takeover made %d POSTs, want 2", n)
	}
	all := eventIDs(t, st)
	if got := rc.deliveries("/h"); !slices.Equal(got, all) {
		t.Fatalf("got %v, want %v", got, all)
	}
	if g, _ := st.Webhook(ctx, w.ID); g.Cursor != last || g.LeaseOwner != "" {
		t.Fatalf("after the takeover %+v", g)
	}
}

// A webhook removed while its event is in flight: the delivery ends
// there, and nothing is recorded for it.
func TestWebhookRemovedInFlight(t *testing.T) {
	ctx := context.Background()
	st := hookStore(t, 1)
	rc := newHookReceiver(t, "")
	rc.hold = make(chan struct{})
	w := mustHook(t, st, rc.URL+"/h", "")
	d := testDeliverer(st, &fakeClock{t: hookT0})
	done := make(chan int)
	go func() { done <- runOnce(t, d) }()
	<-rc.entered
	if _, err := st.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	close(rc.hold)
	if n := <-done; n != 1 {
		t.Fatalf("%d POSTs after the removal, want the one in flight", n)
	}
	if _, err := st.Webhook(ctx, w.ID); err == nil {
		t.Fatal("the delivery brought the webhook back")
	}
}

// Stopped while a POST waits: Stop returns once the POST is given up, and
// the lease is given back, so that another daemon goes on at once.
func TestWebhookDelivererStopsMidPost(t *testing.T) {
	ctx := context.Background()
	st := hookStore(t, 1)
	rc := newHookReceiver(t, "")
	rc.hold = make(chan struct{})
	defer close(rc.hold)
	w := mustHook(t, st, rc.URL+"/h", "")
	d := testDeliverer(st, &fakeClock{t: hookT0})
	d.now = func() time.Time { return time.Now().UTC() }
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rc.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no POST")
	}
	within(t, "Stop mid-POST", 5*time.Second, d.Stop)
	g, _ := st.Webhook(ctx, w.ID)
	if g.LeaseOwner != "" || g.Cursor != w.Cursor || g.Last != nil {
		t.Fatalf("after a stop mid-POST %+v", g)
	}
}

func TestWebhookDelivererLifecycle(t *testing.T) {
	st := newStubStore()
	d := newDeliverer(st, &webhook.Sender{}, discardLog())
	checkLifecycle(t, d, st, "ListWebhooks", nil)
}

// The webhook operations over TLS, with the daemon's own deliverer: add
// (its checks), list (never the secret), test (signed, outside the queue),
// the events delivered as they come, deliveries, remove; webhook.write
// needed for each; the secret in neither the audit trail nor the log, the
// URL's path shown in neither.
func TestWebhookOperations(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	const secret = "Hook-Secret-9b1e"
	rc := newHookReceiver(t, secret)
	url := rc.URL + "/path-token-5c2d"

	var w api.Webhook
	mustCall(t, op, api.MethodWebhookAdd, &w, api.WebhookAddRequest{URL: url, Events: []string{"client.*", "job.submitted"}, Secret: secret})
	if w.ID == "" || w.URL != url || !w.Signed || !slices.Equal(w.Events, []string{"client.*", "job.submitted"}) || w.CreatedBy != "admin" ||
		w.Attempts != 0 || w.Last != nil {
		t.Fatalf("added %+v", w)
	}
	var list []api.Webhook
	mustCall(t, op, api.MethodWebhookList, &list)
	if len(list) != 1 || list[0].ID != w.ID {
		t.Fatalf("list %+v", list)
	}
	var raw []map[string]any
	mustCall(t, op, api.MethodWebhookList, &raw)
	for k, v := range raw[0] {
		if strings.Contains(fmt.Sprint(v), secret) || k == "secret" {
			t.Fatalf("webhook.list shows the secret: %v", raw[0])
		}
	}

	var tr api.WebhookTestResult
	mustCall(t, op, api.MethodWebhookTest, &tr, w.ID)
	if !tr.Delivered || tr.Status != 204 || tr.WebhookID != w.ID || !strings.HasPrefix(tr.Delivery, "test-") || tr.Error != "" {
		t.Fatalf("test %+v", tr)
	}
	if c := rc.got("/path-token-5c2d"); len(c) != 1 || !c[0].Verified || c[0].Event != "webhook.test" || c[0].Body.ID != "0" ||
		c[0].Delivery != tr.Delivery {
		t.Fatalf("the test POST %+v", c)
	}

	// Events as they come: a client registers and is accepted.
	h.activeClient(t, op, "web1")
	eventually(t, 10*time.Second, "the client's events delivered", func() bool { return len(rc.got("/path-token-5c2d")) >= 3 })
	c := rc.got("/path-token-5c2d")[1:]
	if len(c) != 2 || c[0].Event != "client.registered" || c[1].Event != "client.accepted" || !c[0].Verified || c[1].Body.Client != "web1" {
		t.Fatalf("deliveries %+v", c)
	}
	// The delivery is recorded once the receiver has answered.
	var ds []api.WebhookDelivery
	eventually(t, 10*time.Second, "both deliveries recorded", func() bool {
		mustCall(t, op, api.MethodWebhookDeliveries, &ds, w.ID, api.WebhookDeliveriesRequest{Limit: 10})
		return len(ds) == 2
	})
	if len(ds) != 2 || ds[0].EventType != "client.accepted" || ds[0].Outcome != "delivered" || ds[0].Status != 204 ||
		ds[0].EventID != c[1].Delivery || ds[0].ServerID == "" || ds[0].WebhookID != w.ID {
		t.Fatalf("webhook.deliveries %+v", ds)
	}
	mustCall(t, op, api.MethodWebhookDeliveries, &ds, w.ID, api.WebhookDeliveriesRequest{Limit: 1, Before: ds[0].ID})
	if len(ds) != 1 || ds[0].EventType != "client.registered" {
		t.Fatalf("page %+v", ds)
	}

	// Refusals.
	for _, tc := range []struct {
		args []any
		code int
		want string
	}{
		{[]any{api.WebhookAddRequest{URL: "http://hooks.example.com/x", Secret: secret}}, 400, "url: http:// is allowed only to a loopback"},
		{[]any{api.WebhookAddRequest{URL: "https://hooks.example.com/x", Events: []string{"RUN"}}}, 400, `events: "RUN"`},
		{[]any{map[string]any{"url": url, "secrets": "x"}}, 400, "secrets"},
		{[]any{map[string]any{"url": url, "secret": []string{secret}}}, 400, "secret: expected a string"},
		{[]any{map[string]any{"events": []string{"run.*"}}}, 400, "url: required"},
	} {
		err := op.Call(ctx, api.MethodWebhookAdd, nil, tc.args...)
		wantFault(t, err, tc.code)
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("webhook.add %+v: %v; want %q, and never the secret", tc.args, err, tc.want)
		}
	}
	wantFault(t, op.Call(ctx, api.MethodWebhookRemove, nil, "999"), 404)
	wantFault(t, op.Call(ctx, api.MethodWebhookTest, nil, "999"), 404)
	wantFault(t, op.Call(ctx, api.MethodWebhookDeliveries, nil, "999"), 404)
	wantFault(t, op.Call(ctx, api.MethodWebhookDeliveries, nil, w.ID, api.WebhookDeliveriesRequest{Limit: 5000}), 400)

	// webhook.write for each.
	bob, _ := h.addUser(t, op, "bob")
	for _, m := range [][]any{{api.MethodWebhookList}, {api.MethodWebhookAdd, api.WebhookAddRequest{URL: url}}, {api.MethodWebhookTest, w.ID},
		{api.MethodWebhookDeliveries, w.ID}, {api.MethodWebhookRemove, w.ID}} {
		wantFault(t, bob.Call(ctx, m[0].(string), nil, m[1:]...), 403)
	}
	addRule(t, op, "user:bob", PermWebhookWrite, "*", "allow")
	h.srv.policy.Invalidate()
	mustCall(t, bob, api.MethodWebhookList, &list)

	var gone api.Webhook
	mustCall(t, bob, api.MethodWebhookRemove, &gone, w.ID)
	if gone.ID != w.ID || gone.Last == nil {
		t.Fatalf("removed %+v", gone)
	}
	mustCall(t, op, api.MethodWebhookList, &list)
	if len(list) != 0 {
		t.Fatalf("list after remove %+v", list)
	}

	// The audit trail: every call that changed something, the secret
	// never, the URL's path never.
	var trail []api.AuditEntry
	mustCall(t, op, api.MethodAuditList, &trail, map[string]any{"operation": "webhook.*", "limit": 100})
	names := map[string]int{}
	for _, e := range trail {
		names[e.Name+" "+e.Outcome]++
		line := fmt.Sprintf("%+v", e)
		if strings.Contains(line, secret) || strings.Contains(line, "path-token") {
			t.Errorf("audit entry shows the secret or the URL's path: %s", line)
		}
		if e.Name == api.MethodWebhookAdd && e.Outcome == "ok" &&
			(!strings.Contains(e.Target, "secret=(hidden)") || !strings.Contains(e.Target, "url="+rc.URL+"/…") || e.Detail != "webhook "+w.ID) {
			t.Errorf("webhook.add's record %+v", e)
		}
		if e.Name == api.MethodWebhookTest && e.Outcome == "ok" && (e.Target != w.ID || !strings.Contains(e.Detail, "delivered, HTTP 204")) {
			t.Errorf("webhook.test's record %+v", e)
		}
	}
	if names["webhook.add ok"] != 1 || names["webhook.add error"] != 5 || names["webhook.test ok"] != 1 || names["webhook.remove ok"] != 1 ||
		names["webhook.add denied"] != 1 {
		t.Fatalf("audit records %v", names)
	}
	if log := h.log.String(); strings.Contains(log, secret) || strings.Contains(log, "path-token") {
		t.Fatalf("the log shows the secret or the URL's path:\n%s", log)
	}
}
