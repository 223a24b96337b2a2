package server

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/service"
	"github.com/scirectl/scirectl/webhook"
	"github.com/scirectl/scirectl/xmlrpc"
)

// The webhook operations (docs/events.md, "Webhooks"). Adding and removing
// a webhook are modifiers, as schedule.add and schedule.remove are;
// webhook.test POSTs outside the gate (it takes the gate to read the
// webhook only) and is audited. Every one needs webhook.write: the list
// shows URLs, which often hold a token. The deliveries themselves are the
// webhook deliverer's (webhooks.go).
func (s *Server) webhookOperations() []Operation {
	return []Operation{
		{Name: api.MethodWebhookAdd, Class: gate.Modifier, caller: byOperator, Permission: PermWebhookWrite, handler: s.webhookAdd, keepsClients: true,
			Signature: []string{"struct", "struct"},
			Help: "Add a webhook: every event its globs match, from now on, is POSTed to its URL as the JSON of events.list, in event order, " +
				"with the headers X-Scire-Event, X-Scire-Delivery (the event id) and, with a secret, X-Scire-Signature: sha256=<hex HMAC-SHA256 of the body>. " +
				"A failed delivery is retried with exponential backoff for 24 hours. Param: struct {url (https://; http:// for loopback addresses " +
				"unless the server allows http), events (array of globs on the type: run.failed, job.*; default every event), secret (never shown " +
				"again, never in the audit trail)}. Returns the webhook as webhook.list shows it."},
		{Name: api.MethodWebhookList, Class: gate.NonModifier, caller: byOperator, Permission: PermWebhookWrite, handler: s.webhookList,
			Signature: []string{"array"},
			Help: "List the webhooks by id: URL, globs, whether they sign (never the secret), the last event delivered or given up (cursor), " +
				"the failures of the next event and the last delivery attempt."},
		{Name: api.MethodWebhookRemove, Class: gate.Modifier, caller: byOperator, Permission: PermWebhookWrite, handler: s.webhookRemove, keepsClients: true,
			Signature: []string{"struct", "string"},
			Help:      "Remove a webhook and its delivery history; a delivery under way is its last. Param: webhook id. Returns the webhook as it was."},
		{Name: api.MethodWebhookTest, Class: gate.NonModifier, Changes: true, gatesItself: true, caller: byOperator, Permission: PermWebhookWrite,
			handler: s.webhookTest, Signature: []string{"struct", "string"},
			Help: "Send a webhook a test event now (type webhook.test, id 0, X-Scire-Delivery test-<n>), outside its queue, and say how it went. " +
				"Param: webhook id. Returns {webhook_id, delivery, delivered, status?, duration_ms, error?}."},
		{Name: api.MethodWebhookDeliveries, Class: gate.NonModifier, caller: byOperator, Permission: PermWebhookWrite, handler: s.webhookDeliveries,
			Signature: []string{"array", "string", "struct"},
			Help: "A webhook's delivery attempts, newest first: the event, the attempt's number, its outcome (delivered, retrying, failed), " +
				"the HTTP status, the error, how long it took. Params: webhook id, optional struct {limit (default 50, at most 1000), " +
				"before (an attempt id: page older)}."},
	}
}

func (s *Server) webhookAdd(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	in, err := p.Struct(0, "webhook")
	if err != nil {
		return nil, err
	}
	if err := in.Unknown("url", "events", "secret"); err != nil {
		return nil, err
	}
	var req service.WebhookRequest
	if req.URL, _, err = in.String("url"); err != nil {
		return nil, err
	}
	if req.URL == "" {
		return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: url: required", api.MethodWebhookAdd)
	}
	if req.Events, _, err = in.StringSlice("events"); err != nil {
		return nil, err
	}
	if v, ok := in.Get("secret"); ok {
		// Read by hand: a type error must not describe the value.
		if req.Secret, ok = v.(string); !ok {
			return nil, xmlrpc.Faultf(xmlrpc.CodeInvalid, "%s: secret: expected a string", api.MethodWebhookAdd)
		}
	}
	w, err := s.svc.AddWebhook(ctx, callingUser(ctx), req)
	if err != nil {
		return nil, inMethod(api.MethodWebhookAdd, err)
	}
	noteAudit(ctx, "webhook "+strconv.FormatInt(w.ID, 10))
	s.webhooks.Kick()
	s.log.Info("webhook added", "request_id", requestFrom(ctx).ID, "webhook_id", w.ID, "url", webhook.Redact(w.URL), "events", w.Events,
		"signed", len(w.Secret) > 0, "by", w.CreatedBy)
	return service.WebhookObject(w), nil
}

