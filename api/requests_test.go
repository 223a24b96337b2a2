package api_test

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	kolo "github.com/kolo/xmlrpc"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/xmlrpc"
)

// decoded is what the server reads from v sent as the only param, encoded
// as the client encodes it.
func decoded(t *testing.T, v any) any {
	t.Helper()
	body, err := kolo.EncodeMethodCall("m", v)
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := xmlrpc.DecodeCall(bytes.NewReader(body), xmlrpc.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return params[0]
}

// TestRequestMembers checks each request struct against the members the
// CLI sent as a map before: the same members, absent when unset.
func TestRequestMembers(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		req  any
		want map[string]any
	}{
		{"submit, defaults", api.SubmitRequest{Script: "true", Targets: []string{"web1"}, Groups: []string{}, Interpreter: "/bin/sh", Permission: "run"},
			map[string]any{"script": "true", "targets": []string{"web1"}, "groups": []string{}, "interpreter": "/bin/sh", "priority": 0,
				"timeout": 0, "permission": "run", "max_attempts": 0}},
		{"submit, everything", api.SubmitRequest{Script: "true", Targets: []string{}, Groups: []string{"web"}, Interpreter: "/bin/bash", Name: "n",
			Priority: 5, Timeout: 600, Permission: "deploy", MaxAttempts: 3, NotBefore: at, ExpiresAt: at.Add(time.Hour)},
			map[string]any{"script": "true", "targets": []string{}, "groups": []string{"web"}, "interpreter": "/bin/bash", "name": "n", "priority": 5,
				"timeout": 600, "permission": "deploy", "max_attempts": 3, "not_before": at, "expires_at": at.Add(time.Hour)}},
		{"job.list", api.JobListRequest{Limit: 100}, map[string]any{"limit": 100}},
		{"job.list, all", api.JobListRequest{Limit: 5, Before: "9", SubmittedBy: "alice"}, map[string]any{"limit": 5, "before": "9", "submitted_by": "alice"}},
		{"client.list", api.ClientListRequest{}, map[string]any{}},
		{"client.list, status", api.ClientListRequest{Status: "pending"}, map[string]any{"status": "pending"}},
		{"acl.add", api.ACLAddRequest{Subject: "user:alice", Permission: "run", Target: "*", Action: "allow"},
			map[string]any{"subject": "user:alice", "permission": "run", "target": "*", "action": "allow", "note": "", "active": false}},
		{"audit.list", api.AuditListRequest{Limit: 100}, map[string]any{"limit": 100}},
		{"audit.list, all", api.AuditListRequest{Limit: 1, Actor: "a", Operation: "acl.*", Outcome: "denied", Before: "7", Since: at},
			map[string]any{"limit": 1, "actor": "a", "operation": "acl.*", "outcome": "denied", "before": "7", "since": at}},
		{"user.add", api.UserAddRequest{}, map[string]any{"no_token": false}},
		{"user.add, name", api.UserAddRequest{TokenName: "ci", NoToken: true}, map[string]any{"token_name": "ci", "no_token": true}},
	} {
		got, want := decoded(t, c.req), decoded(t, c.want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the server reads\n%#v\nwant (as the map was)\n%#v", c.name, got, want)
		}
	}
}
