package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/internal/lifecycle"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/webhook"
)

// webhookDeliverer sends the events to the webhooks (docs/events.md,
// "Webhooks"). Every daemon runs one; the queue is in the database (each
// webhook's cursor), and a webhook's delivery is the holder's of its
// lease (db.WebhookStore), so that one event at a time is in flight per
// webhook, whatever the number of daemons, and a daemon that dies
// mid-delivery leaves the webhook to the next one that takes its lease
// once it runs out: that one sends the event again (at least once).
//
// A pass claims as many webhooks with work as it has free workers, and
// each worker delivers its webhook's events one at a time, in order:
// reads the next events matching its globs after the cursor, POSTs each,
// and on a 2xx moves the cursor past it in the transaction that records
// the delivery and renews the lease. A failure is recorded, and the event
// waits (exponential backoff with jitter) with the lease given back; the
// attempt that fails 24 hours after the event's first failure is its
// last: it is recorded as failed, and the cursor moves on. Events the
// globs do not match move the cursor without a POST. A worker gives its
// webhook back after turn deliveries, for the others' turn.
//
// Passes come when the event watcher sees a new event (while there are
// webhooks: otherwise nobody waits on it), when a worker is done, when a
// webhook is added here (Kick), and every interval. The store steps of a
// pass and of a delivery enter the gate as the non-modifier
// "webhook.deliver"; the POSTs are made outside it.
type webhookDeliverer struct {
	lifecycle.Base

	store  db.Store
	sender *webhook.Sender
	// wait returns once an event newer than after is there, or ctx ends
	// (the event watcher's Wait); nil: passes come by the clock alone.
	wait     func(ctx context.Context, after int64)
	enter    func(ctx context.Context) (func(), error)
	serverID func() int64
	now      func() time.Time
	jitter   func() float64
	backoff  webhook.Backoff
	giveUp   time.Duration // after an event's first failure
	lease    time.Duration
	workers  int
	interval time.Duration // the longest wait between passes while there are webhooks
	idle     time.Duration // between looks for webhooks while there are none
	minGap   time.Duration // the shortest wait between passes
	batch    int           // events read at a time
	turn     int           // deliveries under one lease
	log      *slog.Logger

	kick  chan struct{}
	token string       // this daemon's part of its lease owners
	seq   atomic.Int64 // and a claim's
}

// deliveryGate is the name a delivery's store steps enter the gate under.
const deliveryGate = "webhook.deliver"

// webhookLease is how long a delivery holds its webhook: three times a
// POST's timeout (30s by default), renewed at each delivery, so that a
// POST and the steps around it end well within it.
func webhookLease(timeout time.Duration) time.Duration {
	if timeout <= 0 {
		timeout = webhook.DefaultTimeout
	}
	return 3 * timeout
}

func newWebhookDeliverer(s *Server) *webhookDeliverer {
	d := newDeliverer(s.store, &webhook.Sender{Timeout: s.cfg.Webhooks.Timeout, AllowHTTP: s.cfg.Webhooks.AllowHTTP,
		UserAgent: "scirectl-server/" + s.cfg.Version}, s.log)
	d.wait = s.events.Wait
	d.serverID = s.serverID
	d.lease = webhookLease(s.cfg.Webhooks.Timeout)
	d.enter = func(ctx context.Context) (func(), error) {
		t, err := s.enterGate(ctx, gate.Request{Name: deliveryGate, Class: gate.NonModifier, User: "server"})
		if err != nil {
			return nil, err
		}
		return t.Release, nil
	}
	return d
}

// newDeliverer is a deliverer with the defaults, outside any gate.
func newDeliverer(store db.Store, sender *webhook.Sender, log *slog.Logger) *webhookDeliverer {
	tok := make([]byte, 6)
	_, _ = rand.Read(tok)
	return &webhookDeliverer{
		store: store, sender: sender, log: log, token: hex.EncodeToString(tok),
		enter:    func(context.Context) (func(), error) { return func() {}, nil },
		serverID: func() int64 { return 0 },
		now:      func() time.Time { return time.Now().UTC() },
		jitter:   mrand.Float64,
		backoff:  webhook.DefaultBackoff, giveUp: webhook.GiveUpAfter, lease: webhookLease(sender.Timeout),
		workers: 4, interval: time.Second, idle: 5 * time.Second, minGap: 100 * time.Millisecond, batch: 100, turn: 100,
		kick: make(chan struct{}, 1),
	}
}

