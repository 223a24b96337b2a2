package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/scirectl/scirectl/db"
)

const (
	ruleCols = `id, subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at`
	// maxPermissionLen bounds a permission name, in bytes.
	maxPermissionLen = 100
	// maxTargetLen bounds a client name or id in a rule (a DNS name is at
	// most 253 bytes).
	maxTargetLen = 255
)

func scanRule(row interface{ Scan(...any) error }) (db.ACLRule, error) {
	var r db.ACLRule
	var created int64
	err := row.Scan(&r.ID, &r.SubjectKind, &r.Subject, &r.Permission, &r.TargetKind, &r.Target,
		&r.Allow, &r.Active, &r.Note, &r.CreatedBy, &created)
	r.CreatedAt = ti(created)
	return r, err
}

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

// ruleList names rule ids for a message: "rule 3", "rules 3, 5".
func ruleList(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	if len(ids) == 1 {
		return "rule " + s[0]
	}
	return "rules " + strings.Join(s, ", ")
}

func pronoun(ids []int64) string {
	if len(ids) == 1 {
		return "it"
	}
	return "them"
}

// checkRule validates what can be checked without the database.
func checkRule(r db.ACLRule) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, db.ErrInvalid)...)
	}
	switch r.SubjectKind {
	case db.KindUser, db.KindUserGroup:
		if err := checkName("subject "+r.SubjectKind, r.Subject); err != nil {
			return err
		}
	case db.KindAny:
		if r.Subject != "" {
			return bad("subject %q given with subject kind *: leave it empty", r.Subject)
		}
	default:
		return bad("subject kind %q: want %s, %s or *", r.SubjectKind, db.KindUser, db.KindUserGroup)
	}
	switch r.TargetKind {
	case db.KindClientGroup:
		if err := checkName("target "+r.TargetKind, r.Target); err != nil {
			return err
		}
	case db.KindClient:
		switch {
		case r.Target == "":
			return bad("target client name is empty")
		case len(r.Target) > maxTargetLen:
			return bad("target client name is %d bytes, at most %d", len(r.Target), maxTargetLen)
		case !utf8.ValidString(r.Target) || strings.IndexFunc(r.Target, unicode.IsControl) >= 0:
			return bad("target client name %q is not valid UTF-8 or contains a control character", r.Target)
		}
	case db.KindAny:
		if r.Target != "" {
			return bad("target %q given with target kind *: leave it empty", r.Target)
		}
	default:
		return bad("target kind %q: want %s, %s or *", r.TargetKind, db.KindClient, db.KindClientGroup)
	}
	switch p := r.Permission; {
	case p == "":
		return bad("permission is empty (use * for every permission)")
	case len(p) > maxPermissionLen:
		return bad("permission is %d bytes, at most %d", len(p), maxPermissionLen)
	case !utf8.ValidString(p) || strings.IndexFunc(p, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0:
		return bad("permission %q: no spaces or control characters allowed", p)
	}
	if !utf8.ValidString(r.Note) || !utf8.ValidString(r.CreatedBy) {
		return bad("note or creator is not valid UTF-8")
	}
	return nil
}

// AddACLRule validates and stores a rule. A subject user, user group or
// target client group must exist (ErrNotFound otherwise); a target client
// may name a machine that is not enrolled yet.
func (s *Store) AddACLRule(ctx context.Context, r db.ACLRule) (db.ACLRule, error) {
	if err := checkRule(r); err != nil {
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
				err = notFound("subject user", strconv.Quote(r.Subject))
			}
		case db.KindUserGroup:
			_, err = groupID(ctx, tx, userGroupTables, r.Subject)
		}
		if err != nil {
			return err
		}
		if r.TargetKind == db.KindClientGroup {
			if _, err := groupID(ctx, tx, clientGroupTables, r.Target); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `
			INSERT INTO acl_rules (subject_kind, subject, permission, target_kind, target, allow, active, note, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.SubjectKind, r.Subject, r.Permission, r.TargetKind, r.Target, r.Allow, r.Active, r.Note, r.CreatedBy, r.CreatedAt.UnixNano())
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
		r, err = scanRule(tx.QueryRowContext(ctx, `SELECT `+ruleCols+` FROM acl_rules WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("ACL rule", id)
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
			return notFound("ACL rule", id)
		}
		r, err = scanRule(tx.QueryRowContext(ctx, `SELECT `+ruleCols+` FROM acl_rules WHERE id = ?`, id))
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
	err := eachRow(ctx, q, `SELECT `+ruleCols+` FROM acl_rules ORDER BY id`, nil, func(rows *sql.Rows) error {
		r, err := scanRule(rows)
		out = append(out, r)
		return err
	})
	return out, err
}
