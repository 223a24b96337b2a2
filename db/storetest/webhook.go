package storetest

// Webhooks: the rows, and their queues: a lease one holder at a time,
// changes under a lease that only its holder makes, a cursor that moves in
// the transaction that records the delivery, retries that wait.

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
)

func newWebhook(url string, after int64, globs ...string) db.NewWebhook {
	return db.NewWebhook{URL: url, Events: globs, Secret: []byte("s3cret\x00\xff"), CreatedBy: "alice", CreatedAt: t0, After: after}
}

func delivered(e int64, at time.Time) *db.NewDelivery {
	return &db.NewDelivery{EventID: e, EventType: "client.registered", Attempt: 1, At: at, Status: 204, Duration: 3 * time.Millisecond,
		Outcome: db.DeliveryDelivered, ServerID: 1}
}

func testWebhooks(t *testing.T, s db.Store) {
	ctx := context.Background()
	w := must(s.CreateWebhook(ctx, newWebhook("https://hooks.example.com/a?token=x", 42, "run.*", "job.finished")))(t)
	if w.ID == 0 || w.URL != "https://hooks.example.com/a?token=x" || !slices.Equal(w.Events, []string{"run.*", "job.finished"}) ||
		string(w.Secret) != "s3cret\x00\xff" || w.CreatedBy != "alice" || !w.CreatedAt.Equal(t0) || w.Cursor != 42 ||
		w.Attempts != 0 || !w.NextAttempt.IsZero() || !w.FirstFailure.IsZero() || w.LeaseOwner != "" || w.Last != nil {
		t.Fatalf("created %+v", w)
	}
	plain := must(s.CreateWebhook(ctx, db.NewWebhook{URL: "http://127.0.0.1:9/", CreatedBy: "bob", CreatedAt: t0}))(t)
	if plain.Secret != nil || plain.Events != nil || plain.Cursor != 0 {
		t.Fatalf("no secret, no globs: %+v", plain)
	}
	if got := must(s.Webhook(ctx, w.ID))(t); got.URL != w.URL || string(got.Secret) != string(w.Secret) || got.Cursor != 42 {
		t.Fatalf("read back %+v", got)
	}
	if l := must(s.ListWebhooks(ctx))(t); len(l) != 2 || l[0].ID != w.ID || l[1].ID != plain.ID {
		t.Fatalf("list %+v", l)
	}
	_, err := s.Webhook(ctx, 999999)
	wantErr(t, "an unknown webhook", err, db.ErrNotFound)
	_, err = s.CreateWebhook(ctx, newWebhook("https://x/\x00", 0))
	wantErr(t, "a URL with NUL", err, db.ErrInvalid)
	_, err = s.CreateWebhook(ctx, newWebhook("https://x/", 0, "run.*,job.*"))
	wantErr(t, "a glob with a comma", err, db.ErrInvalid)

	// Deliveries go with their webhook.
	mustClient(t, s, "w1", false)
	last := must(s.LastEventID(ctx))(t)
	got := must(s.ClaimWebhooks(ctx, db.WebhookClaim{Owner: "d1", At: t0, Lease: time.Minute, Max: 10, Below: last}))(t)
	if len(got) != 1 || got[0].ID != plain.ID || got[0].LeaseOwner != "d1" || !got[0].LeaseUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("claimed %+v; want the webhook at 0 (the other is at 42)", got)
	}
	ok(t, s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: plain.ID, Owner: "d1", From: 0, To: last, Delivery: delivered(last, t0)}))
	if d := must(s.WebhookDeliveries(ctx, plain.ID, db.DeliveryFilter{}))(t); len(d) != 1 {
		t.Fatalf("deliveries %+v", d)
	}
	gone := must(s.DeleteWebhook(ctx, plain.ID))(t)
	if gone.ID != plain.ID || gone.Cursor != last || gone.Last == nil || gone.Last.EventID != last {
		t.Fatalf("deleted %+v", gone)
	}
	_, err = s.DeleteWebhook(ctx, plain.ID)
	wantErr(t, "deleting it again", err, db.ErrNotFound)
	if d := must(s.WebhookDeliveries(ctx, plain.ID, db.DeliveryFilter{}))(t); len(d) != 0 {
		t.Fatalf("deliveries of a deleted webhook %+v", d)
	}

	// A backup holds the webhooks, secrets, cursors and histories.
	must(s.ClaimWebhooks(ctx, db.WebhookClaim{Owner: "d2", At: t0, Lease: time.Minute, Max: 1, Below: 1 << 40}))(t)
	ok(t, s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "d2", From: 42, To: 43, Delivery: delivered(43, t0)}))
	want := must(s.Webhook(ctx, w.ID))(t)
	path := filepath.Join(t.TempDir(), "b.db")
	ok(t, s.Backup(ctx, path))
	must(s.DeleteWebhook(ctx, w.ID))(t)
	ok(t, s.Restore(ctx, path))
	if back := must(s.Webhook(ctx, w.ID))(t); !reflect.DeepEqual(back, want) {
		t.Fatalf("restored\n%+v\nwant\n%+v", back, want)
	}
}