// Kick asks for a pass now: a webhook was added, or a worker is free.
func (d *webhookDeliverer) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Start delivers until Stop.
func (d *webhookDeliverer) Start(ctx context.Context) error {
	d.StartLoop(ctx, d.run)
	return nil
}

func (d *webhookDeliverer) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait() // Stop returns once every worker has given its webhook back
	busy := make(chan struct{}, d.workers)
	have, looked := false, time.Time{}
	var last int64 // the newest event id at the last claim
	for {
		if !have || time.Since(looked) >= d.idle {
			ws, err := d.store.ListWebhooks(ctx)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("webhooks: list", "err", err)
			}
			have, looked = len(ws) > 0, time.Now()
		}
		free := d.workers - len(busy)
		if have && free > 0 {
			ws, newest, err := d.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("webhooks: claim", "err", err)
			} else if err == nil {
				last = newest
			}
			for _, w := range ws {
				busy <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-busy
						d.Kick()
					}()
					if _, err := d.deliver(ctx, w, newest); err != nil && ctx.Err() == nil {
						d.log.Warn("webhooks: delivery", "webhook_id", w.ID, "err", err)
					}
				})
			}
		}
		// A new event matters while there are webhooks and a worker is
		// free; a busy worker kicks when it is done.
		if !d.pause(ctx, have, have && len(busy) < d.workers, last) {
			return
		}
	}
}

// pause waits for the next pass: a kick, an event newer than last (when
// watch), or the clock (interval while there are webhooks, else idle);
// false once ctx is done.
func (d *webhookDeliverer) pause(ctx context.Context, have, watch bool, last int64) bool {
	gap := time.NewTimer(d.minGap)
	defer gap.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-gap.C:
	}
	wait := d.idle
	if have {
		wait = d.interval
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	woke := make(chan struct{})
	if watch && d.wait != nil {
		go func() {
			d.wait(wctx, last)
			close(woke)
		}()
	}
	select {
	case <-ctx.Done():
		return false
	case <-d.kick:
	case <-woke:
	case <-wctx.Done():
	}
	return true
}

