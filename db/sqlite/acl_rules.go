package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// RemoveACLRule deletes a rule and returns it as it was.
func (s *Store) RemoveACLRule(ctx context.Context, id int64) (db.ACLRule, error) {
	var r db.ACLRule
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		r, err = dbcore.ScanRule(tx.QueryRowContext(ctx, `SELECT `+dbcore.RuleCols+` FROM acl_rules WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return dbcore.NotFound("ACL rule", id)
		} else if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM acl_rules WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("remove ACL rule: %w", err)
	}
	return r, nil
}

// SetACLRuleActive switches a rule on or off and returns it as it is now.
func (s *Store) SetACLRuleActive(ctx context.Context, id int64, active bool) (db.ACLRule, error) {
	var r db.ACLRule
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE acl_rules SET active = ? WHERE id = ?`, active, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return dbcore.NotFound("ACL rule", id)
		}
		r, err = dbcore.ScanRule(tx.QueryRowContext(ctx, `SELECT `+dbcore.RuleCols+` FROM acl_rules WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("set ACL rule active: %w", err)
	}
	return r, nil
}