func (s *Server) webhookList(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(0, 0); err != nil {
		return nil, err
	}
	ws, err := s.svc.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Webhook, len(ws))
	for i, w := range ws {
		out[i] = service.WebhookObject(w)
	}
	return out, nil
}

func (s *Server) webhookRemove(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "id")
	if err != nil {
		return nil, err
	}
	w, err := s.svc.RemoveWebhook(ctx, id)
	if err != nil {
		return nil, err
	}
	s.log.Info("webhook removed", "request_id", requestFrom(ctx).ID, "webhook_id", w.ID, "url", webhook.Redact(w.URL), "by", callingUser(ctx).Name)
	return service.WebhookObject(w), nil
}

func (s *Server) webhookTest(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 1); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "id")
	if err != nil {
		return nil, err
	}
	// The webhook is read inside the gate; the POST is made outside it.
	t, err := s.enterAs(ctx, api.MethodWebhookTest)
	if err != nil {
		return nil, err
	}
	w, err := s.svc.Webhook(t.Context(), id)
	t.Release()
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	body, err := json.Marshal(api.Event{ID: "0", Type: api.EventWebhookTest, Time: now})
	if err != nil {
		return nil, err
	}
	delivery := "test-" + strconv.FormatInt(now.UnixNano(), 10)
	res := s.webhooks.sender.Send(ctx, webhook.Delivery{URL: w.URL, Event: api.EventWebhookTest, ID: delivery, Body: body, Secret: w.Secret})
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	out := api.WebhookTestResult{WebhookID: strconv.FormatInt(w.ID, 10), Delivery: delivery, Delivered: res.OK(), Status: res.Status,
		DurationMS: int(res.Duration / time.Millisecond)}
	if res.Err != nil {
		out.Error = res.Err.Error()
	}
	noteAudit(ctx, "test delivery "+delivery+": "+testOutcome(out))
	s.log.Info("webhook test", "request_id", requestFrom(ctx).ID, "webhook_id", w.ID, "url", webhook.Redact(w.URL), "delivered", out.Delivered,
		"status", out.Status, "err", out.Error, "by", callingUser(ctx).Name)
	return out, nil
}

// testOutcome sums up a test delivery for the audit trail.
func testOutcome(r api.WebhookTestResult) string {
	switch {
	case r.Delivered:
		return "delivered, HTTP " + strconv.Itoa(r.Status)
	case r.Error != "":
		return "failed: " + r.Error
	}
	return "failed"
}

// Bounds of webhook.deliveries' page.
const (
	defaultDeliveries = 50
	maxDeliveries     = 1000
)

func (s *Server) webhookDeliveries(ctx context.Context, p xmlrpc.Params) (any, error) {
	if err := p.Count(1, 2); err != nil {
		return nil, err
	}
	id, err := p.ID(0, "id")
	if err != nil {
		return nil, err
	}
	var f db.DeliveryFilter
	if f.Limit, f.BeforeID, err = pageOptions(p, 1, api.MethodWebhookDeliveries, defaultDeliveries, maxDeliveries); err != nil {
		return nil, err
	}
	ds, err := s.svc.WebhookDeliveries(ctx, id, f)
	if err != nil {
		return nil, err
	}
	out := make([]api.WebhookDelivery, len(ds))
	for i, d := range ds {
		out[i] = service.DeliveryObject(d)
	}
	return out, nil
}
