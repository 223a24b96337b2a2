package api

import "time"

// Webhooks (docs/events.md, "Webhooks"; SPEC §14): URLs the server POSTs
// events to, each as the JSON of its Event.

// WebhookAddRequest is webhook.add's param.
type WebhookAddRequest struct {
	// URL: https://, or http:// to a loopback address (or anywhere, when
	// the server's configuration allows http).
	URL string `xmlrpc:"url"`
	// Events are globs on the event type ("run.failed", "job.*"); an
	// event matching any is sent. None: every event.
	Events []string `xmlrpc:"events,omitempty"`
	// Secret signs each body: X-Scire-Signature: sha256=<hex HMAC-SHA256>.
	// It is kept by the server and never shown again.
	Secret string `xmlrpc:"secret,omitempty"`
}

// Webhook is a webhook as webhook.add, webhook.list and webhook.remove
// show it: never its secret, only whether it has one.
type Webhook struct {
	ID  string `xmlrpc:"id" json:"id"`
	URL string `xmlrpc:"url" json:"url"`
	// Events are its globs; [] means every event.
	Events    []string  `xmlrpc:"events" json:"events"`
	Signed    bool      `xmlrpc:"signed" json:"signed"` // it has a secret
	CreatedBy string    `xmlrpc:"created_by" json:"created_by"`
	CreatedAt time.Time `xmlrpc:"created_at" json:"created_at"`
	// Cursor is the id of the last event delivered or given up; the
	// next to send is the first matching event after it.
	Cursor string `xmlrpc:"cursor" json:"cursor"`
	// Attempts is how many times the next event failed so far; with
	// FailingSince (its first failure) and NextAttempt while it does.
	Attempts     int        `xmlrpc:"attempts" json:"attempts"`
	FailingSince *time.Time `xmlrpc:"failing_since,omitempty" json:"failing_since,omitempty"`
	NextAttempt  *time.Time `xmlrpc:"next_attempt,omitempty" json:"next_attempt,omitempty"`
	// Last is the latest delivery attempt; absent before the first.
	Last *WebhookDelivery `xmlrpc:"last,omitempty" json:"last,omitempty"`
}

// WebhookDeliveriesRequest is webhook.deliveries' options (its second
// param).
type WebhookDeliveriesRequest struct {
	Limit  int    `xmlrpc:"limit,omitempty"`  // default 50, at most 1000
	Before string `xmlrpc:"before,omitempty"` // only attempts older than this id
}

// WebhookDelivery is one attempt at delivering an event.
type WebhookDelivery struct {
	ID        string    `xmlrpc:"id" json:"id"`
	WebhookID string    `xmlrpc:"webhook_id" json:"webhook_id"`
	EventID   string    `xmlrpc:"event_id" json:"event_id"` // also the X-Scire-Delivery header
	EventType string    `xmlrpc:"event_type" json:"event_type"`
	Attempt   int       `xmlrpc:"attempt" json:"attempt"` // from 1, for this event
	At        time.Time `xmlrpc:"at" json:"at"`
	// Status is the HTTP status of the answer; absent when there was none.
	Status     int    `xmlrpc:"status,omitempty" json:"status,omitempty"`
	Error      string `xmlrpc:"error,omitempty" json:"error,omitempty"`
	DurationMS int    `xmlrpc:"duration_ms" json:"duration_ms"`
	// Outcome: delivered (a 2xx), retrying (failed, tried again later)
	// or failed (the last try, 24 hours after the first failure).
	Outcome  string `xmlrpc:"outcome" json:"outcome"`
	ServerID string `xmlrpc:"server_id,omitempty" json:"server_id,omitempty"` // the daemon that sent it
}

// WebhookTestResult is what webhook.test returns: how the test event's
// POST went, made then and there, outside the queue.
type WebhookTestResult struct {
	WebhookID  string `xmlrpc:"webhook_id" json:"webhook_id"`
	Delivery   string `xmlrpc:"delivery" json:"delivery"` // the X-Scire-Delivery it was sent with
	Delivered  bool   `xmlrpc:"delivered" json:"delivered"`
	Status     int    `xmlrpc:"status,omitempty" json:"status,omitempty"`
	DurationMS int    `xmlrpc:"duration_ms" json:"duration_ms"`
	Error      string `xmlrpc:"error,omitempty" json:"error,omitempty"`
}

// Delivery outcomes (WebhookDelivery.Outcome).
const (
	DeliveryDelivered = "delivered"
	DeliveryRetrying  = "retrying"
	DeliveryFailed    = "failed"
)

// EventWebhookTest is the type of the event webhook.test sends.
const EventWebhookTest = "webhook.test"
