package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/scirectl/scirectl/db"
	"github.com/scirectl/scirectl/db/internal/dbcore"
)

// ruleIDs lists the ids of the rules matching a condition (a constant SQL
// fragment with one parameter, $1).
func ruleIDs(ctx context.Context, q queryer, cond string, arg any) ([]int64, error) {
	var ids []int64
	err := eachRow(ctx, q, `SELECT id FROM acl_rules WHERE `+cond+` ORDER BY id`, []any{arg}, func(rows pgx.Rows) error {
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
// for display. The rows it names are
// share-locked until the rule is in, so a concurrent delete of the user or
// group either sees the rule or is seen to have happened first.
func (s *Store) AddACLRule(ctx context.Context, r db.ACLRule) (db.ACLRule, error) {
	if err := db.CheckRule(r); err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", err)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	r.CreatedAt = r.CreatedAt.UTC()
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		switch r.SubjectKind {
		case db.KindUser:
			var id int64
			err = tx.QueryRow(ctx, `SELECT id FROM users WHERE name = $1 FOR SHARE`, r.Subject).Scan(&id)
			if noRows(err) {
				err = dbcore.NotFound("subject user", strconv.Quote(r.Subject))
			}
		case db.KindUserGroup:
			_, err = groupID(ctx, tx, userGroupTables, r.Subject, "FOR SHARE")
		}
		if err != nil {
			return err
		}
		switch r.TargetKind {
		case db.KindClientGroup:
			if _, err := groupID(ctx, tx, clientGroupTables, r.Target, "FOR SHARE"); err != nil {
				return err
			}
		case db.KindClient:
			err := tx.QueryRow(ctx, `SELECT name FROM clients WHERE id = $1 FOR SHARE`, r.TargetID).Scan(&r.Target)
			if noRows(err) {
				return dbcore.NotFound("target client", r.TargetID)
			} else if err != nil {
				return err
			}
		}
		return tx.QueryRow(ctx, `
			INSERT INTO acl_rules (subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at, target_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			r.SubjectKind, r.Subject, r.Permission, r.TargetKind, r.Target, r.Allow, r.Active, r.Note, r.CreatedBy, r.CreatedAt.UnixNano(), nullID(r.TargetID)).
			Scan(&r.ID)
	})
	if err != nil {
		return db.ACLRule{}, fmt.Errorf("add ACL rule: %w", classify(err))
	}
	return r, nil
}

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

// ListACLRules lists every rule, active or not, by id (the order in which
// they were added).
func (s *Store) ListACLRules(ctx context.Context) ([]db.ACLRule, error) {
	rules, err := listRules(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("list ACL rules: %w", err)
	}
	return rules, nil
}

func listRules(ctx context.Context, q queryer) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := eachRow(ctx, q, `SELECT `+dbcore.RuleCols+` FROM acl_rules ORDER BY id`, nil, func(rows pgx.Rows) error {
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
// fragment with one parameter, $1) and returns them as they were, by id.
func removeRules(ctx context.Context, tx pgx.Tx, cond string, arg any) ([]db.ACLRule, error) {
	var out []db.ACLRule
	err := eachRow(ctx, tx, `DELETE FROM acl_rules WHERE `+cond+` RETURNING `+dbcore.RuleCols, []any{arg}, func(rows pgx.Rows) error {
		r, err := dbcore.ScanRule(rows)
		out = append(out, r)
		return err
	})
	slices.SortFunc(out, func(a, b db.ACLRule) int { return cmp.Compare(a.ID, b.ID) })
	return out, err
}
