package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scirectl/scirectl/api"
	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
)

// TestTimesOutsideStorageAreRefused: times are stored as Unix nanoseconds,
// so a time past 2262 used to wrap around (year 9999 came back as 1816, a
// job held to 2263 was dispatched at once). job.submit, the status document
// and audit.list refuse such times with fault 400 naming the field, and
// store nothing.
func TestTimesOutsideStorageAreRefused(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	op := h.operator(t)
	ag, _ := h.activeClient(t, op, "web1")
	date := func(y int, mo time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, mo, d, hh, mm, ss, 0, time.UTC)
	}
	for _, c := range []struct {
		field string
		at    time.Time
	}{
		{"not_before", date(2263, 1, 1, 0, 0, 0)},
		{"not_before", date(9999, 1, 1, 0, 0, 0)},
		{"not_before", date(2262, 4, 11, 23, 47, 17)},
		{"not_before", date(1969, 12, 31, 23, 59, 59)},
		{"not_before", date(1970, 1, 1, 0, 0, 0)}, // stored as 0, which means "none"
		{"expires_at", date(2263, 1, 1, 0, 0, 0)},
		{"expires_at", date(9999, 12, 31, 23, 59, 59)},
	} {
		err := op.Call(ctx, "job.submit", nil, map[string]any{"script": "true", "targets": []string{"web1"}, c.field: c.at})
		want := "job.submit: " + c.field + ": " + c.at.Format(time.RFC3339) + " is outside " + jobxml.TimeRange
		if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), want) {
			t.Errorf("%s %v: err = %v; want fault 400 with %q", c.field, c.at, err, want)
		}
	}
	jobs, err := h.srv.store.ListJobs(ctx, db.JobFilter{})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("refused submissions left %d jobs (%v)", len(jobs), err)
	}
	if ops, err := h.srv.store.ListOperations(ctx, db.AuditFilter{Name: "job.submit", Outcome: "ok"}); err != nil || len(ops) != 0 {
		t.Fatalf("refused submissions left %d ok audit records (%v)", len(ops), err)
	}

	// The last storable second is stored exactly and holds the job back.
	var sub api.SubmitResult
	if err := op.Call(ctx, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"},
		"not_before": jobxml.MaxTime, "expires_at": jobxml.MaxTime}); err != nil {
		t.Fatal(err)
	}
	var j api.Job
	if err := op.Call(ctx, "job.get", &j, sub.ID); err != nil {
		t.Fatal(err)
	}
	if j.NotBefore == nil || !j.NotBefore.Equal(jobxml.MaxTime) || j.ExpiresAt == nil || !j.ExpiresAt.Equal(jobxml.MaxTime) {
		t.Fatalf("job held to %v: not_before %v, expires_at %v come back", jobxml.MaxTime, j.NotBefore, j.ExpiresAt)
	}
	var docs []string
	if err := ag.Call(ctx, "agent.getJobs", &docs, 10); err != nil || len(docs) != 0 {
		t.Fatalf("a job held to %v was dispatched now: %d documents, %v", jobxml.MaxTime, len(docs), err)
	}

	// A status whose finished is in year 9999: the document is refused,
	// naming the attribute, and the run is untouched.
	if err := op.Call(ctx, "job.submit", &sub, map[string]any{"script": "true", "targets": []string{"web1"}}); err != nil {
		t.Fatal(err)
	}
	if err := ag.Call(ctx, "agent.getJobs", &docs, 10); err != nil || len(docs) != 1 {
		t.Fatalf("getJobs: %d documents, %v", len(docs), err)
	}
	jd, err := jobxml.DecodeJob([]byte(docs[0]))
	if err != nil {
		t.Fatal(err)
	}
	for _, attrs := range []string{
		`state="succeeded" exit="0" finished="9999-01-01T00:00:00Z"`,
		`state="failed" exit="1" started="2026-11-22T10:00:00Z" finished="2263-01-01T00:00:00Z"`,
		`state="running" started="9999-12-31T23:59:59Z"`,
		`state="running" started="1969-07-20T20:17:40Z"`,
	} {
		doc := `<status run="` + itoa(jd.Run) + `" ` + attrs + `/>`
		err := ag.Call(ctx, "agent.reportStatus", nil, doc)
		name := "finished"
		if strings.HasPrefix(attrs, `state="running"`) {
			name = "started"
		}
		if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), `attribute "`+name+`"`) || !strings.Contains(err.Error(), jobxml.TimeRange) {
			t.Errorf("%s: err = %v; want fault 400 naming %s and the range", doc, err, name)
		}
	}
	r, err := h.srv.store.Run(ctx, jd.Run)
	if err != nil || r.State != "sent" || !r.FinishedAt.IsZero() || !r.StartedAt.IsZero() {
		t.Fatalf("run after refused reports = %+v, %v; want still sent, no times", r, err)
	}

	// audit.list's since is bounded the same way.
	err = op.Call(ctx, "audit.list", nil, map[string]any{"since": date(9999, 1, 1, 0, 0, 0)})
	if api.FaultCode(err) != 400 || !strings.Contains(err.Error(), "audit.list: since: 9999-01-01T00:00:00Z is outside "+jobxml.TimeRange) {
		t.Errorf("audit.list since 9999: err = %v; want fault 400 naming since", err)
	}
	if err := op.Call(ctx, "audit.list", nil, map[string]any{"since": date(2026, 1, 1, 0, 0, 0)}); err != nil {
		t.Errorf("audit.list since 2026: %v", err)
	}
}
