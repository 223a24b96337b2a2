package server

import (
	"context"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/gate"
	"github.com/scirectl/scirectl/maintenance"
)

// cleaner builds the maintenance service that deletes what retention
// keeps no longer (--retain, --retain-audit). Each of its batches passes
// the gate as the non-modifier "cleaner.clean", like the rescuer's
// sweeps: it never runs beside a db.restore or db.reset, and agents'
// calls go on between batches. A pass that deleted something is recorded
// in the audit trail as this daemon's.
func (s *Server) cleaner() *maintenance.Cleaner {
	return &maintenance.Cleaner{
		Store: s.store, Retain: max(s.cfg.Retain, 0), RetainAudit: max(s.cfg.RetainAudit, 0),
		Interval: s.cfg.CleanInterval, Log: s.log,
		Enter: func(ctx context.Context) (func(), error) {
			t, err := s.gate.Enter(ctx, gate.Request{Name: maintenance.AuditClean, Class: gate.NonModifier, User: "server"})
			if err != nil {
				return nil, err
			}
			return t.Release, nil
		},
		Record: func(ctx context.Context, e db.AuditEntry) { s.record(ctx, e) },
	}
}
