package postgres

import (
	"context"
	"fmt"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RemoveACLRule deletes a rule and returns it as it was.
func (s *Store) RemoveACLRule(ctx context.Context, id int64) (db.ACLRule, error) {
	r, err := dbcore.ScanRule(s.pool.QueryRow(ctx, `DELETE FROM acl_rules WHERE id = $1 RETURNING `+dbcore.RuleCols, id))
	if noRows(err) {
		return db.ACLRule{}, fmt.Errorf("remove ACL rule: %w", dbcore.NotFound("ACL rule", id))
	} else if err != nil {
		return db.ACLRule{}, fmt.Errorf("remove ACL rule: %w", err)
	}
	return r, nil
}

// SetACLRuleActive switches a rule on or off and returns it as it is now.
func (s *Store) SetACLRuleActive(ctx context.Context, id int64, active bool) (db.ACLRule, error) {
	r, err := dbcore.ScanRule(s.pool.QueryRow(ctx, `UPDATE acl_rules SET active = $1 WHERE id = $2 RETURNING `+dbcore.RuleCols, active, id))
	if noRows(err) {
		return db.ACLRule{}, fmt.Errorf("set ACL rule active: %w", dbcore.NotFound("ACL rule", id))
	} else if err != nil {
		return db.ACLRule{}, fmt.Errorf("set ACL rule active: %w", err)
	}
	return r, nil
}
