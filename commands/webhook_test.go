package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// goldenWebhooks are two webhooks: one signed, for two globs, whose next
// event has failed three times; one for every event, that has delivered.
func goldenWebhooks() []api.Webhook {
	return []api.Webhook{
		{ID: "3", URL: "https://ci.example.com/hooks/scire", Events: []string{"run.failed", "job.halted"}, Signed: true, CreatedBy: "alice",
			CreatedAt: goldenNow.Add(-48 * time.Hour), Cursor: "1041", Attempts: 3, FailingSince: ptr(goldenNow.Add(-7 * time.Second)),
			NextAttempt: ptr(goldenNow.Add(4 * time.Second)),
			Last: &api.WebhookDelivery{ID: "88", WebhookID: "3", EventID: "1042", EventType: "run.failed", Attempt: 3, At: goldenNow.Add(-time.Second),
				Status: 503, Error: "HTTP 503 Service Unavailable", DurationMS: 41, Outcome: "retrying", ServerID: "1"}},
		{ID: "4", URL: "http://127.0.0.1:8080/events", Events: []string{}, CreatedBy: "bob", CreatedAt: goldenNow.Add(-time.Hour), Cursor: "1050",
			Last: &api.WebhookDelivery{ID: "90", WebhookID: "4", EventID: "1050", EventType: "client.accepted", Attempt: 1, At: goldenNow.Add(-2 * time.Minute),
				Status: 204, DurationMS: 3, Outcome: "delivered", ServerID: "2"}},
	}
}

func TestWebhookFlags(t *testing.T) {
	a := parse(t, NewWebhookAddCmd, "https://x.example/h", "--events", "run.failed,job.*", "--events", "client.accepted", "--secret-file", "s.txt", "-o", "json")
	check(t, "add", []any{a.URL, a.Events, a.SecretFile, a.out.Format}, []any{"https://x.example/h", []string{"run.failed", "job.*", "client.accepted"}, "s.txt", "json"})
	check(t, "list -q", parse(t, NewWebhookListCmd, "-q").out.Quiet, true)
	check(t, "remove", parse(t, NewWebhookRemoveCmd, "3", "4").IDs, []string{"3", "4"})
	check(t, "test", parse(t, NewWebhookTestCmd, "3").ID, "3")
	d := parse(t, NewWebhookDeliveriesCmd, "3", "--limit", "10", "--before", "88")
	check(t, "deliveries", []any{d.ID, d.Limit, d.Before}, []any{"3", 10, "88"})
	check(t, "deliveries default limit", parse(t, NewWebhookDeliveriesCmd, "3").Limit, 50)
}

// writeSecret writes a secret file with mode and returns its path.
func writeSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// webhook add: its param (the secret read from a private file, its last
// newline dropped), the checks made before anything is sent.
func TestWebhookAddRun(t *testing.T) {
	added := goldenWebhooks()[0]
	replies := map[string]func(xmlrpc.Params) any{"webhook.add": fixed(added)}
	secret := writeSecret(t, "s3cr3t-value\n", 0o600)
	open := writeSecret(t, "s3cr3t-value\n", 0o644)
	group := writeSecret(t, "s3cr3t-value\n", 0o640)
	empty := writeSecret(t, "\n", 0o600)
	runCases(t, []runCase{
		// A signed webhook for two event types.
		{args: []string{"webhook", "add", "https://ci.example.com/hooks/scire", "--events", "run.failed,job.halted", "--secret-file", secret},
			replies: replies, method: "webhook.add",
			params: []any{api.WebhookAddRequest{URL: "https://ci.example.com/hooks/scire", Events: []string{"run.failed", "job.halted"}, Secret: "s3cr3t-value"}},
			out: "webhook 3 added: https://ci.example.com/hooks/scire, run.failed, job.halted, signed; the events from now on go to it " +
				"(try it: scirectl webhook test 3)\n"},
		{args: []string{"webhook", "add", "http://127.0.0.1:8080/events"}, replies: map[string]func(xmlrpc.Params) any{"webhook.add": fixed(goldenWebhooks()[1])},
			method: "webhook.add", params: []any{api.WebhookAddRequest{URL: "http://127.0.0.1:8080/events"}},
			out: "webhook 4 added: http://127.0.0.1:8080/events, every event, unsigned; the events from now on go to it (try it: scirectl webhook test 4)\n"},
		// The secret from standard input.
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", "-", "--events", " run.* "}, stdin: "from-stdin\r\n",
			replies: replies, method: "webhook.add",
			params:   []any{api.WebhookAddRequest{URL: "https://x.example/h", Events: []string{"run.*"}, Secret: "from-stdin"}},
			contains: []string{"webhook 3 added"}},
		{args: []string{"webhook", "add", "https://x.example/h", "-o", "json"}, replies: replies, method: "webhook.add",
			params:   []any{api.WebhookAddRequest{URL: "https://x.example/h"}},
			contains: []string{`"id": "3"`, `"signed": true`, `"events": [`, `"failing_since": "2026-11-22T09:59:53Z"`, `"outcome": "retrying"`}},

		// Mistakes reach no server; the secret is never repeated.
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", open}, replies: replies, code: ExitUsage,
			errOut: "is mode 0644: its group or others could read the secret; chmod 600"},
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", group}, replies: replies, code: ExitUsage, errOut: "is mode 0640"},
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", empty}, replies: replies, code: ExitUsage, errOut: "is empty"},
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", "/nonexistent/hook.secret"}, replies: replies, code: ExitError,
			errOut: "no such file"},
		{args: []string{"webhook", "add", "https://x.example/h", "--secret-file", t.TempDir()}, replies: replies, code: ExitUsage,
			errOut: "not a regular file"},
		{args: []string{"webhook", "add", "ftp://x.example/h"}, replies: replies, code: ExitUsage, errOut: "URL: want an https:// URL"},
		{args: []string{"webhook", "add", "https://u:pw@x.example/h"}, replies: replies, code: ExitUsage, errOut: "URL: a user name or password"},
		{args: []string{"webhook", "add", "https://x.example/h", "--events", "Run.Failed"}, replies: replies, code: ExitUsage,
			errOut: `--events: "Run.Failed": 'R' is not allowed`},
		{args: []string{"webhook", "add"}, replies: replies, code: ExitUsage},

		// The server's refusal.
		{args: []string{"webhook", "add", "http://hooks.example.com/x"}, replies: map[string]func(xmlrpc.Params) any{
			"webhook.add": fixed(&xmlrpc.Fault{Code: 400, Message: "webhook.add: url: http:// is allowed only to a loopback address"})},
			method: "webhook.add", params: []any{api.WebhookAddRequest{URL: "http://hooks.example.com/x"}},
			code: ExitBadRequest, errOut: "http:// is allowed only to a loopback address"},
	})
}

