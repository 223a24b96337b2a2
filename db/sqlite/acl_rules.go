package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// ruleIDs lists the ids of the rules matching a condition (a constant SQL
// fragment with one parameter).
func ruleIDs(ctx context.Context, q queryer, cond string, arg any) ([]int64, error) {
	var ids []int64
	err := eachRow(ctx, q, `SELECT id FROM acl_rules WHERE `+cond+` ORDER BY id`, []any{arg}, func(rows *sql.Rows) error {
		var id int64
		err := rows.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}

// AddACLRule validates and stores a rule. A subject user, user group,
// target client group or target client (by id) must exist (ErrNotFound
// otherwise); a client target is stored as its id, with the client's name
// for display.
func (s *Store) AddACLRule(ctx context.Context, r db.ACLRule) (db.ACLRule, error) {
	if err := db.CheckRule(r); err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", err)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = r.CreatedAt.UTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		switch r.SubjectKind {
		case db.KindUser:
			var id int64
			err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, r.Subject).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				err = dbcore.NotFound("subject user", strconv.Quote(r.Subject))
			}
		case db.KindUserGroup:
			_, err = groupID(ctx, tx, userGroupTables, r.Subject)
		}
		if err != nil {
			return err
		}
		switch r.TargetKind {
		case db.KindClientGroup:
			if _, err := groupID(ctx, tx, clientGroupTables, r.Target); err != nil {
				return err
			}
		case db.KindClient:
			err := tx.QueryRowContext(ctx, `SELECT name FROM clients WHERE id = ?`, r.TargetID).Scan(&r.Target)
			if errors.Is(err, sql.ErrNoRows) {
				return dbcore.NotFound("target client", r.TargetID)
			} else if err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO acl_rules (subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at, target_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.SubjectKind, r.Subject, r.Permission, r.TargetKind, r.Target, r.Allow, r.Active, r.Note, r.CreatedBy, r.CreatedAt.UnixNano(), nullID(r.TargetID))
		if err != nil {
			return err
		}
		r.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", err)
	}
	return r, nil
}

// RemoveACLRule deletes a rule and returns it as it was.
func (s *Store) RemoveACLRule(ctx context.Context, id int64) (db.ACLRule, error) {
	var r db.ACLRule
	err := s.tx(ctx, func(tx *sql.Tx) error {
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
	err := s.tx(ctx, func(tx *sql.Tx) error {
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

// ListACLRules lists every rule, active or not, by id (the order in which
// they were added).
func (s *Store) ListACLRules(ctx context.Context) ([]db.ACLRule, error) {
	rules, err := listRules(ctx, s.r)
	if err != nil {
		return nil, fmt.Errorf("list ACL rules: %w", err)
	}
	return rules, nil
}

func listRules(ctx context.Context, q queryer) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := eachRow(ctx, q, `SELECT `+dbcore.RuleCols+` FROM acl_rules ORDER BY id`, nil, func(rows *sql.Rows) error {
		r, err := dbcore.ScanRule(rows)
		out = append(out, r)
		return err
	})
	return out, err
}

// nullID stores an absent id (0) as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// removeRules deletes the rules matching a condition (a constant SQL
// fragment with one parameter) and returns them as they were, by id.
func removeRules(ctx context.Context, tx *sql.Tx, cond string, arg any) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := eachRow(ctx, tx, `SELECT `+dbcore.RuleCols+` FROM acl_rules WHERE `+cond+` ORDER BY id`, []any{arg}, func(rows *sql.Rows) error {
		r, err := dbcore.ScanRule(rows)
		out = append(out, r)
		return err
	})
	if err != nil || len(out) == 0 {
		return out, err
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM acl_rules WHERE `+cond, arg)
	return out, err
}