// testWebhookQueue: what a claim takes, what only the holder may change,
// retries that wait and count, and the history.
func testWebhookQueue(t *testing.T, s db.Store) {
	ctx := context.Background()
	for i := range 3 {
		mustClient(t, s, fmt.Sprint("q", i), true)
	}
	evs := must(s.Events(ctx, db.EventFilter{}))(t)
	if len(evs) != 6 {
		t.Fatalf("%d events", len(evs))
	}
	last := evs[5].ID
	w := must(s.CreateWebhook(ctx, newWebhook("https://a.example/", evs[1].ID)))(t)
	idle := must(s.CreateWebhook(ctx, newWebhook("https://b.example/", last)))(t)
	claim := func(owner string, at time.Time) []db.Webhook {
		t.Helper()
		return must(s.ClaimWebhooks(ctx, db.WebhookClaim{Owner: owner, At: at, Lease: time.Minute, Max: 10, Below: last}))(t)
	}

	// A webhook at the newest event has no work; the other is taken once.
	got := claim("a", t0)
	if len(got) != 1 || got[0].ID != w.ID || got[0].LeaseOwner != "a" {
		t.Fatalf("claim %+v", got)
	}
	if again := claim("b", t0.Add(59*time.Second)); len(again) != 0 {
		t.Fatalf("claimed a held lease: %+v", again)
	}
	// The holder moves the cursor and keeps the lease.
	ok(t, s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "a", From: evs[1].ID, To: evs[2].ID,
		LeaseUntil: t0.Add(2 * time.Minute), Delivery: delivered(evs[2].ID, t0)}))
	if again := claim("b", t0.Add(90*time.Second)); len(again) != 0 {
		t.Fatalf("claimed a renewed lease: %+v", again)
	}
	// Another holder, a stale cursor: refused, nothing changes.
	err := s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "b", From: evs[2].ID, To: evs[3].ID, Delivery: delivered(evs[3].ID, t0)})
	wantErr(t, "advancing another's lease", err, db.ErrConflict)
	err = s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "a", From: evs[1].ID, To: evs[3].ID, Delivery: delivered(evs[3].ID, t0)})
	wantErr(t, "advancing from a stale cursor", err, db.ErrConflict)
	if g := must(s.Webhook(ctx, w.ID))(t); g.Cursor != evs[2].ID || g.Last.EventID != evs[2].ID {
		t.Fatalf("refused advances changed %+v", g)
	}
	// The lease runs out: another takes it, and the first holder can
	// change nothing any more.
	got = claim("b", t0.Add(2*time.Minute+time.Nanosecond))
	if len(got) != 1 || got[0].LeaseOwner != "b" || got[0].Cursor != evs[2].ID {
		t.Fatalf("takeover %+v", got)
	}
	err = s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "a", From: evs[2].ID, To: evs[3].ID, Delivery: delivered(evs[3].ID, t0)})
	wantErr(t, "advancing a lease taken over", err, db.ErrConflict)
	err = s.RetryWebhook(ctx, db.WebhookRetry{ID: w.ID, Owner: "a", Next: t0, Delivery: db.NewDelivery{EventID: evs[3].ID, EventType: "x",
		Attempt: 1, At: t0, Outcome: db.DeliveryRetrying}})
	wantErr(t, "retrying a lease taken over", err, db.ErrConflict)
	ok(t, s.ReleaseWebhook(ctx, w.ID, "a")) // not held: nothing
	if g := must(s.Webhook(ctx, w.ID))(t); g.LeaseOwner != "b" {
		t.Fatalf("a release by another freed the lease: %+v", g)
	}

	// Failures: the lease goes back, the next attempt waits, the first
	// failure's time stays, attempts count.
	t1 := t0.Add(time.Hour)
	fail := func(owner string, attempt int, at, next time.Time) {
		t.Helper()
		ok(t, s.RetryWebhook(ctx, db.WebhookRetry{ID: w.ID, Owner: owner, Next: next, Delivery: db.NewDelivery{EventID: evs[3].ID,
			EventType: "client.accepted", Attempt: attempt, At: at, Status: 503, Error: "HTTP 503 Service Unavailable", Duration: time.Second,
			Outcome: db.DeliveryRetrying, ServerID: 2}}))
	}
	fail("b", 1, t1, t1.Add(time.Second))
	g := must(s.Webhook(ctx, w.ID))(t)
	if g.LeaseOwner != "" || g.Attempts != 1 || !g.FirstFailure.Equal(t1) || !g.NextAttempt.Equal(t1.Add(time.Second)) || g.Cursor != evs[2].ID ||
		g.Last.Outcome != db.DeliveryRetrying || g.Last.Status != 503 || g.Last.Error != "HTTP 503 Service Unavailable" || g.Last.ServerID != 2 {
		t.Fatalf("after a failure %+v (last %+v)", g, g.Last)
	}
	if early := claim("c", t1.Add(time.Second-1)); len(early) != 0 {
		t.Fatalf("claimed before the next attempt: %+v", early)
	}
	got = claim("c", t1.Add(time.Second))
	if len(got) != 1 || got[0].Attempts != 1 {
		t.Fatalf("claim at the next attempt: %+v", got)
	}
	fail("c", 2, t1.Add(time.Second), t1.Add(3*time.Second))
	g = must(s.Webhook(ctx, w.ID))(t)
	if g.Attempts != 2 || !g.FirstFailure.Equal(t1) || !g.NextAttempt.Equal(t1.Add(3*time.Second)) {
		t.Fatalf("after a second failure %+v", g)
	}
	// Given up (or delivered): the next event starts afresh, and the
	// lease goes back when the holder says so.
	if got = claim("d", t1.Add(3*time.Second)); len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("claim after two failures %+v", got)
	}
	failed := &db.NewDelivery{EventID: evs[3].ID, EventType: "client.accepted", Attempt: 3, At: t1.Add(3 * time.Second),
		Error: "dial tcp: connection refused", Outcome: db.DeliveryFailed}
	ok(t, s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "d", From: evs[2].ID, To: evs[3].ID, At: t1.Add(3 * time.Second), Delivery: failed}))
	g = must(s.Webhook(ctx, w.ID))(t)
	if g.Attempts != 0 || !g.FirstFailure.IsZero() || !g.NextAttempt.Equal(t1.Add(3*time.Second)) || g.LeaseOwner != "" || !g.LeaseUntil.IsZero() ||
		g.Cursor != evs[3].ID || g.Last.Outcome != db.DeliveryFailed {
		t.Fatalf("after giving up %+v", g)
	}
	// Skipping events that do not match: no delivery recorded.
	got = claim("e", t1.Add(4*time.Second))
	if len(got) != 1 {
		t.Fatalf("claim %+v", got)
	}
	ok(t, s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: "e", From: evs[3].ID, To: last, At: t1.Add(4 * time.Second)}))
	if g := must(s.Webhook(ctx, w.ID))(t); g.Cursor != last || g.Last.Outcome != db.DeliveryFailed || g.LeaseOwner != "" {
		t.Fatalf("after a skip %+v", g)
	}
	if again := claim("f", t1.Add(time.Hour)); len(again) != 0 {
		t.Fatalf("claimed webhooks with no work: %+v", again)
	}
	ok(t, s.ReleaseWebhook(ctx, idle.ID, "nobody"))

	// The history, newest first, by pages.
	h := must(s.WebhookDeliveries(ctx, w.ID, db.DeliveryFilter{}))(t)
	var outcomes []string
	for _, d := range h {
		outcomes = append(outcomes, fmt.Sprintf("%d:%s:%d", d.EventID, d.Outcome, d.Attempt))
	}
	want := []string{
		fmt.Sprintf("%d:failed:3", evs[3].ID), fmt.Sprintf("%d:retrying:2", evs[3].ID), fmt.Sprintf("%d:retrying:1", evs[3].ID),
		fmt.Sprintf("%d:delivered:1", evs[2].ID),
	}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("history %v, want %v", outcomes, want)
	}
	if d := h[1]; d.WebhookID != w.ID || d.EventType != "client.accepted" || !d.At.Equal(t1.Add(time.Second)) || d.Status != 503 ||
		d.Duration != time.Second || d.ServerID != 2 {
		t.Fatalf("a retry in the history %+v", d)
	}
	page := must(s.WebhookDeliveries(ctx, w.ID, db.DeliveryFilter{Limit: 2, BeforeID: h[0].ID}))(t)
	if len(page) != 2 || page[0].ID != h[1].ID || page[1].ID != h[2].ID {
		t.Fatalf("page %+v", page)
	}
	// A webhook deleted under a lease: its holder finds it gone.
	w2 := must(s.CreateWebhook(ctx, newWebhook("https://c.example/", 0)))(t)
	claim("g", t1.Add(2*time.Hour))
	must(s.DeleteWebhook(ctx, w2.ID))(t)
	err = s.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w2.ID, Owner: "g", From: 0, To: last, Delivery: delivered(last, t0)})
	wantErr(t, "advancing a deleted webhook", err, db.ErrConflict)
}

