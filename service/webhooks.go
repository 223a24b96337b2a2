package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/webhook"
)

// WebhookRules are the daemon's rules for webhooks (server.yaml
// webhooks:).
type WebhookRules struct {
	// AllowHTTP lets a webhook's URL be http:// to any host, not only to
	// a loopback address.
	AllowHTTP bool
}

// MaxWebhooks bounds the webhooks of a server: each is a queue the
// daemons keep moving.
const MaxWebhooks = 100

// WebhookRequest is a webhook to add.
type WebhookRequest struct {
	URL    string
	Events []string // globs on the event type; none: every event
	Secret string   // "": no signature
}

// AddWebhook checks and adds a webhook for caller. It starts at the newest
// event there is: it is sent the events that come after.
func (s *Service) AddWebhook(ctx context.Context, caller db.User, r WebhookRequest) (db.Webhook, error) {
	if _, err := webhook.CheckURL(r.URL, s.WebhookRules.AllowHTTP); err != nil {
		return db.Webhook{}, refuse(ErrInvalid, "url: %v", err)
	}
	if err := checkEventGlobs("events", r.Events); err != nil {
		return db.Webhook{}, err
	}
	var globs []string
	for _, g := range r.Events {
		if !slices.Contains(globs, g) {
			globs = append(globs, g)
		}
	}
	if len(r.Secret) > webhook.MaxSecretLength || !utf8.ValidString(r.Secret) {
		// The secret is never repeated, not even in part.
		return db.Webhook{}, refuse(ErrInvalid, "secret: want at most %d bytes of text", webhook.MaxSecretLength)
	}
	var secret []byte
	if r.Secret != "" {
		secret = []byte(r.Secret)
	}
	have, err := s.Store.ListWebhooks(ctx)
	if err != nil {
		return db.Webhook{}, err
	}
	if len(have) >= MaxWebhooks {
		return db.Webhook{}, refuseWhole(ErrConflict, "%d webhooks already, the most a server keeps: remove one first", len(have))
	}
	after, err := s.Store.LastEventID(ctx)
	if err != nil {
		return db.Webhook{}, err
	}
	return s.Store.CreateWebhook(ctx, db.NewWebhook{URL: r.URL, Events: globs, Secret: secret, CreatedBy: caller.Name,
		CreatedAt: time.Now().UTC(), After: after})
}

// Webhooks lists the webhooks, by id.
func (s *Service) Webhooks(ctx context.Context) ([]db.Webhook, error) {
	return s.Store.ListWebhooks(ctx)
}

// Webhook reads one webhook.
func (s *Service) Webhook(ctx context.Context, id int64) (db.Webhook, error) {
	return s.Store.Webhook(ctx, id)
}

// RemoveWebhook removes a webhook and its history and returns it as it
// was. A delivery under way ends with it.
func (s *Service) RemoveWebhook(ctx context.Context, id int64) (db.Webhook, error) {
	return s.Store.DeleteWebhook(ctx, id)
}

// WebhookDeliveries lists a webhook's delivery attempts, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, id int64, f db.DeliveryFilter) ([]db.Delivery, error) {
	if _, err := s.Store.Webhook(ctx, id); err != nil {
		return nil, err
	}
	return s.Store.WebhookDeliveries(ctx, id, f)
}

// WebhookObject is a webhook as the API shows it: never its secret.
func WebhookObject(w db.Webhook) api.Webhook {
	out := api.Webhook{ID: strconv.FormatInt(w.ID, 10), URL: w.URL, Events: w.Events, Signed: len(w.Secret) > 0,
		CreatedBy: w.CreatedBy, CreatedAt: w.CreatedAt, Cursor: strconv.FormatInt(w.Cursor, 10), Attempts: w.Attempts}
	if out.Events == nil {
		out.Events = []string{}
	}
	if !w.FirstFailure.IsZero() {
		t := w.FirstFailure
		out.FailingSince = &t
	}
	if w.Attempts > 0 && !w.NextAttempt.IsZero() {
		t := w.NextAttempt
		out.NextAttempt = &t
	}
	if w.Last != nil {
		d := DeliveryObject(*w.Last)
		out.Last = &d
	}
	return out
}

// DeliveryObject is a delivery attempt as the API shows it.
func DeliveryObject(d db.Delivery) api.WebhookDelivery {
	out := api.WebhookDelivery{ID: strconv.FormatInt(d.ID, 10), WebhookID: strconv.FormatInt(d.WebhookID, 10),
		EventID: strconv.FormatInt(d.EventID, 10), EventType: d.EventType, Attempt: d.Attempt, At: d.At, Status: d.Status,
		Error: d.Error, DurationMS: int(d.Duration / time.Millisecond), Outcome: d.Outcome}
	if d.ServerID != 0 {
		out.ServerID = strconv.FormatInt(d.ServerID, 10)
	}
	return out
}

// EventBody is the body a webhook receives for an event: its JSON, the
// object events.list returns.
func EventBody(e db.Event) ([]byte, error) {
	b, err := json.Marshal(EventObject(e))
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", e.ID, err)
	}
	return b, nil
}
