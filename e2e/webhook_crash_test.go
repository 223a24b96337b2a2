package e2e

import (
	"context"
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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/scirectl/scirectl/api"
	scclient "github.com/scirectl/scirectl/client"
	"github.com/scirectl/scirectl/internal/pgtest"
	"github.com/scirectl/scirectl/pki"
	"github.com/scirectl/scirectl/webhook"
)

// crashReceiver is a webhook receiver on 127.0.0.1 for the crash test: it
// records every POST (its delivery id, whether its signature verifies),
// counts the POSTs in flight at once, answers after a short delay, and
// holds the POST of one delivery (hold) until the connection it came on
// closes: the daemon sending it was killed.
type crashReceiver struct {
	*httptest.Server
	secret []byte
	delay  time.Duration

	mu       sync.Mutex
	got      []crashPost
	inFlight int
	maxIn    int
	holdNth  int           // the distinct delivery to hold, counted from 1, the first time it comes
	hold     string        // its id, once it came
	entered  chan struct{} // closed when the held POST arrives
	released chan struct{} // closed when its connection went
}

type crashPost struct {
	delivery string
	event    string
	verified bool
	at       time.Time
	held     bool
}

func (rc *crashReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p := crashPost{delivery: r.Header.Get(webhook.HeaderDelivery), event: r.Header.Get(webhook.HeaderEvent), at: time.Now(),
		verified: webhook.Verify(rc.secret, body, r.Header.Get(webhook.HeaderSignature))}
	rc.mu.Lock()
	if rc.hold == "" && !slices.ContainsFunc(rc.got, func(o crashPost) bool { return o.delivery == p.delivery }) && len(rc.got)+1 == rc.holdNth {
		rc.hold, p.held = p.delivery, true
	}
	rc.got = append(rc.got, p)
	rc.inFlight++
	rc.maxIn = max(rc.maxIn, rc.inFlight)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.inFlight--
		rc.mu.Unlock()
	}()
	if p.held {
		close(rc.entered)
		<-r.Context().Done() // the sender's connection closed
		close(rc.released)
		return
	}
	time.Sleep(rc.delay)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *crashReceiver) posts() []crashPost {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// TestWebhookCrashPostgres: two daemons on one PostgreSQL database deliver
// a webhook. The receiver holds one event's POST; the daemon holding the
// webhook's lease, the one sending it, is killed with SIGKILL mid-POST.
// The other daemon takes the webhook over once the lease runs out and
// sends that event again: every event is delivered at least once, the
// first deliveries in the order of the events, never two POSTs at once,
// none lost, and the events that came after the kill follow.
func TestWebhookCrashPostgres(t *testing.T) {
	began := time.Now()
	ctx := context.Background()
	url := pgtest.Start(t)
	pg, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dir := t.TempDir()
	// A POST times out after 6s, so a lease lasts 18s: the takeover
	// comes that long after the kill.
	const timeout, lease = 6 * time.Second, 18 * time.Second
	daemons := startPGCluster(t, url, dir, 2, fmt.Sprintf("webhooks:\n  timeout: %s\n", timeout))
	pool, err := pki.CertPool(daemons[0].caFile())
	if err != nil {
		t.Fatal(err)
	}
	token := daemons[0].token(t)
	operator := func(d *testServer) *scclient.Client {
		c, err := scclient.New(scclient.Options{Servers: []string{d.url}, RootCAs: pool, Token: token, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	ops := []*scclient.Client{operator(daemons[0]), operator(daemons[1])}
	serverIDs := map[string]int{}
	for i, op := range ops {
		var st api.ServerStatus
		if err := op.Call(ctx, api.MethodServerStatus, &st); err != nil {
			t.Fatal(err)
		}
		serverIDs[st.ID] = i
	}

	const secret = "crash-test-secret-61c0"
	rc := &crashReceiver{secret: []byte(secret), delay: 50 * time.Millisecond, holdNth: 12, entered: make(chan struct{}), released: make(chan struct{})}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	defer rc.Close()
	secretFile := filepath.Join(dir, "hook.secret")
	writeFile(t, secretFile, secret+"\n")
	var hook api.Webhook
	daemons[0].cliJSON(t, &hook, "webhook", "add", rc.URL+"/hook", "--events", "job.submitted,client.*", "--secret-file", secretFile)
	if !hook.Signed {
		t.Fatalf("webhook add: %+v", hook)
	}

	// The events: a client registers and is accepted, then jobs come.
	newGhost(t, pool, "hook-target", daemons[0].url)
	if err := ops[0].Call(ctx, api.MethodClientAccept, nil, []string{"hook-target"}); err != nil {
		t.Fatal(err)
	}
	submit := func(op *scclient.Client, from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := op.Call(ctx, api.MethodJobSubmit, nil, map[string]any{"name": fmt.Sprint("hook-", i), "script": "true",
				"targets": []string{"hook-target"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The 12th event's POST is held.
	submit(ops[0], 0, 15)
	submit(ops[1], 15, 15)
	select {
	case <-rc.entered:
	case <-time.After(60 * time.Second):
		t.Fatalf("the 12th event never came; got %d POSTs", len(rc.posts()))
	}
	rc.mu.Lock()
	heldAt := rc.got[len(rc.got)-1].at
	rc.mu.Unlock()
	var owner string
	if err := pg.QueryRow(ctx, `SELECT coalesce(lease_owner, '') FROM webhooks WHERE id = $1`, hook.ID).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	holderID, _, _ := strings.Cut(owner, "/")
	vi, ok := serverIDs[holderID]
	if !ok {
		t.Fatalf("the lease owner %q is none of the daemons %v", owner, serverIDs)
	}
	victim, survivor := daemons[vi], daemons[1-vi]
	killNine(t, victim.proc)
	killed := time.Now()
	t.Logf("kill -9 of daemon %d (server %s), mid-POST of event %s, %v after the start", vi, holderID, rc.hold,
		killed.Sub(began).Round(time.Millisecond))
	select {
	case <-rc.released:
	case <-time.After(10 * time.Second):
		t.Fatal("the held POST's connection did not close with its daemon")
	}
	if killed.Sub(heldAt) > timeout-time.Second {
		t.Fatalf("the kill came %v after the POST began, too near its timeout (%v) to be mid-POST for sure", killed.Sub(heldAt), timeout)
	}

	// More events, on the survivor, while the webhook waits for its lease.
	submit(ops[1-vi], 30, 10)
	var all api.EventsResult
	if err := ops[1-vi].Call(ctx, api.MethodEventsList, &all, api.EventsRequest{Types: []string{"job.submitted", "client.*"}, Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range all.Events {
		want = append(want, e.ID)
	}
	if len(want) != 42 {
		t.Fatalf("%d events, want 42", len(want))
	}
	eventually(t, lease+60*time.Second, "every event delivered", func() bool {
		seen := map[string]bool{}
		for _, p := range rc.posts() {
			if !p.held {
				seen[p.delivery] = true
			}
		}
		return len(seen) == len(want)
	})

	posts := rc.posts()
	var first []string
	seen := map[string]int{}
	var resent crashPost
	for _, p := range posts {
		if !p.verified {
			t.Errorf("POST of %s: the signature does not verify", p.delivery)
		}
		if seen[p.delivery] == 0 {
			first = append(first, p.delivery)
		}
		seen[p.delivery]++
		if p.delivery == rc.hold && !p.held {
			resent = p
		}
	}
	if !slices.Equal(first, want) {
		t.Fatalf("first deliveries %v,\nwant every event in order %v", first, want)
	}
	for id, n := range seen {
		if n > 1 && id != rc.hold {
			t.Errorf("event %s POSTed %d times; only the one in flight at the kill should come again", id, n)
		}
	}
	if seen[rc.hold] != 2 {
		t.Fatalf("the event in flight at the kill came %d times, want 2 (held, then again by the survivor)", seen[rc.hold])
	}
	if d := resent.at.Sub(killed); d < lease/2 || d > lease+30*time.Second {
		t.Errorf("the event came again %v after the kill; the lease is %v", d.Round(time.Millisecond), lease)
	}
	rc.mu.Lock()
	maxIn := rc.maxIn
	rc.mu.Unlock()
	if maxIn != 1 {
		t.Fatalf("%d POSTs in flight at once; one per webhook", maxIn)
	}

	// The survivor's record: the held event delivered, by it, at its
	// first attempt it recorded (the victim recorded none).
	var ds []api.WebhookDelivery
	survivor.cliJSON(t, &ds, "webhook", "deliveries", hook.ID, "--limit", "1000")
	var heldRec []api.WebhookDelivery
	for _, d := range ds {
		if d.EventID == rc.hold {
			heldRec = append(heldRec, d)
		}
		if d.Outcome != "delivered" {
			t.Errorf("delivery %+v", d)
		}
	}
	if len(heldRec) != 1 || heldRec[0].ServerID == holderID {
		t.Fatalf("the held event's records %+v; want one, by the survivor", heldRec)
	}
	eventually(t, 10*time.Second, "the cursor at the newest event", func() bool {
		var ws []api.Webhook
		survivor.cliJSON(t, &ws, "webhook", "list")
		return len(ws) == 1 && ws[0].Cursor == strconv.Itoa(mustAtoi(t, all.Last)) && ws[0].Attempts == 0
	})
	t.Logf("%d POSTs for %d events; the held one again %v after the kill; done in %v", len(posts), len(want),
		resent.at.Sub(killed).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