// testWebhookLeaseRace runs WebhookLeaseRace on one store.
func testWebhookLeaseRace(t *testing.T, s db.Store) { WebhookLeaseRace(t, s, s) }

// WebhookLeaseRace: stores (two daemons on one database, or one store's
// connections) race for webhooks' leases. Of many claims of one webhook at
// once, one wins. Then workers on every store deliver a webhook's backlog
// together, each claiming, moving the cursor by one event with its
// delivery record and giving the lease back: every event is delivered
// exactly once, in order, and no change under a lease fails, since a
// lease is one holder's.
func WebhookLeaseRace(t *testing.T, stores ...db.Store) {
	ctx := context.Background()
	s := stores[0]
	for i := range 10 {
		mustClient(t, s, fmt.Sprint("race", i), true)
	}
	last := must(s.LastEventID(ctx))(t)
	w := must(s.CreateWebhook(ctx, newWebhook("https://race.example/", 0)))(t)

	const callers = 12
	var mu sync.Mutex
	var winners []string
	var wg sync.WaitGroup
	errs := make(chan error, callers*100)
	for i := range callers {
		st := stores[i%len(stores)]
		wg.Go(func() {
			owner := fmt.Sprint("owner-", i)
			got, err := st.ClaimWebhooks(ctx, db.WebhookClaim{Owner: owner, At: t0, Lease: time.Minute, Max: 5, Below: last})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, g := range got {
				if g.ID == w.ID {
					winners = append(winners, owner)
				}
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d claims won the lease of one webhook (%v), want 1", len(winners), winners)
	}
	if g := must(s.Webhook(ctx, w.ID))(t); g.LeaseOwner != winners[0] {
		t.Fatalf("lease owner %q, the winner %q", g.LeaseOwner, winners[0])
	}
	ok(t, s.ReleaseWebhook(ctx, w.ID, winners[0]))

	// The backlog, delivered by all at once.
	events := must(s.Events(ctx, db.EventFilter{Limit: 1000}))(t)
	const workers = 6
	for i := range workers {
		st := stores[i%len(stores)]
		wg.Go(func() {
			owner := fmt.Sprint("worker-", i)
			for range 10000 {
				got, err := st.ClaimWebhooks(ctx, db.WebhookClaim{Owner: owner, At: t0, Lease: time.Minute, Max: 1, Below: last})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					g, err := st.Webhook(ctx, w.ID)
					if err != nil {
						errs <- err
						return
					}
					if g.Cursor == last {
						return
					}
					continue // another holds it
				}
				next, err := st.Events(ctx, db.EventFilter{After: got[0].Cursor, Until: last, Limit: 1})
				if err != nil || len(next) != 1 {
					errs <- fmt.Errorf("the event after %d: %v, %v", got[0].Cursor, next, err)
					return
				}
				if err := st.AdvanceWebhook(ctx, db.WebhookAdvance{ID: w.ID, Owner: owner, From: got[0].Cursor, To: next[0].ID,
					Delivery: delivered(next[0].ID, t0)}); err != nil {
					errs <- fmt.Errorf("%s advancing its own lease: %w", owner, err)
					return
				}
			}
			errs <- fmt.Errorf("%s: no end", owner)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h := must(s.WebhookDeliveries(ctx, w.ID, db.DeliveryFilter{Limit: 1000}))(t)
	if len(h) != len(events) {
		t.Fatalf("%d deliveries of %d events", len(h), len(events))
	}
	for i, d := range h {
		if want := events[len(events)-1-i].ID; d.EventID != want {
			t.Fatalf("delivery %d is of event %d, want %d: out of order or twice", i, d.EventID, want)
		}
	}
}