func TestWebhookListRemoveTestDeliveries(t *testing.T) {
	list := map[string]func(xmlrpc.Params) any{"webhook.list": fixed(goldenWebhooks())}
	deliveries := []api.WebhookDelivery{*goldenWebhooks()[0].Last,
		{ID: "87", WebhookID: "3", EventID: "1042", EventType: "run.failed", Attempt: 2, At: goldenNow.Add(-3 * time.Second),
			Error: "dial tcp 10.0.0.9:443: connect: connection refused", DurationMS: 1500, Outcome: "retrying", ServerID: "2"},
		{ID: "86", WebhookID: "3", EventID: "1041", EventType: "job.halted", Attempt: 1, At: goldenNow.Add(-time.Hour), Status: 200,
			DurationMS: 12, Outcome: "delivered", ServerID: "1"}}
	runCases(t, []runCase{
		{args: []string{"webhook", "list"}, replies: list, method: "webhook.list",
			out: "ID  URL                                 EVENTS                 SIGNED  STATE                                         LAST\n" +
				"3   https://ci.example.com/hooks/scire  run.failed,job.halted  yes     failing: 3 attempts since 7s ago, next in 4s  retrying 503, 1s ago\n" +
				"4   http://127.0.0.1:8080/events        *                      no      ok                                            delivered 204, 2m ago\n"},
		{args: []string{"webhook", "list", "-o", "wide", "--no-headers"}, replies: list, method: "webhook.list",
			contains: []string{"1041  alice  2d ago", "1050  bob    1h ago"}},
		{args: []string{"webhook", "list", "-q"}, replies: list, method: "webhook.list", out: "3\n4\n"},
		{args: []string{"webhook", "list", "-o", "json"}, replies: map[string]func(xmlrpc.Params) any{"webhook.list": fixed([]api.Webhook{})},
			method: "webhook.list", out: "[]\n"},
		{args: []string{"webhook", "list", "-o", "json"}, replies: list, method: "webhook.list",
			contains: []string{`"url": "http://127.0.0.1:8080/events"`, `"events": []`, `"signed": false`, `"cursor": "1050"`}},

		{args: []string{"webhook", "remove", "3", "4"}, replies: map[string]func(xmlrpc.Params) any{"webhook.remove": func(p xmlrpc.Params) any {
			id, _ := p.String(0, "id")
			return goldenWebhooks()[map[string]int{"3": 0, "4": 1}[id]]
		}}, method: "webhook.remove", params: []any{"4"},
			out: "removed webhook 3 (https://ci.example.com/hooks/scire)\nremoved webhook 4 (http://127.0.0.1:8080/events)\n"},
		{args: []string{"webhook", "remove", "3", "x"}, code: ExitUsage, errOut: `webhook id "x": want a positive number`},
		{args: []string{"webhook", "remove", "9"}, replies: map[string]func(xmlrpc.Params) any{
			"webhook.remove": fixed(&xmlrpc.Fault{Code: 404, Message: "webhook 9: not found"})},
			method: "webhook.remove", params: []any{"9"}, code: ExitNotFound, errOut: "webhook 9: not found"},

		{args: []string{"webhook", "test", "3"}, replies: map[string]func(xmlrpc.Params) any{"webhook.test": fixed(api.WebhookTestResult{
			WebhookID: "3", Delivery: "test-1", Delivered: true, Status: 204, DurationMS: 35})},
			method: "webhook.test", params: []any{"3"}, out: "webhook 3: delivered (HTTP 204) in 35ms\n"},
		{args: []string{"webhook", "test", "3"}, replies: map[string]func(xmlrpc.Params) any{"webhook.test": fixed(api.WebhookTestResult{
			WebhookID: "3", Delivery: "test-2", Status: 500, DurationMS: 1200, Error: "HTTP 500 Internal Server Error: boom"})},
			method: "webhook.test", params: []any{"3"}, code: ExitJobFailed,
			out: "webhook 3: not delivered after 1.2s: HTTP 500 Internal Server Error: boom\n"},
		{args: []string{"webhook", "test", "3", "-o", "json"}, replies: map[string]func(xmlrpc.Params) any{"webhook.test": fixed(api.WebhookTestResult{
			WebhookID: "3", Delivery: "test-2", Error: "timed out after 10s", DurationMS: 10000})},
			method: "webhook.test", params: []any{"3"}, code: ExitJobFailed, contains: []string{`"delivered": false`, `"error": "timed out after 10s"`}},

		{args: []string{"webhook", "deliveries", "3"}, replies: map[string]func(xmlrpc.Params) any{"webhook.deliveries": fixed(deliveries)},
			method: "webhook.deliveries", params: []any{"3", api.WebhookDeliveriesRequest{Limit: 50}},
			out: "ID  EVENT  TYPE        ATTEMPT  OUTCOME    STATUS  TOOK  WHEN    ERROR\n" +
				"88  1042   run.failed  3        retrying   503     41ms  1s ago  HTTP 503 Service Unavailable\n" +
				"87  1042   run.failed  2        retrying   -       1.5s  3s ago  dial tcp 10.0.0.9:443: connect: connection refused\n" +
				"86  1041   job.halted  1        delivered  200     12ms  1h ago  -\n"},
		{args: []string{"webhook", "deliveries", "3", "--limit", "2", "--before", "89", "-o", "wide", "--no-headers"},
			replies: map[string]func(xmlrpc.Params) any{"webhook.deliveries": fixed(deliveries[:2])},
			method:  "webhook.deliveries", params: []any{"3", api.WebhookDeliveriesRequest{Limit: 2, Before: "89"}},
			contains: []string{"HTTP 503 Service Unavailable                        1\n", "connection refused  2\n"}},
		{args: []string{"webhook", "deliveries", "3", "-q"}, replies: map[string]func(xmlrpc.Params) any{"webhook.deliveries": fixed(deliveries)},
			method: "webhook.deliveries", params: []any{"3", api.WebhookDeliveriesRequest{Limit: 50}}, out: "88\n87\n86\n"},
		{args: []string{"webhook", "deliveries", "3", "--limit", "0"}, code: ExitUsage, errOut: "--limit 0: want 1 to 1000"},
		{args: []string{"webhook", "deliveries", "3", "--before", "x"}, code: ExitUsage, errOut: `--before "x"`},
	})
}

// Completion: webhook ids, described without their URLs' paths; event
// types for --events, after the globs already typed.
func TestWebhookCompletion(t *testing.T) {
	fake := newFakeAPI(map[string]func(xmlrpc.Params) any{"webhook.list": fixed(goldenWebhooks())})
	out, _, code := runFake(t, fake, "", "__complete", "webhook", "test", "")
	if code != 0 || !strings.Contains(out, "3\thttps://ci.example.com/… (run.failed, job.halted)") ||
		!strings.Contains(out, "4\thttp://127.0.0.1:8080/… (every event)") || strings.Contains(out, "hooks/scire") {
		t.Fatalf("webhook ids: %q", out)
	}
	out, _, _ = runFake(t, fake, "", "__complete", "webhook", "add", "https://x.example/", "--events", "run.failed,cl")
	if !strings.Contains(out, "run.failed,client.accepted\n") || !strings.Contains(out, "run.failed,schedule.tick\n") {
		t.Fatalf("event types: %q", out)
	}
}
