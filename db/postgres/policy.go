package postgres

import (
	"context"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// Policy loads the ACL rules and group memberships as one consistent
// snapshot (dbcore.Policy).
func (s *Store) Policy(ctx context.Context) (db.PolicyData, error) {
	return dbcore.Policy(ctx, s.core())
}