// RunOnce is one pass on the caller's goroutine: it claims as many
// webhooks as there are workers and delivers them (in parallel), and
// returns the number of POSTs made.
func (d *webhookDeliverer) RunOnce(ctx context.Context) (int, error) {
	ws, last, err := d.claim(ctx, d.workers)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	total, first := 0, error(nil)
	for _, w := range ws {
		wg.Go(func() {
			n, err := d.deliver(ctx, w, last)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return total, first
}

// claim takes the leases of at most max webhooks with work, and returns
// them with the newest event id, which bounds what they deliver now.
func (d *webhookDeliverer) claim(ctx context.Context, max int) ([]db.Webhook, int64, error) {
	release, err := d.enter(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	last, err := d.store.LastEventID(ctx)
	if err != nil {
		return nil, 0, err
	}
	owner := fmt.Sprintf("%d/%s/%d", d.serverID(), d.token, d.seq.Add(1))
	ws, err := d.store.ClaimWebhooks(ctx, db.WebhookClaim{Owner: owner, At: d.now(), Lease: d.lease, Max: max, Below: last})
	return ws, last, err
}

// errLeaseGone ends a delivery whose lease another holder has, or whose
// webhook was removed.
var errLeaseGone = errors.New("the webhook's lease is gone")

// deliver sends w's events after its cursor, up to last, one at a time,
// while they succeed and its turn lasts; the lease is given back at the
// end, or passes on with a retry. It returns the number of POSTs made.
func (d *webhookDeliverer) deliver(ctx context.Context, w db.Webhook, last int64) (posts int, err error) {
	owner, cursor := w.LeaseOwner, w.Cursor
	attempts, first := w.Attempts, w.FirstFailure
	held := true
	defer func() {
		if errors.Is(err, errLeaseGone) {
			d.log.Info("webhook delivery stopped: the webhook was removed, or another daemon has taken it over", "webhook_id", w.ID)
			err = nil
		} else if held {
			// Stopping, a turn over, a store error: the next holder
			// goes on from the cursor.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := d.store.ReleaseWebhook(rctx, w.ID, owner); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	for posts < d.turn {
		evs, err := d.events(ctx, w, cursor, last)
		if err != nil {
			return posts, err
		}
		if len(evs) == 0 {
			// Nothing for this webhook up to last: skip to it.
			if err := d.advance(ctx, db.WebhookAdvance{ID: w.ID, Owner: owner, From: cursor, To: last, At: d.now()}); err != nil {
				return posts, err
			}
			held = false
			return posts, nil
		}
		for i, e := range evs {
			if posts >= d.turn {
				return posts, nil
			}
			body, err := service.EventBody(e)
			if err != nil {
				return posts, err
			}
			res := d.sender.Send(ctx, webhook.Delivery{URL: w.URL, Event: e.Type, ID: strconv.FormatInt(e.ID, 10), Body: body, Secret: w.Secret})
			if ctx.Err() != nil {
				return posts, ctx.Err() // stopping: the event goes again
			}
			posts++
			now := d.now()
			attempts++
			nd := db.NewDelivery{EventID: e.ID, EventType: e.Type, Attempt: attempts, At: now, Status: res.Status, Duration: res.Duration,
				ServerID: d.serverID()}
			to := e.ID
			if i == len(evs)-1 && len(evs) < d.batch {
				to = last // the rest up to last does not match
			}
			a := db.WebhookAdvance{ID: w.ID, Owner: owner, From: cursor, To: to, At: now, LeaseUntil: now.Add(d.lease), Delivery: &nd}
			if to == last {
				a.LeaseUntil = time.Time{} // the last: the lease goes back with it
			}
			if res.OK() {
				nd.Outcome = db.DeliveryDelivered
				if err := d.advance(ctx, a); err != nil {
					return posts, err
				}
				held = to != last
				d.log.Debug("webhook delivered", "webhook_id", w.ID, "event_id", e.ID, "type", e.Type, "status", res.Status,
					"duration", res.Duration.Round(time.Millisecond).String(), "attempt", attempts)
				cursor, attempts, first = to, 0, time.Time{}
				continue
			}
			nd.Error = res.Err.Error()
			if first.IsZero() {
				first = now
			}
			if deadline := first.Add(d.giveUp); !now.Before(deadline) {
				nd.Outcome = db.DeliveryFailed
				if err := d.advance(ctx, a); err != nil {
					return posts, err
				}
				held = to != last
				d.log.Error("webhook delivery given up", "webhook_id", w.ID, "url", webhook.Redact(w.URL), "event_id", e.ID, "type", e.Type,
					"attempts", attempts, "failing_since", first.Format(time.RFC3339), "status", res.Status, "err", nd.Error)
				cursor, attempts, first = to, 0, time.Time{}
				continue
			}
			next := now.Add(d.backoff.Delay(attempts, d.jitter()))
			if deadline := first.Add(d.giveUp); next.After(deadline) {
				next = deadline // the last try, at the deadline
			}
			nd.Outcome = db.DeliveryRetrying
			if err := d.retry(ctx, db.WebhookRetry{ID: w.ID, Owner: owner, Next: next, Delivery: nd}); err != nil {
				return posts, err
			}
			held = false
			d.log.Warn("webhook delivery failed", "webhook_id", w.ID, "url", webhook.Redact(w.URL), "event_id", e.ID, "type", e.Type,
				"attempt", attempts, "status", res.Status, "err", nd.Error, "retry_in", next.Sub(now).Round(time.Millisecond).String())
			return posts, nil
		}
		if cursor == last {
			return posts, nil
		}
	}
	return posts, nil
}

// events reads the next events of w after cursor, up to last, inside the
// gate.
func (d *webhookDeliverer) events(ctx context.Context, w db.Webhook, cursor, last int64) ([]db.Event, error) {
	release, err := d.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return d.store.Events(ctx, db.EventFilter{After: cursor, Until: last, Types: w.Events, Limit: d.batch})
}

// advance is Store.AdvanceWebhook inside the gate; a lease gone is
// errLeaseGone.
func (d *webhookDeliverer) advance(ctx context.Context, a db.WebhookAdvance) error {
	return d.underLease(ctx, func(ctx context.Context) error { return d.store.AdvanceWebhook(ctx, a) })
}

// retry is Store.RetryWebhook inside the gate; a lease gone is
// errLeaseGone.
func (d *webhookDeliverer) retry(ctx context.Context, r db.WebhookRetry) error {
	return d.underLease(ctx, func(ctx context.Context) error { return d.store.RetryWebhook(ctx, r) })
}

func (d *webhookDeliverer) underLease(ctx context.Context, fn func(context.Context) error) error {
	// What a POST did is recorded even while the daemon stops.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	release, err := d.enter(ctx)
	if err != nil {
		return err
	}
	defer release()
	err = fn(ctx)
	if errors.Is(err, db.ErrConflict) {
		return errLeaseGone
	}
	return err
}
