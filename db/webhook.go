package db

import (
	"context"
	"time"
)

// WebhookStore keeps the webhooks and their queues (docs/events.md,
// "Webhooks"). A webhook's queue is its cursor: the id of the last event
// delivered or given up (the id readers see, as Events lists it). Its
// delivery is the holder's of its lease, one at a time whatever the number
// of daemons: ClaimWebhooks takes leases, and every change made under a
// lease (AdvanceWebhook, RetryWebhook, ReleaseWebhook) is conditional on
// still holding it, so a holder whose lease ran out and was taken over
// changes nothing (ErrConflict) and stops.
type WebhookStore interface {
	// CreateWebhook adds a webhook, its cursor at nw.After.
	CreateWebhook(ctx context.Context, nw NewWebhook) (Webhook, error)
	// Webhook reads one webhook, its secret included; ErrNotFound.
	Webhook(ctx context.Context, id int64) (Webhook, error)
	// ListWebhooks lists the webhooks by id, secrets included.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	// DeleteWebhook removes a webhook and its deliveries and returns it
	// as it was; ErrNotFound. A delivery under way finds its lease gone.
	DeleteWebhook(ctx context.Context, id int64) (Webhook, error)

	// ClaimWebhooks takes the lease, for c.Lease from c.At, of at most
	// c.Max webhooks that have work: whose cursor is below c.Below (the
	// newest event id), whose next attempt is due (at or before c.At) and
	// whose lease is free or ran out. It returns them as they are once
	// taken, those waiting longest first. Of several callers asking at
	// once, each webhook goes to one.
	ClaimWebhooks(ctx context.Context, c WebhookClaim) ([]Webhook, error)
	// AdvanceWebhook moves a webhook's cursor from a.From to a.To (an
	// event delivered or given up, events that do not match skipped), with
	// its retries reset and its next attempt due from a.At, and records a.Delivery when it is set, in one
	// transaction; the lease is renewed until a.LeaseUntil, or given back
	// when that is zero. ErrConflict when a.Owner no longer holds the
	// lease or the cursor is no longer a.From: nothing changes.
	AdvanceWebhook(ctx context.Context, a WebhookAdvance) error
	// RetryWebhook records a failed attempt at the event after the
	// cursor (r.Delivery), counts it, notes r.Delivery.At as the first
	// failure unless one is noted, sets the next attempt at r.Next and
	// gives the lease back, in one transaction; ErrConflict as
	// AdvanceWebhook.
	RetryWebhook(ctx context.Context, r WebhookRetry) error
	// ReleaseWebhook gives a lease back; a lease not held is no error.
	ReleaseWebhook(ctx context.Context, id int64, owner string) error
	// WebhookDeliveries lists a webhook's delivery attempts, newest first.
	WebhookDeliveries(ctx context.Context, webhookID int64, f DeliveryFilter) ([]Delivery, error)
}

// NewWebhook is a webhook to add.
type NewWebhook struct {
	URL string
	// Events are globs on the event type ("run.*"); none: every event.
	Events []string
	// Secret signs each body (HMAC-SHA256); nil: none.
	Secret    []byte
	CreatedBy string
	CreatedAt time.Time
	// After is where the webhook starts: the events after this id.
	After int64
}

// Webhook is a webhook with its queue's state.
type Webhook struct {
	ID int64
	NewWebhook
	// Cursor is the last event delivered or given up.
	Cursor int64
	// Attempts failed at the event after Cursor so far; FirstFailure is
	// when the first of them failed, NextAttempt when the next is due.
	Attempts     int
	FirstFailure time.Time
	NextAttempt  time.Time
	// LeaseOwner holds the webhook's delivery until LeaseUntil; "" when
	// none does.
	LeaseOwner string
	LeaseUntil time.Time
	// Last is the latest delivery attempt, nil before the first.
	Last *Delivery
}

// WebhookClaim asks for webhooks to deliver.
type WebhookClaim struct {
	Owner string // the lease holder's token: a daemon's, new for each claim
	At    time.Time
	Lease time.Duration
	Max   int
	Below int64 // only webhooks whose cursor is below this event id
}

// WebhookAdvance moves a webhook's cursor (AdvanceWebhook).
type WebhookAdvance struct {
	ID       int64
	Owner    string
	From, To int64
	// At is when: the webhook's next attempt is due from then, so that
	// claims take the webhooks that waited longest first, in turn.
	At         time.Time
	LeaseUntil time.Time    // zero: give the lease back
	Delivery   *NewDelivery // the attempt that moved it, if any
}

// WebhookRetry records a failed attempt that is to be tried again
// (RetryWebhook).
type WebhookRetry struct {
	ID       int64
	Owner    string
	Next     time.Time
	Delivery NewDelivery
}

// Delivery outcomes.
const (
	DeliveryDelivered = "delivered" // a 2xx answer
	DeliveryRetrying  = "retrying"  // failed; it is tried again
	DeliveryFailed    = "failed"    // failed, the last try: given up
)

// NewDelivery is one attempt at delivering an event to a webhook.
type NewDelivery struct {
	EventID   int64
	EventType string
	Attempt   int // from 1
	At        time.Time
	Status    int // the HTTP status; 0: no answer
	Error     string
	Duration  time.Duration
	Outcome   string
	ServerID  int64
}

// Delivery is an attempt as WebhookDeliveries lists it.
type Delivery struct {
	ID        int64
	WebhookID int64
	NewDelivery
}

// DeliveryFilter narrows WebhookDeliveries.
type DeliveryFilter struct {
	Limit    int   // 0: driver default (100)
	BeforeID int64 // paging: attempts with a smaller id
}
