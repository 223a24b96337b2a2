package service

import (
	"context"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/jobxml"
)

// MaxAuditLimit is the most audit entries one AuditLog call returns.
const MaxAuditLimit = 10000

// AuditLog lists the audit trail, newest first: every state-changing
// operator operation and every denial, those f selects. f.Outcome is empty
// (any), ok, error (any outcome but ok), denied or blacklisted; f.Limit is
// 1..MaxAuditLimit.
func (s *Service) AuditLog(ctx context.Context, f db.AuditFilter) ([]db.AuditEntry, error) {
	switch f.Outcome {
	case "", "ok", "error", "denied", "blacklisted":
	default:
		return nil, refuse(ErrInvalid, "outcome: %q is not ok, error, denied or blacklisted", f.Outcome)
	}
	if !f.Since.IsZero() {
		if err := jobxml.CheckTime(f.Since); err != nil {
			return nil, refuse(ErrInvalid, "since: %v", err)
		}
	}
	if f.Limit < 1 || f.Limit > MaxAuditLimit {
		return nil, refuse(ErrInvalid, "limit: %d is outside 1..%d", f.Limit, MaxAuditLimit)
	}
	return s.Store.ListOperations(ctx, f)
}
