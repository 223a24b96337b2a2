package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/service"
)

func TestAuditLog(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	at := time.Now().UTC().Add(-time.Minute)
	for i, o := range []db.AuditEntry{
		{Actor: "admin", Name: "acl.add", Outcome: "ok"},
		{Actor: "alice", Name: "acl.add", Outcome: "denied", Detail: "needs acl.write"},
		{Actor: "admin", Name: "user.add", Target: "bob", Outcome: "ok"},
	} {
		o.At = at.Add(time.Duration(i) * time.Second)
		if err := s.Store.RecordOperation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	ops, err := s.AuditLog(ctx, db.AuditFilter{Limit: 100})
	if err != nil || len(ops) != 3 || ops[0].Name != "user.add" {
		t.Fatalf("AuditLog = %+v, %v; want 3 entries, newest first", ops, err)
	}
	ops, err = s.AuditLog(ctx, db.AuditFilter{Name: "acl.*", Outcome: "denied", Limit: 1})
	if err != nil || len(ops) != 1 || ops[0].Actor != "alice" {
		t.Fatalf("AuditLog(acl.*, denied) = %+v, %v", ops, err)
	}
	_, err = s.AuditLog(ctx, db.AuditFilter{Outcome: "maybe", Limit: 100})
	wantKind(t, err, service.ErrInvalid, `outcome: "maybe" is not ok, error, denied or blacklisted`)
	for _, limit := range []int{0, -1, 10001} {
		_, err = s.AuditLog(ctx, db.AuditFilter{Limit: limit})
		wantKind(t, err, service.ErrInvalid, "limit:")
	}
}
