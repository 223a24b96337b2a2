package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

// AddWebhook: the URL rules (http:// to loopback only, unless the
// daemon allows it), the globs, the secret (never repeated); a webhook
// starts at the newest event; the API's object never holds the secret.
func TestAddWebhook(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	alice := db.User{Name: "alice"}
	register(t, s, "fp1", "web1", db.ClientActive)
	last, err := s.Store.LastEventID(ctx)
	if err != nil || last == 0 {
		t.Fatalf("last event %d, %v", last, err)
	}
	const secret = "Sekr1t-webhook-f00"
	w, err := s.AddWebhook(ctx, alice, service.WebhookRequest{URL: "https://hooks.example.com/x?token=abc",
		Events: []string{"run.*", "job.finished", "run.*"}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if w.Cursor != last || w.CreatedBy != "alice" || string(w.Secret) != secret || !slices.Equal(w.Events, []string{"run.*", "job.finished"}) {
		t.Fatalf("added %+v", w)
	}
	obj := service.WebhookObject(w)
	b, _ := json.Marshal(obj)
	if strings.Contains(string(b), secret) || !obj.Signed || obj.Cursor == "" || obj.Last != nil {
		t.Fatalf("the API's webhook %s", b)
	}
	plain, err := s.AddWebhook(ctx, alice, service.WebhookRequest{URL: "http://127.0.0.1:8080/hook"})
	if err != nil || plain.Secret != nil || service.WebhookObject(plain).Signed || len(service.WebhookObject(plain).Events) != 0 {
		t.Fatalf("plain: %+v, %v", plain, err)
	}

	for _, tc := range []struct {
		req  service.WebhookRequest
		want string
	}{
		{service.WebhookRequest{URL: "http://hooks.example.com/x"}, "url: http:// is allowed only to a loopback address"},
		{service.WebhookRequest{URL: "https://u:p@hooks.example.com/"}, "url: a user name or password"},
		{service.WebhookRequest{URL: "hooks.example.com"}, "url: want an https:// URL"},
		{service.WebhookRequest{URL: "https://x.example/", Events: []string{"Run.*"}}, `events: "Run.*": 'R' is not allowed`},
		{service.WebhookRequest{URL: "https://x.example/", Events: []string{""}}, `events: "": want 1..64 characters`},
		{service.WebhookRequest{URL: "https://x.example/", Secret: strings.Repeat("s", 1025)}, "secret: want at most 1024 bytes"},
	} {
		_, err := s.AddWebhook(ctx, alice, tc.req)
		if !errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.req, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "sssss") {
			t.Errorf("the refusal repeats the secret: %v", err)
		}
	}
	// The daemon may allow http:// anywhere.
	s.WebhookRules.AllowHTTP = true
	if _, err := s.AddWebhook(ctx, alice, service.WebhookRequest{URL: "http://hooks.example.com/x"}); err != nil {
		t.Fatalf("with allow_http: %v", err)
	}
	if ws, _ := s.Webhooks(ctx); len(ws) != 3 {
		t.Fatalf("%d webhooks", len(ws))
	}
	// Deliveries of an unknown webhook: not found, not an empty list.
	if _, err := s.WebhookDeliveries(ctx, 999, db.DeliveryFilter{}); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("deliveries of an unknown webhook: %v", err)
	}
	if _, err := s.RemoveWebhook(ctx, plain.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveWebhook(ctx, plain.ID); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
}

// The body a webhook receives is the event's JSON, as events.list shows
// it: ids as strings, members that do not apply absent.
func TestEventBody(t *testing.T) {
	code := 3
	e := db.Event{ID: 17, Type: "run.failed", JobID: 4, RunID: 9, ClientID: 2, Client: "web1", ExitCode: &code, Detail: ""}
	b, err := service.EventBody(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"17","type":"run.failed","time":"0001-01-01T00:00:00Z","job_id":"4","run_id":"9","client_id":"2","client":"web1","exit_code":3}`
	if string(b) != want {
		t.Fatalf("body %s\nwant %s", b, want)
	}
	var back api.Event
	if err := json.Unmarshal(b, &back); err != nil || back.ID != "17" || *back.ExitCode != 3 {
		t.Fatalf("read back %+v, %v", back, err)
	}
}
